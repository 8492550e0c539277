package main

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"lasuite.fr/people/auth/oidctest"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// jsonBearerEnv is a production deployment accepting RFC 7662 answers of a fake provider.
func jsonBearerEnv(t *testing.T) (*oidctest.Server, map[string]string) {
	t.Helper()
	as := oidctest.NewServer(t, oidctest.Options{})
	return as, map[string]string{
		"DATABASE_URL": "postgres://u:p@127.0.0.1/db", "OIDC_OP_URL": as.URL,
		"OIDC_OP_INTROSPECTION_ENDPOINT": as.IntrospectionURL(),
		"OIDC_RS_CLIENT_ID":              as.ClientID, "OIDC_RS_CLIENT_SECRET": as.ClientSecret,
		"SECRET_KEY": strings.Repeat("k", 40), "OIDC_RP_CLIENT_SECRET": "rp-secret",
	}
}

// bearerIdentity lets as's tokens for u.Sub name u.
func bearerIdentity(t *testing.T, s *store.Store, as *oidctest.Server, u store.User) {
	t.Helper()
	storetest.MustExec(t, s.DB(), "INSERT INTO user_identities (user_id, issuer, subject) VALUES (?, ?, ?)", u.ID, as.URL, u.Sub)
}

// sessionCookie opens a browser session for u, as a login would, and returns its cookie (the
// production name: SESSION_COOKIE_SECURE is on by default).
func sessionCookie(t *testing.T, s *store.Store, u store.User) *http.Cookie {
	t.Helper()
	raw := make([]byte, 32)
	rand.Read(raw)
	h := sha256.Sum256(raw)
	if _, err := s.CreateSession(t.Context(), h[:], store.NewSession{UserID: u.ID, Issuer: "https://op.test", Subject: u.Sub}, time.Hour); err != nil {
		t.Fatal(err)
	}
	return &http.Cookie{Name: "__Host-people_session", Value: base64.RawURLEncoding.EncodeToString(raw)}
}

// query sends a GraphQL query over GET (no CSRF check applies), with a session cookie or an
// Authorization header when given.
func query(t *testing.T, base string, cookie *http.Cookie, authz, q string) (int, http.Header, string) {
	t.Helper()
	return queryWith(t, base, cookie, authz, q, nil)
}

