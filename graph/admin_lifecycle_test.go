package graph_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// The staff operations of an object's whole lifecycle (issue 15 §5): creating and deleting
// teams, deleting users, organizations and service providers, invitations, contacts and the
// export of one user's data.

func init() {
	for name, op := range map[string]string{
		"adminInvitations": `{ adminInvitations { totalCount } }`,
		"adminContacts":    `{ adminContacts { totalCount } }`,
		"adminUserExport":  `{ adminUserExport(id: "` + noID + `") }`,
		"adminCreateTeam": `mutation { adminCreateTeam(input: {name: "x", organizationId: "` + noID + `", ownerId: "` + noID + `"}) {
			team { id } } }`,
		"adminDeleteTeam":            `mutation { adminDeleteTeam(input: {id: "` + noID + `"}) { deletedId } }`,
		"adminDeleteUser":            `mutation { adminDeleteUser(input: {id: "` + noID + `"}) { deletedId } }`,
		"adminDeleteOrganization":    `mutation { adminDeleteOrganization(input: {id: "` + noID + `"}) { deletedId } }`,
		"adminDeleteServiceProvider": `mutation { adminDeleteServiceProvider(input: {id: "` + noID + `"}) { deletedId } }`,
		"adminDeleteInvitation":      `mutation { adminDeleteInvitation(input: {id: "` + noID + `"}) { deletedId } }`,
		"adminUpdateContact":         `mutation { adminUpdateContact(input: {id: "` + noID + `", fullName: "x"}) { contact { id } } }`,
	} {
		adminOperations[name], rootOperations[name] = op, op
	}
}

const (
	adminCreateTeamMutation = `mutation($in: AdminCreateTeamInput!) {
		adminCreateTeam(input: $in) { team { id name parentId depth isVisibleAllServices organization { id }
			accesses { nodes { user { id } role } } } } }`
	adminDeleteTeamMutation = `mutation($id: ID!, $cascade: Boolean) {
		adminDeleteTeam(input: {id: $id, cascade: $cascade}) { deletedId deletedIds } }`
	adminDeleteUserMutation = `mutation($in: AdminDeleteUserInput!) {
		adminDeleteUser(input: $in) { deletedId reassignedTeamIds } }`
	adminDeleteOrganizationMutation = `mutation($id: ID!) { adminDeleteOrganization(input: {id: $id}) { deletedId } }`
	adminDeleteSPMutation           = `mutation($id: ID!) { adminDeleteServiceProvider(input: {id: $id}) { deletedId } }`
)

