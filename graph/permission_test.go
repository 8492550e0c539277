package graph_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"lasuite.fr/people/graph"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// Outcomes of an operation, as extensions.code.
const (
	codeOK        = "" // success
	codeForbidden = graph.CodeForbidden
	codeNotFound  = graph.CodeNotFound
)

const (
	rOwner     = store.RoleOwner
	rAdmin     = store.RoleAdministrator
	rMember    = store.RoleMember
	rOutsider  = store.Role("")      // in the team's organization, not in the team
	rInherited = store.RoleInherited // a member of a child of the team, not of the team
)

// viewers are the callers of every case, in the order of the want columns below.
var teamViewers = []store.Role{rOwner, rAdmin, rMember, rOutsider, rInherited}

// viewerIn returns the user holding role in tm; for rInherited, a new member of a new child
// team of tm.
func viewerIn(tb testing.TB, s *store.Store, tm storetest.TeamRoles, role store.Role) uuid.UUID {
	tb.Helper()
	if role != rInherited {
		return tm.UserWith(role)
	}
	u := storetest.User(tb, s, tm.Org).ID
	storetest.Access(tb, s, storetest.ChildTeam(tb, s, tm.ID, "Child "+storetest.Unique()), u, store.RoleMember)
	return u
}

var teamRoles = []store.Role{rOwner, rAdmin, rMember}

// gqlRole is the GraphQL spelling of a role.
func gqlRole(r store.Role) string { return strings.ToUpper(string(r)) }

