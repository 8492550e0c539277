// Package migrations holds the database schema as numbered, forward-only SQL files embedded in
// the binary, and applies them. It imports none of our packages.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
)

// FS holds the migration files, named NNNN_description.up.sql.
//
//go:embed *.sql
var FS embed.FS

// Migration is one numbered SQL file.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

var fileName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.up\.sql$`)

// All returns the embedded migrations in version order.
func All() ([]Migration, error) { return all(FS) }

func all(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %q is not named NNNN_name.up.sql", e.Name())
		}
		body, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		v, _ := strconv.Atoi(m[1])
		ms = append(ms, Migration{Version: v, Name: m[2], SQL: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration versions must be 1..n without gaps: %d is at position %d", m.Version, i+1)
		}
	}
	return ms, nil
}

// Latest is the highest version this binary knows.
func Latest() int {
	ms, err := All()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

// ErrTooNew means the database was migrated by a newer binary: running against it could
// corrupt data that this binary does not understand.
var ErrTooNew = errors.New("database schema is newer than this binary")

// lockKey serialises concurrent migrators (several instances starting, parallel test packages).
const lockKey = 0x70656f706c65 // "people"

// Up applies every migration the database lacks, each in its own transaction, and records it in
// schema_migrations. It returns the number applied.
func Up(ctx context.Context, db *sql.DB) (int, error) { return up(ctx, db, FS) }

// up takes the migration lock in each migration's own transaction (pg_advisory_xact_lock) and
// reads the version under it, rather than holding a session's lock across them: behind a pooler
// in transaction mode (DATABASE_POOLER) a session lock would stay on a server connection that the
// pooler hands to another client, and its unlock could run on yet another.
func up(ctx context.Context, db *sql.DB, fsys fs.FS) (int, error) {
	ms, err := all(fsys)
	if err != nil {
		return 0, err
	}
	applied := 0
	for {
		done, err := step(ctx, db, ms)
		if err != nil || done {
			return applied, err
		}
		applied++
	}
}

// step applies the first migration the database lacks, in one transaction that holds the
// migration lock; done reports that there was none.
func step(ctx context.Context, db *sql.DB, ms []Migration) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("begin migration: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey); err != nil {
		return false, fmt.Errorf("take migration lock: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY,
		name text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return false, fmt.Errorf("create schema_migrations: %w", err)
	}
	current, err := version(ctx, tx)
	if err != nil {
		return false, err
	}
	if current > len(ms) {
		return false, fmt.Errorf("%w: database is at version %d, this binary knows up to %d", ErrTooNew, current, len(ms))
	}
	if current == len(ms) {
		return true, tx.Commit()
	}
	m := ms[current]
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, fmt.Errorf("apply migration %04d_%s: %w", m.Version, m.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
		return false, fmt.Errorf("record migration %04d: %w", m.Version, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("commit migration %04d: %w", m.Version, err)
	}
	return false, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func version(ctx context.Context, q querier) (int, error) {
	var v int
	if err := q.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// Check reports whether the database is exactly at Latest: ErrTooNew when ahead, an error
// naming the gap when behind. /readyz and MIGRATE=false use it.
func Check(ctx context.Context, db *sql.DB) error {
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	v := 0
	if exists {
		var err error
		if v, err = version(ctx, db); err != nil {
			return err
		}
	}
	switch latest := Latest(); {
	case v > latest:
		return fmt.Errorf("%w: database is at version %d, this binary knows up to %d", ErrTooNew, v, latest)
	case v < latest:
		return fmt.Errorf("database schema is at version %d, this binary needs %d: run migrations", v, latest)
	}
	return nil
}