// count runs a count(*) query.
func count(t testing.TB, s *store.Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// webhook gives team a webhook, so that its membership changes are queued as deliveries.
func webhook(t testing.TB, s *store.Store, team uuid.UUID) {
	t.Helper()
	storetest.MustExec(t, s.DB(), "INSERT INTO team_webhooks (team_id, url) VALUES (?, 'https://scim.example.test/hook')", team)
}

// deliveries lists the operations queued for user in team, in order.
func deliveries(t testing.TB, s *store.Store, team, user uuid.UUID) []string {
	t.Helper()
	var ops []string
	err := s.DB().NewSelect().TableExpr("team_webhook_deliveries").Column("operation").
		Where("team_id = ? AND user_id = ?", team, user).OrderExpr("seq").Scan(context.Background(), &ops)
	if err != nil {
		t.Fatal(err)
	}
	return ops
}

func TestAdminCreateTeam(t *testing.T) {
	t.Parallel()
	a := newStaffAPI(t, allFeatures)
	s := a.s
	type teamOut struct {
		AdminCreateTeam struct {
			Team struct {
				ID                   uuid.UUID
				Name                 string
				ParentID             *uuid.UUID
				Depth                int
				IsVisibleAllServices bool
				Organization         struct{ ID uuid.UUID }
				Accesses             struct {
					Nodes []struct {
						User struct{ ID uuid.UUID }
						Role string
					}
				}
			}
		}
	}

	t.Run("a root and a child, owned by a user of another organization", func(t *testing.T) {
		t.Parallel()
		org := storetest.Organization(t, s)
		owner := storetest.User(t, s, storetest.Organization(t, s)).ID
		var root teamOut
		a.in(t).admin(adminCreateTeamMutation, map[string]any{"in": map[string]any{"name": " Root ", "organizationId": org, "ownerId": owner}}, &root)
		r := root.AdminCreateTeam.Team
		if r.Name != "Root" || r.Organization.ID != org || r.ParentID != nil || r.Depth != 1 || !r.IsVisibleAllServices {
			t.Errorf("root = %+v", r)
		}
		if len(r.Accesses.Nodes) != 1 || r.Accesses.Nodes[0].User.ID != owner || r.Accesses.Nodes[0].Role != "OWNER" {
			t.Errorf("accesses = %+v, want the owner only", r.Accesses.Nodes)
		}
		var child teamOut
		a.in(t).admin(adminCreateTeamMutation, map[string]any{"in": map[string]any{"name": "Child", "organizationId": org, "ownerId": owner,
			"parentId": r.ID, "isVisibleAllServices": false}}, &child)
		if c := child.AdminCreateTeam.Team; c.ParentID == nil || *c.ParentID != r.ID || c.Depth != 2 || c.IsVisibleAllServices {
			t.Errorf("child = %+v, want depth 2 under %s, not visible to all services", c, r.ID)
		}
	})

	org := storetest.Organization(t, s)
	owner := storetest.User(t, s, org).ID
	otherTeam := storetest.TeamWithEveryRole(t, s).ID
	for _, tc := range []struct {
		name        string
		in          map[string]any
		code, field string
	}{
		{"unknown organization", map[string]any{"organizationId": uuid.New(), "ownerId": owner}, "NOT_FOUND", "organizationId"},
		{"unknown owner", map[string]any{"organizationId": org, "ownerId": uuid.New()}, "NOT_FOUND", "ownerId"},
		{"inactive owner", map[string]any{"organizationId": org, "ownerId": storetest.User(t, s, org, storetest.Inactive()).ID}, "NOT_FOUND", "ownerId"},
		{"unknown parent", map[string]any{"organizationId": org, "ownerId": owner, "parentId": uuid.New()}, "NOT_FOUND", "parentId"},
		{"parent of another organization", map[string]any{"organizationId": org, "ownerId": owner, "parentId": otherTeam}, "BAD_USER_INPUT", "parentId"},
		{"blank name", map[string]any{"organizationId": org, "ownerId": owner, "name": "  "}, "BAD_USER_INPUT", "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, ok := tc.in["name"]; !ok {
				tc.in["name"] = "Refused " + storetest.Unique()
			}
			assertCode(t, a.in(t).adminTry(adminCreateTeamMutation, map[string]any{"in": tc.in}), tc.code, tc.field)
		})
	}
	if n := count(t, s, "SELECT count(*) FROM teams WHERE organization_id = ?", org); n != 0 {
		t.Errorf("%d teams made by refused creations", n)
	}
}

func TestAdminDeleteTeam(t *testing.T) {
	t.Parallel()
	a := newStaffAPI(t, allFeatures)
	s := a.s
	tm := storetest.TeamWithEveryRole(t, s)
	child := storetest.ChildTeam(t, s, tm.ID, "Child")
	storetest.Access(t, s, child, tm.Member, store.RoleOwner)
	webhook(t, s, child)

	r := a.adminTry(adminDeleteTeamMutation, map[string]any{"id": tm.ID})
	assertCode(t, r, "CONFLICT", "cascade")
	if len(r.Errors) > 0 && !strings.Contains(r.Errors[0].Message, "1 child") {
		t.Errorf("message %q does not name the children count", r.Errors[0].Message)
	}
	var out struct {
		AdminDeleteTeam struct{ DeletedIds []uuid.UUID }
	}
	a.admin(adminDeleteTeamMutation, map[string]any{"id": tm.ID, "cascade": true}, &out)
	if diff := cmp.Diff([]uuid.UUID{tm.ID, child}, out.AdminDeleteTeam.DeletedIds); diff != "" {
		t.Errorf("deletedIds (-want +got):\n%s", diff)
	}
	if got := deliveries(t, s, child, tm.Member); !slices.Equal(got, []string{"remove"}) {
		t.Errorf("deliveries for the child's member = %v, want one removal", got)
	}
	assertCode(t, a.adminTry(adminDeleteTeamMutation, map[string]any{"id": tm.ID}), "NOT_FOUND", "")
}