// TestTeamPermissions runs every team operation as every role, each in a fresh team with one
// user per role, and checks the outcome against the rules, then checks that the abilities the
// same viewer was shown just before promised exactly that outcome.
func TestTeamPermissions(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)

	// Team-level operations: want is indexed like teamViewers (owner, administrator, member,
	// outsider, inherited). promised is what the viewer's Team.role and Team.abilities say
	// about it. A viewer who sees the team only as an ancestor of theirs (inherited) reads it
	// and nothing more; its invitations are hidden from them (NOT_FOUND), as its accesses.
	teamOps := []struct {
		name     string
		want     [5]string
		run      func(a *api, tm storetest.TeamRoles, viewer uuid.UUID) result
		promised func(v teamSeen) bool
	}{
		{"read team", [5]string{codeOK, codeOK, codeOK, codeNotFound, codeOK}, readTeamOp, func(v teamSeen) bool { return v.Abilities.Get }},
		{"update team", [5]string{codeOK, codeOK, codeForbidden, codeNotFound, codeForbidden}, updateTeamOp, func(v teamSeen) bool { return v.Abilities.Update }},
		{"delete team", [5]string{codeOK, codeForbidden, codeForbidden, codeNotFound, codeForbidden}, deleteTeamOp, func(v teamSeen) bool { return v.Abilities.Delete }},
		{"add an owner", [5]string{codeOK, codeForbidden, codeForbidden, codeNotFound, codeForbidden}, addAccessOp(rOwner), promisesOwnerGrant},
		{"add an administrator", [5]string{codeOK, codeOK, codeForbidden, codeNotFound, codeForbidden}, addAccessOp(rAdmin), promisesManageAccesses},
		{"add a member", [5]string{codeOK, codeOK, codeForbidden, codeNotFound, codeForbidden}, addAccessOp(rMember), promisesManageAccesses},
		{"invite an owner", [5]string{codeOK, codeForbidden, codeForbidden, codeNotFound, codeForbidden}, inviteOp(rOwner), promisesOwnerGrant},
		{"invite an administrator", [5]string{codeOK, codeOK, codeForbidden, codeNotFound, codeForbidden}, inviteOp(rAdmin), promisesManageAccesses},
		{"invite a member", [5]string{codeOK, codeOK, codeForbidden, codeNotFound, codeForbidden}, inviteOp(rMember), promisesManageAccesses},
		{"withdraw an invitation", [5]string{codeOK, codeOK, codeForbidden, codeNotFound, codeNotFound}, withdrawInvitationOp, promisesManageAccesses},
		{"create a child team", [5]string{codeOK, codeOK, codeForbidden, codeNotFound, codeForbidden}, createChildOp, func(v teamSeen) bool { return v.Abilities.Update }},
		{"move the team under a team the viewer manages", [5]string{codeOK, codeOK, codeForbidden, codeNotFound, codeForbidden}, moveTeamOp, func(v teamSeen) bool { return v.Abilities.Update }},
		{"move a team the viewer manages under the team", [5]string{codeOK, codeOK, codeForbidden, codeNotFound, codeForbidden}, moveUnderTeamOp, func(v teamSeen) bool { return v.Abilities.Update }},
		{"share with a service of the organization", [5]string{codeOK, codeOK, codeForbidden, codeNotFound, codeForbidden}, linkServiceOp, func(v teamSeen) bool { return v.Abilities.Update }},
	}
	for _, op := range teamOps {
		for i, viewer := range teamViewers {
			t.Run(fmt.Sprintf("%s as %s", op.name, viewerName(viewer)), func(t *testing.T) {
				t.Parallel()
				a := newAPI(t, s, allFeatures)
				tm := storetest.TeamWithEveryRole(t, s)
				insertInvitation(t, s, tm.ID, tm.Owner, "invitee-"+storetest.Unique()+"@example.test", "now()")
				user := viewerIn(t, s, tm, viewer)
				before := seeTeam(a, tm, user)
				was := storedTeam(t, s, tm.ID)
				got := op.run(a, tm, user).Code()
				if got != op.want[i] {
					t.Errorf("code = %q, want %q", got, op.want[i])
				}
				if now := storedTeam(t, s, tm.ID); got != codeOK && now != was {
					t.Errorf("after refusal: the team changed from\n%s\nto\n%s", was, now)
				}
				if promised := op.promised(before); promised != (got == codeOK) {
					t.Errorf("abilities %+v (role %s) promise %v, but the operation answered %q", before.Abilities, before.Role, promised, got)
				}
			})
		}
	}

	// Access-level operations, by target. Every viewer not listed for a target is refused
	// (FORBIDDEN; NOT_FOUND for the outsider). Setting an access to its current role is never a
	// success: it is not in setRoleTo.
	type allowed struct {
		setRoleTo []store.Role
		remove    bool
	}
	rules := []struct {
		target accessTarget
		by     map[store.Role]allowed
	}{
		// Nobody demotes or removes the last owner, not even that owner.
		{targetSoleOwner, nil},
		// An owner steps down or leaves while another owner remains.
		{targetOwnerWithCoOwner, map[store.Role]allowed{rOwner: {[]store.Role{rAdmin, rMember}, true}}},
		// Nobody demotes or removes another owner.
		{targetCoOwner, nil},
		{targetAdministrator, map[store.Role]allowed{
			rOwner: {[]store.Role{rOwner, rMember}, true},
			rAdmin: {[]store.Role{rMember}, true}, // steps down, or leaves
		}},
		{targetOtherAdministrator, map[store.Role]allowed{
			rOwner: {[]store.Role{rOwner, rMember}, true},
			rAdmin: {[]store.Role{rMember}, true},
		}},
		{targetMember, map[store.Role]allowed{
			rOwner:  {[]store.Role{rOwner, rAdmin}, true},
			rAdmin:  {[]store.Role{rAdmin}, true},
			rMember: {nil, true}, // a member may leave
		}},
		{targetOtherMember, map[store.Role]allowed{
			rOwner: {[]store.Role{rOwner, rAdmin}, true},
			rAdmin: {[]store.Role{rAdmin}, true},
		}},
	}
	for _, rule := range rules {
		for _, viewer := range teamViewers {
			may := rule.by[viewer]
			refused := codeForbidden
			if viewer == rOutsider || viewer == rInherited {
				refused = codeNotFound // the team's accesses are hidden from both
			}
			expect := func(allowed bool) string {
				if allowed {
					return codeOK
				}
				return refused
			}
			for _, to := range teamRoles {
				name := fmt.Sprintf("%s sets %s to %s", viewerName(viewer), rule.target, to)
				want := expect(slices.Contains(may.setRoleTo, to))
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					a := newAPI(t, s, allFeatures)
					tm, access := teamWithTarget(t, s, rule.target)
					user := viewerIn(t, s, tm, viewer)
					before := seeTeam(a, tm, user).access(access)
					was := storedRole(t, s, access)
					var out struct {
						UpdateTeamAccess struct{ Access struct{ Role string } }
					}
					got := a.do(session(user), `mutation($id: ID!, $role: TeamRole!) {
						updateTeamAccess(input: {id: $id, role: $role}) { access { role } } }`,
						map[string]any{"id": access, "role": gqlRole(to)}, &out).Code()
					if got != want {
						t.Errorf("code = %q, want %q", got, want)
					}
					now := storedRole(t, s, access)
					switch {
					case got == codeOK && (now != to || out.UpdateTeamAccess.Access.Role != gqlRole(to)):
						t.Errorf("after success: stored role %q, answered %q, want %q", now, out.UpdateTeamAccess.Access.Role, to)
					case got != codeOK && now != was:
						t.Errorf("after refusal: role changed from %q to %q", was, now)
					}
					if promised := slices.Contains(before.Abilities.SetRoleTo, gqlRole(to)); promised != (got == codeOK) {
						t.Errorf("setRoleTo %v promises %v, but the update answered %q", before.Abilities.SetRoleTo, promised, got)
					}
				})
			}
			name := fmt.Sprintf("%s removes %s", viewerName(viewer), rule.target)
			want := expect(may.remove)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				a := newAPI(t, s, allFeatures)
				tm, access := teamWithTarget(t, s, rule.target)
				user := viewerIn(t, s, tm, viewer)
				before := seeTeam(a, tm, user).access(access)
				got := a.do(session(user), `mutation($id: ID!) { deleteTeamAccess(input: {id: $id}) { deletedId } }`,
					map[string]any{"id": access}, nil).Code()
				if got != want {
					t.Errorf("code = %q, want %q", got, want)
				}
				if gone := storedRole(t, s, access) == ""; gone != (got == codeOK) {
					t.Errorf("access removed: %v, but the deletion answered %q", gone, got)
				}
				if before.Abilities.Delete != (got == codeOK) {
					t.Errorf("abilities.delete = %v, but the deletion answered %q", before.Abilities.Delete, got)
				}
			})
		}
	}
}

