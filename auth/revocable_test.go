package auth_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/auth/oidctest"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// statements counts the SQL statements a store runs; hook, when set, is called after each with
// its text, on the goroutine that ran it.
type statements struct {
	n    atomic.Int64
	hook atomic.Pointer[func(sql string)]
}

type sqlKey struct{}

func (c *statements) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return context.WithValue(ctx, sqlKey{}, data.SQL)
}

func (c *statements) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	if h := c.hook.Load(); h != nil {
		sql, _ := ctx.Value(sqlKey{}).(string)
		(*h)(sql)
	}
}

// instance is one server's credential checks: its own pool, revocation listener and cache,
// the session and bearer middlewares, and behind them a handler that writes the caller's id.
type instance struct {
	s        *store.Store
	rev      *store.Revocations
	cache    *auth.CredentialCache
	sessions *auth.Sessions
	rs       *auth.ResourceServer // nil without an authorization server
	sql      *statements
	h        http.Handler
}

type instanceConfig struct {
	ttl        time.Duration    // SESSION_CACHE_TTL; 0: no cache
	cookieAge  time.Duration    // 0: 2 hours
	as         *oidctest.Server // bearer tokens from this server; nil: none
	subscriber func(store.Revocation)
	// first is subscribed before the cache, so that it may hold announcements back from it.
	first func(store.Revocation)
}

// gate holds back the announcements of a listener while it is shut, as if they were slow to
// come: the listener still listens.
type gate struct{ ch atomic.Pointer[chan struct{}] }

func (g *gate) wait(store.Revocation) {
	if ch := g.ch.Load(); ch != nil {
		<-*ch
	}
}

func (g *gate) shut() {
	ch := make(chan struct{})
	g.ch.Store(&ch)
}

func (g *gate) open() {
	if ch := g.ch.Swap(nil); ch != nil {
		close(*ch)
	}
}

// newInstance starts an instance over the database at url; everything it starts stops when the
// test ends. It returns once the listener listens.
func newInstance(t *testing.T, url string, c instanceConfig) *instance {
	t.Helper()
	in := &instance{sql: &statements{}}
	in.s = storetest.OpenAt(t, url, in.sql)
	var err error
	if in.rev, err = in.s.Revocations(nil); err != nil {
		t.Fatal(err)
	}
	if c.first != nil {
		in.rev.Subscribe(c.first)
	}
	in.cache = auth.NewCredentialCache(in.rev, auth.CredentialCacheOptions{TTL: c.ttl})
	if c.subscriber != nil {
		in.rev.Subscribe(c.subscriber)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); in.rev.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("the revocation listener did not stop with its context")
		}
	})
	waitUntil(t, "the revocation listener to listen", in.rev.Listening)
	in.sessions = auth.NewSessions(in.s, auth.SessionOptions{CookieAge: cmpOr(c.cookieAge, 2*time.Hour), Cache: in.cache}, nil)
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := auth.PrincipalFrom(r.Context()); ok {
			io.WriteString(w, p.UserID.String())
			return
		}
		io.WriteString(w, "anonymous")
	})
	h = in.sessions.Middleware(h)
	if c.as != nil {
		in.rs, err = auth.NewResourceServer(auth.ResourceServerConfig{
			Issuer: c.as.URL, IntrospectionURL: c.as.IntrospectionURL(), ClientID: c.as.ClientID, ClientSecret: c.as.ClientSecret,
			Timeout: 2 * time.Second, Cache: in.cache,
		}, in.s, nil)
		if err != nil {
			t.Fatal(err)
		}
		h = in.rs.Middleware(h)
	}
	in.h = h
	return in
}

func cmpOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 5s for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// login opens a session for user through this instance, as the login callback does.
func (in *instance) login(t *testing.T, user store.User, sid string) *http.Cookie {
	t.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/auth/callback", nil)
	if err := in.sessions.Start(w, r, store.NewSession{UserID: user.ID, Issuer: issuer, Subject: user.Sub, SID: sid, IDToken: "id-token"}); err != nil {
		t.Fatal(err)
	}
	return w.Result().Cookies()[0]
}

// logout ends the cookie's session through this instance, as the logout handler does.
func (in *instance) logout(t *testing.T, c *http.Cookie) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/auth/logout", nil)
	r.AddCookie(c)
	if _, ok, err := in.sessions.End(httptest.NewRecorder(), r); err != nil || !ok {
		t.Fatalf("End() = %v, %v", ok, err)
	}
}

