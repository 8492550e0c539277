package migrations_test

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	_ "github.com/jackc/pgx/v5/stdlib"

	"lasuite.fr/people/migrations"
	"lasuite.fr/people/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

func open(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", storetest.EmptyDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func files(kv ...string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for i := 0; i < len(kv); i += 2 {
		fsys[kv[i]] = &fstest.MapFile{Data: []byte(kv[i+1])}
	}
	return fsys
}

// recorded lists schema_migrations as "version name".
func recorded(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "SELECT version, name FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v int
		var name string
		if err := rows.Scan(&v, &name); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%d %s", v, name))
	}
	return out
}

func exists(t *testing.T, db *sql.DB, table string) bool {
	t.Helper()
	var ok bool
	if err := db.QueryRowContext(t.Context(), "SELECT to_regclass($1) IS NOT NULL", table).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// A migration that fails leaves nothing behind (each runs in its own transaction, recorded in
// the same one); those before it stay applied, and the next run starts from it.
func TestFailedMigrationIsRolledBack(t *testing.T) {
	db := open(t)
	broken := files(
		"0001_first.up.sql", "CREATE TABLE first (id int)",
		"0002_second.up.sql", "CREATE TABLE second (id int); INSERT INTO first VALUES (1); SELECT 1/0",
	)
	n, err := migrations.UpFrom(t.Context(), db, broken)
	if err == nil || !strings.Contains(err.Error(), "0002_second") || n != 1 {
		t.Fatalf("Up = %d, %v; want 1 applied and an error naming 0002_second", n, err)
	}
	if exists(t, db, "second") || !exists(t, db, "first") {
		t.Errorf("after the failure: table first %v, second %v; want first only", exists(t, db, "first"), exists(t, db, "second"))
	}
	var rows int
	if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM first").Scan(&rows); err != nil || rows != 0 {
		t.Errorf("the failed migration's insert stayed: %d rows (%v)", rows, err)
	}
	if got := recorded(t, db); strings.Join(got, ",") != "1 first" {
		t.Errorf("recorded %v, want only 1 first", got)
	}

	fixed := files(
		"0001_first.up.sql", "CREATE TABLE first (id int)",
		"0002_second.up.sql", "CREATE TABLE second (id int)",
	)
	if n, err := migrations.UpFrom(t.Context(), db, fixed); err != nil || n != 1 {
		t.Fatalf("Up after the fix = %d, %v; want 1 applied", n, err)
	}
	if got := recorded(t, db); strings.Join(got, ",") != "1 first,2 second" {
		t.Errorf("recorded %v", got)
	}
	if n, err := migrations.UpFrom(t.Context(), db, fixed); err != nil || n != 0 {
		t.Errorf("Up again = %d, %v; want nothing to do", n, err)
	}
}

// Migrations are forward-only files numbered 1..n: anything else stops Up before it touches
// the database.
func TestMigrationFilesAreNumberedAndForwardOnly(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"a gap":            files("0001_a.up.sql", "SELECT 1", "0003_c.up.sql", "SELECT 1"),
		"a duplicate":      files("0001_a.up.sql", "SELECT 1", "0001_b.up.sql", "SELECT 1"),
		"not from 1":       files("0002_b.up.sql", "SELECT 1"),
		"a down migration": files("0001_a.up.sql", "SELECT 1", "0001_a.down.sql", "SELECT 1"),
		"no number":        files("init.up.sql", "SELECT 1"),
		"a short number":   files("1_a.up.sql", "SELECT 1"),
	} {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			if n, err := migrations.UpFrom(t.Context(), db, fsys); err == nil || n != 0 {
				t.Errorf("Up = %d, %v; want a refusal", n, err)
			}
			if exists(t, db, "schema_migrations") {
				t.Error("Up touched the database")
			}
		})
	}
	if _, err := migrations.All(); err != nil {
		t.Errorf("the embedded migrations: %v", err)
	}
}

// Several servers starting at once on a new database apply each migration once, and each
// records what it knows.
func TestConcurrentUp(t *testing.T) {
	db := open(t)
	const starts = 4
	var wg sync.WaitGroup
	applied := make([]int, starts)
	errs := make([]error, starts)
	for i := range starts {
		wg.Go(func() { applied[i], errs[i] = migrations.Up(t.Context(), db) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range applied {
		total += n
	}
	ms, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	if total != len(ms) || migrations.Latest() != len(ms) {
		t.Errorf("%v applied in all, want %d once each", applied, len(ms))
	}
	var want []string
	for _, m := range ms {
		want = append(want, fmt.Sprintf("%d %s", m.Version, m.Name))
	}
	if got := recorded(t, db); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("recorded %v, want %v", got, want)
	}
	if err := migrations.Check(t.Context(), db); err != nil {
		t.Errorf("Check after Up: %v", err)
	}
}

// TestConcurrentUpBehindPooler: servers starting at once behind PgBouncer in transaction mode
// (DATABASE_POOLER=transaction) migrate through it, each migration once. A session's advisory
// lock would not serialise them there: the pooler runs each statement on whichever server
// connection is free, so a second migrator may find the first one's lock in its own session.
func TestConcurrentUpBehindPooler(t *testing.T) {
	direct := storetest.EmptyDatabase(t)
	const starts = 4
	dbs := make([]*sql.DB, starts)
	for i := range dbs {
		db, err := sql.Open("pgx", storetest.PoolerURL(t, direct)+"&default_query_exec_mode=simple_protocol")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[i] = db
	}
	var wg sync.WaitGroup
	applied := make([]int, starts)
	errs := make([]error, starts)
	for i := range starts {
		wg.Go(func() { applied[i], errs[i] = migrations.Up(t.Context(), dbs[i]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range applied {
		total += n
	}
	if ms, _ := migrations.All(); total != len(ms) {
		t.Errorf("%v applied in all, want %d once each", applied, len(ms))
	}
	if err := migrations.Check(t.Context(), dbs[0]); err != nil {
		t.Errorf("Check after Up: %v", err)
	}
}