// accessTarget names the access an access-level case acts on.
type accessTarget string

const (
	targetSoleOwner          accessTarget = "the sole owner"
	targetOwnerWithCoOwner   accessTarget = "the first of two owners"
	targetCoOwner            accessTarget = "the second of two owners"
	targetAdministrator      accessTarget = "the administrator"
	targetOtherAdministrator accessTarget = "a second administrator"
	targetMember             accessTarget = "the member"
	targetOtherMember        accessTarget = "a second member"
)

// teamWithTarget makes a fresh team with one user per role, plus the second user the target needs, and
// returns it with the target access. The owner, administrator and member of the team are the
// viewers, so "the administrator" seen by the administrator is their own access.
func teamWithTarget(tb testing.TB, s *store.Store, tg accessTarget) (storetest.TeamRoles, uuid.UUID) {
	tb.Helper()
	tm := storetest.TeamWithEveryRole(tb, s)
	second := func(r store.Role) uuid.UUID {
		return storetest.Access(tb, s, tm.ID, storetest.User(tb, s, tm.Org).ID, r)
	}
	switch tg {
	case targetSoleOwner:
		return tm, tm.OwnerAccess
	case targetOwnerWithCoOwner:
		second(rOwner)
		return tm, tm.OwnerAccess
	case targetCoOwner:
		return tm, second(rOwner)
	case targetAdministrator:
		return tm, tm.AdminAccess
	case targetOtherAdministrator:
		return tm, second(rAdmin)
	case targetMember:
		return tm, tm.MemberAccess
	case targetOtherMember:
		return tm, second(rMember)
	}
	tb.Fatalf("unknown target %q", tg)
	return tm, uuid.Nil
}

func viewerName(r store.Role) string {
	if r == rOutsider {
		return "outsider"
	} else if r == rInherited {
		return "member of a child team"
	}
	return string(r)
}