func TestAdminDeleteUser(t *testing.T) {
	t.Parallel()
	a := newStaffAPI(t, allFeatures)
	s := a.s
	ctx := context.Background()

	t.Run("everything goes but the profile contact and the audit trail", func(t *testing.T) {
		t.Parallel()
		tm := storetest.TeamWithEveryRole(t, s)
		webhook(t, s, tm.ID)
		u := tm.Member
		var profile uuid.UUID
		if err := s.DB().QueryRowContext(ctx, "INSERT INTO contacts (owner_id, user_id, full_name) VALUES (?0, ?0, 'Profile') RETURNING id", u).Scan(&profile); err != nil {
			t.Fatal(err)
		}
		storetest.MustExec(t, s.DB(), "INSERT INTO contacts (owner_id, full_name) VALUES (?, 'Private')", u)
		storetest.MustExec(t, s.DB(), "INSERT INTO user_identities (user_id, issuer, subject) VALUES (?, 'https://op.test', ?)", u, "s-"+storetest.Unique())
		if _, err := s.CreateSession(ctx, sessionHash(), store.NewSession{UserID: u, Issuer: "https://op.test", Subject: "x", IDToken: "t"}, time.Hour); err != nil {
			t.Fatal(err)
		}
		a.in(t).mustDo(session(u), `mutation { updateMe(input: {language: "fr-fr"}) { user { id } } }`, nil, nil)

		var out struct {
			AdminDeleteUser struct {
				DeletedID         uuid.UUID
				ReassignedTeamIds []uuid.UUID
			}
		}
		a.in(t).admin(adminDeleteUserMutation, map[string]any{"in": map[string]any{"id": u}}, &out)
		if out.AdminDeleteUser.DeletedID != u || len(out.AdminDeleteUser.ReassignedTeamIds) != 0 {
			t.Errorf("payload = %+v", out.AdminDeleteUser)
		}
		for what, q := range map[string]string{
			"users":      "SELECT count(*) FROM users WHERE id = ?",
			"accesses":   "SELECT count(*) FROM team_accesses WHERE user_id = ?",
			"sessions":   "SELECT count(*) FROM sessions WHERE user_id = ?",
			"identities": "SELECT count(*) FROM user_identities WHERE user_id = ?",
			"contacts":   "SELECT count(*) FROM contacts WHERE owner_id = ? OR user_id = ?0",
		} {
			if n := count(t, s, q, u); n != 0 {
				t.Errorf("%d %s left", n, what)
			}
		}
		if n := count(t, s, "SELECT count(*) FROM contacts WHERE id = ? AND owner_id IS NULL AND full_name = 'Profile'", profile); n != 1 {
			t.Error("the profile contact did not stay, as a public contact")
		}
		if got := deliveries(t, s, tm.ID, u); !slices.Equal(got, []string{"remove"}) {
			t.Errorf("deliveries = %v, want the membership's removal", got)
		}
		var ev struct {
			AdminAuditEvents struct {
				Nodes []struct {
					ActorID      *uuid.UUID
					Actor        *struct{ ID uuid.UUID }
					ActorDeleted bool
				}
			}
		}
		a.in(t).admin(`query($a: ID) { adminAuditEvents(actorId: $a, operation: "updateMe") { nodes { actorId actor { id } actorDeleted } } }`,
			map[string]any{"a": u}, &ev)
		if n := ev.AdminAuditEvents.Nodes; len(n) != 1 || n[0].ActorID == nil || *n[0].ActorID != u || n[0].Actor != nil || !n[0].ActorDeleted {
			t.Errorf("the deleted user's event = %+v, want actorId kept, actor null, actorDeleted", n)
		}
		a.in(t).admin(`query($a: ID) { adminAuditEvents(actorId: $a, operation: "adminDeleteUser") { nodes { actorId actor { id } actorDeleted } } }`,
			map[string]any{"a": a.staff}, &ev)
		for _, n := range ev.AdminAuditEvents.Nodes {
			if n.Actor == nil || n.ActorDeleted {
				t.Errorf("a living actor's event = %+v, want actor set, actorDeleted false", n)
			}
		}
	})

	t.Run("the profile contact goes on request", func(t *testing.T) {
		t.Parallel()
		u := storetest.User(t, s, a.org).ID
		storetest.MustExec(t, s.DB(), "INSERT INTO contacts (owner_id, user_id, full_name) VALUES (?0, ?0, 'Erased')", u)
		a.in(t).admin(adminDeleteUserMutation, map[string]any{"in": map[string]any{"id": u, "dropProfileContact": true}}, nil)
		if n := count(t, s, "SELECT count(*) FROM audit_events WHERE operation = 'adminDeleteUser' AND target_ids[1] = ? AND changes->>'profileContactKept' = 'false'", u); n != 1 {
			t.Errorf("%d events saying the profile contact went, want 1", n)
		}
	})

	t.Run("the last owner of teams is refused, naming them", func(t *testing.T) {
		t.Parallel()
		tm := storetest.TeamWithEveryRole(t, s)
		second := storetest.Team(t, s, tm.Org, "Second "+storetest.Unique())
		storetest.Access(t, s, second, tm.Owner, store.RoleOwner)
		shared := storetest.Team(t, s, tm.Org, "Shared")
		storetest.Access(t, s, shared, tm.Owner, store.RoleOwner)
		storetest.Access(t, s, shared, tm.Admin, store.RoleOwner)
		r := a.in(t).adminTry(adminDeleteUserMutation, map[string]any{"in": map[string]any{"id": tm.Owner}})
		assertCode(t, r, "CONFLICT", "reassignTo")
		if len(r.Errors) > 0 {
			msg := r.Errors[0].Message
			for _, want := range []string{"2 teams", tm.ID.String(), second.String()} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not name %s", msg, want)
				}
			}
			if strings.Contains(msg, shared.String()) {
				t.Errorf("message %q names a team with another owner", msg)
			}
		}
		if n := count(t, s, "SELECT count(*) FROM team_accesses WHERE user_id = ?", tm.Owner); n != 3 {
			t.Errorf("%d accesses left after the refusal, want 3", n)
		}
	})

	t.Run("reassignTo takes the teams over", func(t *testing.T) {
		t.Parallel()
		tm := storetest.TeamWithEveryRole(t, s)
		webhook(t, s, tm.ID)
		alone := storetest.Team(t, s, tm.Org, "Alone")
		storetest.Access(t, s, alone, tm.Owner, store.RoleOwner)
		heir := tm.Admin // already an administrator of the first team, a stranger to the second
		var out struct {
			AdminDeleteUser struct{ ReassignedTeamIds []uuid.UUID }
		}
		a.in(t).admin(adminDeleteUserMutation, map[string]any{"in": map[string]any{"id": tm.Owner, "reassignTo": heir}}, &out)
		got := out.AdminDeleteUser.ReassignedTeamIds
		slices.SortFunc(got, func(x, y uuid.UUID) int { return strings.Compare(x.String(), y.String()) })
		want := []uuid.UUID{tm.ID, alone}
		slices.SortFunc(want, func(x, y uuid.UUID) int { return strings.Compare(x.String(), y.String()) })
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("reassignedTeamIds (-want +got):\n%s", diff)
		}
		for _, team := range want {
			if n := count(t, s, "SELECT count(*) FROM team_accesses WHERE team_id = ? AND user_id = ? AND role = 'owner'", team, heir); n != 1 {
				t.Errorf("the heir is not the owner of %s", team)
			}
		}
		if got := deliveries(t, s, tm.ID, tm.Owner); !slices.Equal(got, []string{"remove"}) {
			t.Errorf("deliveries for the deleted owner = %v, want a removal", got)
		}
		if got := deliveries(t, s, tm.ID, heir); len(got) != 0 {
			t.Errorf("deliveries for the promoted administrator = %v, want none (a role change)", got)
		}
	})

	for _, tc := range []struct {
		name        string
		in          func() map[string]any
		code, field string
	}{
		{"staff cannot delete themselves", func() map[string]any { return map[string]any{"id": a.staff} }, "FORBIDDEN", ""},
		{"unknown user", func() map[string]any { return map[string]any{"id": uuid.New()} }, "NOT_FOUND", ""},
		{"reassignTo the user", func() map[string]any {
			u := storetest.User(t, s, a.org).ID
			return map[string]any{"id": u, "reassignTo": u}
		}, "BAD_USER_INPUT", "reassignTo"},
		{"reassignTo an unknown user", func() map[string]any {
			tm := storetest.TeamWithEveryRole(t, s)
			return map[string]any{"id": tm.Owner, "reassignTo": uuid.New()}
		}, "NOT_FOUND", "reassignTo"},
		{"reassignTo an inactive user", func() map[string]any {
			tm := storetest.TeamWithEveryRole(t, s)
			return map[string]any{"id": tm.Owner, "reassignTo": storetest.User(t, s, tm.Org, storetest.Inactive()).ID}
		}, "NOT_FOUND", "reassignTo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := tc.in()
			assertCode(t, a.in(t).adminTry(adminDeleteUserMutation, map[string]any{"in": in}), tc.code, tc.field)
			if id := in["id"].(uuid.UUID); tc.code != "NOT_FOUND" || tc.field != "" {
				if n := count(t, s, "SELECT count(*) FROM users WHERE id = ?", id); n != 1 {
					t.Error("the user was deleted despite the refusal")
				}
			}
		})
	}
}

