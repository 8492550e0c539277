package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"lasuite.fr/people/migrations"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

func TestMain(m *testing.M) {
	if os.Getenv(serveChildEnv) != "" {
		serveChild() // never returns
	}
	if os.Getenv(cancelChildEnv) != "" {
		cancelChild() // never returns
	}
	storetest.Main(m)
}

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

// startServer runs the whole program on a free loopback port and stops it when the test ends.
// freeLoopbackAddr is a loopback address with a port free a moment ago, for a server that must
// know its address before it listens (PUBLIC_URL); another process could take the port in
// between, which would fail the test, not pass it.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startServer(t *testing.T, dbURL string, extra map[string]string) string {
	t.Helper()
	// net/http's Shutdown waits up to 5 s for a connection that never sent a request (a client
	// transport's spare dial, which the race detector's slowness makes likely): a shutdown
	// timeout of 5 s could expire on it, so the tests give the drain more.
	vars := map[string]string{"DATABASE_URL": dbURL, "LISTEN_ADDR": "127.0.0.1:0", "SHUTDOWN_TIMEOUT": "20s"}
	for k, v := range extra {
		vars[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, env(vars), io.Discard, ready) }()
	select {
	case addr := <-ready:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run() after shutdown = %v", err)
			}
		})
		return "http://" + addr
	case err := <-done:
		cancel()
		t.Fatalf("server did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("server did not start within 30s")
	}
	return ""
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeHealthReadyAndConfig(t *testing.T) {
	base := startServer(t, storetest.EmptyDatabase(t), nil)
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d, want 200", code)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d %q, want 200", code, body)
	}
	resp, err := http.Post(base+"/graphql", "application/json", strings.NewReader(`{"query":"{ config { languages { code } } }"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data struct {
			Config struct{ Languages []struct{ Code string } }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || len(out.Data.Config.Languages) != 2 {
		t.Errorf("config query: status %d, languages %+v", resp.StatusCode, out.Data.Config.Languages)
	}
}

func TestReadyzWithoutDatabase(t *testing.T) {
	db := storetest.EmptyDatabase(t)
	base := startServer(t, db, nil)
	if code, _ := get(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d before the database went away, want 200", code)
	}
	storetest.DropDatabase(t, db)
	if code, _ := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d without a database, want 503", code)
	}
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d without a database, want 200: the process is alive", code)
	}
	// People's dockerflow heartbeats: the database check fails as an error, the load
	// balancer's heartbeat checks nothing.
	if code, body := get(t, base+"/__heartbeat__"); code != http.StatusInternalServerError || body != `{"status":"error"}`+"\n" {
		t.Errorf("/__heartbeat__ = %d %q without a database, want 500 {\"status\":\"error\"}", code, body)
	}
	if code, body := get(t, base+"/__lbheartbeat__/"); code != http.StatusOK || body != "" {
		t.Errorf("/__lbheartbeat__/ = %d %q without a database, want 200 and no body", code, body)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	db := storetest.EmptyDatabase(t)
	sqldb, err := sql.Open("pgx", db)
	if err != nil {
		t.Fatal(err)
	}
	defer sqldb.Close()
	if _, err := migrations.Up(t.Context(), sqldb); err != nil {
		t.Fatal(err)
	}
	if _, err := sqldb.Exec("INSERT INTO schema_migrations (version, name) VALUES (9999, 'from_the_future')"); err != nil {
		t.Fatal(err)
	}
	for _, migrate := range []string{"true", "false"} {
		err := run(t.Context(), nil, env(map[string]string{"DATABASE_URL": db, "LISTEN_ADDR": "127.0.0.1:0", "MIGRATE": migrate}), io.Discard, nil)
		if !errors.Is(err, migrations.ErrTooNew) {
			t.Errorf("MIGRATE=%s: run() = %v, want ErrTooNew", migrate, err)
		}
	}
}

func TestRefusesUnmigratedDatabaseWithoutMigrate(t *testing.T) {
	err := run(t.Context(), nil, env(map[string]string{"DATABASE_URL": storetest.EmptyDatabase(t), "LISTEN_ADDR": "127.0.0.1:0", "MIGRATE": "false"}), io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "run migrations") {
		t.Errorf("run() = %v, want a request to run migrations", err)
	}
}

// serve listens for revocations on a connection of its own while it runs (SESSION_CACHE_TTL,
// on by default), and closes it when it stops; with SESSION_CACHE_TTL=0 it opens none.
func TestServeListensForRevocations(t *testing.T) {
	for _, tt := range []struct {
		ttl  string
		want int
	}{{"", 1}, {"0", 0}} {
		t.Run("SESSION_CACHE_TTL="+tt.ttl, func(t *testing.T) {
			t.Parallel()
			db := storetest.NewDatabase(t)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			ready := make(chan string, 1)
			done := make(chan error, 1)
			vars := map[string]string{"DATABASE_URL": db, "LISTEN_ADDR": "127.0.0.1:0", "SESSION_CACHE_TTL": tt.ttl}
			go func() { done <- run(ctx, nil, env(vars), io.Discard, ready) }()
			select {
			case <-ready:
			case err := <-done:
				t.Fatalf("server did not start: %v", err)
			}
			count := func() int {
				var n int
				err := storetest.Open(t).DB().QueryRowContext(t.Context(), `SELECT count(*) FROM pg_stat_activity
					WHERE datname = ? AND application_name = 'people revocations'`, dbName(t, db)).Scan(&n)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			deadline := time.Now().Add(5 * time.Second)
			for count() != tt.want && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if n := count(); n != tt.want {
				t.Fatalf("%d revocation listeners while serving, want %d", n, tt.want)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("run() after shutdown = %v", err)
			}
			for count() != 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if n := count(); n != 0 {
				t.Errorf("%d revocation listeners after shutdown, want 0", n)
			}
		})
	}
}

// dbName is the database a postgres:// URL names.
func dbName(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

func TestMigrateCommandIsIdempotent(t *testing.T) {
	db := storetest.EmptyDatabase(t)
	for i := range 2 {
		if err := run(t.Context(), []string{"migrate"}, env(map[string]string{"DATABASE_URL": db}), io.Discard, nil); err != nil {
			t.Fatalf("migrate #%d: %v", i+1, err)
		}
	}
	sqldb, err := sql.Open("pgx", db)
	if err != nil {
		t.Fatal(err)
	}
	defer sqldb.Close()
	if err := migrations.Check(t.Context(), sqldb); err != nil {
		t.Errorf("after migrate: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	_, err := parseConfig(env(map[string]string{"DATABASE_MAX_CONNS": "zero", "MIGRATE": "perhaps", "ENVIRONMENT": "staging",
		"INVITATION_VALIDITY": "-3s", "ORGANIZATION_REGISTRATION_ID_PATTERN": "([", "DATABASE_POOLER": "session"}))
	if err == nil {
		t.Fatal("parseConfig accepted bad values")
	}
	for _, key := range []string{"DATABASE_URL", "DATABASE_MAX_CONNS", "MIGRATE", "ENVIRONMENT", "INVITATION_VALIDITY", "ORGANIZATION_REGISTRATION_ID_PATTERN",
		"DATABASE_POOLER"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error %q does not name %s", err, key)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig(env(map[string]string{"DATABASE_URL": "postgres://u:p@127.0.0.1/db", "INVITATION_VALIDITY": "604800"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.ListenAddr != ":8071" || !c.Migrate || c.DatabaseMaxConns != 20 || c.InvitationValidity != 7*24*time.Hour ||
		!c.FeatureTeamsCreate || c.Environment != "production" || !c.RegistrationIDPattern.MatchString("12345678901234") ||
		c.DatabasePooler != store.PoolerNone || c.DatabaseListenURL != "" {
		t.Errorf("defaults = %+v", c)
	}
}

// The database URL holds a password: it must not leak through any way a Config is printed.
func TestSecretsAreRedacted(t *testing.T) {
	c, err := parseConfig(env(map[string]string{"DATABASE_URL": "postgres://people:hunter2@127.0.0.1/db",
		"DATABASE_LISTEN_URL": "postgres://people:hunter2@127.0.0.2/db"}))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", c, "url", c.DatabaseURL)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "config", c, "url", c.DatabaseURL)
	fmt.Fprintf(&buf, "%v %+v %#v %s", c, c, c, c.DatabaseURL)
	if strings.Contains(buf.String(), "hunter2") {
		t.Errorf("the password leaked: %s", buf.String())
	}
}
