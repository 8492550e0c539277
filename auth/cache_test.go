package auth_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
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

// TestBearerRefusalsKeepGoodTokens: made-up tokens are remembered apart from the good ones, so
// that a flood of them cannot push a partner's token out of the cache.
func TestBearerRefusalsKeepGoodTokens(t *testing.T) {
	t.Parallel()
	e := newRSEnv(t, auth.BackendJSON, func(c *auth.ResourceServerConfig) { c.CacheSize, c.NegativeCacheSize = 2, 3 })
	_, sub := e.user(t)
	good := e.as.Mint(oidctest.Token{Subject: sub, ClientID: "docs"})
	e.mustStatus(t, good, http.StatusOK)
	e.mustIntrospections(t, 1)
	for i := range 20 {
		e.mustStatus(t, "made-up-"+strconv.Itoa(i)+"-"+storetest.Unique(), http.StatusUnauthorized)
	}
	e.mustIntrospections(t, 21)
	e.mustStatus(t, good, http.StatusOK)
	e.mustIntrospections(t, 21) // still cached

	// The refusals' own cache is bounded too: the last 3 are remembered, the first is not.
	bad := make([]string, 4)
	for i := range bad {
		bad[i] = "made-up-" + storetest.Unique()
		e.mustStatus(t, bad[i], http.StatusUnauthorized)
	}
	e.mustIntrospections(t, 25)
	for _, tok := range bad[1:] {
		e.mustStatus(t, tok, http.StatusUnauthorized)
	}
	e.mustIntrospections(t, 25)
	e.mustStatus(t, bad[0], http.StatusUnauthorized)
	e.mustIntrospections(t, 26)
}

// TestBearerIntrospectionConcurrency: at most MaxConcurrentIntrospections tokens are resolved at
// once; one more that is not cached gets 429 with Retry-After at once, and no call goes out,
// while cached tokens are still served.
func TestBearerIntrospectionConcurrency(t *testing.T) {
	t.Parallel()
	e := newRSEnv(t, auth.BackendJSON, func(c *auth.ResourceServerConfig) { c.MaxConcurrentIntrospections = 3 })
	_, sub := e.user(t)
	cached := e.as.Mint(oidctest.Token{Subject: sub, ClientID: "docs"})
	e.mustStatus(t, cached, http.StatusOK)

	arrived, release := make(chan struct{}), make(chan struct{})
	e.as.SetFault(&oidctest.Fault{Arrived: arrived, Release: release})
	statuses := make(chan int, 3)
	var wg sync.WaitGroup
	for range 3 {
		tok := e.as.Mint(oidctest.Token{Subject: sub, ClientID: "docs"})
		wg.Go(func() { statuses <- e.status(tok) })
	}
	defer func() { // even when the test fails half-way, the held requests end
		select {
		case <-release:
		default:
			close(release)
		}
		wg.Wait()
	}()
	for range 3 {
		<-arrived
	}
	e.mustIntrospections(t, 4)

	a := e.do(t, "Bearer "+e.as.Mint(oidctest.Token{Subject: sub, ClientID: "docs"}), `{ me { id } }`, nil)
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") != "1" || a.code() != "RATE_LIMITED" {
		t.Errorf("a 4th token while 3 are being introspected: %d, Retry-After %q, %s; want 429, 1, RATE_LIMITED", a.status, a.header.Get("Retry-After"), a.body)
	}
	e.mustIntrospections(t, 4)
	e.mustStatus(t, cached, http.StatusOK)

	e.as.SetFault(nil)
	close(release)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusOK {
			t.Errorf("a held request got %d, want 200", s)
		}
	}
	// The slots are free again, and the refused token was not remembered.
	e.mustStatus(t, e.as.Mint(oidctest.Token{Subject: sub, ClientID: "docs"}), http.StatusOK)
	e.mustIntrospections(t, 5)
}