// TestAdminDeleteUserRacesLastOwnerLeaving: staff delete one owner while the team's only other
// owner leaves it. Whichever comes first, the second sees it: exactly one succeeds, and the
// team keeps an owner.
func TestAdminDeleteUserRacesLastOwnerLeaving(t *testing.T) {
	t.Parallel()
	a := newStaffAPI(t, allFeatures)
	s := a.s
	for round := range 8 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			tm := storetest.TeamWithEveryRole(t, s)
			other := storetest.Access(t, s, tm.ID, tm.Outsider, store.RoleOwner)
			start := make(chan struct{})
			codes := make([]string, 2)
			var wg sync.WaitGroup
			wg.Go(func() {
				<-start
				codes[0] = a.in(t).adminTry(adminDeleteUserMutation, map[string]any{"in": map[string]any{"id": tm.Owner}}).Code()
			})
			wg.Go(func() {
				<-start
				codes[1] = a.in(t).do(session(tm.Outsider), `mutation($id: ID!) { deleteTeamAccess(input: {id: $id}) { deletedId } }`,
					map[string]any{"id": other}, nil).Code()
			})
			close(start)
			wg.Wait()
			if !slices.Equal(codes, []string{"", "FORBIDDEN"}) && !slices.Equal(codes, []string{"CONFLICT", ""}) {
				t.Errorf("codes (delete user, other owner leaves) = %q, want exactly one success", codes)
			}
			if n := count(t, s, "SELECT count(*) FROM team_accesses WHERE team_id = ? AND role = 'owner'", tm.ID); n != 1 {
				t.Errorf("the team has %d owners, want 1", n)
			}
		})
	}
}

