package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// runServer runs the whole program as main does, on the package's test database under the
// application_name app (so that a test can find the server's connections in pg_stat_activity).
// stop cancels run's context, as main's signal.NotifyContext does on SIGTERM, and returns
// what run returned.
func runServer(t *testing.T, app string, extra map[string]string) (base string, logs *lockedBuffer, stop func() error) {
	t.Helper()
	return runServerOn(t, storetest.URL(t), app, extra)
}

// runServerOn is runServer on the database at dbURL.
func runServerOn(t *testing.T, dbURL, app string, extra map[string]string) (base string, logs *lockedBuffer, stop func() error) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	vars := map[string]string{"DATABASE_URL": u.String(), "LISTEN_ADDR": "127.0.0.1:0", "SHUTDOWN_TIMEOUT": "20s"}
	for k, v := range extra {
		vars[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	logs = new(lockedBuffer)
	go func() { done <- run(ctx, nil, env(vars), logs, ready) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { stop() })
	select {
	case addr := <-ready:
		return "http://" + addr, logs, stop
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start within 30s")
	}
	return "", nil, nil
}

// gqlResult is an answer to postMutation.
type gqlResult struct {
	status int
	header http.Header
	body   string
	err    error
}

// postMutation sends a browser's mutation: session cookie, JSON, and the server's own Origin.
func postMutation(base string, cookie *http.Cookie, mutation string) gqlResult {
	b, _ := json.Marshal(map[string]string{"query": mutation})
	req, err := http.NewRequest(http.MethodPost, base+"/graphql", strings.NewReader(string(b)))
	if err != nil {
		return gqlResult{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "http://localhost:8071") // PUBLIC_URL's default
	req.AddCookie(cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return gqlResult{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return gqlResult{status: resp.StatusCode, header: resp.Header, body: string(body), err: err}
}

// blockUser holds u's row locked until the returned function releases it (commit true) or
// rolls back: the server's updates of that row wait for it, which makes a slow request with no
// hook inside the server.
func blockUser(t *testing.T, s *store.Store, id uuid.UUID) func() {
	t.Helper()
	tx, err := s.DB().BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(t.Context(), "SELECT 1 FROM users WHERE id = ? FOR UPDATE", id); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() { once.Do(func() { tx.Rollback() }) }
	t.Cleanup(release)
	return release
}

// waitForLockWait waits until one of app's connections waits for a lock.
func waitForLockWait(t *testing.T, s *store.Store, app string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		if err := s.DB().QueryRowContext(t.Context(),
			"SELECT count(*) FROM pg_stat_activity WHERE application_name = ? AND wait_event_type = 'Lock'", app).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the request never waited for the lock")
}

const updateTimezone = `mutation { updateMe(input: {timezone: "Europe/Paris"}) { user { timezone } } }`

// TestShutdownFinishesSlowRequest: on SIGTERM the server stops accepting connections at once,
// lets the request in flight finish with its real answer, and then run returns cleanly.
func TestShutdownFinishesSlowRequest(t *testing.T) {
	s := storetest.Open(t)
	app := "people_shutdown_" + storetest.Unique()
	base, _, stop := runServer(t, app, nil)
	u := storetest.User(t, s, storetest.Organization(t, s))
	cookie := sessionCookie(t, s, u)

	release := blockUser(t, s, u.ID)
	answered := make(chan gqlResult, 1)
	go func() { answered <- postMutation(base, cookie, updateTimezone) }()
	waitForLockWait(t, s, app)

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }() // SIGTERM
	addr := strings.TrimPrefix(base, "http://")
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break // no longer accepting
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still accepts connections 10s after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case r := <-answered:
		t.Fatalf("the request was answered before its lock was released: %+v", r)
	case err := <-stopped:
		t.Fatalf("run returned with a request in flight: %v", err)
	case <-time.After(200 * time.Millisecond):
	}

	release()
	r := <-answered
	if r.err != nil || r.status != http.StatusOK || !strings.Contains(r.body, `"timezone":"Europe/Paris"`) {
		t.Errorf("the slow request after SIGTERM: %d %v %s; want 200 with its answer", r.status, r.err, r.body)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("run() after SIGTERM = %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after the last request finished")
	}
}

// TestDatabaseKilledMidRequest: the server's database connections are terminated while a
// request waits in a statement. That request gets a clean UNAVAILABLE error, 503 with
// Retry-After (with the request id, without PostgreSQL's words: 57P01, as in a shutdown), and
// the following requests succeed on new connections.
func TestDatabaseKilledMidRequest(t *testing.T) {
	s := storetest.Open(t)
	app := "people_kill_" + storetest.Unique()
	base, logs, _ := runServer(t, app, nil)
	u := storetest.User(t, s, storetest.Organization(t, s))
	cookie := sessionCookie(t, s, u)
	if r := postMutation(base, cookie, updateTimezone); r.status != http.StatusOK || strings.Contains(r.body, "errors") {
		t.Fatalf("before: %d %v %s", r.status, r.err, r.body)
	}

	release := blockUser(t, s, u.ID)
	answered := make(chan gqlResult, 1)
	go func() { answered <- postMutation(base, cookie, updateTimezone) }()
	waitForLockWait(t, s, app)
	var killed int
	if err := s.DB().QueryRowContext(t.Context(),
		"SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ?) k", app).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed == 0 {
		t.Fatal("no connection of the server to terminate")
	}
	r := <-answered
	release()
	var body struct {
		Data   map[string]any
		Errors []struct {
			Message    string
			Extensions map[string]any
		}
	}
	json.Unmarshal([]byte(r.body), &body)
	if r.err != nil || r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || len(body.Errors) != 1 ||
		body.Errors[0].Extensions["code"] != "UNAVAILABLE" || body.Errors[0].Extensions["requestId"] != r.header.Get("X-Request-Id") {
		t.Errorf("the request whose connection died: %d %v %s; want 503 UNAVAILABLE with Retry-After and the request id", r.status, r.err, r.body)
	}
	for _, leak := range []string{"terminat", "SQLSTATE", "57P01", "users", "conn"} {
		if strings.Contains(strings.ToLower(r.body), strings.ToLower(leak)) {
			t.Errorf("the error tells the client %q: %s", leak, r.body)
		}
	}
	if !strings.Contains(logs.String(), r.header.Get("X-Request-Id")) {
		t.Error("the failure is not logged under the request id")
	}

	// Right away, without waiting for the pool to notice: each dead pooled connection may fail
	// the request that draws it, once (it is then discarded; database/sql also pings one idle
	// for over a second), and such a failure is the same retryable 503 UNAVAILABLE, never
	// INTERNAL. Within a pool's worth of requests, every one succeeds.
	const poolSize = 20 // DATABASE_MAX_CONNS's default, which runServer keeps
	recovered := false
	for i := range poolSize + 1 {
		r := postMutation(base, cookie, `mutation { updateMe(input: {timezone: "UTC"}) { user { timezone } } }`)
		if r.status == http.StatusOK && strings.Contains(r.body, `"timezone":"UTC"`) {
			recovered = true
			break
		}
		if r.err != nil || r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, `"UNAVAILABLE"`) {
			t.Fatalf("request %d right after the connections died: %d %v %s; want 200, or 503 UNAVAILABLE", i+1, r.status, r.err, r.body)
		}
	}
	if !recovered {
		t.Fatalf("no request succeeded within %d after the connections died", poolSize+1)
	}
	for i := range 3 {
		r := postMutation(base, cookie, `mutation { updateMe(input: {timezone: "UTC"}) { user { timezone } } }`)
		if r.status != http.StatusOK || !strings.Contains(r.body, `"timezone":"UTC"`) {
			t.Errorf("request %d after the database came back: %d %v %s", i+1, r.status, r.err, r.body)
		}
		st, _, body := query(t, base, cookie, "", `{ me { id } }`)
		if st != http.StatusOK || !strings.Contains(body, u.ID.String()) {
			t.Errorf("query %d after the database came back: %d %s", i+1, st, body)
		}
	}
}

// TestStatementTimeout: a statement that runs past DATABASE_STATEMENT_TIMEOUT (here, waiting
// for a lock) is stopped by PostgreSQL, and its request answers INTERNAL instead of hanging.
func TestStatementTimeout(t *testing.T) {
	s := storetest.Open(t)
	app := "people_timeout_" + storetest.Unique()
	base, _, _ := runServer(t, app, map[string]string{"DATABASE_STATEMENT_TIMEOUT": "1s"})
	u := storetest.User(t, s, storetest.Organization(t, s))
	cookie := sessionCookie(t, s, u)
	release := blockUser(t, s, u.ID)
	start := time.Now()
	r := postMutation(base, cookie, updateTimezone)
	took := time.Since(start)
	release()
	if r.err != nil || r.status != http.StatusOK || !strings.Contains(r.body, `"code":"INTERNAL"`) || strings.Contains(r.body, "statement timeout") {
		t.Errorf("a statement over the timeout: %d %v %s; want a plain INTERNAL", r.status, r.err, r.body)
	}
	if took < time.Second || took > 10*time.Second {
		t.Errorf("the request took %v, want about the statement timeout (1s)", took)
	}
	if r := postMutation(base, cookie, updateTimezone); r.status != http.StatusOK || !strings.Contains(r.body, `"timezone":"Europe/Paris"`) {
		t.Errorf("once the lock is gone: %d %v %s", r.status, r.err, r.body)
	}
}
