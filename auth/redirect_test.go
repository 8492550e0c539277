package auth_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"lasuite.fr/people/auth"
)

// callbackAnswer runs a whole login with next in a new browser (login, the provider, the
// callback) and returns the callback's status and Location header, not followed. It fails the
// test unless the login itself succeeded.
func (r *loginRig) callbackAnswer(t *testing.T, rawQuery string) (int, string) {
	t.Helper()
	sub, email := person()
	r.op.set(opKnobs{Sub: sub, Userinfo: map[string]any{"email": email}})
	c := r.browser(t)
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if via[len(via)-1].URL.Path == "/auth/callback" || req.URL.Hostname() != "127.0.0.1" {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := c.Get(r.url + "/auth/login?" + rawQuery)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/auth/callback" {
		t.Fatalf("the login stopped at %s with %d, not at the callback", resp.Request.URL, resp.StatusCode)
	}
	if me := r.me(t, c); me.Me.Email != email {
		t.Fatalf("me.email = %q, want %q: the login did not succeed", me.Me.Email, email)
	}
	return resp.StatusCode, resp.Header.Get("Location")
}

// Issue 13 item 1: /auth/login?next=/./%5Cevil.example, then a login, answered the callback
// with Location: /\evil.example, which browsers follow to evil.example. Whatever next says, the
// Location the callback finally sends is a path on the server's own origin, and a next that is
// anything but a plain path lands on LOGIN_REDIRECT_URL.
func TestLoginNextIsDecidedOnTheSentURL(t *testing.T) {
	t.Parallel()
	r := newLoginRig(t, func(c *auth.LoginConfig) { c.LoginRedirect = "/welcome" })
	hostile := []string{
		"/./\\evil.example",   // the report: next=/./%5Cevil.example, decoded once
		"/./%5Cevil.example",  // the same, encoded once more
		"/\\evil.example",     // a backslash browsers read as a slash
		"\\\\evil.example",    // two of them
		"/%5Cevil.example",    // percent-encoded
		"/%5cevil.example",    // lower case
		"/.\\./evil.example",  // inside a dot segment
		"//evil.example",      // scheme-relative
		"///evil.example",     // tripled
		"////evil.example/x",  // quadrupled
		"/%2F%2Fevil.example", // encoded slashes
		"/%2f/evil.example",
		"/../evil.example",             // dot-dot
		"/..//evil.example",            // dot-dot, then a doubled slash
		"/.//evil.example",             // dot, then a doubled slash
		"/%2e%2e/%2e%2e//evil.example", // encoded dots
		"/x/..%2F..%2F/evil.example",   // mixed
		"/\t/evil.example",             // browsers drop tabs: //evil.example
		"/\n/evil.example",             // and newlines
		"/\r\n/evil.example",           // header splitting too
		"/\x00/evil.example",           // NUL
		"\x01//evil.example",           // a leading control character browsers strip
		" //evil.example",              // a leading space browsers strip
		"/%09/evil.example",            // an encoded tab
		"/%00evil.example",             // an encoded NUL
		"/\u2215evil.example",          // DIVISION SLASH
		"/\uff0fevil.example",          // FULLWIDTH SOLIDUS
		"/%E2%88%95evil.example",       // DIVISION SLASH, encoded
		"/%EF%BC%8Fevil.example",       // FULLWIDTH SOLIDUS, encoded
		"//evil\u3002example",          // IDEOGRAPHIC FULL STOP in a host
		"/\uff0e\uff0e/evil.example",   // FULLWIDTH FULL STOPs as a dot-dot
		"/%EF%BC%8E%EF%BC%8E/evil",     // the same, encoded
		"javascript:alert(document.domain)",
		"JaVaScRiPt:alert(1)",
		"/javascript:alert(1)//\n",  // a path, until the newline
		"https://evil.example/",     // absolute
		"HTTPS://evil.example",      // absolute, upper case
		"http:evil.example",         // scheme, no slashes
		"http:/evil.example",        // scheme, one slash
		"https:/\\evil.example",     // scheme, a slash and a backslash
		"//user@evil.example",       // userinfo
		"//127.0.0.1@evil.example/", // userinfo naming us
		"@evil.example",             // not a path
		"evil.example",              // relative
		"data:text/html,<script>alert(1)</script>",
		"/" + strings.Repeat("a", 5000), // over-long
		"",                              // none
	}
	for _, next := range hostile {
		status, loc := r.callbackAnswer(t, "next="+url.QueryEscape(next))
		if status != http.StatusFound || loc != "/welcome" {
			t.Errorf("next=%q: the callback answered %d to %q, want a redirect to LOGIN_REDIRECT_URL /welcome", next, status, loc)
		}
	}

	// The report's exact request, with its query as it was sent.
	if status, loc := r.callbackAnswer(t, "next=/./%5Cevil.example"); status != http.StatusFound || loc != "/welcome" {
		t.Errorf("next=/./%%5Cevil.example: the callback answered %d to %q, want /welcome", status, loc)
	}

	// Plain paths on our origin survive, as they were given.
	for next, want := range map[string]string{
		"/teams/abc?x=1#y":            "/teams/abc?x=1#y",
		"/teams/abc":                  "/teams/abc",
		"/teams/":                     "/teams/",
		"/mail-domains/a.fr/?q=%2F&r": "/mail-domains/a.fr/?q=%2F&r",
		"/@evil.example":              "/@evil.example", // a path on our origin, not userinfo
		"/":                           "/welcome",       // as People: the root is LOGIN_REDIRECT_URL
	} {
		if status, loc := r.callbackAnswer(t, "next="+url.QueryEscape(next)); status != http.StatusFound || loc != want {
			t.Errorf("next=%q: the callback answered %d to %q, want %q", next, status, loc, want)
		}
	}
}

