package store_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// teamAt creates a team named name, created at created, with user in it as role.
func teamAt(tb testing.TB, s *store.Store, org, user uuid.UUID, role store.Role, name string, created time.Time) uuid.UUID {
	tb.Helper()
	id := storetest.Team(tb, s, org, name)
	storetest.MustExec(tb, s.DB(), "UPDATE teams SET created_at = ? WHERE id = ?", created, id)
	storetest.Access(tb, s, id, user, role)
	return id
}

func TestTeamsOrderAndSearch(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	org := storetest.Organization(t, s)
	user := storetest.User(t, s, org).ID
	tok := storetest.Unique()
	day := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)
	// Same creation time for two teams: the id breaks the tie, so pages never overlap.
	ete := teamAt(t, s, org, user, store.RoleOwner, "Équipe Été "+tok, day)
	bravo := teamAt(t, s, org, user, store.RoleMember, "bravo "+tok, day.Add(time.Hour))
	alpha := teamAt(t, s, org, user, store.RoleAdministrator, "Alpha "+tok, day.Add(time.Hour))
	storetest.Team(t, s, org, "Alpha "+tok) // not the user's
	tie := []uuid.UUID{alpha, bravo}
	if tie[1].String() < tie[0].String() {
		tie[0], tie[1] = tie[1], tie[0]
	}

	for _, tt := range []struct {
		name string
		f    store.TeamFilter
		want []uuid.UUID
	}{
		{"newest first by default", store.TeamFilter{}, []uuid.UUID{tie[1], tie[0], ete}},
		{"oldest first", store.TeamFilter{Order: store.TeamOrderCreatedAsc}, []uuid.UUID{ete, tie[0], tie[1]}},
		{"search folds case and accents", store.TeamFilter{Search: "EQUIPE ete"}, []uuid.UUID{ete}},
		{"search is a fragment", store.TeamFilter{Search: "ph"}, []uuid.UUID{alpha}},
		{"search escapes LIKE patterns", store.TeamFilter{Search: "_lpha"}, nil},
		{"search for another team's name", store.TeamFilter{Search: "alpha " + tok}, []uuid.UUID{alpha}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.f.Limit == 0 {
				tt.f.Limit = 10
			}
			l, err := s.Teams(t.Context(), store.UserActor(user), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]uuid.UUID, len(l.Items))
			for i, tm := range l.Items {
				got[i] = tm.ID
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Teams() (-want +got):\n%s", diff)
			}
			if l.Total != len(tt.want) || l.HasNext {
				t.Errorf("Total = %d, HasNext = %v; want %d, false", l.Total, l.HasNext, len(tt.want))
			}
		})
	}

	// By name follows the database collation, so only what every collation agrees on is
	// checked: "Alpha" before "Équipe".
	t.Run("by name", func(t *testing.T) {
		t.Parallel()
		for order, want := range map[store.TeamOrder][]uuid.UUID{
			store.TeamOrderNameAsc:  {alpha, ete},
			store.TeamOrderNameDesc: {ete, alpha},
		} {
			l, err := s.Teams(t.Context(), store.UserActor(user), store.TeamFilter{Order: order, Page: store.Page{Limit: 10}})
			if err != nil {
				t.Fatal(err)
			}
			var got []uuid.UUID
			for _, tm := range l.Items {
				if tm.ID != bravo { // lower case sorts differently under C and linguistic collations
					got = append(got, tm.ID)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("order %q (-want +got):\n%s", order, diff)
			}
		}
	})

	t.Run("pages", func(t *testing.T) {
		t.Parallel()
		var got []uuid.UUID
		for offset := 0; offset < 3; offset++ {
			l, err := s.Teams(t.Context(), store.UserActor(user), store.TeamFilter{Order: store.TeamOrderCreatedAsc, Page: store.Page{Limit: 1, Offset: offset}})
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Items) != 1 || l.Total != 3 || l.HasNext != (offset < 2) || l.Offset != offset {
				t.Fatalf("page at %d = %+v", offset, l)
			}
			got = append(got, l.Items[0].ID)
		}
		if diff := cmp.Diff([]uuid.UUID{ete, tie[0], tie[1]}, got); diff != "" {
			t.Errorf("pages (-want +got):\n%s", diff)
		}
	})

	t.Run("the viewer's role and abilities", func(t *testing.T) {
		t.Parallel()
		tm, err := s.TeamByID(t.Context(), store.UserActor(user), alpha)
		if err != nil {
			t.Fatal(err)
		}
		want := store.TeamAbilities{Get: true, Update: true, ManageAccesses: true}
		if tm.ViewerRole != store.RoleAdministrator || tm.Abilities() != want {
			t.Errorf("role %q, abilities %+v; want administrator, %+v", tm.ViewerRole, tm.Abilities(), want)
		}
	})

	for name, f := range map[string]store.TeamFilter{
		"no limit":      {},
		"limit too big": {Page: store.Page{Limit: 101}},
		"negative page": {Page: store.Page{Limit: 1, Offset: -1}},
		"unknown order": {Order: "id", Page: store.Page{Limit: 1}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := s.Teams(t.Context(), store.UserActor(user), f); store.KindOf(err) != store.KindInvalid {
				t.Errorf("Teams() error = %v, want KindInvalid", err)
			}
		})
	}
}

