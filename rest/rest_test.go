package rest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"lasuite.fr/people/auth/oidctest"
	"lasuite.fr/people/ops"
	"lasuite.fr/people/rest"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

const (
	teamsPath = "/resource-server/v1.0/teams/"
	mePath    = "/resource-server/v1.0/scim/Me/"
)

const (
	noCredentials = `{"detail":"Authentication credentials were not provided."}`
	forbidden     = `{"detail":"You do not have permission to perform this action."}`
	noTeam        = `{"detail":"No Team matches the given query."}`
	noInvitation  = `{"detail":"No Invitation matches the given query."}`
)

// TestAuthentication: People's statuses and bodies for each way a request fails to
// authenticate, in its {"detail"} shape, and in SCIM's on /scim/Me/.
func TestAuthentication(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	p := e.partner(t, storetest.Organization(t, e.s), "docs-"+storetest.Unique())

	t.Run("no token", func(t *testing.T) {
		t.Parallel()
		for _, authz := range []string{"", "Basic dXNlcjpwYXNz"} {
			a := e.do(t, http.MethodGet, teamsPath, authz, nil)
			if authz == "" {
				a.want(t, http.StatusUnauthorized, noCredentials)
				if got := a.header.Get("WWW-Authenticate"); got != `Bearer realm="api"` {
					t.Errorf("WWW-Authenticate = %q", got)
				}
			} else { // a malformed Authorization header is judged by the bearer middleware
				a.want(t, http.StatusUnauthorized, "")
				if d, _ := a.json(t)["detail"].(string); d == "" {
					t.Errorf("body %s has no detail", a.body)
				}
			}
			if ct := a.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
		}
	})
	t.Run("a session cookie does not authenticate", func(t *testing.T) {
		t.Parallel()
		r := httptest.NewRequest(http.MethodGet, teamsPath, nil)
		r.AddCookie(&http.Cookie{Name: "people_session", Value: "anything"})
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", w.Code)
		}
	})
	t.Run("revoked token", func(t *testing.T) {
		t.Parallel()
		q := e.partner(t, storetest.Organization(t, e.s), p.audience)
		e.as.Revoke(q.token)
		a := q.do(t, http.MethodGet, teamsPath, nil)
		a.want(t, http.StatusUnauthorized, "")
		if !strings.Contains(a.header.Get("WWW-Authenticate"), "invalid_token") {
			t.Errorf("WWW-Authenticate = %q", a.header.Get("WWW-Authenticate"))
		}
		if _, ok := a.json(t)["detail"]; !ok {
			t.Errorf("body %s has no detail", a.body)
		}
	})
	t.Run("no user with the token's subject", func(t *testing.T) {
		t.Parallel()
		tok := e.as.Mint(oidctest.Token{Subject: "nobody-" + storetest.Unique(), ClientID: p.audience})
		a := e.do(t, http.MethodGet, teamsPath, "Bearer "+tok, nil)
		a.want(t, http.StatusUnauthorized, "")
	})
	t.Run("SCIM speaks SCIM", func(t *testing.T) {
		t.Parallel()
		a := e.do(t, http.MethodGet, mePath, "", nil)
		a.want(t, http.StatusUnauthorized, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"401","detail":"Authentication credentials were not provided."}`)
		if ct := a.header.Get("Content-Type"); ct != "application/json+scim" {
			t.Errorf("Content-Type = %q", ct)
		}
		if h := a.header.Get("WWW-Authenticate"); h != "" {
			t.Errorf("WWW-Authenticate = %q: People's SCIM views send none", h)
		}
	})
	t.Run("a team id that is not a UUID is no URL", func(t *testing.T) {
		t.Parallel()
		e.do(t, http.MethodGet, teamsPath+"not-a-uuid/invitations/", "", nil).want(t, http.StatusNotFound, `{"detail":"Not found."}`)
	})
}

// TestMethodNotAllowed: a method a URL does not answer is 405 with DRF's message, after
// authentication; partners cannot delete teams.
func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	p := e.partner(t, uuid.Nil, "docs-"+storetest.Unique())
	team := storetest.Team(t, e.s, *p.user.OrganizationID, "Kept")
	storetest.Access(t, e.s, team, p.user.ID, store.RoleOwner)
	p.link(t, team)
	teamPath := teamsPath + team.String() + "/"

	e.do(t, http.MethodDelete, teamPath, "", nil).want(t, http.StatusUnauthorized, noCredentials)
	a := p.do(t, http.MethodDelete, teamPath, nil)
	a.want(t, http.StatusMethodNotAllowed, `{"detail":"Method \"DELETE\" not allowed."}`)
	if got := a.header.Get("Allow"); got != "GET, PUT, PATCH, HEAD" {
		t.Errorf("Allow = %q", got)
	}
	p.do(t, http.MethodGet, teamPath, nil).want(t, http.StatusOK, "") // still there
	p.do(t, http.MethodPut, teamPath+"invitations/"+team.String()+"/", map[string]any{}).
		want(t, http.StatusMethodNotAllowed, `{"detail":"Method \"PUT\" not allowed."}`)
	p.do(t, http.MethodDelete, teamsPath, nil).want(t, http.StatusMethodNotAllowed, `{"detail":"Method \"DELETE\" not allowed."}`)
	p.do(t, http.MethodPost, mePath, map[string]any{}).
		want(t, http.StatusMethodNotAllowed, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"405","detail":"Method \"POST\" not allowed."}`)
}

