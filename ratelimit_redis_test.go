package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"lasuite.fr/people/auth/oidctest"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// testRedisURL is the Redis server of make test (.ci/rediscluster). Tests that need one fail
// without it, rather than skip, as those that need PostgreSQL do.
func testRedisURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("TEST_REDIS_URL")
	if u == "" {
		tb.Fatal("TEST_REDIS_URL is not set: run make test, or start a Redis server with " +
			"`export TEST_REDIS_URL=$(.ci/rediscluster start /tmp/people-redis)` and run the tests again")
	}
	return u
}

// randomNetwork is an IPv6 address of a /64 of its own (the documentation prefix), for the
// anonymous and introspection limits, which count per /64: a test that names its client by it
// shares no bucket with another test or an earlier run against the same Redis.
func randomNetwork() string {
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("2001:db8:%x:%x::1", uint16(b[0])<<8|uint16(b[1]), uint16(b[2])<<8|uint16(b[3]))
}

// TestRateLimitsSharedAcrossInstances: two instances on one database and one Redis count one
// caller's requests in the same buckets, whichever instance answers: a session's user, a
// partner's user, an anonymous address, and the introspection budget of an address.
func TestRateLimitsSharedAcrossInstances(t *testing.T) {
	as, vars := jsonBearerEnv(t)
	vars["REDIS_URL"] = testRedisURL(t)
	vars["BURST_THROTTLE_RATES"] = "3/minute"
	vars["SUSTAINED_THROTTLE_RATES"] = "off"
	vars["ANON_THROTTLE_RATES"] = "2/minute"
	vars["INTROSPECTION_RATE_LIMIT"] = "3/hour"
	vars["TRUSTED_PROXIES"] = "127.0.0.1"
	a, _ := bearerServer(t, vars)
	b, _ := bearerServer(t, vars)
	s := storetest.Open(t)
	org := storetest.Organization(t, s)

	alice := storetest.User(t, s, org)
	cookie := sessionCookie(t, s, alice)
	for i, srv := range []string{a.URL, b.URL, a.URL} {
		if st, _, body := query(t, srv, cookie, "", `{ me { id } }`); st != http.StatusOK {
			t.Fatalf("alice's request %d: %d %s", i+1, st, body)
		}
	}
	st, h, body := query(t, b.URL, cookie, "", `{ me { id } }`)
	wantRefusal(t, "alice's 4th request, the 2nd on instance b", st, h, body, 1, 20)

	// One token, from an address of this test's own: each instance introspects it once,
	// spending that address's introspection budget, which counts across instances too.
	bob := storetest.User(t, s, org)
	bearerIdentity(t, s, as, bob)
	partner := map[string]string{"X-Forwarded-For": randomNetwork()}
	tok := as.Mint(oidctest.Token{Subject: bob.Sub, ClientID: "docs"})
	for i, srv := range []string{b.URL, a.URL, b.URL} {
		if st, _, body := queryWith(t, srv, nil, "Bearer "+tok, `{ me { id } }`, partner); st != http.StatusOK {
			t.Fatalf("docs for bob, request %d: %d %s", i+1, st, body)
		}
	}
	st, h, body = queryWith(t, a.URL, nil, "Bearer "+tok, `{ me { id } }`, partner)
	wantRefusal(t, "docs' 4th request for bob, the 2nd on instance a", st, h, body, 1, 20)

	anon := map[string]string{"X-Forwarded-For": randomNetwork()}
	for i, srv := range []string{a.URL, b.URL} {
		if st, _, body := queryWith(t, srv, nil, "", `{ config { release } }`, anon); st != http.StatusOK {
			t.Fatalf("anonymous request %d: %d %s", i+1, st, body)
		}
	}
	st, h, body = queryWith(t, a.URL, nil, "", `{ config { release } }`, anon)
	wantRefusal(t, "3rd anonymous request from one address, the 2nd on instance a", st, h, body, 1, 30)

	flood := map[string]string{"X-Forwarded-For": randomNetwork()}
	before := as.Introspections()
	for i, srv := range []string{a.URL, b.URL, a.URL} {
		if st, _, body := queryWith(t, srv, nil, "Bearer made-up-"+storetest.Unique(), `{ me { id } }`, flood); st != http.StatusUnauthorized {
			t.Fatalf("made-up token %d: %d %s, want 401", i+1, st, body)
		}
	}
	st, h, body = queryWith(t, b.URL, nil, "Bearer made-up-"+storetest.Unique(), `{ me { id } }`, flood)
	wantRefusal(t, "4th made-up token from one address, the 2nd on instance b", st, h, body, 1, 3600)
	if n := as.Introspections() - before; n != 3 {
		t.Errorf("%d introspections for 4 made-up tokens, want 3 (INTROSPECTION_RATE_LIMIT)", n)
	}
}

// redisServer is a redis-server of the test's own, which it may kill and start again on the
// same port; it is killed when the test ends.
type redisServer struct {
	tb      testing.TB
	bin     string
	port    int
	dir     string
	cmd     *exec.Cmd
	exited  chan struct{}
	logSeen *readyWriter
}