// The configured targets (LOGIN_REDIRECT_URL, LOGIN_REDIRECT_URL_FAILURE, LOGOUT_REDIRECT_URL)
// may be paths or absolute URLs of another origin, such as a separate frontend; a target that
// is neither is refused when the server starts, and the ones accepted are sent as they were
// checked, by the login, its failure, the logout and the logout callback alike.
func TestLoginConfiguredRedirects(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{
		"//evil.example", "/\\evil.example", "/./x", "/%2F%2Fevil.example", "javascript:alert(1)", "https://u:p@front.example/",
		"ftp://front.example/", "https:/front.example", "/x\ny", "/\u2215evil", "https://front.example/a/../b", "front.example",
	} {
		for _, field := range []string{"LoginRedirect", "FailureRedirect", "LogoutRedirect"} {
			cfg := auth.LoginConfig{PublicURL: "https://people.example", SecretKey: []byte(strings.Repeat("s", 32))}
			*map[string]*string{"LoginRedirect": &cfg.LoginRedirect, "FailureRedirect": &cfg.FailureRedirect, "LogoutRedirect": &cfg.LogoutRedirect}[field] = bad
			if _, err := auth.NewLogin(cfg, nil, nil, nil); err == nil {
				t.Errorf("%s %q accepted, want refused at start", field, bad)
			}
		}
	}

	t.Run("paths", func(t *testing.T) {
		t.Parallel()
		r := newLoginRig(t, func(c *auth.LoginConfig) {
			c.LoginRedirect, c.FailureRedirect, c.LogoutRedirect = "/app?from=login", "/login-failed", "/bye"
		})
		if status, loc := r.callbackAnswer(t, ""); status != http.StatusFound || loc != "/app?from=login" {
			t.Errorf("login answered %d to %q, want /app?from=login", status, loc)
		}
		c := r.browser(t)
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := c.Get(r.url + "/auth/callback?state=forged")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "/login-failed?reason=invalid_state" {
			t.Errorf("refused login answered %d to %q, want /login-failed?reason=invalid_state", resp.StatusCode, loc)
		}
		resp, _ = r.logOut(t, c) // no session: straight to LOGOUT_REDIRECT_URL
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/bye" {
			t.Errorf("logout answered %d to %q, want /bye", resp.StatusCode, loc)
		}
	})
	t.Run("absolute", func(t *testing.T) {
		t.Parallel()
		r := newLoginRig(t, func(c *auth.LoginConfig) {
			c.LoginRedirect, c.FailureRedirect, c.LogoutRedirect = "https://front.example/app", "https://front.example/failed?x=1", "https://front.example/bye"
		})
		if status, loc := r.callbackAnswer(t, "next=%2F%2Fevil.example"); status != http.StatusFound || loc != "https://front.example/app" {
			t.Errorf("login answered %d to %q, want https://front.example/app", status, loc)
		}
		c := r.browser(t)
		resp, err := c.Get(r.url + "/auth/callback?state=forged")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "https://front.example/failed?reason=invalid_state&x=1" {
			t.Errorf("refused login answered %d to %q, want the failure URL with its reason", resp.StatusCode, loc)
		}
		resp, _ = r.logOut(t, c)
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "https://front.example/bye" {
			t.Errorf("logout answered %d to %q, want https://front.example/bye", resp.StatusCode, loc)
		}
	})
}
