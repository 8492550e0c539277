package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"lasuite.fr/people/auth/devop"
	"lasuite.fr/people/migrations"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/demo"
	"lasuite.fr/people/store/storetest"
)

// pooledServer serves the whole program behind the test PgBouncer in transaction mode
// (DATABASE_POOLER=transaction), on a database of its own that was migrated and loaded with a
// small demo data set through the pooler too. listen is DATABASE_LISTEN_URL ("" for none; "direct"
// for the database itself, past the pooler).
type pooledServer struct {
	base, direct string
	logs         *lockedBuffer
}

func startPooledServer(t *testing.T, listen string) pooledServer {
	t.Helper()
	direct := storetest.EmptyDatabase(t)
	// What an operator does once: the pooler cannot pass DATABASE_STATEMENT_TIMEOUT (10s).
	storetest.SetDatabaseDefault(t, direct, "statement_timeout", "10s")
	pooled := storetest.PoolerURL(t, direct)
	addr := freeLoopbackAddr(t)
	base := "http://" + addr
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	s, err := store.Open(ctx, pooled, store.Options{Pooler: store.PoolerTransaction, StatementTimeout: 10 * time.Second, MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := migrations.Up(ctx, s.DB().DB); err != nil {
		t.Fatalf("migrate through the pooler: %v", err)
	}
	if _, err := demo.Load(ctx, s.DB(), demo.Options{Users: 10, Teams: -1, Contacts: -1, PublicContacts: -1,
		Issuer: base + devop.Path}); err != nil {
		t.Fatalf("demo data through the pooler: %v", err)
	}
	if listen == "direct" {
		listen = direct
	}
	vars := map[string]string{"DATABASE_URL": pooled, "DATABASE_POOLER": "transaction", "DATABASE_LISTEN_URL": listen,
		"DATABASE_MAX_CONNS": "16", "ENVIRONMENT": "development", "LISTEN_ADDR": addr, "PUBLIC_URL": base,
		"SHUTDOWN_TIMEOUT": "20s", "BURST_THROTTLE_RATES": "100000/minute", "SUSTAINED_THROTTLE_RATES": "1000000/hour"} // 20s: see startServer
	rctx, stop := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	logs := new(lockedBuffer)
	go func() { done <- run(rctx, nil, env(vars), logs, ready) }()
	select {
	case <-ready:
		t.Cleanup(func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("run() after shutdown = %v", err)
			}
		})
	case err := <-done:
		stop()
		t.Fatalf("server did not start behind the pooler: %v\n%s", err, logs)
	case <-time.After(30 * time.Second):
		stop()
		t.Fatal("server did not start within 30s")
	}
	return pooledServer{base: base, direct: direct, logs: logs}
}

// login signs in through the development provider as a browser does, and returns the client
// holding the session cookie: the callback provisions the login (advisory locks, user and
// session rows) through the pooler.
func (ps pooledServer) login(t *testing.T, sub string) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := c.Get(ps.base + "/auth/login?next=/playground")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	action := regexp.MustCompile(`<form method="post" action="([^"]+)"`).FindSubmatch(page)
	id := regexp.MustCompile(`name="id" value="([^"]+)"`).FindSubmatch(page)
	if resp.StatusCode != http.StatusOK || action == nil || id == nil {
		t.Fatalf("the provider's login page: %d %s", resp.StatusCode, page)
	}
	form := url.Values{"id": {html.UnescapeString(string(id[1]))}, "sub": {sub}}
	req, _ := http.NewRequest(http.MethodPost, ps.base+html.UnescapeString(string(action[1])), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", ps.base)
	if resp, err = c.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/playground" {
		t.Fatalf("signing in led to %d %s, want 200 /playground\n%s", resp.StatusCode, resp.Request.URL, ps.logs)
	}
	return c
}

