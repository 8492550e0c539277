// Package store is the directory's data layer: bun models, every SQL query, the permission
// rules that depend on rows, and the domain errors a client can act on. It imports none of our
// packages and never sees GraphQL, HTTP or tokens: the acting user is always an argument.
package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// Store runs the directory's queries. It is safe for concurrent use.
type Store struct {
	db                 *bun.DB
	connConfig         *pgx.ConnConfig // the revocation listener's connection; nil after New, or behind a pooler without ListenURL
	pooled             bool            // Options.Pooler is PoolerTransaction
	conns              *openConns      // the pool's network connections, which Close waits for; nil after New
	invitationValidity time.Duration
	invitationsPerHour int
	webhookAllowHTTP   bool
	secrets            *secretBox
}

// Options tune the connection pool.
type Options struct {
	MaxConns         int           // pool size; 0 means 20
	StatementTimeout time.Duration // PostgreSQL statement_timeout; 0 keeps the server's
	// Pooler is what stands between the store and PostgreSQL (DATABASE_POOLER); the zero value
	// is PoolerNone.
	Pooler Pooler
	// ListenURL is the revocation listener's postgres:// URL (DATABASE_LISTEN_URL): a session of
	// its own, past any transaction pooler. "" is the store's own URL, except behind a pooler,
	// where there is then no listener (Revocations answers ErrNoListener).
	ListenURL          string
	InvitationValidity time.Duration // how long an invitation may be accepted; 0 means 7 days
	InvitationsPerHour int           // invitations one user may create in an hour (INVITATION_RATE_LIMIT); 0 means no limit
	WebhookAllowHTTP   bool          // accept http:// webhook URLs (WEBHOOK_ALLOW_HTTP: development and tests)
	// SecretKeys seal webhook secrets at rest: the first seals, every one opens (SECRET_KEY,
	// then SECRET_KEY_FALLBACKS). None means a built-in key, which protects nothing.
	SecretKeys [][]byte
	// Tracer sees every statement the store runs, through bun or not (BEGIN and COMMIT
	// included), on every connection: tracing spans and the tests' statement counts.
	Tracer pgx.QueryTracer
}

// Open connects to PostgreSQL at dsn (a postgres:// URL) and checks that it answers, and that
// the statement_timeout asked for is the one its statements get (pooler.go).
func Open(ctx context.Context, dsn string, o Options) (*Store, error) {
	pooled := o.Pooler == PoolerTransaction
	var err error
	// Behind a transaction pooler, the settings come from the role instead (pooler.go): PgBouncer
	// refuses a connection that sends a run-time parameter it does not track.
	if o.StatementTimeout > 0 && !pooled {
		if dsn, err = withRuntimeParam(dsn, "statement_timeout", fmt.Sprint(timeoutMillis(o.StatementTimeout))); err != nil {
			return nil, err
		}
	}
	// bun writes every value into the SQL text, so no two statements share a text: pgx's default
	// mode would prepare each one (a round trip, and a statement both sides keep, 512 per
	// connection, until pgx evicts it with one more message), never to reuse it. The simple
	// protocol sends the text once, as bun's own driver does. make bench: the server's RSS after
	// a minute at 64 connections fell from 138 to 58 MB; CPU per request moved within the noise.
	// (default_query_exec_mode is pgx's own: it never reaches the server.)
	if dsn, err = withRuntimeParam(dsn, "default_query_exec_mode", "simple_protocol"); err != nil {
		return nil, err
	}
	// The hot reads are prepared statements (prepared.go), written so that one plan serves
	// every argument. Left to choose, PostgreSQL planned them anew on each execution: their
	// generic plan is costed above a custom one (it cannot know that a page holds one team, or
	// the LIMIT), and planning a page's accesses costs more than running it (0.8 ms against
	// 0.3). Statements sent in the simple protocol are planned each time whatever this says.
	// Behind a pooler there are no prepared statements, so nothing for it to choose.
	if !pooled {
		if dsn, err = withRuntimeParam(dsn, "plan_cache_mode", "force_generic_plan"); err != nil {
			return nil, err
		}
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	if pooled {
		// No named prepared statement may outlive its transaction: the next one may run on
		// another server connection, which lacks it, or on one where another client made it.
		// With no statement cache, a QueryExecModeCacheStatement left anywhere fails at once
		// instead of now and then.
		cfg.StatementCacheCapacity = 0
	}
	var listen *pgx.ConnConfig
	switch {
	case o.ListenURL != "":
		if listen, err = pgx.ParseConfig(o.ListenURL); err != nil {
			return nil, fmt.Errorf("parse DATABASE_LISTEN_URL: %w", err)
		}
	case !pooled:
		listen = cfg.Copy() // untraced: its waits are no statements of ours
	}
	cfg.Tracer = o.Tracer
	conns := newOpenConns()
	cfg.DialFunc = conns.dial(cfg.DialFunc)
	sqldb := stdlib.OpenDB(*cfg)
	if o.MaxConns <= 0 {
		o.MaxConns = 20
	}
	sqldb.SetMaxOpenConns(o.MaxConns)
	sqldb.SetMaxIdleConns(o.MaxConns)
	sqldb.SetConnMaxIdleTime(5 * time.Minute)
	if err := sqldb.PingContext(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	if err := checkStatementTimeout(ctx, sqldb, o); err != nil {
		sqldb.Close()
		return nil, err
	}
	s := New(bun.NewDB(sqldb, pgdialect.New()), o)
	s.connConfig, s.conns = listen, conns
	return s, nil
}

// New wraps an open bun database.
func New(db *bun.DB, o Options) *Store {
	if o.InvitationValidity <= 0 {
		o.InvitationValidity = 7 * 24 * time.Hour
	}
	return &Store{db: db, invitationValidity: o.InvitationValidity, invitationsPerHour: o.InvitationsPerHour, webhookAllowHTTP: o.WebhookAllowHTTP,
		secrets: newSecretBox(o.SecretKeys), pooled: o.Pooler == PoolerTransaction}
}

// DB is the underlying database, for migrations, health checks, demo data and tests.
func (s *Store) DB() *bun.DB { return s.db }

// Close closes the connection pool, and waits (a few seconds at most) for the cancel requests
// still on their way (conns.go).
func (s *Store) Close() error {
	err := s.db.Close()
	if s.conns != nil {
		s.conns.wait(closeWait)
	}
	return err
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Actor is who acts: a user, and for a partner service's bearer token the service provider it
// came through. A zero ServiceProviderID means a browser session, which sees all the user's teams.
// Method is how the actor authenticated, as the audit trail records it; the zero value means a
// browser session, or a bearer token when ServiceProviderID is set.
type Actor struct {
	UserID            uuid.UUID
	ServiceProviderID uuid.UUID
	Method            ActorMethod
	// LinkedOnly narrows a service's teams to those linked to it: a team visible to all
	// services does not count. People's partner invitation endpoints see teams so
	// (people-behaviour.md §1.5), and package rest asks for it there.
	LinkedOnly bool
}

// UserActor is a browser-session actor.
func UserActor(id uuid.UUID) Actor { return Actor{UserID: id, Method: ActorSession} }

func (a Actor) viaService() bool { return a.ServiceProviderID != uuid.Nil }

// inTx runs fn in a transaction (read committed: the rules that need more take row locks).
func (s *Store) inTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	return s.db.RunInTx(ctx, nil, fn)
}
