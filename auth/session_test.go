package auth_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/auth/oidctest"
	"lasuite.fr/people/graph"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// site is the real GraphQL handler behind the session middleware, as server.go wires it, on
// 127.0.0.1. Every cookie it hands out is checked against its logs when the test ends.
type site struct {
	t        testing.TB
	s        *store.Store
	sessions *auth.Sessions
	url      string // also the server's public origin
	logs     *logBuffer
	handed   *handedOut
}

// handedOut are the cookie values and ID tokens a site saw, which its logs must never contain.
type handedOut struct {
	mu     sync.Mutex
	values []string
}

func (h *handedOut) add(v string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.values = append(h.values, v)
}

// in returns the site for a subtest, so that its helpers fail that subtest.
func (st *site) in(t testing.TB) *site {
	c := *st
	c.t = t
	return &c
}

const issuer = "https://op.test"

type siteOpt func(*auth.SessionOptions, *[]func(http.Handler) http.Handler)

// allowing adds origins to CORS_ALLOWED_ORIGINS.
func allowing(origins ...string) siteOpt {
	return func(o *auth.SessionOptions, _ *[]func(http.Handler) http.Handler) {
		o.AllowedOrigins = append(o.AllowedOrigins, origins...)
	}
}

// secure sets SESSION_COOKIE_SECURE.
func secure(o *auth.SessionOptions, _ *[]func(http.Handler) http.Handler) { o.CookieSecure = true }

// before puts a middleware in front of the session middleware, where the bearer one goes.
func before(mw func(http.Handler) http.Handler) siteOpt {
	return func(_ *auth.SessionOptions, mws *[]func(http.Handler) http.Handler) { *mws = append(*mws, mw) }
}

// withBearer puts the real bearer middleware in front of the session middleware, as the server
// does, on an authorization server of its own (JSON introspection), and returns it with the
// environment whose authorization server mints the test's tokens.
func withBearer(t testing.TB) (siteOpt, *rsEnv) {
	t.Helper()
	e := newRSEnv(t, auth.BackendJSON)
	return before(e.rs.Middleware), e
}

// partnerToken is a token the partner service docs holds for a new user, and that user.
func (e *rsEnv) partnerToken(t testing.TB) (string, store.User) {
	t.Helper()
	u, sub := e.user(t)
	return e.as.Mint(oidctest.Token{Subject: sub, ClientID: "docs-" + storetest.Unique()}), u
}

func newSite(t testing.TB, opts ...siteOpt) *site {
	t.Helper()
	s := storetest.Open(t)
	srv := httptest.NewUnstartedServer(nil)
	url := "http://" + srv.Listener.Addr().String()
	o := auth.SessionOptions{CookieAge: 2 * time.Hour, PublicOrigin: url}
	var outer []func(http.Handler) http.Handler
	for _, opt := range opts {
		opt(&o, &outer)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st := &site{t: t, s: s, sessions: auth.NewSessions(s, o, log), url: url, logs: logs, handed: &handedOut{}}
	api := graph.NewHandler(s, graph.Options{Log: log, Settings: graph.Settings{Release: "test", Commit: "test"}})
	h := st.sessions.Middleware(st.sessions.CSRF(api))
	for _, mw := range outer {
		h = mw(h)
	}
	mux := http.NewServeMux()
	mux.Handle("/graphql", st.sessions.CORS(h))
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		out := logs.String()
		st.handed.mu.Lock()
		defer st.handed.mu.Unlock()
		for _, c := range st.handed.values {
			if strings.Contains(out, c) {
				t.Errorf("the logs contain a session cookie or ID token:\n%s", out)
			}
		}
	})
	return st
}

// login opens a session for user as the login callback does, with the cookie the browser
// carries (nil: none), and returns the new cookie.
func (st *site) login(user store.User, carried *http.Cookie, sid string) *http.Cookie {
	st.t.Helper()
	r := httptest.NewRequestWithContext(context.Background(), http.MethodGet, st.url+"/auth/callback", nil)
	if carried != nil {
		r.AddCookie(carried)
	}
	w := httptest.NewRecorder()
	idToken := "id-token-of-" + user.Sub
	st.handed.add(idToken)
	err := st.sessions.Start(w, r, store.NewSession{UserID: user.ID, Issuer: issuer, Subject: user.Sub, SID: sid, IDToken: idToken})
	if err != nil {
		st.t.Fatalf("Start() = %v", err)
	}
	cs := w.Result().Cookies()
	if len(cs) != 1 {
		st.t.Fatalf("Start() set %d cookies, want 1", len(cs))
	}
	st.handed.add(cs[0].Value)
	return cs[0]
}

