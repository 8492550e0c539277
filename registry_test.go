package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"lasuite.fr/people/auth/devop"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

func newSIRET() string { return fmt.Sprintf("%014d", rand.Int64N(1e14)) }

// fakeRegistry is the companies registry's search API, in process: answers are set per SIRET.
type fakeRegistry struct {
	srv     *httptest.Server
	mu      sync.Mutex
	answers map[string]http.HandlerFunc
	asked   map[string]int
}

func newFakeRegistry(t *testing.T) *fakeRegistry {
	t.Helper()
	f := &fakeRegistry{answers: map[string]http.HandlerFunc{}, asked: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query().Get("q")
		f.mu.Lock()
		f.asked[q]++
		h := f.answers[q]
		f.mu.Unlock()
		if r.URL.Path != "/search" || h == nil {
			w.Write([]byte(`{"results":[],"total_results":0}`))
			return
		}
		h(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeRegistry) url() string { return f.srv.URL + "/search" }

func (f *fakeRegistry) answer(siret string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[siret] = h
}

func (f *fakeRegistry) times(siret string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked[siret]
}

// company answers as the registry does for an establishment siret of a company named name.
func company(siret, name, nature string, publicService bool) http.HandlerFunc {
	body, _ := json.Marshal(map[string]any{"results": []any{map[string]any{
		"nom_raison_sociale": name, "nature_juridique": nature,
		"siege":                   map[string]any{"siret": siret, "libelle_commune": "PARIS"},
		"complements":             map[string]any{"est_service_public": publicService},
		"matching_etablissements": []any{map[string]any{"siret": siret, "liste_enseignes": nil}},
	}}, "total_results": 1})
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}
}

// siretOrganization logs a new person in with a new SIRET, as the login handler does: the
// organization is created, named by the SIRET, and queued.
func siretOrganization(t *testing.T, s *store.Store) (uuid.UUID, string) {
	t.Helper()
	reg, tok := newSIRET(), storetest.Unique()
	u, err := s.ProvisionLogin(t.Context(), store.Claims{EmailVerified: true, Issuer: "https://idp-" + tok + ".test",
		Subject: "s-" + tok, Email: "p@" + tok + ".test", RegistrationID: reg}, store.DefaultLoginOptions())
	if err != nil {
		t.Fatal(err)
	}
	return *u.OrganizationID, reg
}

// orgState is what the tests read of an organization.
type orgState struct {
	Name     string
	Metadata map[string]any
	Queued   bool
	Attempts int
}

func readOrg(t *testing.T, s *store.Store, id uuid.UUID) orgState {
	t.Helper()
	var o orgState
	var md []byte
	err := s.DB().QueryRowContext(t.Context(), `SELECT o.name, o.metadata, l.organization_id IS NOT NULL, coalesce(l.attempts, 0)
		FROM organizations o LEFT JOIN organization_registry_lookups l ON l.organization_id = o.id WHERE o.id = ?`, id).
		Scan(&o.Name, &md, &o.Queued, &o.Attempts)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(md, &o.Metadata); err != nil {
		t.Fatal(err)
	}
	return o
}

// TestRegistryFiller runs the server's filler over one queue of each case.
func TestRegistryFiller(t *testing.T) {
	s := storetest.OpenAt(t, storetest.NewDatabase(t)) // claims are global: a database of its own
	reg := newFakeRegistry(t)
	type org struct {
		id    uuid.UUID
		siret string
	}
	newOrg := func() org { id, siret := siretOrganization(t, s); return org{id, siret} }
	named, absent, failing, slow, limited, renamed := newOrg(), newOrg(), newOrg(), newOrg(), newOrg(), newOrg()
	reg.answer(named.siret, company(named.siret, "DIRECTION INTERMINISTERIELLE DU NUMERIQUE", "7120", true))
	reg.answer(failing.siret, func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "down", http.StatusInternalServerError) })
	reg.answer(slow.siret, func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	limitedOK := company(limited.siret, "MAIRIE", "7210", true)
	reg.answer(limited.siret, func(w http.ResponseWriter, r *http.Request) {
		if reg.times(limited.siret) == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		limitedOK(w, r)
	})
	// Staff rename the organization while the registry is being asked: their name wins.
	renamedOK := company(renamed.siret, "REGISTRY NAME", "5710", false)
	reg.answer(renamed.siret, func(w http.ResponseWriter, r *http.Request) {
		storetest.MustExec(t, s.DB(), "UPDATE organizations SET name = 'Named by staff' WHERE id = ?", renamed.id)
		renamedOK(w, r)
	})

	var logs bytes.Buffer
	f, err := newRegistryFiller(registryConfig{URL: reg.url(), Timeout: 200 * time.Millisecond}, s,
		slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for {
		n, err := f.fillDue(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	want := map[string]orgState{
		"named":  {Name: "Direction Interministerielle Du Numerique", Metadata: map[string]any{"is_public_service": true, "is_commune": false}},
		"absent": {Name: absent.siret, Metadata: map[string]any{}},
		// Put back in the queue for later (registryBackoffBase), as the slow one.
		"failing": {Name: failing.siret, Metadata: map[string]any{}, Queued: true, Attempts: 1},
		"slow":    {Name: slow.siret, Metadata: map[string]any{}, Queued: true, Attempts: 1},
		// A commune, named after its commune.
		"limited": {Name: "Paris", Metadata: map[string]any{"is_public_service": true, "is_commune": true}},
		"renamed": {Name: "Named by staff", Metadata: map[string]any{}},
	}
	got := map[string]orgState{}
	for name, o := range map[string]org{"named": named, "absent": absent, "failing": failing, "slow": slow, "limited": limited, "renamed": renamed} {
		got[name] = readOrg(t, s, o.id)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("organizations after the filler (-want +got):\n%s", diff)
	}
	if n := reg.times(limited.siret); n != 2 {
		t.Errorf("the rate-limited lookup asked %d times, want 2 (429, then 200)", n)
	}
	if strings.Contains(logs.String(), failing.siret) || strings.Contains(logs.String(), slow.siret) || strings.Contains(logs.String(), "DIRECTION") {
		t.Errorf("the log names registration ids or names, not organization ids:\n%s", logs.String())
	}

	// Due again after the last attempt: given up, out of the queue, still named by its SIRET.
	storetest.MustExec(t, s.DB(), "UPDATE organization_registry_lookups SET due_at = now(), attempts = ? WHERE organization_id = ?",
		registryMaxAttempts-1, failing.id)
	if _, err := f.fillDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	if o := readOrg(t, s, failing.id); o.Queued || o.Name != failing.siret {
		t.Errorf("after the last attempt: %+v, want given up", o)
	}
	if !strings.Contains(logs.String(), "given up") {
		t.Errorf("no error logged for the lookup given up:\n%s", logs.String())
	}
}

// syncWriter serializes the concurrent lookups' log writes.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// oneUser is the development provider's directory of one person, whatever it is asked.
type oneUser struct{ u store.DevUser }

func (d oneUser) DevUsers(context.Context, store.DevUserFilter) ([]store.DevUser, error) {
	return []store.DevUser{d.u}, nil
}

// TestLoginNamesOrganizationFromRegistry: a first login with a new SIRET, through a real
// OpenID provider (auth/devop, standing in for ProConnect), creates the organization named by
// the SIRET and lands while the registry has not answered; the server names it afterwards.
func TestLoginNamesOrganizationFromRegistry(t *testing.T) {
	siret := newSIRET()
	// The provider, on a port of its own.
	opSrv := httptest.NewUnstartedServer(nil)
	addr := freeLoopbackAddr(t)
	base := "http://" + addr
	user := store.DevUser{ID: uuid.New(), Sub: "sub-" + storetest.Unique(), Email: "agent@" + storetest.Unique() + ".test",
		Name: "Agent Municipal", RegistrationID: siret}
	p, err := devop.New(t.Context(), devop.Options{
		Issuer: "http://" + opSrv.Listener.Addr().String() + devop.Path, Users: oneUser{user},
		RPClient: devop.Client{ID: "people", Secret: "rp-secret-" + storetest.Unique(), RedirectURIs: []string{base + "/auth/callback"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(devop.Path+"/", p.Handler())
	opSrv.Config.Handler = mux
	opSrv.Start()
	t.Cleanup(opSrv.Close)

	// The registry answers only when the test lets it.
	reg := newFakeRegistry(t)
	asked, release := make(chan struct{}, 1), make(chan struct{})
	answer := company(siret, "COMMUNE DE PARIS", "7210", true) // a commune: named after its commune
	reg.answer(siret, func(w http.ResponseWriter, r *http.Request) {
		select {
		case asked <- struct{}{}:
		default:
		}
		select {
		case <-release:
			answer(w, r)
		case <-r.Context().Done():
		}
	})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseOnce) // before the registry's Close, which waits for its handlers

	db := storetest.EmptyDatabase(t) // its own queue: no other test's server claims this lookup
	startServer(t, db, map[string]string{
		"LISTEN_ADDR": addr, "PUBLIC_URL": base, "OIDC_OP_URL": p.Issuer(), "OIDC_RP_CLIENT_ID": "people",
		"OIDC_RP_CLIENT_SECRET": p.RPClient().Secret, "SECRET_KEY": strings.Repeat("k", 32), "SESSION_COOKIE_SECURE": "false",
		"OIDC_RP_SCOPES": "openid email given_name usual_name siret", "OIDC_ORGANIZATION_REGISTRATION_ID_FIELD": "siret",
		"ORGANIZATION_REGISTRY_URL": reg.url(), "ORGANIZATION_REGISTRY_TIMEOUT": "30s",
	})
	s := storetest.OpenAt(t, db)

	// The browser: to the provider's page that lists the user, then back through the callback.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.Get(base + "/auth/login?next=/landed")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="id" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("the provider's login page (%d): %s", resp.StatusCode, page)
	}
	form := url.Values{"id": {string(m[1])}, "sub": {user.Sub}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, p.Issuer()+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	browser.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
		if r.URL.Path == "/landed" {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err = browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(loc, "/landed") {
		t.Fatalf("the login answered %d to %q, want a redirect to /landed", resp.StatusCode, loc)
	}

	// Landed: the organization exists, named by its SIRET, whatever the registry does.
	var org uuid.UUID
	if err := s.DB().QueryRowContext(t.Context(), "SELECT organization_id FROM organization_registration_ids WHERE registration_id = ?", siret).Scan(&org); err != nil {
		t.Fatalf("no organization with the SIRET after the login: %v", err)
	}
	if o := readOrg(t, s, org); o.Name != siret || !o.Queued {
		t.Fatalf("after the login: %+v, want named by its SIRET and queued", o)
	}
	select { // the server asks the registry after the login
	case <-asked:
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not ask the registry within 30s of the login")
	}
	releaseOnce()
	deadline := time.Now().Add(30 * time.Second)
	for {
		o := readOrg(t, s, org)
		if !o.Queued {
			want := orgState{Name: "Paris", Metadata: map[string]any{"is_public_service": true, "is_commune": true}}
			if diff := cmp.Diff(want, o); diff != "" {
				t.Errorf("the organization after the registry answered (-want +got):\n%s", diff)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the organization is still queued 30s after the registry answered: %+v", o)
		}
		time.Sleep(20 * time.Millisecond) // polling the database: nothing signals its commit
	}
}

// TestFillOrganizationMetadataCommand backfills through the command line.
func TestFillOrganizationMetadataCommand(t *testing.T) {
	db := storetest.NewDatabase(t)
	s := storetest.OpenAt(t, db)
	reg := newFakeRegistry(t)
	named, namedSIRET := siretOrganization(t, s)
	absent, absentSIRET := siretOrganization(t, s)
	failing, failingSIRET := siretOrganization(t, s)
	kept, _ := siretOrganization(t, s)
	storetest.MustExec(t, s.DB(), "UPDATE organizations SET name = 'Named by staff' WHERE id = ?", kept)
	reg.answer(namedSIRET, company(namedSIRET, "GARAGE DU CENTRE", "5710", false))
	reg.answer(failingSIRET, func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "down", http.StatusBadGateway) })

	var out bytes.Buffer
	err := run(t.Context(), []string{"fill-organization-metadata"},
		env(map[string]string{"DATABASE_URL": db, "ORGANIZATION_REGISTRY_URL": reg.url()}), &out, nil)
	if err == nil || !strings.Contains(err.Error(), "1 lookups failed") {
		t.Errorf("run() = %v, want the failed lookup reported", err)
	}
	for _, line := range []string{
		named.String() + " " + namedSIRET + `: named "Garage Du Centre"`,
		absent.String() + " " + absentSIRET + ": not in the registry",
		failing.String() + " " + failingSIRET + ": lookup failed",
		"3 organizations named by their registration id: 1 named from the registry, 1 not in it, 0 renamed meanwhile, 1 failed",
	} {
		if !strings.Contains(out.String(), line+"\n") {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
	if o := readOrg(t, s, named); o.Name != "Garage Du Centre" || o.Queued {
		t.Errorf("named: %+v", o)
	}
	if o := readOrg(t, s, kept); o.Name != "Named by staff" {
		t.Errorf("kept: %+v", o)
	}
	if n := reg.times(failingSIRET); n != 1 {
		t.Errorf("the failing registry was asked %d times, want once", n)
	}

	// Off, the command says so; it takes no arguments.
	err = run(t.Context(), []string{"fill-organization-metadata"}, env(map[string]string{"DATABASE_URL": db, "ORGANIZATION_REGISTRY_URL": "none"}), io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "ORGANIZATION_REGISTRY_URL is none") {
		t.Errorf("run() with the registry off = %v", err)
	}
	var stderr bytes.Buffer
	if code := exitCode(run(t.Context(), []string{"fill-organization-metadata", "extra"}, env(nil), io.Discard, nil), &stderr); code != 2 {
		t.Errorf("fill-organization-metadata extra: exit %d, want 2", code)
	}
	out.Reset()
	if err := run(t.Context(), []string{"fill-organization-metadata", "-h"}, env(nil), &out, nil); err != nil || !strings.Contains(out.String(), "usage: people fill-organization-metadata") {
		t.Errorf("fill-organization-metadata -h = %v, %q", err, out.String())
	}
}

func TestRegistryConfig(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		want registryConfig
		err  string
	}{
		{"default", nil, registryConfig{URL: "https://recherche-entreprises.api.gouv.fr/search", Timeout: 10 * time.Second}, ""},
		{"off", map[string]string{"ORGANIZATION_REGISTRY_URL": "none"}, registryConfig{Timeout: 10 * time.Second}, ""},
		{"off by default in development", map[string]string{"ENVIRONMENT": "development"}, registryConfig{Timeout: 10 * time.Second}, ""},
		{"on in development when set", map[string]string{"ENVIRONMENT": "development", "ORGANIZATION_REGISTRY_URL": "http://registry.internal/search"},
			registryConfig{URL: "http://registry.internal/search", Timeout: 10 * time.Second}, ""},
		{"set", map[string]string{"ORGANIZATION_REGISTRY_URL": "http://registry.internal/search", "ORGANIZATION_REGISTRY_TIMEOUT": "3"},
			registryConfig{URL: "http://registry.internal/search", Timeout: 3 * time.Second}, ""},
		{"not a URL", map[string]string{"ORGANIZATION_REGISTRY_URL": "recherche-entreprises.api.gouv.fr"}, registryConfig{}, "ORGANIZATION_REGISTRY_URL"},
		{"bad timeout", map[string]string{"ORGANIZATION_REGISTRY_TIMEOUT": "soon"}, registryConfig{}, "ORGANIZATION_REGISTRY_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{"DATABASE_URL": "postgres://u:p@127.0.0.1/db"}
			for k, v := range tt.vars {
				vars[k] = v
			}
			c, err := parseConfig(env(vars))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("parseConfig() = %v, want an error naming %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, c.Registry, cmp.AllowUnexported(registryConfig{})); diff != "" {
				t.Errorf("Registry (-want +got):\n%s", diff)
			}
		})
	}
}
