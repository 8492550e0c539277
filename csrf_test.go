package main

import (
	"net/http"
	"strings"
	"testing"

	"lasuite.fr/people/store/storetest"
)

// TestCrossSiteGETSpendsNoBudget: cookie-authenticated GETs that another site makes the
// browser send are refused before the rate limit counts them, so a page cannot lock its
// visitors out of the API: the user's own requests still have their whole burst.
func TestCrossSiteGETSpendsNoBudget(t *testing.T) {
	_, vars := jsonBearerEnv(t)
	vars["BURST_THROTTLE_RATES"] = "3/minute"
	srv, _ := bearerServer(t, vars)
	s := storetest.Open(t)
	u := storetest.User(t, s, storetest.Organization(t, s))
	cookie := sessionCookie(t, s, u)
	for i := range 20 {
		for _, site := range []string{"cross-site", "same-site"} {
			st, _, body := queryWith(t, srv.URL, cookie, "", `{ me { id } }`, map[string]string{"Sec-Fetch-Site": site})
			if st != http.StatusForbidden || !strings.Contains(body, `"code":"FORBIDDEN"`) || strings.Contains(body, u.ID.String()) {
				t.Fatalf("%s GET %d: %d %s, want 403 FORBIDDEN", site, i+1, st, body)
			}
		}
	}
	same := map[string]string{"Sec-Fetch-Site": "same-origin"}
	for i := range 3 {
		if st, _, body := queryWith(t, srv.URL, cookie, "", `{ me { id } }`, same); st != http.StatusOK || !strings.Contains(body, u.ID.String()) {
			t.Fatalf("same-origin request %d after the cross-site ones: %d %s, want 200", i+1, st, body)
		}
	}
	st, h, body := queryWith(t, srv.URL, cookie, "", `{ me { id } }`, same)
	wantRefusal(t, "the 4th same-origin request", st, h, body, 1, 20)
}
