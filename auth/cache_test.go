package auth_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/auth/oidctest"
	"lasuite.fr/people/store/storetest"
)

// status posts { me { id } } with token from any goroutine (it never stops the test).
func (e *rsEnv) status(token string) int {
	r := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(`{"query":"{ me { id } }"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w.Code
}

func (e *rsEnv) mustStatus(tb testing.TB, token string, want int) {
	tb.Helper()
	if got := e.status(token); got != want {
		tb.Fatalf("status = %d, want %d", got, want)
	}
}

func (e *rsEnv) mustIntrospections(tb testing.TB, want int64) {
	tb.Helper()
	if got := e.as.Introspections(); got != want {
		tb.Fatalf("introspections = %d, want %d", got, want)
	}
}

func TestBearerOneIntrospectionForConcurrentRequests(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{auth.BackendJSON, auth.BackendJWT} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newRSEnv(t, backend)
			_, sub := e.user(t)
			// A slow answer, so that every request arrives while the first one waits for it.
			tok := e.as.Mint(oidctest.Token{Subject: sub, ClientID: "docs-" + storetest.Unique(), Fault: &oidctest.Fault{Delay: 200 * time.Millisecond}})
			var wg sync.WaitGroup
			statuses := make(chan int, 100)
			for range 100 {
				wg.Go(func() { statuses <- e.status(tok) })
			}
			wg.Wait()
			close(statuses)
			for s := range statuses {
				if s != http.StatusOK {
					t.Errorf("a concurrent request got %d, want 200", s)
				}
			}
			e.mustIntrospections(t, 1)
			e.mustStatus(t, tok, http.StatusOK) // inside the TTL: from the cache
			e.mustIntrospections(t, 1)
		})
	}
}

func TestBearerCacheLifetime(t *testing.T) {
	t.Parallel()

	t.Run("no longer than the TTL", func(t *testing.T) {
		t.Parallel()
		e := newRSEnv(t, auth.BackendJSON, func(c *auth.ResourceServerConfig) { c.CacheTTL = time.Second })
		_, sub := e.user(t)
		tok := e.as.Mint(oidctest.Token{Subject: sub, ClientID: "docs"})
		e.mustStatus(t, tok, http.StatusOK)
		e.mustStatus(t, tok, http.StatusOK)
		e.mustIntrospections(t, 1)
		time.Sleep(1100 * time.Millisecond)
		e.as.Revoke(tok) // the next introspection says so
		e.mustStatus(t, tok, http.StatusUnauthorized)
		e.mustIntrospections(t, 2)
	})

	t.Run("no longer than the token", func(t *testing.T) {
		t.Parallel()
		e := newRSEnv(t, auth.BackendJSON, func(c *auth.ResourceServerConfig) { c.CacheTTL = time.Hour })
		_, sub := e.user(t)
		// exp is in whole seconds: the token ends at most 2 seconds from now.
		tok := e.as.Mint(oidctest.Token{Subject: sub, ClientID: "docs", Expiry: time.Now().Add(2 * time.Second)})
		e.mustStatus(t, tok, http.StatusOK)
		e.mustStatus(t, tok, http.StatusOK)
		e.mustIntrospections(t, 1)
		time.Sleep(2100 * time.Millisecond)
		e.mustStatus(t, tok, http.StatusUnauthorized)
		e.mustIntrospections(t, 2)
	})

	t.Run("refusals for a few seconds, outages not at all", func(t *testing.T) {
		t.Parallel()
		e := newRSEnv(t, auth.BackendJSON, func(c *auth.ResourceServerConfig) { c.NegativeCacheTTL = time.Second })
		bad := "unknown-" + storetest.Unique()
		e.mustStatus(t, bad, http.StatusUnauthorized)
		e.mustStatus(t, bad, http.StatusUnauthorized)
		e.mustIntrospections(t, 1)
		time.Sleep(1100 * time.Millisecond)
		e.mustStatus(t, bad, http.StatusUnauthorized)
		e.mustIntrospections(t, 2)

		down := e.as.Mint(oidctest.Token{Subject: "x", ClientID: "docs", Fault: &oidctest.Fault{Status: http.StatusBadGateway}})
		e.mustStatus(t, down, http.StatusServiceUnavailable)
		e.mustStatus(t, down, http.StatusServiceUnavailable)
		e.mustIntrospections(t, 4)
	})

	t.Run("bounded size, least recently used out first", func(t *testing.T) {
		t.Parallel()
		e := newRSEnv(t, auth.BackendJSON, func(c *auth.ResourceServerConfig) { c.CacheSize = 2 })
		_, sub := e.user(t)
		a, b, c := e.as.Mint(oidctest.Token{Subject: sub, ClientID: "docs"}), e.as.Mint(oidctest.Token{Subject: sub, ClientID: "docs"}), e.as.Mint(oidctest.Token{Subject: sub, ClientID: "docs"})
		for _, tok := range []string{a, b, a, c} { // c pushes out b, the least recently used
			e.mustStatus(t, tok, http.StatusOK)
		}
		e.mustIntrospections(t, 3)
		e.mustStatus(t, a, http.StatusOK)
		e.mustStatus(t, c, http.StatusOK)
		e.mustIntrospections(t, 3)
		e.mustStatus(t, b, http.StatusOK)
		e.mustIntrospections(t, 4)
	})
}

func TestBearerSigningKeyRotation(t *testing.T) {
	t.Parallel()

	t.Run("picked up without restart", func(t *testing.T) {
		t.Parallel()
		e := newRSEnv(t, auth.BackendJWT, func(c *auth.ResourceServerConfig) { c.JWKSMinRefresh = time.Millisecond })
		_, sub := e.user(t)
		e.mustStatus(t, e.as.Mint(oidctest.Token{Subject: sub, ClientID: "docs"}), http.StatusOK)
		e.mustStatus(t, e.as.Mint(oidctest.Token{Subject: sub, ClientID: "docs"}), http.StatusOK)
		if n := e.as.JWKSFetches(); n != 1 {
			t.Errorf("JWKS fetches = %d, want 1: the key set is cached", n)
		}
		time.Sleep(5 * time.Millisecond)
		e.as.RotateSigningKey()
		e.mustStatus(t, e.as.Mint(oidctest.Token{Subject: sub, ClientID: "docs"}), http.StatusOK)
		if n := e.as.JWKSFetches(); n != 2 {
			t.Errorf("JWKS fetches = %d, want 2: one more for the new kid", n)
		}
	})

	t.Run("unknown kids refetch at most once per interval", func(t *testing.T) {
		t.Parallel()
		e := newRSEnv(t, auth.BackendJWT, func(c *auth.ResourceServerConfig) { c.JWKSMinRefresh = 2 * time.Second })
		_, sub := e.user(t)
		e.mustStatus(t, e.as.Mint(oidctest.Token{Subject: sub, ClientID: "docs"}), http.StatusOK)
		for range 5 {
			e.mustStatus(t, e.as.Mint(oidctest.Token{Subject: sub, ClientID: "docs", Fault: &oidctest.Fault{UnknownKey: true}}), http.StatusUnauthorized)
		}
		if n := e.as.JWKSFetches(); n != 1 {
			t.Errorf("JWKS fetches = %d, want 1: forged kids must not make us hammer the server", n)
		}
		time.Sleep(2100 * time.Millisecond)
		e.as.RotateSigningKey()
		e.mustStatus(t, e.as.Mint(oidctest.Token{Subject: sub, ClientID: "docs"}), http.StatusOK)
		if n := e.as.JWKSFetches(); n != 2 {
			t.Errorf("JWKS fetches = %d, want 2", n)
		}
	})

	t.Run("JWKS endpoint down", func(t *testing.T) {
		t.Parallel()
		e := newRSEnv(t, auth.BackendJWT, func(c *auth.ResourceServerConfig) { c.JWKSURL = c.Issuer + "/no-such-jwks" })
		_, sub := e.user(t)
		e.mustStatus(t, e.as.Mint(oidctest.Token{Subject: sub, ClientID: "docs"}), http.StatusServiceUnavailable)
	})
}