// TestRateLimits: People's throttled data (SCIM /Me, as GraphQL's me) is held to the server's
// per-caller rate, answered 429 with Retry-After in the path's shape; anonymous calls to any
// partner URL to the anonymous rate.
func TestRateLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{limits: opsLimits(1)})
	p := e.partner(t, uuid.Nil, "docs-"+storetest.Unique())
	p.do(t, http.MethodGet, mePath, nil).want(t, http.StatusOK, "")
	a := p.do(t, http.MethodGet, mePath, nil)
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" {
		t.Fatalf("second /Me: status %d, Retry-After %q, want 429 with Retry-After", a.status, a.header.Get("Retry-After"))
	}
	if v := a.json(t); v["status"] != "429" || !strings.HasPrefix(v["detail"].(string), "Request was throttled. Expected available in ") {
		t.Errorf("body %s", a.body)
	}
	// Teams are not People's throttled data, as in GraphQL.
	for range 3 {
		p.do(t, http.MethodGet, teamsPath, nil).want(t, http.StatusOK, "")
	}
	// Another user of the same service has their own budget.
	e.partner(t, uuid.Nil, p.audience).do(t, http.MethodGet, mePath, nil).want(t, http.StatusOK, "")

	e.do(t, http.MethodGet, teamsPath, "", nil).want(t, http.StatusUnauthorized, noCredentials)
	a = e.do(t, http.MethodGet, teamsPath, "", nil)
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" {
		t.Fatalf("second anonymous call: status %d, want 429 with Retry-After", a.status)
	}
	if d, _ := a.json(t)["detail"].(string); d == "" {
		t.Errorf("body %s has no detail", a.body)
	}
}

// TestDatabaseUnavailable: a database out of reach is 503 with Retry-After, in People's shape,
// and the answer names no SQL.
func TestDatabaseUnavailable(t *testing.T) {
	t.Parallel()
	cfg, err := pgx.ParseConfig("postgres://people:secret@127.0.0.1:1/people?connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	sqldb := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { sqldb.Close() })
	down := store.New(bun.NewDB(sqldb, pgdialect.New()), store.Options{})
	e := newEnv(t, envOptions{store: down})
	p := e.partner(t, uuid.Nil, "docs-"+storetest.Unique())
	for _, path := range []string{teamsPath, mePath} {
		a := p.do(t, http.MethodGet, path, nil)
		if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") != "5" {
			t.Errorf("%s: status %d, Retry-After %q, want 503 and 5", path, a.status, a.header.Get("Retry-After"))
		}
		if strings.Contains(string(a.body), "127.0.0.1") || strings.Contains(string(a.body), "secret") {
			t.Errorf("%s: body %s names the database", path, a.body)
		}
	}
	p.do(t, http.MethodPost, teamsPath, map[string]any{"name": "Lost"}).want(t, http.StatusServiceUnavailable,
		`{"detail":"the service is unavailable: retry later"}`)
}

// TestOpenAPI: the served document is a valid OpenAPI 3 document (every answer of the other
// tests is checked against it), public, and lists every route.
func TestOpenAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	if err := e.doc.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI document is invalid: %v", err)
	}
	w := httptest.NewRecorder()
	mux := http.NewServeMux()
	rest.New(e.s, rest.Options{}).Mount(mux, func(h http.Handler) http.Handler { return h })
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/resource-server/v1.0/openapi.json", nil))
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("GET openapi.json: status %d, Content-Type %q", w.Code, w.Header().Get("Content-Type"))
	}
	want := []string{
		"/resource-server/v1.0/teams/", "/resource-server/v1.0/teams/{id}/", "/resource-server/v1.0/teams/{team_id}/invitations/",
		"/resource-server/v1.0/teams/{team_id}/invitations/{id}/", "/resource-server/v1.0/scim/Me/",
	}
	for _, p := range want {
		if e.doc.Paths.Find(p) == nil {
			t.Errorf("the document lacks %s", p)
		}
	}
	if n := e.doc.Paths.Len(); n != len(want) {
		t.Errorf("the document has %d paths, want %d", n, len(want))
	}
}

// opsLimits holds every caller to n requests a minute, on People's throttled data for
// authenticated callers and on everything for anonymous ones.
func opsLimits(n int) ops.Options {
	return ops.Options{Burst: rateLimit(n), Anonymous: rateLimit(n)}
}