// call sends a request with the cookie (or, when authz is set, that Authorization header) and
// returns the status, who the request was made as ("anonymous" when no one) and how many
// statements it ran.
func (in *instance) call(c *http.Cookie, authz string) (int, string, int64) {
	r := httptest.NewRequest(http.MethodPost, "/graphql", nil)
	if c != nil {
		r.AddCookie(c)
	}
	if authz != "" {
		r.Header.Set("Authorization", authz)
	}
	w := httptest.NewRecorder()
	before := in.sql.n.Load()
	in.h.ServeHTTP(w, r)
	return w.Code, strings.TrimSpace(w.Body.String()), in.sql.n.Load() - before
}

// mustBe fails unless the cookie authenticates as user, and returns the statements it ran.
func (in *instance) mustBe(t *testing.T, c *http.Cookie, user store.User) int64 {
	t.Helper()
	status, who, n := in.call(c, "")
	if status != http.StatusOK || who != user.ID.String() {
		t.Fatalf("request with the cookie: %d %s, want %s", status, who, user.ID)
	}
	return n
}

// mustBeCached makes requests with the cookie until one runs no statement: the session is in
// the cache. (The first reads the database; a revocation announced meanwhile may make the next
// one read it again.)
func (in *instance) mustBeCached(t *testing.T, c *http.Cookie, user store.User) {
	t.Helper()
	waitUntil(t, "a request with no SQL statement", func() bool { return in.mustBe(t, c, user) == 0 })
}

// mustBeRefused fails unless the cookie's request is anonymous now.
func (in *instance) mustBeRefused(t *testing.T, c *http.Cookie) {
	t.Helper()
	if _, who, _ := in.call(c, ""); who != "anonymous" {
		t.Fatalf("request with a revoked cookie made as %s", who)
	}
}

// mustBeRefusedSoon waits for the database's announcement to reach the instance.
func (in *instance) mustBeRefusedSoon(t *testing.T, c *http.Cookie) {
	t.Helper()
	waitUntil(t, "the revoked cookie to be refused", func() bool { _, who, _ := in.call(c, ""); return who == "anonymous" })
}

func tokenHashOf(c *http.Cookie) []byte {
	raw, _ := base64.RawURLEncoding.DecodeString(c.Value)
	h := sha256.Sum256(raw)
	return h[:]
}

// A cached session authenticates with no SQL statement, and its once-a-minute last_seen_at
// write is made once, from the cached value.
func TestCredentialCacheSession(t *testing.T) {
	t.Parallel()
	in := newInstance(t, storetest.NewDatabase(t), instanceConfig{ttl: time.Hour})
	u := storetest.User(t, in.s, uuid.Nil)
	c := in.login(t, u, "")
	storetest.MustExec(t, in.s.DB(), "UPDATE sessions SET last_seen_at = now() - interval '10 minutes' WHERE user_id = ?", u.ID)
	if n := in.mustBe(t, c, u); n != 2 {
		t.Errorf("first request: %d statements, want 2 (the session, the last_seen_at write)", n)
	}
	for range 3 {
		if n := in.mustBe(t, c, u); n != 0 {
			t.Errorf("cached session: %d statements, want 0", n)
		}
	}
	var seen time.Time
	if err := in.s.DB().NewRaw("SELECT last_seen_at FROM sessions WHERE user_id = ?", u.ID).Scan(t.Context(), &seen); err != nil {
		t.Fatal(err)
	}
	if time.Since(seen) > time.Minute {
		t.Errorf("last_seen_at = %v, want about now", seen)
	}
	// An unknown cookie is never cached: each one reads the database.
	unknown := &http.Cookie{Name: c.Name, Value: base64.RawURLEncoding.EncodeToString(make([]byte, 32))}
	for range 2 {
		if _, who, n := in.call(unknown, ""); who != "anonymous" || n != 1 {
			t.Errorf("unknown cookie: %s with %d statements, want anonymous with 1", who, n)
		}
	}
}

// SESSION_CACHE_TTL=0: no cache, every request reads the database.
func TestCredentialCacheOff(t *testing.T) {
	t.Parallel()
	in := newInstance(t, storetest.NewDatabase(t), instanceConfig{ttl: 0})
	if in.cache != nil {
		t.Fatal("NewCredentialCache with TTL 0 made a cache")
	}
	u := storetest.User(t, in.s, uuid.Nil)
	c := in.login(t, u, "")
	for range 3 {
		if n := in.mustBe(t, c, u); n != 1 {
			t.Errorf("without a cache: %d statements, want 1", n)
		}
	}
}

