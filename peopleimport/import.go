// Package peopleimport copies a People database (suitenumerique/people at core migration
// 0017, as ../shared/people-db describes it) into this server's database: `people
// import-people`. It keeps People's ids, turns each sub into a public identity of an issuer,
// and brings the rows this server's constraints refuse into line by documented rules, or
// skips them, listing every one in a Report.
//
// The whole import is one transaction on the target, read from one REPEATABLE READ snapshot
// of the source: a run killed at any point leaves the previous state, and a re-run updates
// what changed. Rows travel by COPY into temporary staging tables; every rule and every write
// is one set-based statement over them, never a statement per row.
//
// It imports store (the sealing of webhook secrets); never package main, graph or auth.
package peopleimport

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"lasuite.fr/people/store"
)

// Options say where to read and how to write.
type Options struct {
	From     string    // postgres:// URL of the People database, only read
	Issuer   string    // OIDC issuer of People's subjects: their public identities here
	DryRun   bool      // run every step, report, and roll back
	Progress io.Writer // rows per table and elapsed time, as the import goes; nil for none
}

// peopleMigration is the last core migration of the schema this importer reads.
const peopleMigration = "0017_teamwebhook_protocol"

// Run imports the People database at o.From into s's database and returns the report. An
// error means nothing was written; the report of a dry run is complete, and nothing written
// either.
func Run(ctx context.Context, s *store.Store, o Options) (*Report, error) {
	if o.Issuer == "" {
		return nil, errors.New("import-people: no issuer for the imported subjects (--issuer, or OIDC_OP_URL)")
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	src, err := pgx.Connect(ctx, o.From)
	if err != nil {
		return nil, fmt.Errorf("import-people: connect to the People database: %w", err)
	}
	defer src.Close(context.Background())
	srcTx, err := src.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("import-people: read the People database: %w", err)
	}
	defer srcTx.Rollback(context.Background()) //nolint:errcheck // read only
	if err := checkSource(ctx, srcTx); err != nil {
		return nil, err
	}

	conn, err := s.DB().DB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("import-people: connect to the database: %w", err)
	}
	defer conn.Close()
	var rep *Report
	err = conn.Raw(func(dc any) error {
		dst := dc.(*stdlib.Conn).Conn()
		tx, err := dst.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(context.Background()) //nolint:errcheck // after Commit, a no-op
		// The server's DATABASE_STATEMENT_TIMEOUT bounds a request's statements; a bulk insert
		// of 200,000 contacts takes longer, and the import is one deliberate batch.
		if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = 0"); err != nil {
			return err
		}
		im := &importer{src: srcTx, dst: tx, store: s, o: o, start: time.Now(), rep: &Report{DryRun: o.DryRun}}
		if err := im.run(ctx); err != nil {
			return err
		}
		rep = im.rep
		if o.DryRun {
			return tx.Rollback(ctx)
		}
		return tx.Commit(ctx)
	})
	if err != nil {
		return nil, fmt.Errorf("import-people: %w", err)
	}
	return rep, nil
}

// checkSource refuses a database that is not People's at the schema version this package reads.
func checkSource(ctx context.Context, tx pgx.Tx) error {
	var last sql.NullString
	err := tx.QueryRow(ctx, "SELECT max(name) FROM django_migrations WHERE app = 'core'").Scan(&last)
	if err != nil {
		return fmt.Errorf("import-people: --from is not a People database (no django_migrations): %w", err)
	}
	if last.String != peopleMigration {
		return fmt.Errorf("import-people: the People database is at core migration %q; this importer reads %q", last.String, peopleMigration)
	}
	return nil
}

// importer is one run: the source snapshot, the target transaction and the report so far.
type importer struct {
	src   pgx.Tx
	dst   pgx.Tx
	store *store.Store
	o     Options
	start time.Time
	rep   *Report
}

func (im *importer) run(ctx context.Context) error {
	if _, err := im.dst.Exec(ctx, `CREATE TEMP TABLE import_report (seq bigserial, tbl text NOT NULL, id text NOT NULL,
		action text NOT NULL, reason text NOT NULL) ON COMMIT DROP`); err != nil {
		return err
	}
	for _, st := range stages {
		if err := im.stage(ctx, st); err != nil {
			return fmt.Errorf("read %s: %w", st.label, err)
		}
	}
	if err := im.prepare(ctx); err != nil {
		return err
	}
	im.progress("prepared")
	if err := im.cleanContactData(ctx); err != nil {
		return fmt.Errorf("clean contact data: %w", err)
	}
	for _, r := range rules {
		if err := im.apply(ctx, r); err != nil {
			return fmt.Errorf("rule %q of %s: %w", r.reason, r.table, err)
		}
	}
	im.progress("normalised")
	if err := im.sealSecrets(ctx); err != nil {
		return fmt.Errorf("seal webhook secrets: %w", err)
	}
	for _, w := range writes {
		if err := im.write(ctx, w); err != nil {
			return fmt.Errorf("write %s: %w", w.table, err)
		}
	}
	if err := im.finish(ctx); err != nil {
		return err
	}
	return im.readReport(ctx)
}

// progress writes one line of progress with the time since the start.
func (im *importer) progress(format string, args ...any) {
	fmt.Fprintf(im.o.Progress, "%7.1fs  %s\n", time.Since(im.start).Seconds(), fmt.Sprintf(format, args...))
}
