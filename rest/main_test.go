package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/google/uuid"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/auth/oidctest"
	"lasuite.fr/people/ops"
	"lasuite.fr/people/ratelimit"
	"lasuite.fr/people/rest"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

func TestMain(m *testing.M) {
	// SCIM answers carry People's media type, which is JSON under another name.
	openapi3filter.RegisterBodyDecoder("application/json+scim", openapi3filter.JSONBodyDecoder)
	storetest.Main(m)
}

// publicURL is PUBLIC_URL in these tests: absolute URLs in answers start with it.
const publicURL = "https://people.test"

// env is the partner REST API as main mounts it: the real bearer middleware against an
// in-process authorization server, the operations layer's gates and middleware, and the real
// store. Every answer is checked against the OpenAPI document.
type env struct {
	s   *store.Store
	as  *oidctest.Server
	h   http.Handler
	doc *openapi3.T
}

// envOptions change newEnv's set-up.
type envOptions struct {
	limits ops.Options
	store  *store.Store // the partner API's store, when not the one authentication reads
}

func newEnv(tb testing.TB, o envOptions) *env {
	tb.Helper()
	e := &env{s: storetest.Open(tb), doc: loadDoc(tb)}
	e.as = oidctest.NewServer(tb, oidctest.Options{ClientID: "people-" + storetest.Unique()})
	log := slog.New(slog.DiscardHandler)
	rs, err := auth.NewResourceServer(auth.ResourceServerConfig{
		Issuer: e.as.URL, IntrospectionURL: e.as.IntrospectionURL(), ClientID: e.as.ClientID, ClientSecret: e.as.ClientSecret,
		Timeout: 5 * time.Second,
	}, e.s, log)
	if err != nil {
		tb.Fatal(err)
	}
	o.limits.Deadline = 30 * time.Second
	layer := ops.New(o.limits, e.s.DB().DB, nil, log)
	tb.Cleanup(func() { layer.Close() })
	apiStore := e.s
	if o.store != nil {
		apiStore = o.store
	}
	mux := http.NewServeMux()
	rest.New(apiStore, rest.Options{PublicURL: publicURL + "/", Log: log, Throttle: layer.Throttle}).
		Mount(mux, func(h http.Handler) http.Handler { return rs.Middleware(layer.Callers(h)) })
	e.h = layer.Middleware(mux)
	return e
}

func loadDoc(tb testing.TB) *openapi3.T {
	tb.Helper()
	w := httptest.NewRecorder()
	rest.OpenAPI().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/resource-server/v1.0/openapi.json", nil))
	doc, err := openapi3.NewLoader().LoadFromData(w.Body.Bytes())
	if err != nil {
		tb.Fatalf("load the OpenAPI document: %v", err)
	}
	return doc
}

// partner is a user of an organization acting through a partner service's token.
type partner struct {
	e        *env
	user     store.User
	audience string
	sp       uuid.UUID // the service provider of audience
	token    string
}

// partner makes a user of org (uuid.Nil: a fresh organization) known to the authorization
// server, and a token of the service audience for them.
func (e *env) partner(tb testing.TB, org uuid.UUID, audience string, opts ...storetest.UserOpt) partner {
	tb.Helper()
	if org == uuid.Nil {
		org = storetest.Organization(tb, e.s)
	}
	return e.partnerFor(tb, storetest.User(tb, e.s, org, opts...).ID, audience)
}

func oidctestToken(sub, audience string) oidctest.Token {
	return oidctest.Token{Subject: sub, ClientID: audience}
}

// link shares team with the partner's service.
func (p partner) link(tb testing.TB, team uuid.UUID) {
	tb.Helper()
	storetest.MustExec(tb, p.e.s.DB(), "INSERT INTO team_service_providers (team_id, service_provider_id) VALUES (?, ?)", team, p.sp)
}

// answer is an HTTP answer of the partner API.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(tb testing.TB) map[string]any {
	tb.Helper()
	var v map[string]any
	if err := json.Unmarshal(a.body, &v); err != nil {
		tb.Fatalf("status %d, body %q is not a JSON object: %v", a.status, a.body, err)
	}
	return v
}

