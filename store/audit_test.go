package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// eventsOn returns the audit events that name target, newest first.
func eventsOn(t *testing.T, s *store.Store, target uuid.UUID) []store.AuditEvent {
	t.Helper()
	l, err := s.AuditEvents(t.Context(), storetest.StaffActor(t, s), store.AuditFilter{TargetID: &target, Page: store.Page{Limit: 100}})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

// TestAuditAppendOnly: the application's own connection, the table's owner, can add events and
// read them, and nothing else, whatever SQL it runs.
func TestAuditAppendOnly(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	team := storetest.TeamWithEveryRole(t, s)
	if _, err := s.SetTeamAccessRole(t.Context(), store.UserActor(team.Owner), team.MemberAccess, store.RoleAdministrator); err != nil {
		t.Fatal(err)
	}
	events := eventsOn(t, s, team.MemberAccess)
	if len(events) != 1 {
		t.Fatalf("events = %+v, want one", events)
	}
	id := events[0].ID
	for _, stmt := range []string{
		"UPDATE audit_events SET operation = 'forged' WHERE id = ?",
		"UPDATE audit_events SET changes = '{}' WHERE id = ?",
		"DELETE FROM audit_events WHERE id = ?",
		"DELETE FROM audit_events WHERE id = ? OR true",
		"TRUNCATE audit_events",
		"TRUNCATE audit_events CASCADE",
	} {
		_, err := s.DB().ExecContext(context.Background(), stmt, id)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("%s: err = %v, want insufficient_privilege (42501)", stmt, err)
		}
	}
	if got := eventsOn(t, s, team.MemberAccess); len(got) != 1 || got[0].Operation != "updateTeamAccess" {
		t.Errorf("the event after the attempts: %+v", got)
	}
	// Appending still works, which is all the application does.
	storetest.MustExec(t, s.DB(), "INSERT INTO audit_events (actor_method, operation) VALUES ('command', 'createStaff')")
}

// TestAuditSameTransaction: an event commits with its change, or neither does.
func TestAuditSameTransaction(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	team := storetest.TeamWithEveryRole(t, s)
	owner := store.UserActor(team.Owner)

	// A change that fails after its checks (the user is in the team already) leaves no event.
	if _, err := s.CreateTeamAccess(t.Context(), owner, team.ID, team.Member, store.RoleMember); store.KindOf(err) != store.KindConflict {
		t.Fatalf("CreateTeamAccess() = %v, want a conflict", err)
	}
	if got := eventsOn(t, s, team.Member); len(got) != 0 {
		t.Errorf("events of a failed change: %+v", got)
	}
}

func TestAuditEvent(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	team := storetest.TeamWithEveryRole(t, s)
	sp := storetest.ServiceProvider(t, s)
	storetest.MustExec(t, s.DB(), "INSERT INTO team_service_providers (team_id, service_provider_id) VALUES (?, ?)", team.ID, sp)
	actor := store.Actor{UserID: team.Owner, ServiceProviderID: sp, Method: store.ActorBearer}
	tv, err := s.UpdateTeam(t.Context(), actor, team.ID, store.TeamUpdate{Name: ptr("Via a service")})
	if err != nil {
		t.Fatal(err)
	}
	got := eventsOn(t, s, tv.ID)
	if len(got) != 1 {
		t.Fatalf("events = %+v, want one", got)
	}
	e := got[0]
	want := store.AuditEvent{ID: e.ID, CreatedAt: e.CreatedAt, ActorID: &team.Owner, ActorMethod: store.ActorBearer,
		ServiceProviderID: &sp, Operation: "updateTeam", TargetIDs: []uuid.UUID{team.ID}, Changes: map[string]any{"name": "Via a service"}}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}
}

// TestAuditLogin: a login that provisions (a user created, an organization given, invitations
// accepted) is an event of that user's, by method login; a login that changes nothing of the
// kind is not.
func TestAuditLogin(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t)
	c := e.claims()
	u := e.mustLogin(c, store.DefaultLoginOptions())
	got := eventsOn(t, e.s, u.ID)
	if len(got) != 1 {
		t.Fatalf("events after the first login = %+v, want one", got)
	}
	want := store.AuditEvent{ID: got[0].ID, CreatedAt: got[0].CreatedAt, ActorID: &u.ID, ActorMethod: store.ActorLogin,
		Operation: "provisionLogin", TargetIDs: []uuid.UUID{u.ID, *u.OrganizationID},
		Changes: map[string]any{"userCreated": true, "organizationId": u.OrganizationID.String()}}
	if diff := cmp.Diff(want, got[0]); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}

	e.mustLogin(c, store.DefaultLoginOptions())
	if got := eventsOn(t, e.s, u.ID); len(got) != 1 {
		t.Errorf("a login that provisions nothing added events: %+v", got)
	}

	team := storetest.TeamWithEveryRole(t, e.s)
	e.mustExec("INSERT INTO invitations (email, team_id, role, issuer_id) VALUES (?, ?, 'member', ?)", c.Email, team.ID, team.Owner)
	e.mustLogin(c, store.DefaultLoginOptions())
	got = eventsOn(t, e.s, team.ID)
	if len(got) != 1 || got[0].Operation != "provisionLogin" || *got[0].ActorID != u.ID {
		t.Fatalf("events on the team after an accepted invitation: %+v", got)
	}
	if diff := cmp.Diff(map[string]any{"joinedTeamIds": []any{team.ID.String()}}, got[0].Changes); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}