// A partner service sees a team's nested lists only for teams shared with it, even when asked
// for other team ids directly.
func TestTeamListsThroughServiceProvider(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	ctx := context.Background()
	tm := storetest.TeamWithEveryRole(t, s)
	storetest.MustExec(t, s.DB(), "INSERT INTO invitations (email, team_id, role, issuer_id) VALUES (?, ?, 'member', ?)",
		"invitee-"+storetest.Unique()+"@example.test", tm.ID, tm.Owner)
	var sp uuid.UUID
	tok := storetest.Unique()
	if err := s.DB().QueryRowContext(ctx, "INSERT INTO service_providers (name, audience_id) VALUES (?, ?) RETURNING id",
		"Service "+tok, "client-"+tok).Scan(&sp); err != nil {
		t.Fatal(err)
	}
	actor := store.Actor{UserID: tm.Owner, ServiceProviderID: sp}
	page := store.Page{Limit: 10}

	check := func(t *testing.T, wantAccesses, wantInvitations int) {
		t.Helper()
		accesses, err := s.TeamAccessesByTeamIDs(ctx, actor, []uuid.UUID{tm.ID}, store.AccessFilter{Page: page})
		if err != nil {
			t.Fatal(err)
		}
		invitations, err := s.InvitationsByTeamIDs(ctx, actor, []uuid.UUID{tm.ID}, page)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(accesses[tm.ID].Items); got != wantAccesses {
			t.Errorf("%d accesses, want %d", got, wantAccesses)
		}
		if got := len(invitations[tm.ID].Items); got != wantInvitations {
			t.Errorf("%d invitations, want %d", got, wantInvitations)
		}
		for _, a := range accesses[tm.ID].Items {
			if ab := a.Abilities(); ab.Delete || len(ab.SetRoleTo) > 0 {
				t.Errorf("access abilities through a service = %+v, want none", ab)
			}
			if a.User == nil || a.User.ID != a.UserID {
				t.Errorf("access user = %+v, want the joined user %v", a.User, a.UserID)
			}
		}
	}
	check(t, 0, 0) // not shared with the service
	storetest.MustExec(t, s.DB(), "INSERT INTO team_service_providers (team_id, service_provider_id) VALUES (?, ?)", tm.ID, sp)
	check(t, 3, 1)

	tv, err := s.TeamByID(ctx, actor, tm.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ab := tv.Abilities(); ab.Delete || !ab.Update {
		t.Errorf("team abilities through a service = %+v, want update without delete", ab)
	}
	if _, err := s.DeleteTeam(ctx, actor, tm.ID, false); store.KindOf(err) != store.KindForbidden {
		t.Errorf("DeleteTeam() through a service: %v, want KindForbidden", err)
	}
	if _, err := s.CreateTeamAccess(ctx, actor, tm.ID, tm.Outsider, store.RoleMember); store.KindOf(err) != store.KindForbidden {
		t.Errorf("CreateTeamAccess() through a service: %v, want KindForbidden", err)
	}
	if _, err := s.DeleteTeamAccess(ctx, actor, tm.MemberAccess); store.KindOf(err) != store.KindForbidden {
		t.Errorf("DeleteTeamAccess() through a service: %v, want KindForbidden", err)
	}
}

// Setting an access to the role it has is refused like any role outside SetRoleTo, so that an
// update succeeds exactly when the abilities promise it.
func TestSetTeamAccessRoleToCurrentRole(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	for _, actor := range []store.Role{store.RoleOwner, store.RoleAdministrator, store.RoleMember} {
		t.Run(string(actor), func(t *testing.T) {
			t.Parallel()
			tm := storetest.TeamWithEveryRole(t, s)
			_, err := s.SetTeamAccessRole(t.Context(), store.UserActor(tm.UserWith(actor)), tm.MemberAccess, store.RoleMember)
			if store.KindOf(err) != store.KindForbidden {
				t.Errorf("SetTeamAccessRole() to the current role: %v, want KindForbidden", err)
			}
		})
	}
}

// Team visibility is one rule read several ways: by bun's builder and by the prepared hot
// reads, and with the tree in two forms, one for lists and one for reads by id (store/team.go).
// For a user, and for that user through a service that some teams are shared with, each way
// sees exactly the teams the rule names, with the same role in each.
func TestVisibleTeamsOneRule(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	org := storetest.Organization(t, s)
	user := storetest.User(t, s, org).ID
	sp, other := storetest.ServiceProvider(t, s), storetest.ServiceProvider(t, s)
	share := func(id uuid.UUID, allServices bool, shared ...uuid.UUID) uuid.UUID {
		storetest.MustExec(t, s.DB(), "UPDATE teams SET is_visible_all_services = ? WHERE id = ?", allServices, id)
		for _, p := range shared {
			storetest.MustExec(t, s.DB(), "INSERT INTO team_service_providers (team_id, service_provider_id) VALUES (?, ?)", id, p)
		}
		return id
	}
	team := func(member, allServices bool, shared ...uuid.UUID) uuid.UUID {
		id := share(storetest.Team(t, s, org, "Visibility "+storetest.Unique()), allServices, shared...)
		if member {
			storetest.Access(t, s, id, user, store.RoleMember)
		}
		return id
	}
	mineShared := team(true, false, sp)
	mineAll := team(true, true)
	mineOther := team(true, false, other)
	minePrivate := team(true, false)
	notMine := team(false, true, sp)
	ids := []uuid.UUID{mineShared, mineAll, mineOther, minePrivate, notMine}
	sorted := func(ids ...uuid.UUID) []uuid.UUID {
		return slices.SortedFunc(slices.Values(ids), func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	}
	partner := store.Actor{UserID: user, ServiceProviderID: sp, Method: store.ActorBearer}
	linked := partner
	linked.LinkedOnly = true
	outsider := storetest.User(t, s, org).ID
	for _, tt := range []struct {
		name  string
		actor store.Actor
		want  []uuid.UUID
	}{
		{"user", store.UserActor(user), sorted(mineShared, mineAll, mineOther, minePrivate)},
		{"user through the service", partner, sorted(mineShared, mineAll)},
		{"outsider", store.UserActor(outsider), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			viaBun, viaPrepared, err := store.VisibleTeamIDs(t.Context(), s, tt.actor, ids, false)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, viaBun, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("bun reads (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, viaPrepared, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("prepared reads (-want +got):\n%s", diff)
			}
		})
	}

	// The tree: the user is a member of Mine and an administrator of its parent, where the
	// direct role must win over the inherited one. Abroad is a tree of another organization
	// where the user is in the child only: an access to a team of another organization shows no
	// ancestor, but it does to a member of that organization. Orphan is a tree of no
	// organization, whose ancestors no one inherits.
	root := share(storetest.Team(t, s, org, "Root "+storetest.Unique()), true)
	parent := share(storetest.ChildTeam(t, s, root, "Parent"), false, sp)
	uncle := share(storetest.ChildTeam(t, s, root, "Uncle"), true)
	mine := share(storetest.ChildTeam(t, s, parent, "Mine"), true)
	sibling := storetest.ChildTeam(t, s, parent, "Sibling")
	below := share(storetest.ChildTeam(t, s, mine, "Below"), true)
	storetest.Access(t, s, mine, user, store.RoleMember)
	storetest.Access(t, s, parent, user, store.RoleAdministrator)
	abroad := storetest.Organization(t, s)
	abroadRoot := share(storetest.Team(t, s, abroad, "Abroad "+storetest.Unique()), true)
	abroadChild := share(storetest.ChildTeam(t, s, abroadRoot, "Abroad child"), true, sp)
	storetest.Access(t, s, abroadChild, user, store.RoleMember)
	stranger := storetest.User(t, s, abroad).ID
	storetest.Access(t, s, abroadChild, stranger, store.RoleOwner)
	storetest.Access(t, s, mine, stranger, store.RoleMember)
	orphanRoot := storetest.Team(t, s, uuid.Nil, "Orphan "+storetest.Unique())
	orphanChild := storetest.ChildTeam(t, s, orphanRoot, "Orphan child")
	orphan := storetest.User(t, s, uuid.Nil).ID
	storetest.Access(t, s, orphanChild, orphan, store.RoleMember)
	all := append(ids, root, parent, uncle, mine, sibling, below, abroadRoot, abroadChild, orphanRoot, orphanChild)
	const (
		owner, admin, member, inherited = store.RoleOwner, store.RoleAdministrator, store.RoleMember, store.RoleInherited
	)
	for _, tt := range []struct {
		name  string
		actor store.Actor
		want  map[uuid.UUID]store.Role
	}{
		{"user", store.UserActor(user), map[uuid.UUID]store.Role{mineShared: member, mineAll: member, mineOther: member, minePrivate: member,
			root: inherited, parent: admin, mine: member, abroadChild: member}},
		{"user through the service", partner, map[uuid.UUID]store.Role{mineShared: member, mineAll: member,
			root: inherited, parent: admin, mine: member, abroadChild: member}},
		{"user through the service, linked teams only", linked, map[uuid.UUID]store.Role{mineShared: member, parent: admin, abroadChild: member}},
		{"member of another organization", store.UserActor(stranger), map[uuid.UUID]store.Role{mine: member, abroadRoot: inherited, abroadChild: owner}},
		{"user of no organization", store.UserActor(orphan), map[uuid.UUID]store.Role{orphanChild: member}},
		{"outsider", store.UserActor(outsider), nil},
	} {
		t.Run("with ancestors/"+tt.name, func(t *testing.T) {
			list, oneViaBun, oneViaPrepared, err := store.VisibleTeamRoles(t.Context(), s, tt.actor, all)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, list, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("list form (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(list, oneViaBun, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("form by id, bun reads, against the list form (-list +by id):\n%s", diff)
			}
			if diff := cmp.Diff(list, oneViaPrepared, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("form by id, prepared reads, against the list form (-list +by id):\n%s", diff)
			}
			for _, id := range all { // the reads by id themselves, W3's among them
				v, _, err := s.TeamWithAccesses(t.Context(), tt.actor, id, store.TeamShape{Brief: true}, store.AccessFilter{Page: store.Page{Limit: 1}})
				if want, ok := tt.want[id]; !ok && store.KindOf(err) != store.KindNotFound {
					t.Errorf("TeamWithAccesses(%s): %v, want not found", id, err)
				} else if ok && (err != nil || v.ViewerRole != want) {
					t.Errorf("TeamWithAccesses(%s): %v, role %q, want %q", id, err, viewerRole(v), want)
				}
			}
		})
	}
}

// viewerRole is v's ViewerRole, or "" when there is no team.
func viewerRole(v *store.TeamView) store.Role {
	if v == nil {
		return ""
	}
	return v.ViewerRole
}
