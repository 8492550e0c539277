package store_test

import (
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// listener runs a revocation listener over s until the test ends, and returns it with the
// announcements it delivers, once it listens (the first All of its connection consumed).
func listener(t *testing.T, s *store.Store) (*store.Revocations, <-chan store.Revocation) {
	t.Helper()
	r, err := s.Revocations(nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan store.Revocation, 1000)
	r.Subscribe(func(rev store.Revocation) { got <- rev })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("the listener did not stop with its context")
		}
	})
	if rev := next(t, got); !rev.All {
		t.Fatalf("first announcement = %+v, want All (the connection's start)", rev)
	}
	waitFor(t, "the listener to listen", r.Listening)
	return r, got
}

// next returns the next announcement, failing after a few seconds without one.
func next(t *testing.T, got <-chan store.Revocation) store.Revocation {
	t.Helper()
	select {
	case rev := <-got:
		return rev
	case <-time.After(5 * time.Second):
		t.Fatal("no announcement within 5s")
	}
	return store.Revocation{}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 5s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Every way a session or a user stops counting is announced, whoever changes the rows; what
// changes nothing that a credential check reads is not.
func TestRevocationsAnnounced(t *testing.T) {
	t.Parallel()
	s := storetest.OpenAt(t, storetest.NewDatabase(t)) // alone: it expects exact announcements
	_, got := listener(t, s)
	db := s.DB()
	u := storetest.User(t, s, uuid.Nil)
	iss := "https://op-" + storetest.Unique() + ".test"
	session := func(user store.User, sid string) []byte {
		return newSession(t, s, user.ID, iss, sid, user.Sub, time.Hour)
	}
	expect := func(want ...store.Revocation) {
		t.Helper()
		for _, w := range want {
			if diff := cmp.Diff(w, next(t, got)); diff != "" {
				t.Errorf("announcement (-want +got):\n%s", diff)
			}
		}
	}
	// quiet checks that nothing was announced for what ran before: a marker, announced after
	// it, must come first.
	quiet := func(what string) {
		t.Helper()
		marker := storetest.User(t, s, uuid.Nil)
		storetest.MustExec(t, db, "DELETE FROM users WHERE id = ?", marker.ID)
		if rev := next(t, got); rev.UserID != marker.ID {
			t.Errorf("%s announced %+v", what, rev)
		}
	}

	h := session(u, "sid-1")
	if _, err := s.DeleteSession(t.Context(), h); err != nil {
		t.Fatal(err)
	}
	expect(store.Revocation{TokenHash: h})

	h = session(u, "sid-2")
	if _, err := s.DeleteSessionsByProvider(t.Context(), iss, "sid-2", ""); err != nil {
		t.Fatal(err)
	}
	expect(store.Revocation{TokenHash: h})

	h = session(u, "")
	storetest.MustExec(t, db, "UPDATE sessions SET expires_at = expires_at - interval '1 minute' WHERE token_hash = ?", h)
	expect(store.Revocation{TokenHash: h})
	storetest.MustExec(t, db, "UPDATE sessions SET last_seen_at = now() - interval '1 hour' WHERE token_hash = ?", h)
	if err := s.TouchSession(t.Context(), sessionID(t, s, h)); err != nil {
		t.Fatal(err)
	}
	storetest.MustExec(t, db, "UPDATE users SET last_login_at = now(), name = 'Renamed' WHERE id = ?", u.ID)
	storetest.MustExec(t, db, "UPDATE users SET is_active = true WHERE id = ?", u.ID)
	quiet("a touch, a login and a rename")

	storetest.MustExec(t, db, "UPDATE users SET is_active = false WHERE id = ?", u.ID)
	expect(store.Revocation{UserID: u.ID})
	storetest.MustExec(t, db, "UPDATE users SET is_active = false WHERE id = ?", u.ID)
	quiet("deactivating an inactive user")

	// A user's deletion, with their sessions by cascade, in one transaction.
	v := storetest.User(t, s, uuid.Nil)
	hv := session(v, "")
	storetest.MustExec(t, db, "DELETE FROM users WHERE id = ?", v.ID)
	first, second := next(t, got), next(t, got)
	if first.UserID == uuid.Nil {
		first, second = second, first
	}
	if first.UserID != v.ID || hex.EncodeToString(second.TokenHash) != hex.EncodeToString(hv) {
		t.Errorf("deleting a user announced %+v and %+v, want the user and their session", first, second)
	}

	// A rolled back change announces nothing.
	w := storetest.User(t, s, uuid.Nil)
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	storetest.MustExec(t, tx, "UPDATE users SET is_active = false WHERE id = ?", w.ID)
	tx.Rollback()
	quiet("a rolled back deactivation")

	// More than 100 rows in one statement: one All.
	org := storetest.Organization(t, s)
	storetest.MustExec(t, db, "INSERT INTO users (sub, email, organization_id) SELECT 'bulk-' || g || '-' || ?, NULL, ? FROM generate_series(1, 101) g",
		storetest.Unique(), org)
	storetest.MustExec(t, db, "UPDATE users SET is_active = false WHERE organization_id = ?", org)
	expect(store.Revocation{All: true})
}

func sessionID(t *testing.T, s *store.Store, h []byte) uuid.UUID {
	t.Helper()
	ses, err := s.SessionByToken(t.Context(), h)
	if err != nil {
		t.Fatal(err)
	}
	return ses.ID
}

// A lost connection is noticed, announced as All once it is back, and the listener listens
// again; a store not made by Open has no listener.
func TestRevocationsReconnect(t *testing.T) {
	t.Parallel()
	s := storetest.OpenAt(t, storetest.NewDatabase(t))
	r, got := listener(t, s)
	pid := r.PID()
	if pid == 0 {
		t.Fatal("PID() = 0 while listening")
	}
	var killed bool
	if err := storetest.Open(t).DB().QueryRowContext(t.Context(), "SELECT pg_terminate_backend(?)", pid).Scan(&killed); err != nil || !killed {
		t.Fatalf("pg_terminate_backend = %v, %v", killed, err)
	}
	if rev := next(t, got); !rev.All {
		t.Fatalf("after a reconnection: %+v, want All", rev)
	}
	waitFor(t, "the listener to listen again", r.Listening)
	if r.PID() == pid || r.PID() == 0 {
		t.Errorf("PID() = %d after reconnecting, was %d", r.PID(), pid)
	}
	u := storetest.User(t, s, uuid.Nil)
	storetest.MustExec(t, s.DB(), "DELETE FROM users WHERE id = ?", u.ID)
	if rev := next(t, got); rev.UserID != u.ID {
		t.Errorf("after reconnecting: %+v, want the deleted user", rev)
	}

	if _, err := store.New(s.DB(), store.Options{}).Revocations(nil); err == nil {
		t.Error("Revocations() of a store made by New: no error")
	}
}
