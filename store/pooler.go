package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Pooler is what stands between the store and PostgreSQL (DATABASE_POOLER).
//
// Behind a pooler in transaction mode (PgBouncer's pool_mode=transaction), each transaction,
// and each statement outside one, may run on a different server connection, shared with other
// clients. So the store there:
//   - sends no run-time parameter at connection start (PgBouncer refuses those it does not
//     track, statement_timeout among them, or drops them when told to ignore them): its
//     statement_timeout must be the role's or the database's (ALTER ROLE … SET), which Open
//     checks, and refuses to start without;
//   - keeps no named prepared statement past a statement: the hot reads use pgx's unnamed
//     statement, with the statements' descriptions cached (QueryExecModeCacheDescribe), one
//     round trip each as before but parsed and planned on every execution;
//   - has no revocation listener unless Options.ListenURL gives it a session past the pooler
//     (LISTEN belongs to one server connection, which the pooler hands to others): without it,
//     Revocations answers ErrNoListener and credentials are read from the database each time.
//
// Advisory locks are all transaction-scoped (pg_advisory_xact_lock), the migrations' included,
// so they hold behind a pooler too.
type Pooler string

// The values of DATABASE_POOLER.
const (
	PoolerNone        Pooler = "none"        // a direct connection, or a pooler in session mode
	PoolerTransaction Pooler = "transaction" // PgBouncer in transaction mode, or alike
)

// ErrNoListener means the store has no session to LISTEN on: it is behind a transaction pooler
// and Options.ListenURL is empty.
var ErrNoListener = errors.New("behind a transaction pooler the revocation listener needs DATABASE_LISTEN_URL, a connection past the pooler")

// timeoutMillis is statement_timeout's value for d, in its unit: 0 would turn it off, so a
// timeout below a millisecond is one millisecond.
func timeoutMillis(d time.Duration) int64 { return max(1, d.Milliseconds()) }

// checkStatementTimeout makes sure that o.StatementTimeout is the statement_timeout the
// database's connections have: otherwise a statement may run forever (past the HTTP timeouts,
// holding its locks) without anything saying so. Directly, the startup parameter sets it, so a
// difference means something in between dropped it, as PgBouncer does with
// ignore_startup_parameters. Behind a transaction pooler it must come from the role or the
// database; only the connection at hand is seen, so a pooler's server connections opened before
// an ALTER ROLE keep the old value until they are reopened (PgBouncer: RECONNECT).
func checkStatementTimeout(ctx context.Context, db *sql.DB, o Options) error {
	if o.StatementTimeout <= 0 {
		return nil
	}
	var got int64
	var role, database string
	err := db.QueryRowContext(ctx, `SELECT setting::bigint, current_user, current_database()
		FROM pg_settings WHERE name = 'statement_timeout'`).Scan(&got, &role, &database)
	if err != nil {
		return fmt.Errorf("read statement_timeout: %w", err)
	}
	want := timeoutMillis(o.StatementTimeout)
	switch {
	case got == want:
		return nil
	case o.Pooler != PoolerTransaction:
		return fmt.Errorf("the database's statement_timeout is %dms where DATABASE_STATEMENT_TIMEOUT asks for %dms: "+
			"something between this server and PostgreSQL drops startup parameters (a pooler's ignore_startup_parameters?); "+
			"behind a pooler in transaction mode, set DATABASE_POOLER=transaction", got, want)
	default:
		return fmt.Errorf("DATABASE_POOLER=transaction: the database's statement_timeout is %dms where DATABASE_STATEMENT_TIMEOUT asks for %dms, "+
			"and a transaction pooler cannot pass it per connection: run ALTER ROLE %s IN DATABASE %s SET statement_timeout = '%dms' "+
			"and reconnect the pooler's server connections (PgBouncer: RECONNECT), or make DATABASE_STATEMENT_TIMEOUT what the database has",
			got, want, pgx.Identifier{role}.Sanitize(), pgx.Identifier{database}.Sanitize(), want)
	}
}