// graphql posts a browser's GraphQL request and returns its data, or an error naming what went
// wrong (a status other than 200, or any error in the answer).
func (ps pooledServer) graphql(c *http.Client, query string, vars map[string]any, data any) error {
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequest(http.MethodPost, ps.base+"/graphql", strings.NewReader(string(b)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", ps.base)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var out struct {
		Data   json.RawMessage
		Errors []json.RawMessage
	}
	if err := json.Unmarshal(body, &out); err != nil || resp.StatusCode != http.StatusOK || len(out.Errors) > 0 {
		return fmt.Errorf("%d %s", resp.StatusCode, body)
	}
	return json.Unmarshal(out.Data, data)
}

const (
	pooledRead   = `query { me { id email } teams(first: 10) { totalCount nodes { id name accesses(first: 5) { totalCount nodes { role user { email } } } } } }`
	pooledCreate = `mutation($name: String!) { createTeam(input: {name: $name}) { team { id name } } }`
	pooledRename = `mutation($id: ID!, $name: String!) { updateTeam(input: {id: $id, name: $name}) { team { id name } } }`
)

// TestServeBehindPgBouncer: the server behind PgBouncer in transaction mode (DATABASE_POOLER)
// migrates, signs a user in, and answers GraphQL reads and writes of a session, then 16
// concurrent sessions' mixed reads and writes, all without an error. Before DATABASE_POOLER the
// server could not even connect (PgBouncer refuses statement_timeout as a startup parameter);
// with it ignored, 16 sessions got thousands of INTERNAL answers (a named prepared statement
// of one client met another's on a server connection).
func TestServeBehindPgBouncer(t *testing.T) {
	ps := startPooledServer(t, "direct")
	c := ps.login(t, demo.E2EOwnerSub)
	var me struct {
		Me    struct{ ID, Email string }
		Teams struct{ TotalCount int }
	}
	if err := ps.graphql(c, pooledRead, nil, &me); err != nil || me.Me.Email == "" {
		t.Fatalf("a session's read: %v (%+v)", err, me)
	}
	var created struct {
		CreateTeam struct{ Team struct{ ID, Name string } }
	}
	if err := ps.graphql(c, pooledCreate, map[string]any{"name": "Pooled " + storetest.Unique()}, &created); err != nil {
		t.Fatalf("a session's write: %v", err)
	}

	const sessions, requests = 16, 24
	clients := make([]*http.Client, sessions)
	for i := range clients {
		clients[i] = ps.login(t, demo.E2EOwnerSub)
	}
	start := make(chan struct{})
	errs := make(chan error, sessions*requests)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			<-start
			var team string
			for r := range requests {
				var err error
				switch {
				case r%3 == 0:
					var out struct {
						CreateTeam struct{ Team struct{ ID string } }
					}
					err = ps.graphql(c, pooledCreate, map[string]any{"name": fmt.Sprintf("Load %d-%d %s", i, r, storetest.Unique())}, &out)
					team = out.CreateTeam.Team.ID
				case r%3 == 1 && team != "":
					var out any
					err = ps.graphql(c, pooledRename, map[string]any{"id": team, "name": fmt.Sprintf("Renamed %d-%d", i, r)}, &out)
				default:
					var out any
					err = ps.graphql(c, pooledRead, nil, &out)
				}
				if err != nil {
					errs <- fmt.Errorf("session %d request %d: %w", i, r, err)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 5 {
			t.Error(err)
		}
	}
	if n > 0 {
		t.Errorf("%d of %d requests failed behind the pooler, want none", n, sessions*requests)
	}
	if !strings.Contains(ps.logs.String(), "revocation listener listening") {
		t.Errorf("the revocation listener did not listen on DATABASE_LISTEN_URL:\n%s", ps.logs)
	}
}

// TestServeBehindPgBouncerWithoutListener: behind the pooler without DATABASE_LISTEN_URL there
// is no revocation listener, so no credential cache, and the start says so; a session that
// ends is refused at once.
func TestServeBehindPgBouncerWithoutListener(t *testing.T) {
	ps := startPooledServer(t, "")
	if !strings.Contains(ps.logs.String(), "credential cache off") {
		t.Errorf("the start does not say that the credential cache is off:\n%s", ps.logs)
	}
	c := ps.login(t, demo.E2EOwnerSub)
	var me struct{ Me struct{ ID string } }
	if err := ps.graphql(c, `{ me { id } }`, nil, &me); err != nil {
		t.Fatal(err)
	}
	s := storetest.OpenAt(t, ps.direct)
	storetest.MustExec(t, s.DB(), "DELETE FROM sessions WHERE user_id = ?", me.Me.ID)
	if err := ps.graphql(c, `{ me { id } }`, nil, &me); err == nil || !strings.Contains(err.Error(), "UNAUTHENTICATED") {
		t.Errorf("a deleted session's request: %v, want UNAUTHENTICATED at once", err)
	}
}

// cancelChildEnv, set in its environment to a database URL behind PgBouncer, makes the test
// binary a process that cancels a running statement, closes its store and exits (cancelChild).
const cancelChildEnv = "PEOPLE_TEST_CANCEL_CHILD"

// cancelChild is a server stopping with a statement in flight: the statement's context ends,
// pgx sends a cancel request on a connection of its own, the store closes and the process
// exits.
func cancelChild() {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "cancel child:", err)
		os.Exit(1)
	}
	ctx := context.Background()
	s, err := store.Open(ctx, os.Getenv(cancelChildEnv), store.Options{Pooler: store.PoolerTransaction, MaxConns: 4})
	if err != nil {
		fail(err)
	}
	qctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, err := s.DB().ExecContext(qctx, "SELECT pg_sleep(30) -- cancel child"); done <- err }()
	// Cancelled only once PostgreSQL runs it, so that the cancel request has something to cancel.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var n int
		if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(30) -- cancel child%'`).Scan(&n); err != nil {
			fail(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			fail(errors.New("the statement never ran"))
		}
	}
	cancel()
	if err := <-done; err == nil {
		fail(errors.New("the cancelled statement succeeded"))
	}
	// pgx sends the cancel request from a goroutine of its own: the parent varies the moment the
	// store closes, so that some runs close it while the request is on its way.
	if d, err := time.ParseDuration(os.Getenv(cancelChildEnv + "_AFTER")); err == nil {
		time.Sleep(d)
	}
	s.Close()
	os.Exit(0)
}