// logout ends the session of cookie as the logout handler does.
func (st *site) logout(cookie *http.Cookie) (store.Session, bool, *http.Response) {
	st.t.Helper()
	r := httptest.NewRequestWithContext(context.Background(), http.MethodPost, st.url+"/auth/logout", nil)
	if cookie != nil {
		r.AddCookie(cookie)
	}
	w := httptest.NewRecorder()
	ses, ok, err := st.sessions.End(w, r)
	if err != nil {
		st.t.Fatalf("End() = %v", err)
	}
	return ses, ok, w.Result()
}

// answer is a response of the API.
type answer struct {
	status int
	header http.Header
	Data   json.RawMessage
	Errors []struct {
		Message    string
		Extensions struct{ Code string }
	}
}

func (a answer) code() string {
	if len(a.Errors) == 0 {
		return ""
	}
	return a.Errors[0].Extensions.Code
}

// call sends one request to /graphql; headers are name, value pairs.
func (st *site) call(method, query, contentType string, body io.Reader, cookie *http.Cookie, headers ...string) answer {
	st.t.Helper()
	req, err := http.NewRequest(method, st.url+"/graphql"+query, body)
	if err != nil {
		st.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if cookie != nil {
		req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		st.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header}
	if len(b) > 0 && strings.HasPrefix(strings.TrimSpace(string(b)), "{") {
		if err := json.Unmarshal(b, &a); err != nil {
			st.t.Fatalf("decode %s: %v", b, err)
		}
	}
	return a
}

// post sends a GraphQL document as JSON from the server's own origin, as the playground does.
func (st *site) post(doc string, cookie *http.Cookie, headers ...string) answer {
	st.t.Helper()
	body, _ := json.Marshal(map[string]string{"query": doc})
	return st.call(http.MethodPost, "", "application/json", bytes.NewReader(body), cookie, append([]string{"Origin", st.url}, headers...)...)
}

// me returns the id the API reports for { me { id } }, or "" with the error code.
func (st *site) me(cookie *http.Cookie, headers ...string) (string, string) {
	st.t.Helper()
	a := st.post(`{ me { id } }`, cookie, headers...)
	var data struct{ Me struct{ ID string } }
	if a.code() == "" {
		if err := json.Unmarshal(a.Data, &data); err != nil {
			st.t.Fatalf("decode %s: %v", a.Data, err)
		}
	}
	return data.Me.ID, a.code()
}

// mustBeUser fails unless cookie authenticates as user.
func (st *site) mustBeUser(cookie *http.Cookie, user store.User) {
	st.t.Helper()
	if id, code := st.me(cookie); id != user.ID.String() {
		st.t.Fatalf("me with the cookie = %q (%s), want %s", id, code, user.ID)
	}
}

// mustBeRefused fails unless cookie is anonymous; a refused cookie is cleared.
func (st *site) mustBeRefused(cookie *http.Cookie) {
	st.t.Helper()
	a := st.post(`{ me { id } }`, cookie)
	if a.code() != "UNAUTHENTICATED" {
		st.t.Errorf("me with a dead cookie: status %d, code %q; want UNAUTHENTICATED", a.status, a.code())
	}
	if !clears(a.header, cookie.Name) {
		st.t.Errorf("a dead cookie is not cleared: Set-Cookie %q", a.header.Values("Set-Cookie"))
	}
}

// clears reports whether header deletes the cookie name.
func clears(h http.Header, name string) bool {
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == name && c.MaxAge < 0 && c.Value == "" {
			return true
		}
	}
	return false
}

