package auth_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// setCookie returns the Set-Cookie of resp named name; it fails the test when there is none.
func setCookie(t *testing.T, resp *http.Response, name string) *http.Cookie {
	t.Helper()
	var names []string
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
		names = append(names, c.Name)
	}
	t.Fatalf("%s answered %d without a %s cookie (cookies: %v)", resp.Request.URL.Path, resp.StatusCode, name, names)
	return nil
}

// Issue 13 item 6: the login and logout state cookies are __Host- prefixed whenever the
// session cookie is (SESSION_COOKIE_SECURE), which browsers accept only when Secure, for Path=/
// and without Domain; the whole flow works with them over HTTPS. Without Secure they keep
// their plain names, under /auth/ only.
func TestLoginStateCookiesHostPrefixed(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name                string
		secure              bool
		login, logout, path string
	}{
		{"secure", true, "__Host-people_login", "__Host-people_logout", "/"},
		{"plain HTTP", false, "people_login", "people_logout", "/auth/"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, tt.secure, nil)
			check := func(c *http.Cookie, name string, deleted bool) {
				t.Helper()
				if c.Name != name || c.Secure != tt.secure || c.Path != tt.path || c.Domain != "" || !c.HttpOnly ||
					c.SameSite != http.SameSiteLaxMode || (c.MaxAge < 0) != deleted {
					t.Errorf("cookie %s: Secure %v, Path %q, Domain %q, HttpOnly %v, SameSite %v, Max-Age %d; want %s, Secure %v, Path %s, host-only, HttpOnly, Lax",
						c.Name, c.Secure, c.Path, c.Domain, c.HttpOnly, c.SameSite, c.MaxAge, name, tt.secure, tt.path)
				}
			}

			// The login: the state cookie set, then used and deleted by the callback.
			sub, email := person()
			c, callback := r.untilCallback(t, opKnobs{Sub: sub, Userinfo: map[string]any{"email": email}})
			var names []string
			for _, ck := range c.Jar.Cookies(mustParse(t, callback)) {
				names = append(names, ck.Name)
			}
			if !slices.Contains(names, tt.login) {
				t.Fatalf("the browser holds %v for the callback, want a %s cookie", names, tt.login)
			}
			stop := c.CheckRedirect
			c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			resp, err := c.Get(callback)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			c.CheckRedirect = stop
			check(setCookie(t, resp, tt.login), tt.login, true)
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "/home" {
				t.Fatalf("callback answered %d to %q, want /home", resp.StatusCode, loc)
			}
			if me := r.me(t, c); me.Me.Email != email {
				t.Fatalf("me.email = %q, want %q", me.Me.Email, email)
			}

			// The login cookie as /auth/login sets it.
			first := r.browser(t)
			first.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			resp, err = first.Get(r.url + "/auth/login")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			check(setCookie(t, resp, tt.login), tt.login, false)

			// The logout through the provider: the state cookie set, then used and deleted.
			old := r.withCookies(t, c)
			resp, body := r.logOut(t, c)
			check(setCookie(t, resp, tt.logout), tt.logout, false)
			_, after, _ := strings.Cut(string(body), `url=`)
			end, _, _ := strings.Cut(after, `"`)
			resp, err = c.Get(strings.ReplaceAll(end, "&amp;", "&"))
			if err != nil {
				t.Fatal(err)
			}
			landed, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(landed) != "landed on /" {
				t.Errorf("after the provider's logout: %d %q, want LOGOUT_REDIRECT_URL", resp.StatusCode, landed)
			}
			r.mustBeAnonymous(t, old)
		})
	}
}
