package auth_test

import (
	"testing"

	"lasuite.fr/people/auth"
)

// Issue 13 item 6: when OIDC_AUTH_REQUEST_EXTRA_PARAMS asks for acr_values, an ID token whose
// acr is not one of them (a lower level, or none) is refused as insufficient_acr before anyone
// is provisioned or any session opens; one of them logs in.
func TestLoginRequiresRequestedACR(t *testing.T) {
	t.Parallel()
	r := newLoginRig(t, func(c *auth.LoginConfig) {
		c.ExtraParams = map[string]string{"acr_values": "eidas2 eidas3"}
	})
	for _, tt := range []struct {
		name string
		acr  any // nil: no acr claim
		ok   bool
	}{
		{"first of the requested", "eidas2", true},
		{"second of the requested", "eidas3", true},
		{"a lower level", "eidas1", false},
		{"no acr claim", nil, false},
		{"empty", "", false},
		{"the whole request as one value", "eidas2 eidas3", false},
		{"a prefix of a requested one", "eidas", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sub, email := person()
			c := r.browser(t)
			l := r.logIn(t, c, opKnobs{Sub: sub, IDToken: map[string]any{"acr": tt.acr}, Userinfo: map[string]any{"email": email}})
			if tt.ok {
				mustLand(t, l)
				if me := r.me(t, c); me.Me.Email != email {
					t.Errorf("me.email = %q, want %q", me.Me.Email, email)
				}
				return
			}
			mustRefuse(t, l, "insufficient_acr")
			r.mustBeAnonymous(t, c)
			if n := scalar[int](t, r.s, "SELECT count(*) FROM users WHERE sub = ? OR email = ?", sub, email); n != 0 {
				t.Errorf("%d users provisioned, want none", n)
			}
			if n := scalar[int](t, r.s, "SELECT count(*) FROM sessions WHERE subject = ?", sub); n != 0 {
				t.Errorf("%d sessions opened, want none", n)
			}
		})
	}
	r.op.mu.Lock()
	asked := r.op.authReqs[0].Get("acr_values")
	r.op.mu.Unlock()
	if asked != "eidas2 eidas3" {
		t.Errorf("the authorization request asked acr_values=%q, want the configured ones", asked)
	}
}
