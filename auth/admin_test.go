package auth_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/auth/oidctest"
	"lasuite.fr/people/store/storetest"
)

// TestDeactivationCutsAccess: when staff deactivate a user, the user's live browser session
// and a bearer token that the resource server has already introspected and cached both stop
// working on their very next request, through the real middlewares.
func TestDeactivationCutsAccess(t *testing.T) {
	t.Parallel()
	site := newSite(t)
	e := newRSEnv(t, auth.BackendJSON)
	user, sub := e.user(t)
	staff := storetest.User(t, site.s, *user.OrganizationID, storetest.Staff())

	cookie := site.login(user, nil, "")
	site.mustBeUser(cookie, user)
	token := e.as.Mint(oidctest.Token{Subject: sub, ClientID: "docs-" + storetest.Unique()})
	if got := e.me(t, token); got != user.ID.String() { // introspected, now cached
		t.Fatalf("me with the token = %s, want %s", got, user.ID)
	}
	introspections := e.as.Introspections()

	staffCookie := site.login(staff, nil, "")
	a := site.post(fmt.Sprintf(`mutation { adminUpdateUser(input: {id: %q, isActive: false}) { user { isActive } } }`, user.ID), staffCookie)
	if a.status != http.StatusOK || a.code() != "" {
		t.Fatalf("adminUpdateUser: status %d, errors %+v", a.status, a.Errors)
	}

	site.mustBeRefused(cookie)
	if a := e.do(t, "Bearer "+token, `{ me { id } }`, nil); a.status != http.StatusUnauthorized || a.code() != "UNAUTHENTICATED" {
		t.Errorf("the deactivated user's cached token: status %d, code %q; want 401 UNAUTHENTICATED", a.status, a.code())
	}
	if n := e.as.Introspections(); n != introspections {
		t.Errorf("the token was introspected again (%d times, before %d): the refusal must not wait for the cache", n, introspections)
	}
	n, err := site.s.DB().NewSelect().TableExpr("sessions").Where("user_id = ?", user.ID).Count(context.Background())
	if err != nil || n != 0 {
		t.Errorf("sessions of the deactivated user: %d (%v), want none: reactivating must not revive them", n, err)
	}
	// The staff user's own session is untouched.
	site.mustBeUser(staffCookie, staff)
}