func TestAdminDeleteOrganization(t *testing.T) {
	t.Parallel()
	a := newStaffAPI(t, allFeatures)
	s := a.s

	t.Run("an empty organization", func(t *testing.T) {
		t.Parallel()
		org := storetest.Organization(t, s)
		sp := storetest.ServiceProvider(t, s)
		storetest.MustExec(t, s.DB(), "INSERT INTO organization_service_providers (organization_id, service_provider_id) VALUES (?, ?)", org, sp)
		var out struct{ AdminDeleteOrganization struct{ DeletedID uuid.UUID } }
		a.in(t).admin(adminDeleteOrganizationMutation, map[string]any{"id": org}, &out)
		if out.AdminDeleteOrganization.DeletedID != org {
			t.Errorf("deletedId = %s, want %s", out.AdminDeleteOrganization.DeletedID, org)
		}
		if n := count(t, s, "SELECT (SELECT count(*) FROM organizations WHERE id = ?0) + (SELECT count(*) FROM organization_domains WHERE organization_id = ?0) + (SELECT count(*) FROM organization_service_providers WHERE organization_id = ?0)", org); n != 0 {
			t.Errorf("%d rows of the organization left", n)
		}
		assertCode(t, a.in(t).adminTry(adminDeleteOrganizationMutation, map[string]any{"id": org}), "NOT_FOUND", "")
	})

	t.Run("one with users and teams", func(t *testing.T) {
		t.Parallel()
		tm := storetest.TeamWithEveryRole(t, s)
		r := a.in(t).adminTry(adminDeleteOrganizationMutation, map[string]any{"id": tm.Org})
		assertCode(t, r, "CONFLICT", "")
		if len(r.Errors) > 0 && !strings.Contains(r.Errors[0].Message, "4 users and 1 teams") {
			t.Errorf("message %q does not give the counts", r.Errors[0].Message)
		}
	})
}

