package auth_test

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"lasuite.fr/people/auth"
)

// TestLoginAtPeoplePaths: a login started at People's /api/v1.0/authenticate/ sends People's
// callback as redirect_uri (to the provider and in the code exchange), where ProConnect has it
// registered, and a logout at /api/v1.0/logout/ sends People's post-logout URI; with plain and
// __Host- state cookies.
func TestLoginAtPeoplePaths(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain cookies", true: "__Host- cookies"}[secure], func(t *testing.T) {
			r := newRig(t, secure, func(c *auth.LoginConfig) { c.AllowLogoutGet = true })
			people := auth.PeopleRoutes
			r.op.redirectURI = r.url + people.Callback
			c := r.browser(t)
			r.op.set(opKnobs{Sub: "sub-" + randomString(), Userinfo: map[string]any{"email": randomString() + "@example.org", "siret": freshSIRET()}})
			resp, err := c.Get(r.url + people.Login + "?next=/home")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			mustLand(t, landing{status: resp.StatusCode, body: string(body), location: resp.Header.Get("Location")})
			r.op.mu.Lock()
			authURI, tokenURI := r.op.authReqs[len(r.op.authReqs)-1].Get("redirect_uri"), r.op.tokenReqs[len(r.op.tokenReqs)-1].form.Get("redirect_uri")
			r.op.mu.Unlock()
			if want := r.url + people.Callback; authURI != want || tokenURI != want {
				t.Errorf("redirect_uri = %q (authorization), %q (token); want %q", authURI, tokenURI, want)
			}
			me := r.me(t, c)

			// From another site, a GET only shows a button that posts the logout.
			req, _ := http.NewRequest(http.MethodGet, r.url+people.Logout, nil)
			req.Header.Set("Sec-Fetch-Site", "cross-site")
			resp, err = c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `<form method="post" action="/api/v1.0/logout/">`) {
				t.Fatalf("cross-site GET logout: %d %s, want the confirmation page", resp.StatusCode, body)
			}
			if got := r.me(t, c); got.Me.ID != me.Me.ID {
				t.Fatalf("the cross-site GET ended the session")
			}

			// From this site, a GET logs out and leaves through the provider, which sends the
			// browser back to People's post-logout URI.
			req, _ = http.NewRequest(http.MethodGet, r.url+people.Logout, nil)
			req.Header.Set("Sec-Fetch-Site", "same-origin")
			resp, err = c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			m := regexp.MustCompile(`url=([^"]+)"`).FindSubmatch(body)
			if resp.StatusCode != http.StatusOK || m == nil {
				t.Fatalf("GET logout: %d %s, want a page leaving for the provider", resp.StatusCode, body)
			}
			endSession, err := url.Parse(html.UnescapeString(string(m[1])))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := endSession.Query().Get("post_logout_redirect_uri"), r.url+people.LogoutCallback; got != want {
				t.Errorf("post_logout_redirect_uri = %q, want %q", got, want)
			}
			resp, err = c.Get(endSession.String()) // provider → /api/v1.0/logout-callback/ → LOGOUT_REDIRECT_URL
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(body) != "landed on /" {
				t.Errorf("after the provider's logout: %d %q, want to land on /", resp.StatusCode, body)
			}
			r.mustBeAnonymous(t, c)
		})
	}
}

// TestPeoplePathsRefuse: a login started at one set of paths cannot finish at the other's
// callback, and People's back-channel logout path checks tokens as ours. (Without
// ALLOW_LOGOUT_GET_METHOD, GET logout's 405 is tested on the whole server, whose mux has no
// catch-all: TestPeopleEnvironment.)
func TestPeoplePathsRefuse(t *testing.T) {
	r := newRig(t, true, nil) // __Host- cookies: both sets of paths see the same state cookie
	c := r.browser(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(r.url + auth.OurRoutes.Login)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	state := mustParse(t, resp.Header.Get("Location")).Query().Get("state")
	resp, err = c.Get(r.url + auth.PeopleRoutes.Callback + "?code=x&state=" + url.QueryEscape(state))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "(reason: invalid_state)") {
		t.Errorf("a login of /auth/login finished at People's callback: %d %s", resp.StatusCode, body)
	}

	for _, tt := range []struct {
		method, path string
		form         string
		want         int
	}{
		{http.MethodPost, auth.PeopleRoutes.BackchannelLogout, "logout_token=not-a-jwt", http.StatusBadRequest},
	} {
		req, _ := http.NewRequest(tt.method, r.url+tt.path, strings.NewReader(tt.form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s: %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
		}
	}
}