func newRedisServer(tb testing.TB) *redisServer {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatal("redis-server is not installed: make test installs Debian's redis-server package (.ci/rediscluster), or run apt-get install redis-server")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &redisServer{tb: tb, bin: bin, port: port, dir: tb.TempDir()}
	tb.Cleanup(r.kill)
	r.start()
	return r
}

func (r *redisServer) url() string { return "redis://127.0.0.1:" + strconv.Itoa(r.port) + "/0" }

// start runs redis-server, without persistence, and returns once it accepts connections.
func (r *redisServer) start() {
	r.tb.Helper()
	r.logSeen = &readyWriter{ready: make(chan struct{})}
	r.cmd = exec.Command(r.bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(r.port), "--save", "", "--appendonly", "no", "--dir", r.dir)
	r.cmd.Stdout, r.cmd.Stderr = r.logSeen, r.logSeen
	if err := r.cmd.Start(); err != nil {
		r.tb.Fatalf("start redis-server: %v", err)
	}
	r.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { cmd.Wait(); close(exited) }(r.cmd, r.exited)
	select {
	case <-r.logSeen.ready:
	case <-r.exited:
		r.tb.Fatalf("redis-server exited:\n%s", r.logSeen.String())
	case <-time.After(30 * time.Second):
		r.tb.Fatalf("redis-server not ready after 30s:\n%s", r.logSeen.String())
	}
}

// kill stops the server at once, as a crash would.
func (r *redisServer) kill() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	<-r.exited
	r.cmd = nil
}

// readyWriter keeps redis-server's output and closes ready once it says it accepts connections.
type readyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan struct{}
	seen  bool
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.seen && strings.Contains(w.buf.String(), "Ready to accept connections") {
		w.seen = true
		close(w.ready)
	}
	return len(p), nil
}

func (w *readyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// metricValue reads an unlabelled series from srv's /metrics (a loopback peer may read them).
func metricValue(t *testing.T, srv, name string) float64 {
	t.Helper()
	resp, err := http.Get(srv + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no %s in /metrics:\n%s", name, b)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRateLimitsRedisDown: when Redis dies, the instances keep serving, each limiting in its own
// memory, say so once in their logs and count it in /metrics; when Redis is back on the same
// address, they share the buckets again.
func TestRateLimitsRedisDown(t *testing.T) {
	r := newRedisServer(t)
	_, vars := jsonBearerEnv(t)
	vars["REDIS_URL"] = r.url()
	vars["BURST_THROTTLE_RATES"] = "3/minute"
	vars["SUSTAINED_THROTTLE_RATES"] = "off"
	a, logsA := bearerServer(t, vars)
	b, _ := bearerServer(t, vars)
	s := storetest.Open(t)
	org := storetest.Organization(t, s)
	me := func(srv string, u store.User) (int, http.Header, string) {
		return query(t, srv, sessionCookie(t, s, u), "", `{ me { id } }`)
	}
	shared := func(what string) {
		t.Helper()
		u := storetest.User(t, s, org)
		for i, srv := range []string{a.URL, b.URL, a.URL} {
			if st, _, body := me(srv, u); st != http.StatusOK {
				t.Fatalf("%s: request %d: %d %s", what, i+1, st, body)
			}
		}
		st, h, body := me(b.URL, u)
		wantRefusal(t, what+": 4th request, the 2nd on instance b", st, h, body, 1, 20)
	}
	shared("before redis dies")

	r.kill()
	u := storetest.User(t, s, org)
	for i := range 3 {
		if st, _, body := me(a.URL, u); st != http.StatusOK {
			t.Fatalf("request %d on a with redis down: %d %s, want 200", i+1, st, body)
		}
	}
	st, h, body := me(a.URL, u)
	wantRefusal(t, "4th request on a with redis down: a's own memory still limits", st, h, body, 1, 20)
	if st, _, body := me(b.URL, u); st != http.StatusOK {
		t.Errorf("the same user on b with redis down: %d %s, want 200: each instance limits on its own", st, body)
	}
	if n := metricValue(t, a.URL, "people_rate_limit_redis_fallbacks_total"); n < 4 {
		t.Errorf("people_rate_limit_redis_fallbacks_total = %v after 4 decisions in memory, want at least 4", n)
	}
	if n := strings.Count(logsA.String(), "rate limits kept in memory: redis unreachable"); n != 1 {
		t.Errorf("%d log lines about redis on a, want 1 (at most one a minute):\n%s", n, logsA)
	}

	r.start()
	// Each instance tries Redis again a second after its last failure, and decides in memory
	// until then: wait until a request on each writes its bucket in Redis.
	check := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(r.port)})
	defer check.Close()
	for _, srv := range []string{a.URL, b.URL} {
		v := storetest.User(t, s, org)
		key := "rate:people:burst:user:" + v.ID.String() // the buckets' prefix (ratelimit.redisKey), the rule and the caller
		for deadline := time.Now().Add(20 * time.Second); ; {
			me(srv, v)
			if n, err := check.Exists(context.Background(), key).Result(); err == nil && n == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not use redis again within 20s", srv)
			}
			time.Sleep(100 * time.Millisecond) // Redis is retried on a timer: nothing to wait on
		}
	}
	if !strings.Contains(logsA.String(), "rate limits shared through redis again") {
		t.Errorf("no log line saying redis is used again:\n%s", logsA)
	}
	shared("once redis is back")
}