// want fails the test unless the answer has status and, when body is not empty, exactly that
// JSON body.
func (a answer) want(tb testing.TB, status int, body string) {
	tb.Helper()
	if a.status != status {
		tb.Fatalf("status %d, want %d; body %s", a.status, status, a.body)
	}
	if body == "" {
		return
	}
	var got, want any
	if err := json.Unmarshal(a.body, &got); err != nil {
		tb.Fatalf("body %q: %v", a.body, err)
	}
	if err := json.Unmarshal([]byte(body), &want); err != nil {
		tb.Fatal(err)
	}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) {
		tb.Fatalf("body %s, want %s", g, w)
	}
}

// do sends a request as the partner.
func (p partner) do(tb testing.TB, method, path string, body any) answer {
	tb.Helper()
	return p.e.do(tb, method, path, "Bearer "+p.token, body)
}

// do sends a request with the Authorization header authz ("" sends none) and a JSON body (a
// string is sent as it is), and checks the answer against the OpenAPI document.
func (e *env) do(tb testing.TB, method, path, authz string, body any) answer {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	r := httptest.NewRequest(method, path, rd)
	if rd != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if authz != "" {
		r.Header.Set("Authorization", authz)
	}
	return e.serve(tb, r)
}

// serve sends r and checks the answer against the OpenAPI document.
func (e *env) serve(tb testing.TB, r *http.Request) answer {
	tb.Helper()
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	a := answer{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
	e.check(tb, r, a)
	return a
}

// newFormRequest is a request with a URL-encoded form body.
func newFormRequest(method, path, form string) *http.Request {
	r := httptest.NewRequest(method, path, strings.NewReader(form))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

var templateParam = regexp.MustCompile(`\{[^}]+\}`)

// check validates an answer against the OpenAPI document: the operation's documented
// response for the status (an undocumented status fails), its media type and its schema. A
// method the path does not answer must be 405 with People's {"detail"} body.
func (e *env) check(tb testing.TB, r *http.Request, a answer) {
	tb.Helper()
	for tmpl, item := range e.doc.Paths.Map() {
		pattern := strings.ReplaceAll(regexp.QuoteMeta(templateParam.ReplaceAllString(tmpl, "\x00")), "\x00", `[^/]+`)
		if !regexp.MustCompile("^" + pattern + "$").MatchString(r.URL.Path) {
			continue
		}
		op := item.GetOperation(r.Method)
		if op == nil {
			if a.status != http.StatusMethodNotAllowed && a.status != http.StatusUnauthorized {
				tb.Fatalf("%s %s: status %d for a method the document does not list", r.Method, r.URL.Path, a.status)
			}
			var v any
			json.Unmarshal(a.body, &v)
			if a.status == http.StatusMethodNotAllowed && !strings.Contains(tmpl, "scim") {
				if err := e.doc.Components.Schemas["Detail"].Value.VisitJSON(v); err != nil {
					tb.Fatalf("%s %s: 405 body %s: %v", r.Method, r.URL.Path, a.body, err)
				}
			}
			return
		}
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r,
				Route: &routers.Route{Spec: e.doc, Path: tmpl, PathItem: item, Method: r.Method, Operation: op}},
			Status: a.status, Header: a.header, Body: io.NopCloser(bytes.NewReader(a.body)),
			Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
		}
		if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
			tb.Fatalf("%s %s: answer %d %s does not match the OpenAPI document: %v", r.Method, r.URL.Path, a.status, a.body, err)
		}
		return
	}
	if a.status != http.StatusNotFound {
		tb.Fatalf("%s %s: no such path in the OpenAPI document, yet status %d", r.Method, r.URL.Path, a.status)
	}
}

// rateLimit is n requests a minute.
func rateLimit(n int) ratelimit.Rate { return ratelimit.Rate{N: n, Period: time.Minute} }