func TestAdminDeleteServiceProvider(t *testing.T) {
	t.Parallel()
	a := newStaffAPI(t, allFeatures)
	s := a.s
	sp := storetest.ServiceProvider(t, s)
	tm := storetest.TeamWithEveryRole(t, s)
	storetest.MustExec(t, s.DB(), "INSERT INTO organization_service_providers (organization_id, service_provider_id) VALUES (?, ?)", tm.Org, sp)
	storetest.MustExec(t, s.DB(), "INSERT INTO team_service_providers (team_id, service_provider_id) VALUES (?, ?)", tm.ID, sp)
	a.admin(adminDeleteSPMutation, map[string]any{"id": sp}, nil)
	if n := count(t, s, "SELECT (SELECT count(*) FROM service_providers WHERE id = ?0) + (SELECT count(*) FROM organization_service_providers WHERE service_provider_id = ?0) + (SELECT count(*) FROM team_service_providers WHERE service_provider_id = ?0)", sp); n != 0 {
		t.Errorf("%d rows of the service provider left", n)
	}
	if n := count(t, s, "SELECT count(*) FROM teams WHERE id = ?", tm.ID); n != 1 {
		t.Error("the linked team went with the service provider")
	}
	assertCode(t, a.adminTry(adminDeleteSPMutation, map[string]any{"id": sp}), "NOT_FOUND", "")
}

func TestAdminInvitations(t *testing.T) {
	t.Parallel()
	a := newStaffAPI(t, allFeatures)
	s := a.s
	tok := storetest.Unique()
	t1, t2 := storetest.TeamWithEveryRole(t, s), storetest.TeamWithEveryRole(t, s)
	old := insertInvitation(t, s, t1.ID, t1.Owner, "old-"+tok+"@example.test", "now() - interval '1 year'")
	mid := insertInvitation(t, s, t2.ID, t2.Admin, "Mid-"+tok+"@example.test", "now() - interval '1 hour'")
	recent := insertInvitation(t, s, t1.ID, t1.Admin, "recent-"+tok+"@example.test", "now()")
	type node struct {
		ID        uuid.UUID
		Email     string
		IsExpired bool
		Team      struct{ ID uuid.UUID }
		Issuer    struct{ ID uuid.UUID }
	}
	list := func(t *testing.T, vars map[string]any) []node {
		var out struct{ AdminInvitations struct{ Nodes []node } }
		a.in(t).admin(`query($search: String, $team: ID) { adminInvitations(search: $search, teamId: $team, first: 100) {
			nodes { id email isExpired team { id } issuer { id } } } }`, vars, &out)
		return out.AdminInvitations.Nodes
	}
	ids := func(ns []node) []uuid.UUID { return idsOf(ns, func(n node) uuid.UUID { return n.ID }) }

	all := list(t, map[string]any{"search": strings.ToUpper(tok)})
	if diff := cmp.Diff([]uuid.UUID{recent, mid, old}, ids(all)); diff != "" {
		t.Fatalf("search, newest first (-want +got):\n%s", diff)
	}
	if n := all[2]; !n.IsExpired || n.Team.ID != t1.ID || n.Issuer.ID != t1.Owner {
		t.Errorf("old invitation = %+v", n)
	}
	if diff := cmp.Diff([]uuid.UUID{recent, old}, ids(list(t, map[string]any{"search": tok, "team": t1.ID}))); diff != "" {
		t.Errorf("one team (-want +got):\n%s", diff)
	}

	const del = `mutation($id: ID!) { adminDeleteInvitation(input: {id: $id}) { deletedId } }`
	a.admin(del, map[string]any{"id": mid}, nil)
	if diff := cmp.Diff([]uuid.UUID{recent, old}, ids(list(t, map[string]any{"search": tok}))); diff != "" {
		t.Errorf("after the deletion (-want +got):\n%s", diff)
	}
	assertCode(t, a.adminTry(del, map[string]any{"id": mid}), "NOT_FOUND", "")
}