// TestPgBouncerSurvivesStoppingServers: a server that stops while a statement runs (its context
// cancelled: a request whose client left, a worker at shutdown) leaves PgBouncer running.
// pgx answers the cancelled context with a cancel request on a connection of its own; if the
// process exits before PgBouncer has passed it on, Debian's PgBouncer 1.18 frees that client
// twice and dies (FATAL "bad client state", pgbouncer/pgbouncer#801), taking every instance's
// connections with it. So closing the store waits for its cancel requests. The pooler is this
// test's own: the shared one must survive the code before the fix.
func TestPgBouncerSurvivesStoppingServers(t *testing.T) {
	dir := t.TempDir()
	start := exec.Command(".ci/pgbouncer", "start", dir, os.Getenv("TEST_DATABASE_URL"))
	var stderr strings.Builder
	start.Stderr = &stderr
	out, err := start.Output()
	if err != nil {
		t.Fatalf(".ci/pgbouncer start: %v\n%s", err, stderr.String())
	}
	t.Cleanup(func() { exec.Command(".ci/pgbouncer", "destroy", dir).Run() })
	pooler, err := url.Parse(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	direct := storetest.NewDatabase(t)
	pooler.Path = "/" + dbName(t, direct)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 24 {
		child := exec.Command(exe, "-test.run=^$")
		child.Env = append(os.Environ(), cancelChildEnv+"="+pooler.String(),
			fmt.Sprintf("%s_AFTER=%dus", cancelChildEnv, 125*i))
		if out, err := child.CombinedOutput(); err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, out)
		}
		s, err := store.Open(t.Context(), pooler.String(), store.Options{Pooler: store.PoolerTransaction, MaxConns: 1})
		if err == nil {
			err = s.Ping(t.Context())
			s.Close()
		}
		if err != nil {
			log, _ := exec.Command("bash", "-c", `tail -5 "$(cat "$1/location" 2>/dev/null || echo "$1")/pgbouncer.log"`, "-", dir).Output()
			t.Fatalf("PgBouncer after server %d stopped with a statement in flight: %v\n%s", i+1, err, log)
		}
	}
}
