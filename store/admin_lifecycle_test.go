package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// The races of the staff deletions (issue 15 §5), each held open at its critical point by a
// transaction of the test that does what the other party's transaction does, so that the
// interleaving is the one named rather than a likely one.

// waitBlocking returns once some backend waits for a lock that the backend holder holds.
func waitBlocking(t *testing.T, s *store.Store, holder int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		var blocked bool
		err := s.DB().QueryRowContext(t.Context(), "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE ? = ANY (pg_blocking_pids(pid)))", holder).Scan(&blocked)
		if err != nil {
			t.Fatal(err)
		}
		if blocked {
			return
		}
	}
	t.Fatalf("no backend ever waited for backend %d", holder)
}

func countRows(t *testing.T, s *store.Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRowContext(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestAdminDeleteUserWaitsForTheOtherOwner: the team's other owner is leaving it (their
// transaction has locked the team and deleted their access, as DeleteTeamAccess does) when
// staff delete the first owner. The deletion waits for the team, then finds the user the last
// owner: refused, and the team keeps its owner.
func TestAdminDeleteUserWaitsForTheOtherOwner(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	staff := store.UserActor(storetest.User(t, s, uuid.Nil, storetest.Staff()).ID)
	tm := storetest.TeamWithEveryRole(t, s)
	other := storetest.Access(t, s, tm.ID, tm.Outsider, store.RoleOwner)

	tx, pid := begin(t, s)
	storetest.MustExec(t, tx, "SELECT id FROM teams WHERE id = ? FOR NO KEY UPDATE", tm.ID)
	storetest.MustExec(t, tx, "DELETE FROM team_accesses WHERE id = ?", other)
	done := make(chan error, 1)
	go func() {
		_, err := s.AdminDeleteUser(context.Background(), staff, tm.Owner, store.UserDeletion{})
		done <- err
	}()
	waitBlocking(t, s, pid)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; store.KindOf(err) != store.KindConflict {
		t.Fatalf("AdminDeleteUser() = %v, want a conflict: the user is now the last owner", err)
	}
	if n := countRows(t, s, "SELECT count(*) FROM team_accesses WHERE team_id = ? AND role = 'owner'", tm.ID); n != 1 {
		t.Errorf("the team has %d owners, want 1", n)
	}
}

// loginAt returns the claims of a new user whose verified email is at the organization's domain.
func loginAt(t *testing.T, s *store.Store, org uuid.UUID) store.Claims {
	t.Helper()
	var domain string
	if err := s.DB().QueryRowContext(t.Context(), "SELECT domain FROM organization_domains WHERE organization_id = ?", org).Scan(&domain); err != nil {
		t.Fatal(err)
	}
	tok := storetest.Unique()
	return store.Claims{Issuer: "https://op.test", Subject: "sub-" + tok, Email: "new-" + tok + "@" + domain, EmailVerified: true}
}

// TestLoginJoiningAnOrganizationBeingDeleted: a first login finds its organization by its
// domain while staff's deletion of that organization (empty until then) has not committed. The
// login waits for it and then creates the organization again, instead of failing on a user
// pointing to a deleted one.
func TestLoginJoiningAnOrganizationBeingDeleted(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	org := storetest.Organization(t, s)
	claims := loginAt(t, s, org)

	tx, pid := begin(t, s)
	storetest.MustExec(t, tx, "SELECT id FROM organizations WHERE id = ? FOR UPDATE", org)
	storetest.MustExec(t, tx, "DELETE FROM organizations WHERE id = ?", org)
	type login struct {
		u   *store.User
		err error
	}
	done := make(chan login, 1)
	go func() {
		u, err := s.ProvisionLogin(context.Background(), claims, store.DefaultLoginOptions())
		done <- login{u, err}
	}()
	waitBlocking(t, s, pid)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	l := <-done
	if l.err != nil {
		t.Fatalf("ProvisionLogin() = %v, want the organization made again", l.err)
	}
	if l.u.OrganizationID == nil || *l.u.OrganizationID == org {
		t.Fatalf("the user's organization is %v, want a new one", l.u.OrganizationID)
	}
	if n := countRows(t, s, "SELECT count(*) FROM organizations WHERE id = ?", *l.u.OrganizationID); n != 1 {
		t.Error("the user's organization does not exist")
	}
}

// TestAdminDeleteOrganizationWaitsForALogin: a login is adding a user to the organization
// (uncommitted) when staff delete it. The deletion waits for the login and counts its user.
func TestAdminDeleteOrganizationWaitsForALogin(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	staff := store.UserActor(storetest.User(t, s, uuid.Nil, storetest.Staff()).ID)
	org := storetest.Organization(t, s)

	tx, pid := begin(t, s)
	storetest.MustExec(t, tx, "INSERT INTO users (sub, organization_id) VALUES (?, ?)", "sub-"+storetest.Unique(), org)
	done := make(chan error, 1)
	go func() { done <- s.AdminDeleteOrganization(context.Background(), staff, org) }()
	waitBlocking(t, s, pid)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; store.KindOf(err) != store.KindConflict {
		t.Fatalf("AdminDeleteOrganization() = %v, want a conflict counting the new user", err)
	}
}

// TestAdminDeleteOrganizationRacesLogins: whichever of a first login and staff's deletion of
// its (empty) organization comes first, the login succeeds and its user's organization exists.
func TestAdminDeleteOrganizationRacesLogins(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	staff := store.UserActor(storetest.User(t, s, uuid.Nil, storetest.Staff()).ID)
	for round := range 8 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			org := storetest.Organization(t, s)
			claims := loginAt(t, s, org)
			start := make(chan struct{})
			var (
				wg       sync.WaitGroup
				u        *store.User
				loginErr error
				delErr   error
			)
			wg.Go(func() {
				<-start
				u, loginErr = s.ProvisionLogin(context.Background(), claims, store.DefaultLoginOptions())
			})
			wg.Go(func() {
				<-start
				delErr = s.AdminDeleteOrganization(context.Background(), staff, org)
			})
			close(start)
			wg.Wait()
			if loginErr != nil {
				t.Fatalf("ProvisionLogin() = %v", loginErr)
			}
			switch {
			case delErr == nil && *u.OrganizationID == org:
				t.Errorf("the organization was deleted under its new user")
			case delErr != nil && (store.KindOf(delErr) != store.KindConflict || *u.OrganizationID != org):
				t.Errorf("deletion: %v, user in %s; want a conflict and the user in %s", delErr, *u.OrganizationID, org)
			}
			if n := countRows(t, s, "SELECT count(*) FROM organizations WHERE id = ?", *u.OrganizationID); n != 1 {
				t.Error("the user's organization does not exist")
			}
		})
	}
}
