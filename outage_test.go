package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"lasuite.fr/people/auth/oidctest"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// privateCluster starts a PostgreSQL cluster of the test's own (.ci/pgcluster, in a temporary
// directory), which the test may stop and start, and destroys it when the test ends. It
// returns the cluster's directory and its database URL.
func privateCluster(t *testing.T) (dir, dbURL string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "pg")
	t.Cleanup(func() { pgcluster(t, "destroy", dir) })
	return dir, strings.TrimSpace(pgcluster(t, "start", dir, "--ephemeral"))
}

// pgcluster runs .ci/pgcluster with args and returns its standard output.
func pgcluster(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(".ci", "pgcluster"), args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pgcluster %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

const createTeam = `mutation { createTeam(input: {name: "Outage"}) { team { id } } }`

// postMutationAs sends a mutation as a partner service does, with an Authorization header.
func postMutationAs(base, authz, mutation string) gqlResult {
	b, _ := json.Marshal(map[string]string{"query": mutation})
	req, err := http.NewRequest(http.MethodPost, base+"/graphql", strings.NewReader(string(b)))
	if err != nil {
		return gqlResult{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", authz)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return gqlResult{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return gqlResult{status: resp.StatusCode, header: resp.Header, body: string(body), err: err}
}

// outageAnswer is what a client needs to know of an answer: its status, Retry-After and codes.
type outageAnswer struct {
	status     int
	retryAfter string
	codes      []string
	err        error
}

func (a outageAnswer) ok() bool {
	return a.err == nil && a.status == http.StatusOK && len(a.codes) == 0
}

// retryable is the answer the whole outage must get: 503, Retry-After, UNAVAILABLE only.
func (a outageAnswer) retryable() bool {
	if a.err != nil || a.status != http.StatusServiceUnavailable || a.retryAfter == "" || len(a.codes) == 0 {
		return false
	}
	for _, c := range a.codes {
		if c != "UNAVAILABLE" {
			return false
		}
	}
	return true
}

func answerOf(r gqlResult) outageAnswer {
	a := outageAnswer{status: r.status, retryAfter: r.header.Get("Retry-After"), err: r.err}
	var body struct {
		Errors []struct{ Extensions map[string]any }
	}
	json.Unmarshal([]byte(r.body), &body)
	for _, e := range body.Errors {
		c, _ := e.Extensions["code"].(string)
		a.codes = append(a.codes, c)
	}
	return a
}

// TestDatabaseOutageIsRetryable stops PostgreSQL under a load of mutations, from browser
// sessions and from a partner's bearer token: every answer that fails, from the moment the
// database goes until the end of the outage, is 503 UNAVAILABLE with Retry-After (never
// INTERNAL), whichever step met the outage (the session's lookup, the bearer user's check, or
// the resolver's statements); once the database is back, the same mutation succeeds again.
// The cluster is the test's own: the shared one keeps running.
func TestDatabaseOutageIsRetryable(t *testing.T) {
	dir, dbURL := privateCluster(t)
	// Without the credential cache every request reads its session: the outage meets both the
	// session middleware and the resolvers.
	for _, cacheTTL := range []string{"0", "2m"} {
		t.Run("SESSION_CACHE_TTL="+cacheTTL, func(t *testing.T) {
			as, vars := jsonBearerEnv(t)
			delete(vars, "DATABASE_URL")
			vars["SESSION_CACHE_TTL"], vars["BURST_THROTTLE_RATES"], vars["SUSTAINED_THROTTLE_RATES"] = cacheTTL, "off", "off"
			base, _, stop := runServerOn(t, dbURL, "people_outage_"+storetest.Unique(), vars)
			s, err := store.Open(t.Context(), dbURL, store.Options{MaxConns: 2})
			if err != nil {
				t.Fatal(err)
			}
			u := storetest.User(t, s, storetest.Organization(t, s))
			cookie := sessionCookie(t, s, u)
			storetest.MustExec(t, s.DB(), "INSERT INTO user_identities (user_id, issuer, subject) VALUES (?, ?, ?)", u.ID, as.URL, u.Sub)
			storetest.MustExec(t, s.DB(), "INSERT INTO service_providers (name, audience_id) VALUES (?, 'docs') ON CONFLICT DO NOTHING", "Docs")
			s.Close()
			bearer := "Bearer " + as.Mint(oidctest.Token{Subject: u.Sub, ClientID: "docs"})

			const workers = 6
			results := make(chan outageAnswer)
			quit := make(chan struct{})
			var wg sync.WaitGroup
			for i := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tz := []string{"Europe/Paris", "UTC"}[i%2]
					m := `mutation { updateMe(input: {timezone: "` + tz + `"}) { user { timezone } } }`
					for {
						var a outageAnswer
						if i%3 == 2 { // a partner's calls (updateMe is for sessions only)
							a = answerOf(postMutationAs(base, bearer, createTeam))
						} else {
							a = answerOf(postMutation(base, cookie, m))
						}
						select {
						case results <- a:
						case <-quit:
							return
						}
					}
				}()
			}
			stopLoad := sync.OnceFunc(func() { close(quit); wg.Wait() })
			defer stopLoad()

			// Before: the load runs. Then PostgreSQL stops (fast: sessions are terminated,
			// 57P01) while the load goes on, and the answers are read until every worker has
			// had several after the stop returned.
			var before, during, after int
			stopped := make(chan struct{})
			stopping := false
			deadline := time.After(2 * time.Minute)
			for after < 3*workers {
				select {
				case a := <-results:
					switch {
					case !stopping && a.ok():
						if before++; before == 2*workers {
							stopping = true
							go func() { defer close(stopped); pgcluster(t, "stop", dir) }()
						}
						continue
					case !stopping:
						t.Fatalf("an answer before the outage: %+v", a)
					case !a.ok() && !a.retryable():
						t.Errorf("an answer during the outage: %d, Retry-After %q, codes %v, error %v; want 503 UNAVAILABLE with Retry-After",
							a.status, a.retryAfter, a.codes, a.err)
					}
					if stopped == nil {
						after++
					} else {
						during++
					}
				case <-stopped:
					stopped = nil // the database is down from here on: count what follows
				case <-deadline:
					t.Fatalf("the load stalled: %d answers before the outage, %d while it stopped, %d after", before, during, after)
				}
			}
			stopLoad()
			t.Logf("%d answers before the outage, %d while PostgreSQL stopped, %d once it was down", before, during, after)

			// Back: the server recovers on its own, without a restart.
			pgcluster(t, "start", dir)
			for _, send := range []func() gqlResult{
				func() gqlResult { return postMutation(base, cookie, updateTimezone) },
				func() gqlResult { return postMutationAs(base, bearer, createTeam) },
			} {
				var last gqlResult
				for range 20 {
					if last = send(); answerOf(last).ok() {
						break
					}
				}
				if !answerOf(last).ok() {
					t.Errorf("once the database is back: %d %v %s", last.status, last.err, last.body)
				}
			}
			if err := stop(); err != nil {
				t.Errorf("run() after the outage = %v", err)
			}
		})
	}
}