func queryWith(t *testing.T, base string, cookie *http.Cookie, authz, q string, headers map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/graphql?"+url.Values{"query": {q}}.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestRequestLogs: each request's log line says who asked what and how it went, under the
// request's id, and never holds a token or a cookie.
func TestRequestLogs(t *testing.T) {
	as, vars := jsonBearerEnv(t)
	srv, logs := bearerServer(t, vars)
	s := storetest.Open(t)
	u := storetest.User(t, s, storetest.Organization(t, s))
	bearerIdentity(t, s, as, u)
	cookie := sessionCookie(t, s, u)
	tok := as.Mint(oidctest.Token{Subject: u.Sub, ClientID: "docs"})

	_, hs, _ := queryWith(t, srv.URL, cookie, "", `query WhoAmI { me { id } }`, map[string]string{"X-Request-Id": "trace-me-42"})
	_, hb, _ := query(t, srv.URL, nil, "Bearer "+tok, `query ServiceCall { me { id } }`)
	_, ha, _ := query(t, srv.URL, nil, "", `{ config { release } }`)
	if hs.Get("X-Request-Id") != "trace-me-42" {
		t.Errorf("X-Request-Id = %q, want the client's trace-me-42 echoed", hs.Get("X-Request-Id"))
	}
	out := logs.String()
	lines := map[string]map[string]any{}
	for _, e := range logEntries(t, out) {
		if e["msg"] == "request" {
			lines[fmt.Sprint(e["request_id"])] = e
		}
	}
	for _, want := range []map[string]any{
		{"request_id": "trace-me-42", "principal": "session", "user_id": u.ID.String(), "operation": "WhoAmI", "fields": "me", "outcome": "ok", "status": float64(200)},
		{"request_id": hb.Get("X-Request-Id"), "principal": "bearer", "user_id": u.ID.String(), "operation": "ServiceCall", "fields": "me", "outcome": "ok", "status": float64(200)},
		{"request_id": ha.Get("X-Request-Id"), "principal": "anonymous", "fields": "config", "outcome": "ok", "status": float64(200), "path": "/graphql", "method": "GET"},
	} {
		got := lines[fmt.Sprint(want["request_id"])]
		for k, v := range want {
			if got[k] != v {
				t.Errorf("request %s: %s = %v, want %v (entry %v)", want["request_id"], k, got[k], v, got)
			}
		}
		if _, ok := got["duration_ms"].(float64); !ok {
			t.Errorf("request %s has no duration_ms: %v", want["request_id"], got)
		}
	}
	for _, secret := range []string{tok, cookie.Value, as.ClientSecret, "rp-secret"} {
		if strings.Contains(out, secret) {
			t.Errorf("the logs hold a secret (%.8s…):\n%s", secret, out)
		}
	}
}

// TestMetrics: /metrics exposes the series after traffic, to a loopback peer or with
// METRICS_TOKEN, and refuses everyone else.
func TestMetrics(t *testing.T) {
	as, vars := jsonBearerEnv(t)
	token := "metrics-" + storetest.Unique() + "-0123456789"
	vars["METRICS_TOKEN"] = token
	vars["ANON_THROTTLE_RATES"] = "3/minute"
	srv, _ := bearerServer(t, vars)
	s := storetest.Open(t)
	u := storetest.User(t, s, storetest.Organization(t, s))
	bearerIdentity(t, s, as, u)
	tok := as.Mint(oidctest.Token{Subject: u.Sub, ClientID: "docs"})
	for range 2 { // one introspection, then the cache
		query(t, srv.URL, nil, "Bearer "+tok, `{ me { id } }`)
	}
	query(t, srv.URL, nil, "Bearer "+as.Mint(oidctest.Token{Subject: u.Sub, ClientID: "docs", Expiry: time.Now().Add(-time.Minute)}), `{ me { id } }`)
	// The authorization server fails: 503, and the failure is counted.
	query(t, srv.URL, nil, "Bearer "+as.Mint(oidctest.Token{Subject: u.Sub, ClientID: "docs", Fault: &oidctest.Fault{Status: http.StatusInternalServerError}}), `{ me { id } }`)
	query(t, srv.URL, sessionCookie(t, s, u), "", `{ me { id } config { release } }`)
	for range 4 { // the 4th is refused
		query(t, srv.URL, nil, "", `{ nope }`)
	}

	status, body := get(t, srv.URL+"/metrics")
	if status != http.StatusOK {
		t.Fatalf("GET /metrics from loopback: %d %s", status, body)
	}
	for _, series := range []string{
		`people_http_requests_total{code="200",route="/graphql"} 6`,
		`people_http_requests_total{code="401",route="/graphql"} 1`,
		`people_http_requests_total{code="429",route="/graphql"} 1`,
		`people_http_requests_total{code="503",route="/graphql"} 1`,
		`people_http_request_duration_seconds_count{route="/graphql"} 9`,
		`people_graphql_requests_total{operation="me",outcome="ok"} 2`,
		`people_graphql_requests_total{operation="other",outcome="ok"} 1`,
		`people_graphql_requests_total{operation="other",outcome="GRAPHQL_VALIDATION_FAILED"} 3`,
		`people_graphql_request_duration_seconds_count{operation="me",outcome="ok"} 2`,
		`people_bearer_introspections_total{outcome="active"} 1`,
		`people_bearer_introspections_total{outcome="refused"} 1`,
		`people_bearer_introspections_total{outcome="failed"} 1`,
		`people_bearer_token_cache_hits_total 1`,
		`people_rate_limited_total{limit="anonymous"} 1`,
		`people_rate_limited_total{limit="burst"} 0`,
		`go_sql_max_open_connections{db_name="people"} 40`,
		`go_sql_in_use_connections{db_name="people"}`,
		`go_sql_wait_duration_seconds_total{db_name="people"}`,
		`go_goroutines `,
	} {
		if !strings.Contains(body, series) {
			t.Errorf("/metrics lacks %s", series)
			defer t.Log(body)
		}
	}
	if strings.Contains(body, "nope") {
		t.Error("/metrics holds a name the client wrote")
	}

	h := srv.Config.Handler
	for _, tt := range []struct {
		name, remote, host, authz, forwarded string
		want                                 int
	}{
		{"public peer", "203.0.113.5:41000", "people.example", "", "", http.StatusForbidden},
		{"public peer, wrong token", "203.0.113.5:41000", "people.example", "Bearer " + token + "x", "", http.StatusForbidden},
		{"public peer, token as Basic", "203.0.113.5:41000", "people.example", "Basic " + token, "", http.StatusForbidden},
		{"public peer with the token", "203.0.113.5:41000", "people.example", "Bearer " + token, "", http.StatusOK},
		{"public peer naming localhost", "203.0.113.5:41000", "localhost:8071", "", "", http.StatusForbidden},
		{"loopback proxy relaying a public client", "127.0.0.1:41000", "localhost:8071", "", "198.51.100.1", http.StatusForbidden},
		{"IPv6 loopback", "[::1]:41000", "[::1]:8071", "", "", http.StatusOK},
		{"loopback, Host localhost", "127.0.0.1:41000", "localhost", "", "", http.StatusOK},
		{"loopback, Host 127.0.0.2", "127.0.0.1:41000", "127.0.0.2:8071", "", "", http.StatusOK},
		// DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1.
		{"loopback peer naming another host", "127.0.0.1:41000", "evil.example:8071", "", "", http.StatusForbidden},
		{"loopback peer naming a name of 127.0.0.1", "127.0.0.1:41000", "127.0.0.1.nip.io", "", "", http.StatusForbidden},
		{"loopback peer naming another host, with the token", "127.0.0.1:41000", "evil.example", "Bearer " + token, "", http.StatusOK},
	} {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		r.RemoteAddr, r.Host = tt.remote, tt.host
		if tt.authz != "" {
			r.Header.Set("Authorization", tt.authz)
		}
		if tt.forwarded != "" {
			r.Header.Set("X-Forwarded-For", tt.forwarded)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.want || (w.Code != http.StatusOK && strings.Contains(w.Body.String(), "people_")) {
			t.Errorf("%s: GET /metrics = %d, want %d", tt.name, w.Code, tt.want)
		}
	}
}

// TestMetricsLoopbackOff: METRICS_LOOPBACK=false serves /metrics to every client (a mesh's
// sidecar scraper comes from another address), and refuses to start with a METRICS_TOKEN that
// would then protect nothing.
func TestMetricsLoopbackOff(t *testing.T) {
	_, vars := jsonBearerEnv(t)
	vars["METRICS_LOOPBACK"] = "false"
	srv, _ := bearerServer(t, vars)
	for _, remote := range []string{"203.0.113.5:41000", "127.0.0.1:41000"} {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		r.RemoteAddr, r.Host = remote, "people.example"
		w := httptest.NewRecorder()
		srv.Config.Handler.ServeHTTP(w, r)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "people_rate_limited_total") {
			t.Errorf("GET /metrics from %s with METRICS_LOOPBACK=false: %d, want 200 with the series", remote, w.Code)
		}
	}
	vars["METRICS_TOKEN"] = "metrics-" + storetest.Unique() + "-0123456789"
	if _, err := parseConfig(env(vars)); err == nil || !strings.Contains(err.Error(), "METRICS_LOOPBACK") {
		t.Errorf("METRICS_LOOPBACK=false with METRICS_TOKEN: %v, want a refusal naming METRICS_LOOPBACK", err)
	}
}

// logEntries parses JSON log lines.
func logEntries(t *testing.T, out string) []map[string]any {
	t.Helper()
	var entries []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("a log line is not JSON: %q", sc.Text())
		}
		entries = append(entries, e)
	}
	return entries
}

