package main

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"lasuite.fr/people/auth/oidctest"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want rate
		ok   bool
	}{
		{"20/minute", rate{20, time.Minute}, true},
		{"150/hour", rate{150, time.Hour}, true},
		{"5/s", rate{5, time.Second}, true},
		{" 3 / day ", rate{3, 24 * time.Hour}, true},
		{"1000000000/second", rate{1_000_000_000, time.Second}, true},
		{"off", rate{}, true},
		{"None", rate{}, true},
		{"0/minute", rate{}, false},
		{"20/fortnight", rate{}, false},
		{"20", rate{}, false},
		{"many/minute", rate{}, false},
	}
	for _, tt := range tests {
		got, err := parseRate(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseRate(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// TestRateLimits runs People's throttles through the whole server: per user for a session,
// per service and user for a bearer token, once per operation, only on throttled data, with 429 and
// Retry-After; and the per-address limit on anonymous requests, behind a trusted proxy too.
func TestRateLimits(t *testing.T) {
	as, vars := jsonBearerEnv(t)
	vars["BURST_THROTTLE_RATES"] = "3/minute"
	vars["SUSTAINED_THROTTLE_RATES"] = "100/hour"
	vars["ANON_THROTTLE_RATES"] = "2/minute"
	vars["TRUSTED_PROXIES"] = "127.0.0.1"
	srv, _ := bearerServer(t, vars)
	s := storetest.Open(t)
	org := storetest.Organization(t, s)
	alice, bob := storetest.User(t, s, org), storetest.User(t, s, org)
	aliceCookie, bobCookie := sessionCookie(t, s, alice), sessionCookie(t, s, bob)

	// Three fields of throttled data cost one request; config is not throttled.
	for i := range 3 {
		if st, _, body := query(t, srv.URL, aliceCookie, "", `{ me { id } users(search: "x") { totalCount } contacts { totalCount } }`); st != http.StatusOK || strings.Contains(body, "errors") {
			t.Fatalf("alice's request %d: %d %s", i+1, st, body)
		}
	}
	if st, _, body := query(t, srv.URL, aliceCookie, "", `{ config { release } }`); st != http.StatusOK {
		t.Errorf("config after the burst: %d %s, want 200: it is not throttled", st, body)
	}
	st, h, body := query(t, srv.URL, aliceCookie, "", `{ me { id } }`)
	wantRefusal(t, "alice's 4th request", st, h, body, 1, 20)
	if st, _, body := query(t, srv.URL, bobCookie, "", `{ me { id } }`); st != http.StatusOK {
		t.Errorf("bob after alice's burst: %d %s, want 200: limits are per user", st, body)
	}

	// Bearer tokens count per service and user, as People throttles: one busy user of a
	// service does not block the others, nor the same user's calls through another service.
	carol := storetest.User(t, s, org)
	for _, u := range []store.User{alice, bob, carol} {
		bearerIdentity(t, s, as, u)
	}
	for i := range 3 {
		tok := as.Mint(oidctest.Token{Subject: carol.Sub, ClientID: "docs"})
		if st, _, body := query(t, srv.URL, nil, "Bearer "+tok, `{ me { id } }`); st != http.StatusOK {
			t.Fatalf("docs for carol, request %d: %d %s", i+1, st, body)
		}
	}
	st, h, body = query(t, srv.URL, nil, "Bearer "+as.Mint(oidctest.Token{Subject: carol.Sub, ClientID: "docs"}), `{ me { id } }`)
	wantRefusal(t, "docs' 4th request for carol", st, h, body, 1, 20)
	for _, c := range []struct{ sub, sp string }{{bob.Sub, "docs"}, {carol.Sub, "meet"}} {
		tok := as.Mint(oidctest.Token{Subject: c.sub, ClientID: c.sp})
		if st, _, body := query(t, srv.URL, nil, "Bearer "+tok, `{ me { id } }`); st != http.StatusOK {
			t.Errorf("%s for %s after carol's burst through docs: %d %s, want 200: limits are per service and user", c.sp, c.sub, st, body)
		}
	}

	// Anonymous requests: 2 a minute per client address; a trusted proxy names the client.
	for i := range 2 {
		if st, _, body := query(t, srv.URL, nil, "", `{ config { release } }`); st != http.StatusOK {
			t.Fatalf("anonymous request %d: %d %s", i+1, st, body)
		}
	}
	st, h, body = query(t, srv.URL, nil, "", `{ config { release } }`)
	wantRefusal(t, "3rd anonymous request", st, h, body, 1, 30)
	fwd := map[string]string{"X-Forwarded-For": "198.51.100.9"}
	if st, _, body := queryWith(t, srv.URL, nil, "", `{ config { release } }`, fwd); st != http.StatusOK {
		t.Errorf("another client behind the trusted proxy: %d %s, want 200", st, body)
	}
	if st, _, body := query(t, srv.URL, aliceCookie, "", `{ config { release } }`); st != http.StatusOK {
		t.Errorf("alice from the same address: %d %s, want 200: the anonymous limit is for anonymous requests", st, body)
	}
}

// TestSustainedRateLimit: with a generous burst, the hourly bucket refuses.
func TestSustainedRateLimit(t *testing.T) {
	_, vars := jsonBearerEnv(t)
	vars["BURST_THROTTLE_RATES"] = "100/minute"
	vars["SUSTAINED_THROTTLE_RATES"] = "2/hour"
	srv, logs := bearerServer(t, vars)
	s := storetest.Open(t)
	u := storetest.User(t, s, storetest.Organization(t, s))
	c := sessionCookie(t, s, u)
	for i := range 2 {
		if st, _, body := query(t, srv.URL, c, "", `{ me { id } }`); st != http.StatusOK {
			t.Fatalf("request %d: %d %s", i+1, st, body)
		}
	}
	st, h, body := query(t, srv.URL, c, "", `{ me { id } }`)
	wantRefusal(t, "3rd request", st, h, body, 29*60, 30*60) // 2 an hour: a token every 30 minutes
	if !strings.Contains(logs.String(), `"limit":"sustained"`) {
		t.Errorf("no warning naming the sustained limit in the logs:\n%s", logs)
	}
}

// TestServiceThrottle: SERVICE_THROTTLE_RATES caps a partner service, all its users together,
// on top of each user's own limits; its refusal spends none of the user's tokens.
func TestServiceThrottle(t *testing.T) {
	as, vars := jsonBearerEnv(t)
	vars["BURST_THROTTLE_RATES"] = "3/minute"
	vars["SUSTAINED_THROTTLE_RATES"] = "off"
	vars["SERVICE_THROTTLE_RATES"] = "4/minute"
	srv, logs := bearerServer(t, vars)
	s := storetest.Open(t)
	org := storetest.Organization(t, s)
	alice, bob := storetest.User(t, s, org), storetest.User(t, s, org)
	bearerIdentity(t, s, as, alice)
	bearerIdentity(t, s, as, bob)
	call := func(u store.User, sp string) (int, http.Header, string) {
		return query(t, srv.URL, nil, "Bearer "+as.Mint(oidctest.Token{Subject: u.Sub, ClientID: sp}), `{ me { id } }`)
	}
	for i, u := range []store.User{alice, alice, bob, bob} {
		if st, _, body := call(u, "docs"); st != http.StatusOK {
			t.Fatalf("docs' request %d: %d %s", i+1, st, body)
		}
	}
	st, h, body := call(bob, "docs")
	wantRefusal(t, "docs' 5th request (bob's 3rd)", st, h, body, 1, 15)
	if !strings.Contains(logs.String(), `"limit":"service"`) {
		t.Errorf("no warning naming the service limit in the logs:\n%s", logs)
	}
	if st, _, body := call(bob, "meet"); st != http.StatusOK {
		t.Errorf("meet for bob: %d %s, want 200: the ceiling is per service", st, body)
	}
	// bob's 3rd request through docs was refused by the service: it left him his 3rd token,
	// which meet's request, counted per service and user, did not touch.
	if st, _, body := call(bob, "meet"); st != http.StatusOK {
		t.Errorf("meet for bob, 2nd: %d %s, want 200", st, body)
	}
}

// TestIntrospectionFlood: 10,000 made-up tokens from one address cost at most
// INTROSPECTION_RATE_LIMIT calls at the authorization server, the rest getting 429 before any
// call; meanwhile a partner whose token is cached is served with no more introspections.
func TestIntrospectionFlood(t *testing.T) {
	as, vars := jsonBearerEnv(t)
	vars["INTROSPECTION_RATE_LIMIT"] = "60/day" // the default is 60/minute: a long period, so that none refills during the test
	vars["BURST_THROTTLE_RATES"] = "off"
	vars["TRUSTED_PROXIES"] = "127.0.0.1"
	srv, _ := bearerServer(t, vars)
	s := storetest.Open(t)
	partner := storetest.User(t, s, storetest.Organization(t, s))
	bearerIdentity(t, s, as, partner)
	tok := as.Mint(oidctest.Token{Subject: partner.Sub, ClientID: "docs"})
	if st, _, body := query(t, srv.URL, nil, "Bearer "+tok, `{ me { id } }`); st != http.StatusOK {
		t.Fatalf("partner before the flood: %d %s", st, body)
	}

	const flood, workers = 10_000, 8
	tokens := make(chan string)
	var limited, other atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			for tok := range tokens {
				req, _ := http.NewRequest(http.MethodGet, srv.URL+"/graphql?query=%7Bme%7Bid%7D%7D", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(req)
				if err != nil {
					other.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "":
					limited.Add(1)
				case resp.StatusCode != http.StatusUnauthorized: // a made-up token that was introspected
					other.Add(1)
				}
			}
		})
	}
	progress := make(chan int, flood/1000)
	go func() {
		defer close(tokens)
		defer close(progress)
		for i := range flood {
			tokens <- fmt.Sprintf("made-up-%d-%s", i, storetest.Unique())
			if i%1000 == 500 {
				progress <- i
			}
		}
	}()
	for range progress { // the partner calls during the flood
		if st, _, body := query(t, srv.URL, nil, "Bearer "+tok, `{ me { id } }`); st != http.StatusOK {
			t.Errorf("partner during the flood: %d %s, want 200", st, body)
		}
	}
	wg.Wait()

	// The partner's token, from the same address, spent one call of the budget; the first 59
	// made-up tokens the rest (8 at a time: fewer than INTROSPECTION_MAX_CONCURRENCY). One
	// partner call that missed the cache would make 61.
	if calls := as.Introspections(); calls != 60 {
		t.Errorf("%d introspections for the partner's token and %d made-up ones, want 60 (INTROSPECTION_RATE_LIMIT)", calls, flood)
	}
	if limited.Load() != flood-59 || other.Load() != 0 {
		t.Errorf("%d answered 429 with Retry-After, %d neither 401 nor 429; want %d and 0", limited.Load(), other.Load(), flood-59)
	}
	st, h, body := query(t, srv.URL, nil, "Bearer made-up-"+storetest.Unique(), `{ me { id } }`)
	wantRefusal(t, "one more made-up token", st, h, body, 1, 24*3600)
	// The budget is the client's, named as the other limits name it: another client behind
	// the trusted proxy has its own.
	fwd := map[string]string{"X-Forwarded-For": "198.51.100.7"}
	if st, _, body := queryWith(t, srv.URL, nil, "Bearer made-up-"+storetest.Unique(), `{ me { id } }`, fwd); st != http.StatusUnauthorized {
		t.Errorf("a made-up token from another client behind the proxy: %d %s, want 401", st, body)
	}
	if calls := as.Introspections(); calls != 61 {
		t.Errorf("%d introspections, want 61", calls)
	}
}

// wantRefusal checks a 429 with Retry-After in [lo, hi] and a RATE_LIMITED error.
func wantRefusal(t *testing.T, what string, status int, h http.Header, body string, lo, hi int) {
	t.Helper()
	ra, err := strconv.Atoi(h.Get("Retry-After"))
	if status != http.StatusTooManyRequests || err != nil || ra < lo || ra > hi || !strings.Contains(body, `"code":"RATE_LIMITED"`) {
		t.Errorf("%s: %d, Retry-After %q, body %s; want 429, Retry-After in [%d, %d], RATE_LIMITED", what, status, h.Get("Retry-After"), body, lo, hi)
	}
	if strings.Contains(body, `"data"`) {
		t.Errorf("%s: the refusal has data: %s", what, body)
	}
}