// storedRole reads an access's role with plain SQL; "" when it no longer exists.
func storedRole(tb testing.TB, s *store.Store, access uuid.UUID) store.Role {
	tb.Helper()
	var r store.Role
	err := s.DB().QueryRowContext(context.Background(), "SELECT role FROM team_accesses WHERE id = ?", access).Scan(&r)
	if errors.Is(err, sql.ErrNoRows) {
		return ""
	} else if err != nil {
		tb.Fatal(err)
	}
	return r
}

// storedTeam reads, with plain SQL, everything a team operation may change: the team's row,
// its accesses and its invitations; "gone" when the team no longer exists.
func storedTeam(tb testing.TB, s *store.Store, team uuid.UUID) string {
	tb.Helper()
	var row string
	err := s.DB().QueryRowContext(context.Background(), `SELECT t::text
		|| ' accesses: ' || coalesce((SELECT string_agg(a.user_id || '=' || a.role, ', ' ORDER BY a.user_id) FROM team_accesses a WHERE a.team_id = t.id), '')
		|| ' invitations: ' || coalesce((SELECT string_agg(i.email || '=' || i.role, ', ' ORDER BY i.email) FROM invitations i WHERE i.team_id = t.id), '')
		FROM teams t WHERE t.id = ?`, team).Scan(&row)
	if errors.Is(err, sql.ErrNoRows) {
		return "gone"
	} else if err != nil {
		tb.Fatal(err)
	}
	return row
}

// teamSeen is what a viewer is shown of a team before acting on it; the zero value for a team
// they cannot see.
type teamSeen struct {
	Role      string
	Abilities struct{ Get, Update, Delete, ManageAccesses bool }
	Accesses  struct {
		Nodes []accessSeen
	}
}

type accessSeen struct {
	ID        uuid.UUID
	Abilities struct {
		Delete    bool
		SetRoleTo []string
	}
}

func (v teamSeen) access(id uuid.UUID) accessSeen {
	for _, a := range v.Accesses.Nodes {
		if a.ID == id {
			return a
		}
	}
	return accessSeen{}
}

// seeTeam reads the team's abilities and its accesses' abilities as viewer.
func seeTeam(a *api, tm storetest.TeamRoles, viewer uuid.UUID) teamSeen {
	a.tb.Helper()
	var out struct{ Team teamSeen }
	r := a.do(session(viewer), `query($id: ID!) { team(id: $id) {
		role abilities { get update delete manageAccesses }
		accesses(first: 100) { nodes { id abilities { delete setRoleTo } } } } }`, map[string]any{"id": tm.ID}, &out)
	if c := r.Code(); c != codeOK && c != codeNotFound {
		a.tb.Fatalf("view team: %+v", r.Errors)
	}
	return out.Team
}

func promisesManageAccesses(v teamSeen) bool { return v.Abilities.ManageAccesses }

// promisesOwnerGrant: no ability says "may make owners"; a client reads it from the viewer's role.
func promisesOwnerGrant(v teamSeen) bool { return v.Abilities.ManageAccesses && v.Role == "OWNER" }

func readTeamOp(a *api, tm storetest.TeamRoles, viewer uuid.UUID) result {
	return a.do(session(viewer), `query($id: ID!) { team(id: $id) { id name } }`, map[string]any{"id": tm.ID}, nil)
}

func updateTeamOp(a *api, tm storetest.TeamRoles, viewer uuid.UUID) result {
	return a.do(session(viewer), `mutation($id: ID!) { updateTeam(input: {id: $id, name: "Renamed"}) { team { name } } }`,
		map[string]any{"id": tm.ID}, nil)
}

func deleteTeamOp(a *api, tm storetest.TeamRoles, viewer uuid.UUID) result {
	return a.do(session(viewer), `mutation($id: ID!) { deleteTeam(input: {id: $id}) { deletedId } }`, map[string]any{"id": tm.ID}, nil)
}

func addAccessOp(role store.Role) func(a *api, tm storetest.TeamRoles, viewer uuid.UUID) result {
	return func(a *api, tm storetest.TeamRoles, viewer uuid.UUID) result {
		newcomer := storetest.User(a.tb, a.s, tm.Org).ID
		return a.do(session(viewer), `mutation($team: ID!, $user: ID!, $role: TeamRole!) {
			createTeamAccess(input: {teamId: $team, userId: $user, role: $role}) { access { role } } }`,
			map[string]any{"team": tm.ID, "user": newcomer, "role": gqlRole(role)}, nil)
	}
}