// logEntry is the last entry with message msg.
func logEntry(t *testing.T, out, msg string) map[string]any {
	t.Helper()
	var found map[string]any
	for _, e := range logEntries(t, out) {
		if e["msg"] == msg {
			found = e
		}
	}
	if found == nil {
		t.Fatalf("no %q in the logs:\n%s", msg, out)
	}
	return found
}

// TestNosniffEverywhere: every answer of the whole program, whichever handler writes it,
// carries X-Content-Type-Options: nosniff (development, so that the built-in provider and the
// sign-in routes are mounted too).
func TestNosniffEverywhere(t *testing.T) {
	base := startServer(t, storetest.URL(t), map[string]string{"ENVIRONMENT": "development"})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tt := range []struct{ method, path, body string }{
		{http.MethodGet, "/graphql?query=%7B__typename%7D", ""},
		{http.MethodPost, "/graphql", `{"query":"{ __typename }"}`},
		{http.MethodPost, "/graphql", `not json`},
		{http.MethodPut, "/graphql", ""},
		{http.MethodOptions, "/graphql", ""},
		{http.MethodGet, "/playground", ""},
		{http.MethodGet, "/auth/login", ""},
		{http.MethodGet, "/auth/callback", ""},
		{http.MethodGet, "/healthz", ""},
		{http.MethodGet, "/readyz", ""},
		{http.MethodGet, "/metrics", ""},
		{http.MethodGet, "/jwks", ""},
		{http.MethodGet, "/resource-server/v1.0/teams/", ""},
		{http.MethodGet, "/resource-server/v1.0/openapi.json", ""},
		{http.MethodGet, "/nope", ""},
		{http.MethodGet, "/dev-oidc/.well-known/openid-configuration", ""},
		{http.MethodGet, "/dev-oidc/keys", ""},
		{http.MethodPost, "/dev-oidc/dev/token", ""},
		{http.MethodGet, "/dev-oidc/nope", ""},
	} {
		req, err := http.NewRequest(tt.method, base+tt.path, strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		if tt.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s %s: %d with X-Content-Type-Options %q, want nosniff", tt.method, tt.path, resp.StatusCode, got)
		}
	}
}