func TestAdminContacts(t *testing.T) {
	t.Parallel()
	a := newStaffAPI(t, allFeatures)
	s := a.s
	tok := storetest.Unique()
	alice, bob := storetest.User(t, s, a.org).ID, storetest.User(t, s, storetest.Organization(t, s)).ID
	contact := func(owner uuid.UUID, name string, data string) uuid.UUID {
		var id uuid.UUID
		if err := s.DB().QueryRowContext(context.Background(), "INSERT INTO contacts (owner_id, full_name, data) VALUES (?, ?, ?::jsonb) RETURNING id",
			owner, name, data).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	a1 := contact(alice, "Annie "+tok, `{}`)
	b1 := contact(bob, "Bert", `{"emails": [{"type": "Work", "value": "bert-`+tok+`@example.test"}]}`)
	type node struct {
		ID       uuid.UUID
		FullName string
		Owner    *struct{ ID uuid.UUID }
		Data     map[string]any
	}
	list := func(t *testing.T, vars map[string]any) []uuid.UUID {
		var out struct{ AdminContacts struct{ Nodes []node } }
		a.in(t).admin(`query($search: String, $owner: ID) { adminContacts(search: $search, ownerId: $owner, first: 100) {
			nodes { id fullName owner { id } data } } }`, vars, &out)
		return idsOf(out.AdminContacts.Nodes, func(n node) uuid.UUID { return n.ID })
	}
	if diff := cmp.Diff([]uuid.UUID{a1, b1}, list(t, map[string]any{"search": tok})); diff != "" {
		t.Errorf("search by name or email, private contacts of anyone (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]uuid.UUID{b1}, list(t, map[string]any{"owner": bob})); diff != "" {
		t.Errorf("one owner (-want +got):\n%s", diff)
	}

	const update = `mutation($in: UpdateContactInput!) { adminUpdateContact(input: $in) { contact { id fullName owner { id } data } } }`
	var out struct{ AdminUpdateContact struct{ Contact node } }
	a.admin(update, map[string]any{"in": map[string]any{"id": b1, "fullName": " Bertrand ",
		"data": map[string]any{"phones": []any{map[string]any{"type": "Work", "value": "+33 1 23"}}}}}, &out)
	if c := out.AdminUpdateContact.Contact; c.FullName != "Bertrand" || c.Owner == nil || c.Owner.ID != bob || c.Data["phones"] == nil {
		t.Errorf("updated contact = %+v, want the new name and data, the owner kept", c)
	}
	assertCode(t, a.adminTry(update, map[string]any{"in": map[string]any{"id": b1, "data": map[string]any{"emails": "nope"}}}), "BAD_USER_INPUT", "data")
	assertCode(t, a.adminTry(update, map[string]any{"in": map[string]any{"id": b1, "fullName": ""}}), "BAD_USER_INPUT", "fullName")
	assertCode(t, a.adminTry(update, map[string]any{"in": map[string]any{"id": uuid.New(), "fullName": "x"}}), "NOT_FOUND", "")
}

func TestAdminUserExport(t *testing.T) {
	t.Parallel()
	a := newStaffAPI(t, allFeatures)
	s := a.s
	ctx := context.Background()
	tm := storetest.TeamWithEveryRole(t, s)
	u, err := s.UserByID(ctx, tm.Member)
	if err != nil {
		t.Fatal(err)
	}
	other := storetest.TeamWithEveryRole(t, s)
	invitation := insertInvitation(t, s, other.ID, other.Owner, strings.ToUpper(u.Email), "now()")
	storetest.MustExec(t, s.DB(), "INSERT INTO user_identities (user_id, issuer, subject) VALUES (?, 'https://op.test', 'exported-subject')", u.ID)
	storetest.MustExec(t, s.DB(), "INSERT INTO contacts (owner_id, user_id, full_name) VALUES (?0, ?0, 'My Profile')", u.ID)
	storetest.MustExec(t, s.DB(), "INSERT INTO contacts (owner_id, full_name, notes) VALUES (?, 'A Friend', 'friendly notes')", u.ID)
	hash := sessionHash()
	idToken := "id-token-" + storetest.Unique()
	if _, err := s.CreateSession(ctx, hash, store.NewSession{UserID: u.ID, Issuer: "https://op.test", Subject: "exported-subject",
		SID: "sid-secret", IDToken: idToken}, time.Hour); err != nil {
		t.Fatal(err)
	}
	a.mustDo(session(u.ID), `mutation { updateMe(input: {language: "fr-fr"}) { user { id } } }`, nil, nil)

	var raw struct{ AdminUserExport json.RawMessage }
	a.admin(`query($id: ID!) { adminUserExport(id: $id) }`, map[string]any{"id": u.ID}, &raw)
	var doc struct {
		User struct {
			ID    uuid.UUID
			Email string
		}
		Identities   []struct{ Subject string }
		TeamAccesses []struct {
			TeamID uuid.UUID
			Role   string
		}
		InvitationsToTheirEmail []struct{ ID uuid.UUID }
		ProfileContact          struct{ FullName string }
		Contacts                []struct{ FullName, Notes string }
		Sessions                []struct{ Issuer string }
		AuditEventsTotal        int
		AuditEvents             []struct{ Operation string }
	}
	if err := json.Unmarshal(raw.AdminUserExport, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.User.ID != u.ID || doc.User.Email != u.Email {
		t.Errorf("user = %+v", doc.User)
	}
	if len(doc.Identities) != 1 || doc.Identities[0].Subject != "exported-subject" {
		t.Errorf("identities = %+v", doc.Identities)
	}
	if len(doc.TeamAccesses) != 1 || doc.TeamAccesses[0].TeamID != tm.ID || doc.TeamAccesses[0].Role != "member" {
		t.Errorf("teamAccesses = %+v", doc.TeamAccesses)
	}
	if len(doc.InvitationsToTheirEmail) != 1 || doc.InvitationsToTheirEmail[0].ID != invitation {
		t.Errorf("invitations = %+v, want the one to their email, whatever its case", doc.InvitationsToTheirEmail)
	}
	if doc.ProfileContact.FullName != "My Profile" || len(doc.Contacts) != 1 || doc.Contacts[0].Notes != "friendly notes" {
		t.Errorf("profile contact %+v, contacts %+v", doc.ProfileContact, doc.Contacts)
	}
	if len(doc.Sessions) != 1 {
		t.Errorf("sessions = %+v, want one", doc.Sessions)
	}
	if doc.AuditEventsTotal != 1 || len(doc.AuditEvents) != 1 || doc.AuditEvents[0].Operation != "updateMe" {
		t.Errorf("audit events (%d) = %+v, want their updateMe", doc.AuditEventsTotal, doc.AuditEvents)
	}
	for _, secret := range []string{idToken, "sid-secret", hex.EncodeToString(hash)} {
		if strings.Contains(string(raw.AdminUserExport), secret) {
			t.Errorf("the export holds a credential: %s", raw.AdminUserExport)
		}
	}
	assertCode(t, a.adminTry(`query($id: ID!) { adminUserExport(id: $id) }`, map[string]any{"id": uuid.New()}), "NOT_FOUND", "")
}
