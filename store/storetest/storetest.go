// Package storetest gives tests a real PostgreSQL database and fixtures, as net/http/httptest
// gives them a real server. It imports store and migrations, and nothing that imports it.
//
// TEST_DATABASE_URL names a server where the test role may CREATE DATABASE (make test starts
// one). Main migrates a template database once per migration set, clones it for the package,
// and drops the clone afterwards; tests create their own rows with unique values, so they may
// run in parallel and never truncate.
package storetest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	neturl "net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"

	"lasuite.fr/people/migrations"
	"lasuite.fr/people/store"
)

var (
	cloneURL string // this package's database, set by Main
	openOnce sync.Once
	shared   *store.Store
	openErr  error
)

// Main runs a package's tests against a fresh clone of the migrated template. Call it from
// TestMain: func TestMain(m *testing.M) { storetest.Main(m) }.
func Main(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "storetest:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		return 0, fmt.Errorf("TEST_DATABASE_URL is not set: run the tests with 'make test', which starts a PostgreSQL cluster, or point it at a server where you may CREATE DATABASE")
	}
	ctx := context.Background()
	name, err := clone(ctx, base)
	if err != nil {
		return 0, err
	}
	if cloneURL, err = withDatabase(base, name); err != nil {
		return 0, err
	}
	code := m.Run()
	if shared != nil {
		shared.Close()
	}
	if err := exec(ctx, base, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pgx.Identifier{name}.Sanitize())); err != nil {
		return code, fmt.Errorf("drop test database: %w", err)
	}
	return code, nil
}

// URL is the package's test database URL, for code that opens its own connections.
func URL(tb testing.TB) string {
	tb.Helper()
	if cloneURL == "" {
		tb.Fatal("storetest: call storetest.Main from TestMain")
	}
	return cloneURL
}

// Open returns a store over the package's test database, shared by the package's tests.
func Open(tb testing.TB) *store.Store {
	tb.Helper()
	u := URL(tb)
	openOnce.Do(func() {
		shared, openErr = store.Open(context.Background(), u, store.Options{MaxConns: 40})
	})
	if openErr != nil {
		tb.Fatal(openErr)
	}
	return shared
}

// OpenFresh returns a store with a connection pool of its own, for tests that count statements
// or need a pool nobody else uses; tracers see every statement it runs. It is closed at the end
// of the test.
func OpenFresh(tb testing.TB, tracers ...pgx.QueryTracer) *store.Store {
	tb.Helper()
	return OpenAt(tb, URL(tb), tracers...)
}

// OpenAt is OpenFresh over the database at url (one of NewDatabase's).
func OpenAt(tb testing.TB, url string, tracers ...pgx.QueryTracer) *store.Store {
	tb.Helper()
	o := store.Options{}
	switch len(tracers) {
	case 0:
	case 1:
		o.Tracer = tracers[0]
	default:
		o.Tracer = multitracer.New(tracers...)
	}
	s, err := store.Open(tb.Context(), url, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// NewDatabase clones the migrated template into a database of the test's own, dropped when the
// test ends, and returns its URL. It is for tests that listen to the database's notifications
// (store.Revocations): in the package's database, every parallel test's writes send some.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv("TEST_DATABASE_URL")
	name, err := clone(context.Background(), base)
	if err != nil {
		tb.Fatal(err)
	}
	return dropAtCleanup(tb, base, name)
}

// dropAtCleanup drops the database name of the server at base when the test ends, and returns
// its URL.
func dropAtCleanup(tb testing.TB, base, name string) string {
	tb.Helper()
	tb.Cleanup(func() {
		if err := exec(context.Background(), base, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			tb.Errorf("drop database: %v", err)
		}
	})
	u, err := withDatabase(base, name)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

// clone makes this package's database from the template, migrating the template first when no
// database with the current migrations' hash exists. An advisory lock orders packages that
// start at the same moment: CREATE DATABASE … TEMPLATE needs the template free of connections.
func clone(ctx context.Context, base string) (string, error) {
	db, err := sql.Open("pgx", base)
	if err != nil {
		return "", err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return "", fmt.Errorf("connect to TEST_DATABASE_URL: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(7011)"); err != nil {
		return "", err
	}
	defer conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock(7011)") //nolint:errcheck

	tmpl, err := templateName()
	if err != nil {
		return "", err
	}
	var exists bool
	if err := conn.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", tmpl).Scan(&exists); err != nil {
		return "", err
	}
	if !exists {
		if err := migrateTemplate(ctx, conn, base, tmpl); err != nil {
			return "", err
		}
	}
	name := "test_" + randomHex(6)
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s",
		pgx.Identifier{name}.Sanitize(), pgx.Identifier{tmpl}.Sanitize())); err != nil {
		return "", fmt.Errorf("clone template: %w", err)
	}
	return name, nil
}