func inviteOp(role store.Role) func(a *api, tm storetest.TeamRoles, viewer uuid.UUID) result {
	return func(a *api, tm storetest.TeamRoles, viewer uuid.UUID) result {
		return a.do(session(viewer), `mutation($team: ID!, $email: String!, $role: TeamRole!) {
			createInvitation(input: {teamId: $team, email: $email, role: $role}) { invitation { role } } }`,
			map[string]any{"team": tm.ID, "email": "invitee-" + storetest.Unique() + "@example.test", "role": gqlRole(role)}, nil)
	}
}

// withdrawInvitationOp withdraws the pending invitation every case's team starts with.
func withdrawInvitationOp(a *api, tm storetest.TeamRoles, viewer uuid.UUID) result {
	var inv uuid.UUID
	if err := a.s.DB().QueryRowContext(context.Background(), "SELECT id FROM invitations WHERE team_id = ?", tm.ID).Scan(&inv); err != nil {
		a.tb.Fatalf("the team's invitation: %v", err)
	}
	return a.do(session(viewer), `mutation($id: ID!) { deleteInvitation(input: {id: $id}) { deletedId } }`, map[string]any{"id": inv}, nil)
}

// insertInvitation writes an invitation with plain SQL, created at createdAt (an SQL
// expression): the invitations table refuses any later change of created_at.
func insertInvitation(tb testing.TB, s *store.Store, team, issuer uuid.UUID, email, createdAt string) uuid.UUID {
	tb.Helper()
	var id uuid.UUID
	err := s.DB().QueryRowContext(context.Background(), `INSERT INTO invitations (email, team_id, role, issuer_id, created_at)
		VALUES (?, ?, 'member', ?, `+createdAt+`) RETURNING id`, email, team, issuer).Scan(&id)
	if err != nil {
		tb.Fatalf("insert invitation: %v", err)
	}
	return id
}

// createChildOp creates a team under the case's team.
func createChildOp(a *api, tm storetest.TeamRoles, viewer uuid.UUID) result {
	return a.do(session(viewer), `mutation($p: ID!) { createTeam(input: {name: "Child", parentId: $p}) { team { id } } }`,
		map[string]any{"p": tm.ID}, nil)
}

// managedTeam is a new root team of tm's organization that viewer owns.
func managedTeam(a *api, tm storetest.TeamRoles, viewer uuid.UUID) uuid.UUID {
	id := storetest.Team(a.tb, a.s, tm.Org, "Managed "+storetest.Unique())
	storetest.Access(a.tb, a.s, id, viewer, store.RoleOwner)
	return id
}

// moveTeamOp moves the case's team under a team the viewer owns: the viewer's role in the
// case's team decides.
func moveTeamOp(a *api, tm storetest.TeamRoles, viewer uuid.UUID) result {
	return a.do(session(viewer), `mutation($id: ID!, $p: ID) { moveTeam(input: {id: $id, parentId: $p}) { team { id } } }`,
		map[string]any{"id": tm.ID, "p": managedTeam(a, tm, viewer)}, nil)
}

// moveUnderTeamOp moves a team the viewer owns under the case's team: the viewer's role in the
// new parent decides.
func moveUnderTeamOp(a *api, tm storetest.TeamRoles, viewer uuid.UUID) result {
	return a.do(session(viewer), `mutation($id: ID!, $p: ID) { moveTeam(input: {id: $id, parentId: $p}) { team { id } } }`,
		map[string]any{"id": managedTeam(a, tm, viewer), "p": tm.ID}, nil)
}

// linkServiceOp shares the case's team with a service provider of its organization.
func linkServiceOp(a *api, tm storetest.TeamRoles, viewer uuid.UUID) result {
	return a.do(session(viewer), `mutation($t: ID!, $sp: ID!) { linkTeamServiceProvider(input: {teamId: $t, serviceProviderId: $sp}) { team { id } } }`,
		map[string]any{"t": tm.ID, "sp": organizationServiceProvider(a.tb, a.s, tm.Org)}, nil)
}
