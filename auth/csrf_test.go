package auth_test

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/store/storetest"
)

const (
	setFrench = `mutation { updateMe(input: {language: "fr-fr"}) { user { language } } }`
	frontend  = "https://app.test"
)

func jsonBody(doc string) *bytes.Reader {
	b, _ := json.Marshal(map[string]string{"query": doc})
	return bytes.NewReader(b)
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	st := newSite(t, allowing(frontend+"/", "http://other.test:8080"))
	own := st.url
	multipartBody := func() (string, *bytes.Buffer) {
		var b bytes.Buffer
		m := multipart.NewWriter(&b)
		m.WriteField("operations", `{"query":"`+strings.ReplaceAll(setFrench, `"`, `\"`)+`"}`)
		m.Close()
		return m.FormDataContentType(), &b
	}
	get := func(params url.Values) string { return "?" + params.Encode() }
	tests := []struct {
		name        string
		method      string
		query       string // URL query of a GET
		contentType string
		body        func() (string, *bytes.Buffer) // overrides contentType
		headers     []string
		noCookie    bool
		status      int
		code        string // "" when the mutation runs
	}{
		{name: "same-origin JSON", headers: []string{"Origin", own}, status: 200},
		{name: "JSON with a charset", contentType: "application/json; charset=utf-8", headers: []string{"Origin", own}, status: 200},
		{name: "graphql-response+json", contentType: "application/graphql-response+json", headers: []string{"Origin", own}, status: 200},
		{name: "same-origin by Sec-Fetch-Site", headers: []string{"Sec-Fetch-Site", "same-origin"}, status: 200},
		{name: "allowed frontend", headers: []string{"Origin", frontend}, status: 200},

		{name: "text/plain", contentType: "text/plain", headers: []string{"Origin", own}, status: 403, code: "FORBIDDEN"},
		{name: "text/plain without Origin", contentType: "text/plain;charset=UTF-8", status: 403, code: "FORBIDDEN"},
		{name: "form", contentType: "application/x-www-form-urlencoded", headers: []string{"Origin", own}, status: 403, code: "FORBIDDEN"},
		{name: "multipart", body: multipartBody, headers: []string{"Origin", own}, status: 403, code: "FORBIDDEN"},
		{name: "no content type", contentType: "-", headers: []string{"Origin", own}, status: 403, code: "FORBIDDEN"},
		{name: "cross-site Origin", headers: []string{"Origin", "https://evil.test"}, status: 403, code: "FORBIDDEN"},
		{name: "allowed host on another scheme", headers: []string{"Origin", "http://app.test"}, status: 403, code: "FORBIDDEN"},
		{name: "allowed host on another port", headers: []string{"Origin", "http://other.test"}, status: 403, code: "FORBIDDEN"},
		{name: "opaque Origin", headers: []string{"Origin", "null"}, status: 403, code: "FORBIDDEN"},
		{name: "two Origins", headers: []string{"Origin", own, "Origin", "https://evil.test"}, status: 403, code: "FORBIDDEN"},
		{name: "cross-site Origin claiming same-origin", headers: []string{"Origin", "https://evil.test", "Sec-Fetch-Site", "same-origin"}, status: 403, code: "FORBIDDEN"},
		{name: "cross-site by Sec-Fetch-Site", headers: []string{"Sec-Fetch-Site", "cross-site"}, status: 403, code: "FORBIDDEN"},
		{name: "same-site sibling", headers: []string{"Sec-Fetch-Site", "same-site"}, status: 403, code: "FORBIDDEN"},
		{name: "neither Origin nor Sec-Fetch-Site", status: 403, code: "FORBIDDEN"},

		{name: "mutation over GET", method: "GET", query: get(url.Values{"query": {setFrench}}), status: 405, code: "METHOD_NOT_ALLOWED"},
		{name: "mutation over GET, same origin", method: "GET", query: get(url.Values{"query": {setFrench}}), headers: []string{"Origin", own, "Sec-Fetch-Site", "same-origin"}, status: 405, code: "METHOD_NOT_ALLOWED"},
		{name: "mutation over GET behind a chosen query", method: "GET", status: 405, code: "METHOD_NOT_ALLOWED",
			query: get(url.Values{"query": {"query q { me { id } } " + setFrench}, "operationName": {"q"}})},
		{name: "mutation in a second query parameter", method: "GET", status: 405, code: "METHOD_NOT_ALLOWED",
			query: get(url.Values{"query": {"{ me { id } }", setFrench}})},
		{name: "mutation over GET without a cookie", method: "GET", query: get(url.Values{"query": {setFrench}}), noCookie: true, status: 405, code: "METHOD_NOT_ALLOWED"},
	}
	// Rule 4: queries over GET with the cookie, as the browser says where they come from.
	meQuery := get(url.Values{"query": {"{ me { id } }"}})
	for _, tt := range []struct {
		name     string
		headers  []string
		noCookie bool
		status   int
	}{
		{"navigation typed by the person", []string{"Sec-Fetch-Site", "none"}, false, 200},
		{"same origin", []string{"Sec-Fetch-Site", "same-origin"}, false, 200},
		{"no Sec-Fetch-Site", nil, false, 200},
		{"allowed frontend on another site", []string{"Sec-Fetch-Site", "cross-site", "Origin", frontend}, false, 200},
		{"cross-site link", []string{"Sec-Fetch-Site", "cross-site"}, false, 403},
		{"cross-site fetch", []string{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.test"}, false, 403},
		{"same-site sibling", []string{"Sec-Fetch-Site", "same-site"}, false, 403},
		{"cross-site without the cookie", []string{"Sec-Fetch-Site", "cross-site"}, true, 200},
	} {
		t.Run("GET query: "+tt.name, func(t *testing.T) {
			t.Parallel()
			st := st.in(t)
			u := storetest.User(t, st.s, uuid.Nil)
			cookie := st.login(u, nil, "")
			if tt.noCookie {
				cookie = nil
			}
			a := st.call(http.MethodGet, meQuery, "", nil, cookie, tt.headers...)
			if a.status != tt.status || (tt.status == 403) != (a.code() == "FORBIDDEN") {
				t.Errorf("status %d, code %q (%+v); want %d", a.status, a.code(), a.Errors, tt.status)
			}
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := st.in(t)
			u := storetest.User(t, st.s, uuid.Nil)
			cookie := st.login(u, nil, "")
			if tt.noCookie {
				cookie = nil
			}
			method, contentType, body := tt.method, tt.contentType, jsonBody(setFrench)
			var a answer
			switch {
			case method == "GET":
				a = st.call(method, tt.query, "", nil, cookie, tt.headers...)
			case tt.body != nil:
				ct, b := tt.body()
				a = st.call(http.MethodPost, "", ct, b, cookie, tt.headers...)
			default:
				if contentType == "" {
					contentType = "application/json"
				} else if contentType == "-" {
					contentType = ""
				}
				a = st.call(http.MethodPost, "", contentType, body, cookie, tt.headers...)
			}
			if a.status != tt.status || a.code() != tt.code {
				t.Errorf("status %d, code %q (%+v); want %d, %q", a.status, a.code(), a.Errors, tt.status, tt.code)
			}
			if tt.code != "" && a.header.Get("Content-Type") != "application/json; charset=utf-8" {
				t.Errorf("refusal Content-Type = %q, want application/json; charset=utf-8", a.header.Get("Content-Type"))
			}
			if tt.status == 405 && a.header.Get("Allow") != "POST" {
				t.Errorf("405 with Allow %q, want POST", a.header.Get("Allow"))
			}
			want := "en-us"
			if tt.code == "" {
				want = "fr-fr"
			}
			var got string
			if err := st.s.DB().NewRaw("SELECT language FROM users WHERE id = ?", u.ID).Scan(t.Context(), &got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("language after the request = %s, want %s", got, want)
			}
		})
	}

	t.Run("queries over GET with the cookie", func(t *testing.T) {
		t.Parallel()
		st := st.in(t)
		u := storetest.User(t, st.s, uuid.Nil)
		a := st.call(http.MethodGet, get(url.Values{"query": {"{ me { id } }"}}), "", nil, st.login(u, nil, ""))
		if a.status != 200 || !strings.Contains(string(a.Data), u.ID.String()) {
			t.Errorf("GET query: status %d, data %s, errors %+v; want the user", a.status, a.Data, a.Errors)
		}
	})
	t.Run("a cookie-authenticated query needs the same checks", func(t *testing.T) {
		t.Parallel()
		st := st.in(t)
		u := storetest.User(t, st.s, uuid.Nil)
		a := st.call(http.MethodPost, "", "text/plain", jsonBody("{ me { id } }"), st.login(u, nil, ""), "Origin", own)
		if a.status != 403 {
			t.Errorf("text/plain query with the cookie: status %d, want 403", a.status)
		}
	})
}

// Rules 2 and 3 protect the cookie; a request authenticated by its Authorization header goes
// to gqlgen, which has its own rules for bodies.
func TestCSRFNotForBearer(t *testing.T) {
	t.Parallel()
	bearer, partners := withBearer(t)
	token, u := partners.partnerToken(t)
	st := newSite(t, bearer)
	a := st.call(http.MethodPost, "", "application/json", jsonBody("{ me { id } }"), nil, "Authorization", "Bearer "+token, "Origin", "https://partner.test")
	if a.status != 200 || !strings.Contains(string(a.Data), u.ID.String()) {
		t.Errorf("bearer from another origin: status %d, %s %+v; want the token's user", a.status, a.Data, a.Errors)
	}
	a = st.call(http.MethodPost, "", "text/plain", jsonBody("{ me { id } }"), nil, "Authorization", "Bearer "+token)
	if a.status == 403 {
		t.Errorf("bearer with text/plain refused by the CSRF rules (%+v); gqlgen should judge it", a.Errors)
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	st := newSite(t, allowing(frontend))
	u := storetest.User(t, st.s, uuid.Nil)
	cookie := st.login(u, nil, "")
	preflight := func(origin string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodOptions, st.url+"/graphql", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	vary := func(h http.Header) []string {
		var vs []string
		for _, v := range h.Values("Vary") {
			for _, f := range strings.Split(v, ",") {
				vs = append(vs, strings.TrimSpace(f))
			}
		}
		return vs
	}

	t.Run("allowed origin", func(t *testing.T) {
		st := st.in(t)
		resp := preflight(frontend)
		h := resp.Header
		if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != frontend ||
			h.Get("Access-Control-Allow-Credentials") != "true" || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
			!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "content-type") {
			t.Errorf("preflight from %s: %d %v", frontend, resp.StatusCode, h)
		}
		a := st.call(http.MethodPost, "", "application/json", jsonBody(`{ me { id } }`), cookie, "Origin", frontend)
		h = a.header
		if a.code() != "" || h.Get("Access-Control-Allow-Origin") != frontend || h.Get("Access-Control-Allow-Credentials") != "true" ||
			!slices.Contains(vary(h), "Origin") {
			t.Errorf("request from %s: %+v, headers %v", frontend, a.Errors, h)
		}
	})
	t.Run("unknown origin", func(t *testing.T) {
		st := st.in(t)
		for _, origin := range []string{"https://evil.test", "null", frontend + ".evil.test", "http://app.test"} {
			resp := preflight(origin)
			if resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("preflight from %s got CORS headers: %v", origin, resp.Header)
			}
			a := st.call(http.MethodPost, "", "application/json", jsonBody(`{ config { release } }`), nil, "Origin", origin)
			if a.status != 200 || a.header.Get("Access-Control-Allow-Origin") != "" || a.header.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("request from %s: status %d, headers %v; want 200 without CORS headers", origin, a.status, a.header)
			}
			if !slices.Contains(vary(a.header), "Origin") {
				t.Errorf("request from %s: no Vary: Origin", origin)
			}
		}
	})
	t.Run("never a wildcard", func(t *testing.T) {
		st := st.in(t)
		a := st.call(http.MethodPost, "", "application/json", jsonBody(`{ config { release } }`), cookie, "Origin", frontend)
		if a.header.Get("Access-Control-Allow-Origin") == "*" {
			t.Error("Access-Control-Allow-Origin: *")
		}
	})
}

func TestParseOrigin(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"https://app.test", "https://app.test"},
		{"https://App.Test/", "https://app.test"},
		{"https://app.test:443", "https://app.test"},
		{"http://localhost:80", "http://localhost"},
		{"http://localhost:8071", "http://localhost:8071"},
		{"http://[::1]:3000", "http://[::1]:3000"},
		{" https://app.test ", "https://app.test"},
		{"https://app.test/path", ""},
		{"https://app.test?x", ""},
		{"https://user@app.test", ""},
		{"ftp://app.test", ""},
		{"app.test", ""},
		{"*", ""},
		{"null", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, err := auth.ParseOrigin(tt.in)
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