func TestSessionCookie(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     []siteOpt
		wantName string
	}{
		{"secure", []siteOpt{secure}, "__Host-people_session"},
		{"development", nil, "people_session"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := newSite(t, tt.opts...)
			u := storetest.User(t, st.s, storetest.Organization(t, st.s))
			c := st.login(u, nil, "sid-1")
			secure := tt.wantName != "people_session"
			if c.Name != tt.wantName || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" ||
				c.Domain != "" || c.Secure != secure || c.MaxAge != int((2*time.Hour).Seconds()) {
				t.Errorf("cookie = %s; want %s, HttpOnly, SameSite=Lax, Path=/, no Domain, Secure=%v, Max-Age=7200", c, tt.wantName, secure)
			}
			if raw, err := base64.RawURLEncoding.DecodeString(c.Value); err != nil || len(raw) != 32 {
				t.Errorf("cookie value %q is not 32 bytes of base64url", c.Value)
			}
			st.mustBeUser(c, u)

			// The table holds the SHA-256 of the id, never the id.
			raw, _ := base64.RawURLEncoding.DecodeString(c.Value)
			hash := sha256.Sum256(raw)
			var stored, plain int
			err := st.s.DB().NewRaw("SELECT count(*) FILTER (WHERE token_hash = ?), count(*) FILTER (WHERE position(? IN token_hash) > 0 OR id_token LIKE ?) FROM sessions",
				hash[:], []byte(c.Value), "%"+c.Value+"%").Scan(t.Context(), &stored, &plain)
			if err != nil || stored != 1 || plain != 0 {
				t.Errorf("sessions: %d rows with the hash, %d with the cookie (err %v); want 1, 0", stored, plain, err)
			}

			// The dead cookie is deleted with the attributes it was set with.
			_, _, resp := st.logout(c)
			if !clears(resp.Header, tt.wantName) {
				t.Errorf("logout does not delete %s: Set-Cookie %q", tt.wantName, resp.Header.Values("Set-Cookie"))
			}
			for _, d := range resp.Cookies() {
				if d.Name != tt.wantName || d.Secure != secure || d.Path != "/" || !d.HttpOnly || d.MaxAge >= 0 {
					t.Errorf("deletion cookie = %s", d)
				}
			}
		})
	}
}

func TestSessionNewIDAtEveryLogin(t *testing.T) {
	t.Parallel()
	st := newSite(t)
	u := storetest.User(t, st.s, uuid.Nil)
	first := st.login(u, nil, "sid-1")
	st.mustBeUser(first, u)
	second := st.login(u, first, "sid-2")
	if second.Value == first.Value {
		t.Fatal("a second login kept the session id")
	}
	st.mustBeUser(second, u)
	st.mustBeRefused(first)

	// An id planted before login (session fixation) is not what the login opens, even when
	// it names no session.
	planted := &http.Cookie{Name: "people_session", Value: base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))}
	st.handed.add(planted.Value)
	if got := st.login(u, planted, ""); got.Value == planted.Value {
		t.Error("login kept a planted session id")
	}
	st.mustBeRefused(planted)
}

func TestSessionEnd(t *testing.T) {
	t.Parallel()
	st := newSite(t)
	u := storetest.User(t, st.s, uuid.Nil)
	c := st.login(u, nil, "sid-end")
	st.mustBeUser(c, u)
	ses, ok, resp := st.logout(c)
	if !ok || ses.IDToken != "id-token-of-"+u.Sub || ses.SID != "sid-end" || ses.Subject != u.Sub || ses.Issuer != issuer || ses.UserID != u.ID {
		t.Errorf("End() = %+v, %v; want the session with its ID token, sid and subject", ses, ok)
	}
	if !clears(resp.Header, c.Name) {
		t.Errorf("End() does not clear the cookie: %q", resp.Header.Values("Set-Cookie"))
	}
	st.mustBeRefused(c)
	if _, ok, _ := st.logout(c); ok {
		t.Error("End() of an ended session reports one")
	}
	if _, ok, resp := st.logout(nil); ok || len(resp.Cookies()) != 0 {
		t.Errorf("End() without a cookie = %v, cookies %v; want false and none", ok, resp.Cookies())
	}
}

func TestSessionEndByProvider(t *testing.T) {
	t.Parallel()
	st := newSite(t)
	u := storetest.User(t, st.s, uuid.Nil)
	other := storetest.User(t, st.s, uuid.Nil)
	laptop := st.login(u, nil, "sid-laptop-"+u.Sub)
	phone := st.login(u, nil, "sid-phone-"+u.Sub)
	colleague := st.login(other, nil, "sid-"+other.Sub)

	if n, err := st.sessions.EndByProvider(t.Context(), issuer, "sid-laptop-"+u.Sub, ""); err != nil || n != 1 {
		t.Fatalf("EndByProvider(sid) = %d, %v; want 1", n, err)
	}
	st.mustBeRefused(laptop)
	st.mustBeUser(phone, u)

	if n, err := st.sessions.EndByProvider(t.Context(), "https://other-op.test", "", u.Sub); err != nil || n != 0 {
		t.Errorf("EndByProvider(another issuer) = %d, %v; want 0", n, err)
	}
	st.mustBeUser(phone, u)
	if n, err := st.sessions.EndByProvider(t.Context(), issuer, "", u.Sub); err != nil || n != 1 {
		t.Fatalf("EndByProvider(sub) = %d, %v; want 1", n, err)
	}
	st.mustBeRefused(phone)
	st.mustBeUser(colleague, other)
}

func TestSessionRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		spoil string // SQL run with the user's id
	}{
		{"deactivated user", "UPDATE users SET is_active = false WHERE id = ?"},
		{"expired", "UPDATE sessions SET created_at = now() - interval '13 hours', expires_at = now() - interval '1 hour' WHERE user_id = ?"},
		{"deleted user", "DELETE FROM users WHERE id = ?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := newSite(t)
			u := storetest.User(t, st.s, uuid.Nil)
			c := st.login(u, nil, "")
			st.mustBeUser(c, u) // live
			storetest.MustExec(t, st.s.DB(), tt.spoil, u.ID)
			st.mustBeRefused(c) // cut at once, by the next request
		})
	}
	t.Run("malformed or unknown cookie", func(t *testing.T) {
		t.Parallel()
		st := newSite(t)
		for _, v := range []string{"x", strings.Repeat("A", 43), strings.Repeat("*", 43)} {
			st.mustBeRefused(&http.Cookie{Name: "people_session", Value: v})
		}
	})
}

func TestSessionLastSeen(t *testing.T) {
	t.Parallel()
	st := newSite(t)
	u := storetest.User(t, st.s, uuid.Nil)
	c := st.login(u, nil, "")
	lastSeen := func() time.Time {
		var at time.Time
		if err := st.s.DB().NewRaw("SELECT last_seen_at FROM sessions WHERE user_id = ?", u.ID).Scan(t.Context(), &at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	storetest.MustExec(t, st.s.DB(), "UPDATE sessions SET last_seen_at = now() - interval '10 minutes' WHERE user_id = ?", u.ID)
	idle := lastSeen()
	st.mustBeUser(c, u)
	touched := lastSeen()
	if !touched.After(idle.Add(9 * time.Minute)) {
		t.Errorf("last_seen_at after a request = %v, want about now (was %v)", touched, idle)
	}
	st.mustBeUser(c, u)
	if again := lastSeen(); !again.Equal(touched) {
		t.Errorf("a second request within a minute moved last_seen_at from %v to %v", touched, again)
	}
}

func TestSessionAuthorizationHeaderWins(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	u := storetest.User(t, s, uuid.Nil)
	bearer, partners := withBearer(t)
	token, partner := partners.partnerToken(t)
	st := newSite(t, bearer)
	c := st.login(u, nil, "")

	if id, code := st.me(c, "Authorization", "Bearer "+token); id != partner.ID.String() {
		t.Errorf("cookie and a valid bearer token: me = %q (%s), want the token's user", id, code)
	}
	a := st.post(`{ me { id } }`, c, "Authorization", "Bearer not-a-token-"+storetest.Unique())
	if a.code() != "UNAUTHENTICATED" {
		t.Errorf("cookie and a refused Authorization header: code %q, want UNAUTHENTICATED (the cookie is not a fallback)", a.code())
	}
	if clears(a.header, c.Name) {
		t.Error("a request judged by its Authorization header cleared the session cookie")
	}
	st.mustBeUser(c, u)
}

func TestPurgeEvery(t *testing.T) {
	t.Parallel()
	st := newSite(t)
	u := storetest.User(t, st.s, uuid.Nil)
	st.login(u, nil, "")
	storetest.MustExec(t, st.s.DB(), "UPDATE sessions SET created_at = now() - interval '13 hours', expires_at = now() - interval '1 hour' WHERE user_id = ?", u.ID)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); st.sessions.PurgeEvery(ctx, time.Hour) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		if err := st.s.DB().NewRaw("SELECT count(*) FROM sessions WHERE user_id = ?", u.ID).Scan(t.Context(), &n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("PurgeEvery did not purge at start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("PurgeEvery did not stop with its context")
	}
}
