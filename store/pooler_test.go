package store_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// openPooled opens a store over a database of the test's own through the test PgBouncer, in
// transaction mode, with the database's statement_timeout set as an operator would (the store
// refuses to start without it).
func openPooled(t *testing.T, timeout time.Duration) (s *store.Store, direct string) {
	t.Helper()
	direct = storetest.NewDatabase(t)
	storetest.SetDatabaseDefault(t, direct, "statement_timeout", fmt.Sprintf("%dms", timeout.Milliseconds()))
	s, err := store.Open(t.Context(), storetest.PoolerURL(t, direct), store.Options{
		Pooler: store.PoolerTransaction, StatementTimeout: timeout, MaxConns: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, direct
}

// TestPoolerTransactionLoad: behind PgBouncer in transaction mode, 16 goroutines mixing the
// hot reads (prepared statements when direct) and writes see no error. Before DATABASE_POOLER,
// the store either could not connect (statement_timeout as a startup parameter) or, with it
// ignored, failed with `prepared statement "stmtcache_…" already exists` (or does not exist)
// whenever two clients' statements met on one server connection.
func TestPoolerTransactionLoad(t *testing.T) {
	s, _ := openPooled(t, 10*time.Second)
	org := storetest.Organization(t, s)
	const workers, rounds = 16, 25
	users := make([]store.User, workers)
	tokens := make([][]byte, workers)
	for i := range users {
		users[i] = storetest.User(t, s, org)
		raw := make([]byte, 32)
		rand.Read(raw)
		h := sha256.Sum256(raw)
		tokens[i] = h[:]
		if _, err := s.CreateSession(t.Context(), tokens[i], store.NewSession{UserID: users[i].ID, Issuer: "https://op.test",
			Subject: users[i].Sub}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for i := range workers {
		wg.Go(func() {
			<-start
			actor := store.UserActor(users[i].ID)
			for r := range rounds {
				if err := poolerRound(t.Context(), s, actor, tokens[i], fmt.Sprintf("pooled %d-%d %s", i, r, storetest.Unique())); err != nil {
					errs <- fmt.Errorf("worker %d round %d: %w", i, r, err)
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
		t.Errorf("%d of %d rounds failed behind the pooler, want none", n, workers*rounds)
	}
}

// poolerRound is one browser session's worth of work: authenticate, list, create, read, rename.
func poolerRound(ctx context.Context, s *store.Store, actor store.Actor, token []byte, name string) error {
	if _, err := s.SessionByToken(ctx, token); err != nil {
		return fmt.Errorf("session: %w", err)
	}
	if ok, err := s.UserIsActive(ctx, actor.UserID); err != nil || !ok {
		return fmt.Errorf("active: %v %w", ok, err)
	}
	if _, err := s.Teams(ctx, actor, store.TeamFilter{Page: store.Page{Limit: 20}}); err != nil {
		return fmt.Errorf("teams: %w", err)
	}
	team, err := s.CreateTeam(ctx, actor, store.NewTeam{Name: name})
	if err != nil {
		return fmt.Errorf("create team: %w", err)
	}
	if _, err := s.TeamByID(ctx, actor, team.ID); err != nil {
		return fmt.Errorf("team: %w", err)
	}
	if _, err := s.TeamAccessesByTeamIDs(ctx, actor, []uuid.UUID{team.ID}, store.AccessFilter{Page: store.Page{Limit: 20}}); err != nil {
		return fmt.Errorf("accesses: %w", err)
	}
	renamed := name + " renamed"
	if _, err := s.UpdateTeam(ctx, actor, team.ID, store.TeamUpdate{Name: &renamed}); err != nil {
		return fmt.Errorf("update team: %w", err)
	}
	if _, err := s.Users(ctx, actor.UserID, store.UserFilter{Search: "a", Page: store.Page{Limit: 10}}); err != nil {
		return fmt.Errorf("users: %w", err)
	}
	return nil
}

// TestPoolerStatementTimeoutApplies: behind the pooler, DATABASE_STATEMENT_TIMEOUT holds on every
// statement, in a transaction and out of one, though nothing is sent at connection start.
func TestPoolerStatementTimeoutApplies(t *testing.T) {
	s, _ := openPooled(t, 300*time.Millisecond)
	err := s.DB().RunInTx(t.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		var got string
		if err := tx.QueryRowContext(ctx, "SHOW statement_timeout").Scan(&got); err != nil {
			return err
		}
		if got != "300ms" {
			t.Errorf("statement_timeout in a store transaction = %q, want 300ms", got)
		}
		_, err := tx.ExecContext(ctx, "SELECT pg_sleep(5)")
		return err
	})
	if code := sqlState(err); code != "57014" {
		t.Errorf("pg_sleep(5) in a transaction: %v, want query_canceled (57014) by the statement timeout", err)
	}
	_, err = s.DB().ExecContext(t.Context(), "SELECT pg_sleep(5)")
	if code := sqlState(err); code != "57014" {
		t.Errorf("pg_sleep(5) outside a transaction: %v, want query_canceled (57014) by the statement timeout", err)
	}
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// TestPoolerRefusesMissingStatementTimeout: behind the pooler, a database whose connections do
// not get DATABASE_STATEMENT_TIMEOUT is refused at start, naming the statement that fixes it.
func TestPoolerRefusesMissingStatementTimeout(t *testing.T) {
	direct := storetest.NewDatabase(t)
	s, err := store.Open(t.Context(), storetest.PoolerURL(t, direct), store.Options{
		Pooler: store.PoolerTransaction, StatementTimeout: 10 * time.Second})
	if err == nil {
		s.Close()
		t.Fatal("Open behind the pooler with no statement_timeout on the database succeeded, want an error")
	}
	if !strings.Contains(err.Error(), "ALTER ROLE") || !strings.Contains(err.Error(), "statement_timeout = '10000ms'") {
		t.Errorf("Open: %v, want the ALTER ROLE that fixes it", err)
	}
}

// TestOpenRefusesOverriddenStatementTimeout: without a pooler too, a connection whose
// statement_timeout is not DATABASE_STATEMENT_TIMEOUT (here DATABASE_URL sets another; a pooler
// told to ignore the startup parameter does the same) is refused rather than run without it.
func TestOpenRefusesOverriddenStatementTimeout(t *testing.T) {
	s, err := store.Open(t.Context(), storetest.URL(t)+"&statement_timeout=0", store.Options{StatementTimeout: 10 * time.Second})
	if err == nil {
		s.Close()
		t.Fatal("Open with statement_timeout=0 in the URL succeeded, want an error")
	}
	if !strings.Contains(err.Error(), "DATABASE_STATEMENT_TIMEOUT") {
		t.Errorf("Open: %v, want it to name DATABASE_STATEMENT_TIMEOUT", err)
	}
	s, err = store.Open(t.Context(), storetest.URL(t), store.Options{StatementTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("Open with the timeout as a startup parameter: %v", err)
	}
	s.Close()
}

// TestPoolerRevocations: behind the pooler the revocation listener needs a session of its own
// (DATABASE_LISTEN_URL); without one there is none, rather than a LISTEN that the pooler would
// leave on a server connection that others then use, silently deaf.
func TestPoolerRevocations(t *testing.T) {
	s, direct := openPooled(t, 10*time.Second)
	if _, err := s.Revocations(nil); !errors.Is(err, store.ErrNoListener) {
		t.Errorf("Revocations behind the pooler without ListenURL: %v, want ErrNoListener", err)
	}
	withListener, err := store.Open(t.Context(), storetest.PoolerURL(t, direct), store.Options{
		Pooler: store.PoolerTransaction, StatementTimeout: 10 * time.Second, ListenURL: direct})
	if err != nil {
		t.Fatal(err)
	}
	defer withListener.Close()
	rev, err := withListener.Revocations(nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan store.Revocation, 16)
	rev.Subscribe(func(r store.Revocation) { got <- r })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); rev.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case r := <-got:
		if !r.All {
			t.Fatalf("first announcement %+v, want All on connecting", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the listener did not connect to DATABASE_LISTEN_URL")
	}
	u := storetest.User(t, withListener, storetest.Organization(t, withListener))
	storetest.MustExec(t, withListener.DB(), "UPDATE users SET is_active = false WHERE id = ?", u.ID)
	select {
	case r := <-got:
		if r.UserID != u.ID {
			t.Errorf("announcement %+v, want user %s", r, u.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a deactivation written through the pooler was not heard on DATABASE_LISTEN_URL")
	}
}
