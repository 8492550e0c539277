package auth_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/store/storetest"
)

// otherInstance starts another server with the rig's login configuration, over the same
// database and provider, as a second instance behind a load balancer; it returns its URL.
func (r *loginRig) otherInstance(t *testing.T) string {
	t.Helper()
	log := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sessions := auth.NewSessions(r.s, auth.SessionOptions{PublicOrigin: r.url}, log)
	login, err := auth.NewLogin(r.cfg, r.s, sessions, log)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	login.Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// Issue 13 item 6: a back-channel logout token is accepted once. Replayed within its lifetime,
// to the instance that took it or to another one on the same database, whole or re-signed
// under the same jti, it is refused with 400 and ends nothing, not even the sessions opened
// since; a token with a new jti still works on either instance.
func TestLoginBackchannelLogoutReplay(t *testing.T) {
	t.Parallel()
	r := newLoginRig(t, nil)
	other := r.otherInstance(t)
	sub, email := person()
	info := map[string]any{"email": email}
	sessions := func() int {
		return scalar[int](t, r.s, "SELECT count(*) FROM sessions WHERE subject = ?", sub)
	}

	first := r.browser(t)
	mustLand(t, r.logIn(t, first, opKnobs{Sub: sub, Userinfo: info}))
	old := r.withCookies(t, first)
	jti := "jti-" + storetest.Unique()
	token := r.logoutToken(t, map[string]any{"sub": sub, "jti": jti}, signRS256)
	if status := r.backchannel(t, token); status != http.StatusOK {
		t.Fatalf("logout token answered %d, want 200", status)
	}
	r.mustBeAnonymous(t, old)

	again := r.browser(t)
	mustLand(t, r.logIn(t, again, opKnobs{Sub: sub, Userinfo: info}))
	for name, post := range map[string]func() int{
		"the same instance": func() int { return r.backchannel(t, token) },
		"another instance":  func() int { return r.backchannelAt(t, other, token) },
		"re-signed, same jti": func() int {
			return r.backchannelAt(t, other, r.logoutToken(t, map[string]any{"sub": sub, "jti": jti}, signRS256))
		},
	} {
		if status := post(); status != http.StatusBadRequest {
			t.Errorf("replayed to %s: answered %d, want 400", name, status)
		}
	}
	r.me(t, again)
	if n := sessions(); n != 1 {
		t.Errorf("%d sessions after the replays, want the one opened since", n)
	}

	if status := r.backchannelAt(t, other, r.logoutToken(t, map[string]any{"sub": sub}, signRS256)); status != http.StatusOK {
		t.Fatalf("a new logout token to the other instance answered %d, want 200", status)
	}
	r.mustBeAnonymous(t, again)
	if n := sessions(); n != 0 {
		t.Errorf("%d sessions left, want none", n)
	}
}

// Issue 13 item 3: a logout token under a kid the provider never published makes the relying
// party fetch the key set again, and anyone may post one. 200 of them, each under a new random
// kid, cause at most one fetch of the provider's JWKS per interval (here an hour, so that the
// test does not depend on how fast it runs); the keys that fetch brought still verify a login
// and a genuine logout token, without fetching again.
func TestLoginBackchannelUnknownKidsDoNotFloodJWKS(t *testing.T) {
	t.Parallel()
	r := newLoginRig(t, func(c *auth.LoginConfig) { c.KeysMinRefetch = time.Hour })
	sub, email := person()
	tokens := make(chan string, 200)
	for range cap(tokens) {
		tokens <- r.logoutToken(t, map[string]any{"sub": sub}, signRandomKid)
	}
	close(tokens)
	var wg sync.WaitGroup
	var accepted atomic.Int32
	for range 8 {
		wg.Go(func() {
			for token := range tokens {
				if status := r.backchannel(t, token); status != http.StatusBadRequest {
					accepted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := accepted.Load(); n != 0 {
		t.Errorf("%d tokens under unknown kids were not refused with 400", n)
	}
	if n := r.op.jwksFetches.Load(); n > 1 {
		t.Errorf("200 tokens under unknown kids caused %d fetches of the key set, want at most 1", n)
	}

	c := r.browser(t)
	mustLand(t, r.logIn(t, c, opKnobs{Sub: sub, Userinfo: map[string]any{"email": email}}))
	if status := r.backchannel(t, r.logoutToken(t, map[string]any{"sub": sub}, signRS256)); status != http.StatusOK {
		t.Errorf("a genuine logout token answered %d after the flood, want 200", status)
	}
	r.mustBeAnonymous(t, c)
	if n := r.op.jwksFetches.Load(); n != 1 {
		t.Errorf("%d fetches of the key set in all, want 1", n)
	}
}
