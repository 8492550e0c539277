package store_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// TestLinkedOnly: an actor with LinkedOnly sees, reads and changes through its service only the
// teams linked to it; a team visible to all services does not count (People's partner
// invitation views), while the same actor without it sees both.
func TestLinkedOnly(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	ctx := context.Background()
	tr := storetest.TeamWithEveryRole(t, s)
	sp := storetest.ServiceProvider(t, s)
	storetest.MustExec(t, s.DB(), "UPDATE teams SET is_visible_all_services = true WHERE id = ?", tr.ID)
	owner := store.Actor{UserID: tr.Owner, ServiceProviderID: sp}
	linked := owner
	linked.LinkedOnly = true

	inv, err := s.CreateInvitation(ctx, owner, store.NewInvitation{TeamID: tr.ID, Email: "guest-" + storetest.Unique() + "@example.test", Role: store.RoleMember})
	if err != nil {
		t.Fatalf("invite to a team visible to all services: %v", err)
	}
	if _, err := s.InvitationByID(ctx, owner, tr.ID, inv.ID); err != nil {
		t.Errorf("InvitationByID: %v", err)
	}
	if _, err := s.InvitationByID(ctx, owner, uuid.New(), inv.ID); store.KindOf(err) != store.KindNotFound {
		t.Errorf("InvitationByID under another team: %v, want not found", err)
	}
	check := func(name string, want store.Kind) {
		t.Helper()
		_, err := s.TeamByID(ctx, linked, tr.ID)
		_, ierr := s.InvitationByID(ctx, linked, tr.ID, inv.ID)
		_, cerr := s.CreateInvitation(ctx, linked, store.NewInvitation{TeamID: tr.ID, Email: "x-" + storetest.Unique() + "@example.test", Role: store.RoleMember})
		pages, lerr := s.InvitationsByTeamIDs(ctx, linked, []uuid.UUID{tr.ID}, store.Page{Limit: 10})
		for op, got := range map[string]store.Kind{"TeamByID": store.KindOf(err), "InvitationByID": store.KindOf(ierr), "CreateInvitation": store.KindOf(cerr)} {
			if got != want {
				t.Errorf("%s: %s kind %v, want %v", name, op, got, want)
			}
		}
		if lerr != nil || (len(pages[tr.ID].Items) > 0) != (want == 0) {
			t.Errorf("%s: InvitationsByTeamIDs = %v (%v)", name, pages, lerr)
		}
	}
	check("visible to all services, not linked", store.KindNotFound)
	storetest.MustExec(t, s.DB(), "INSERT INTO team_service_providers (team_id, service_provider_id) VALUES (?, ?)", tr.ID, sp)
	check("linked", 0)
	if err := s.DeleteInvitation(ctx, store.Actor{UserID: tr.Member, ServiceProviderID: sp, LinkedOnly: true}, inv.ID); store.KindOf(err) != store.KindForbidden {
		t.Errorf("a member withdraws: %v, want forbidden", err)
	}
	if _, err := s.InvitationByID(ctx, store.Actor{UserID: tr.Outsider, ServiceProviderID: sp}, tr.ID, inv.ID); store.KindOf(err) != store.KindNotFound {
		t.Errorf("an outsider reads: %v, want not found", err)
	}
}

// TestBreaks: a transport can tell one constraint's error from the others.
func TestBreaks(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	ctx := context.Background()
	tr := storetest.TeamWithEveryRole(t, s)
	in := store.NewInvitation{TeamID: tr.ID, Email: "guest-" + storetest.Unique() + "@example.test", Role: store.RoleMember}
	if _, err := s.CreateInvitation(ctx, store.UserActor(tr.Owner), in); err != nil {
		t.Fatal(err)
	}
	_, err := s.CreateInvitation(ctx, store.UserActor(tr.Owner), in)
	if !store.Breaks(err, "invitations_email_team_id_key") || store.Breaks(err, "team_accesses_team_id_user_id_key") || store.Breaks(err, "no_such_constraint") {
		t.Errorf("Breaks(%v) does not tell the duplicate invitation", err)
	}
	if store.Breaks(nil, "invitations_email_team_id_key") {
		t.Error("Breaks(nil)")
	}
}