// A session is not trusted past its expires_at, cached or not, though nothing announced it.
func TestCredentialCacheExpiry(t *testing.T) {
	t.Parallel()
	in := newInstance(t, storetest.NewDatabase(t), instanceConfig{ttl: time.Hour, cookieAge: time.Second})
	u := storetest.User(t, in.s, uuid.Nil)
	c := in.login(t, u, "")
	in.mustBeCached(t, c, u)
	var expires time.Time
	if err := in.s.DB().NewRaw("SELECT expires_at FROM sessions WHERE user_id = ?", u.ID).Scan(t.Context(), &expires); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(expires))
	in.mustBeRefused(t, c)
}

// Two instances on one database: whatever ends a session or deactivates a user, through one
// instance or by SQL, the other refuses the cookie as soon as the database's announcement
// arrives, and the instance that ended it refuses it at once.
func TestCredentialCacheRevokedOnEveryInstance(t *testing.T) {
	t.Parallel()
	url := storetest.NewDatabase(t)
	var slow gate // a's announcements, for the revocations a makes itself
	a := newInstance(t, url, instanceConfig{ttl: time.Hour, first: slow.wait})
	b := newInstance(t, url, instanceConfig{ttl: time.Hour})
	tests := []struct {
		name   string
		revoke func(t *testing.T, u store.User, c *http.Cookie, sid string)
		local  bool // a forgets it at once, without waiting for the announcement
	}{
		{"logout", func(t *testing.T, _ store.User, c *http.Cookie, _ string) { a.logout(t, c) }, true},
		{"back-channel logout", func(t *testing.T, _ store.User, _ *http.Cookie, sid string) {
			if n, err := a.sessions.EndByProvider(t.Context(), issuer, sid, ""); err != nil || n != 1 {
				t.Fatalf("EndByProvider() = %d, %v", n, err)
			}
		}, true},
		{"a new login replacing the carried session", func(t *testing.T, u store.User, c *http.Cookie, _ string) {
			r := httptest.NewRequest(http.MethodGet, "/auth/callback", nil)
			r.AddCookie(c)
			if err := a.sessions.Start(httptest.NewRecorder(), r, store.NewSession{UserID: u.ID, Issuer: issuer, Subject: u.Sub, IDToken: "t"}); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"deactivation by SQL", func(t *testing.T, u store.User, _ *http.Cookie, _ string) {
			storetest.MustExec(t, a.s.DB(), "UPDATE users SET is_active = false WHERE id = ?", u.ID)
		}, false},
		{"session deleted by SQL", func(t *testing.T, _ store.User, c *http.Cookie, _ string) {
			storetest.MustExec(t, a.s.DB(), "DELETE FROM sessions WHERE token_hash = ?", tokenHashOf(c))
		}, false},
		{"user deleted by SQL", func(t *testing.T, u store.User, _ *http.Cookie, _ string) {
			storetest.MustExec(t, a.s.DB(), "DELETE FROM users WHERE id = ?", u.ID)
		}, false},
		{"expiry moved by SQL", func(t *testing.T, u store.User, _ *http.Cookie, _ string) {
			storetest.MustExec(t, a.s.DB(), "UPDATE sessions SET created_at = now() - interval '3 hours', expires_at = now() - interval '1 hour' WHERE user_id = ?", u.ID)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := storetest.User(t, a.s, uuid.Nil)
			other := storetest.User(t, a.s, uuid.Nil)
			sid := "sid-" + storetest.Unique()
			c := a.login(t, u, sid)
			kept := a.login(t, other, "")
			for _, in := range []*instance{a, b} {
				in.mustBeCached(t, c, u)
				in.mustBeCached(t, kept, other)
			}
			if tt.local {
				slow.shut()
				t.Cleanup(slow.open) // before a stops: its listener would wait at the gate
				tt.revoke(t, u, c, sid)
				a.mustBeRefused(t, c)
				slow.open()
			} else {
				tt.revoke(t, u, c, sid)
				a.mustBeRefusedSoon(t, c)
			}
			b.mustBeRefusedSoon(t, c)
			a.mustBe(t, kept, other)
			b.mustBe(t, kept, other)
		})
	}
}

// A partner service's token of a user deactivated by SQL is refused on every instance as soon
// as the database announces it, though both cached the user as active (and the token).
func TestCredentialCacheBearer(t *testing.T) {
	t.Parallel()
	url := storetest.NewDatabase(t)
	as := oidctest.NewServer(t, oidctest.Options{ClientID: "people-" + storetest.Unique()})
	a := newInstance(t, url, instanceConfig{ttl: time.Hour, as: as})
	b := newInstance(t, url, instanceConfig{ttl: time.Hour, as: as})
	u := storetest.User(t, a.s, uuid.Nil)
	sub := "pub-" + storetest.Unique()
	storetest.MustExec(t, a.s.DB(), "INSERT INTO user_identities (user_id, issuer, subject, audience) VALUES (?, ?, ?, '')", u.ID, as.URL, sub)
	authz := "Bearer " + as.Mint(oidctest.Token{Subject: sub, ClientID: "docs-" + storetest.Unique()})
	for _, in := range []*instance{a, b} {
		waitUntil(t, "a bearer request with no SQL statement", func() bool {
			status, who, n := in.call(nil, authz)
			if status != http.StatusOK || who != u.ID.String() {
				t.Fatalf("bearer request: %d %s, want %s", status, who, u.ID)
			}
			return n == 0
		})
	}
	storetest.MustExec(t, a.s.DB(), "UPDATE users SET is_active = false WHERE id = ?", u.ID)
	for _, in := range []*instance{a, b} {
		waitUntil(t, "the deactivated user's token to be refused", func() bool {
			status, _, _ := in.call(nil, authz)
			return status == http.StatusUnauthorized
		})
	}
}

// While the listener is not listening, every check reads the database, so that a revocation it
// cannot hear of takes effect at once; once it listens again, caching resumes.
func TestCredentialCacheListenerDown(t *testing.T) {
	t.Parallel()
	// The subscriber holds the listener at its reconnection's All, after LISTEN and before it
	// says it listens: the state of a listener that is away, for as long as the test needs.
	var armed atomic.Bool
	hold := make(chan struct{})
	release := sync.OnceFunc(func() { close(hold) })
	in := newInstance(t, storetest.NewDatabase(t), instanceConfig{ttl: time.Hour, subscriber: func(rev store.Revocation) {
		if rev.All && armed.Load() {
			<-hold
		}
	}})
	t.Cleanup(release) // before the instance stops: its listener would wait in the subscriber
	u := storetest.User(t, in.s, uuid.Nil)
	c := in.login(t, u, "")
	other := in.login(t, u, "")
	in.mustBeCached(t, c, u)
	in.mustBeCached(t, other, u)

	armed.Store(true)
	var killed bool
	if err := storetest.Open(t).DB().QueryRowContext(t.Context(), "SELECT pg_terminate_backend(?)", in.rev.PID()).Scan(&killed); err != nil || !killed {
		t.Fatalf("pg_terminate_backend = %v, %v", killed, err)
	}
	waitUntil(t, "the listener to notice", func() bool { return !in.rev.Listening() })
	for range 2 {
		if n := in.mustBe(t, c, u); n == 0 {
			t.Error("a request ran no statement while the listener was away")
		}
	}
	storetest.MustExec(t, in.s.DB(), "DELETE FROM sessions WHERE token_hash = ?", tokenHashOf(c))
	in.mustBeRefused(t, c) // at once: read from the database
	if in.rev.Listening() {
		t.Fatal("the listener listened while held")
	}

	armed.Store(false)
	release()
	waitUntil(t, "the listener to listen again", in.rev.Listening)
	in.mustBeCached(t, other, u)
	in.mustBeRefused(t, c)
}

// The race the generation guards against: a request reads a live session; before it caches it,
// the session is deleted and the announcement processed. The answer it read must not be cached,
// or the next request would be let in by a session the instance already knows is gone.
func TestCredentialCacheStaleRead(t *testing.T) {
	t.Parallel()
	url := storetest.NewDatabase(t)
	announced := make(chan store.Revocation, 100)
	in := newInstance(t, url, instanceConfig{ttl: time.Hour, subscriber: func(rev store.Revocation) { announced <- rev }})
	other := storetest.OpenAt(t, url) // the deleting instance
	u := storetest.User(t, in.s, uuid.Nil)
	c := in.login(t, u, "")
	hash := tokenHashOf(c)

	var fired atomic.Bool
	hook := func(sql string) {
		if !strings.Contains(sql, "FROM sessions ses") || !fired.CompareAndSwap(false, true) {
			return
		}
		// The request has read the session and not yet cached it.
		storetest.MustExec(t, other.DB(), "DELETE FROM sessions WHERE token_hash = ?", hash)
		deadline := time.After(5 * time.Second)
		for {
			select {
			case rev := <-announced:
				if string(rev.TokenHash) == string(hash) {
					return
				}
			case <-deadline:
				t.Error("the deletion was not announced within 5s")
				return
			}
		}
	}
	in.sql.hook.Store(&hook)
	in.mustBe(t, c, u) // read before the deletion: let in, as any request that raced a logout
	if !fired.Load() {
		t.Fatal("the session was not read from the database")
	}
	in.mustBeRefused(t, c)
}