func migrateTemplate(ctx context.Context, conn *sql.Conn, base, tmpl string) error {
	building := tmpl + "_building"
	q := func(s string) string { return pgx.Identifier{s}.Sanitize() }
	if _, err := conn.ExecContext(ctx, "DROP DATABASE IF EXISTS "+q(building)+" WITH (FORCE)"); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "CREATE DATABASE "+q(building)); err != nil {
		return fmt.Errorf("create template: %w", err)
	}
	u, err := withDatabase(base, building)
	if err != nil {
		return err
	}
	tdb, err := sql.Open("pgx", u)
	if err != nil {
		return err
	}
	start := time.Now()
	_, err = migrations.Up(ctx, tdb)
	tdb.Close()
	if err != nil {
		return fmt.Errorf("migrate template: %w", err)
	}
	// Renamed only once complete, so an interrupted run never leaves a half-migrated template.
	if _, err := conn.ExecContext(ctx, "ALTER DATABASE "+q(building)+" RENAME TO "+q(tmpl)); err != nil {
		return fmt.Errorf("publish template: %w", err)
	}
	fmt.Fprintf(os.Stderr, "storetest: migrated template %s in %v\n", tmpl, time.Since(start).Round(time.Millisecond))
	return nil
}

// templateName changes whenever a migration file changes, so edited migrations never run
// against a stale template.
func templateName() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, path)
		h.Write([]byte(path))
		h.Write(b)
		return err
	})
	if err != nil {
		return "", err
	}
	return "tmpl_" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

func exec(ctx context.Context, dsn, stmt string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, stmt)
	return err
}

func withDatabase(dsn, name string) (string, error) {
	u, err := neturl.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("TEST_DATABASE_URL is not a postgres:// URL")
	}
	u.Path = "/" + name
	return u.String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// EmptyDatabase creates an empty, unmigrated database for the test and returns its URL; it is
// dropped when the test ends. For tests of migrations and of start-up.
func EmptyDatabase(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv("TEST_DATABASE_URL")
	name := "empty_" + randomHex(6)
	ctx := context.Background()
	if err := exec(ctx, base, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatalf("create database: %v", err)
	}
	return dropAtCleanup(tb, base, name)
}

// DropDatabase drops the database at url at once, closing its connections: tests use it to
// see how a server behaves when its database disappears.
func DropDatabase(tb testing.TB, url string) {
	tb.Helper()
	u, err := neturl.Parse(url)
	if err != nil {
		tb.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if err := exec(context.Background(), os.Getenv("TEST_DATABASE_URL"), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		tb.Fatalf("drop database: %v", err)
	}
}

// PoolerURL is url (a database of TEST_DATABASE_URL's server) reached through the PgBouncer
// that TEST_PGBOUNCER_URL names: pool_mode=transaction in front of the same server, passing every
// database name through (make test starts it with .ci/pgbouncer). Without TEST_PGBOUNCER_URL
// the test fails and says how to start one.
func PoolerURL(tb testing.TB, url string) string {
	tb.Helper()
	pooler := os.Getenv("TEST_PGBOUNCER_URL")
	if pooler == "" {
		tb.Fatal("TEST_PGBOUNCER_URL is not set: run the tests with 'make test', which starts PgBouncer in transaction mode, " +
			"or start one in front of TEST_DATABASE_URL's server: export TEST_PGBOUNCER_URL=$(.ci/pgbouncer start /tmp/people-pgbouncer \"$TEST_DATABASE_URL\")")
	}
	p, err := neturl.Parse(pooler)
	if err != nil {
		tb.Fatal("TEST_PGBOUNCER_URL is not a postgres:// URL")
	}
	u, err := neturl.Parse(url)
	if err != nil {
		tb.Fatal(err)
	}
	p.Path = u.Path
	return p.String()
}

// SetDatabaseDefault makes value the default of the run-time parameter param for every new
// connection to the database at url (ALTER DATABASE … SET), as an operator does for a server
// behind a transaction pooler, which cannot pass parameters at connection start.
func SetDatabaseDefault(tb testing.TB, url, param, value string) {
	tb.Helper()
	u, err := neturl.Parse(url)
	if err != nil {
		tb.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	stmt := fmt.Sprintf("ALTER DATABASE %s SET %s = '%s'", pgx.Identifier{name}.Sanitize(), pgx.Identifier{param}.Sanitize(),
		strings.ReplaceAll(value, "'", "''"))
	if err := exec(context.Background(), os.Getenv("TEST_DATABASE_URL"), stmt); err != nil {
		tb.Fatalf("set %s on the test database: %v", param, err)
	}
}
