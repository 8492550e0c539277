package graph_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"lasuite.fr/people/graph"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// organizationServiceProvider creates a service provider linked to org.
func organizationServiceProvider(tb testing.TB, s *store.Store, org uuid.UUID) uuid.UUID {
	tb.Helper()
	id, _ := linkedServiceProvider(tb, s, "Service "+storetest.Unique(), org)
	return id
}

// treeNode is a team as the tree tests read it.
type treeNode struct {
	ID        uuid.UUID
	Name      string
	Role      string
	Inherited bool
	Depth     int
	Path      string
	Numchild  int
	Abilities struct{ Get, Update, Delete, ManageAccesses bool }
	Parent    *struct{ ID uuid.UUID }
	Ancestors []struct{ ID uuid.UUID }
	Children  struct {
		TotalCount int
		Nodes      []struct{ ID uuid.UUID }
	}
	Accesses    struct{ TotalCount int }
	Invitations struct{ TotalCount int }
}

const treeFields = `id name role inherited depth path numchild abilities { get update delete manageAccesses }
	parent { id } ancestors { id } children { totalCount nodes { id } }
	accesses { totalCount } invitations { totalCount }`

func (a *api) treeTeam(p uuid.UUID, id uuid.UUID) (treeNode, result) {
	a.tb.Helper()
	var out struct{ Team treeNode }
	r := a.do(session(p), `query($id: ID!) { team(id: $id) { `+treeFields+` } }`, map[string]any{"id": id}, &out)
	return out.Team, r
}

func TestTeamTree(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	tm := storetest.TeamWithEveryRole(t, s)
	insertInvitation(t, s, tm.ID, tm.Owner, "invitee-"+storetest.Unique()+"@example.test", "now()")

	// The root's owner creates a child, and makes the member its owner.
	var created struct {
		CreateTeam struct{ Team treeNode }
	}
	a.mustDo(session(tm.Owner), `mutation($p: ID!) { createTeam(input: {name: "Child", parentId: $p}) { team { `+treeFields+` } } }`,
		map[string]any{"p": tm.ID}, &created)
	child := created.CreateTeam.Team
	if child.Depth != 2 || child.Parent == nil || child.Parent.ID != tm.ID || len(child.Ancestors) != 1 || child.Inherited || child.Role != "OWNER" {
		t.Fatalf("child = %+v", child)
	}
	storetest.Access(t, s, child.ID, tm.Outsider, store.RoleMember)
	grandchild := storetest.ChildTeam(t, s, child.ID, "Grandchild")
	storetest.Access(t, s, grandchild, tm.Outsider, store.RoleOwner)

	t.Run("a member of a grandchild sees the ancestors, inherited and read-only", func(t *testing.T) {
		root, r := a.treeTeam(tm.Outsider, tm.ID)
		if r.Code() != "" {
			t.Fatalf("errors: %+v", r.Errors)
		}
		if !root.Inherited || root.Role != "MEMBER" || root.Abilities != (struct{ Get, Update, Delete, ManageAccesses bool }{Get: true}) {
			t.Errorf("root seen = %+v", root)
		}
		if root.Accesses.TotalCount != 0 || root.Invitations.TotalCount != 0 {
			t.Errorf("an inherited team shows %d accesses and %d invitations, want none", root.Accesses.TotalCount, root.Invitations.TotalCount)
		}
		if root.Numchild != 1 || root.Children.TotalCount != 1 || root.Children.Nodes[0].ID != child.ID {
			t.Errorf("root's children = %+v (numchild %d)", root.Children, root.Numchild)
		}
		g, _ := a.treeTeam(tm.Outsider, grandchild)
		if diff := cmp.Diff([]struct{ ID uuid.UUID }{{tm.ID}, {child.ID}}, g.Ancestors); diff != "" {
			t.Errorf("ancestors (-want +got):\n%s", diff)
		}
		expectCode(t, a.do(session(tm.Outsider), `mutation($id: ID!) { updateTeam(input: {id: $id, name: "x"}) { team { id } } }`,
			map[string]any{"id": tm.ID}, nil), graph.CodeForbidden, "")
	})
	t.Run("descendants stay hidden from the parent's members", func(t *testing.T) {
		root, _ := a.treeTeam(tm.Member, tm.ID)
		if root.Children.TotalCount != 0 || root.Numchild != 1 {
			t.Errorf("children seen by the root's member: %+v (numchild %d)", root.Children, root.Numchild)
		}
		expectCode(t, a.do(session(tm.Member), `query($id: ID!) { team(id: $id) { id } }`, map[string]any{"id": grandchild}, nil), graph.CodeNotFound, "")
	})
	t.Run("lists include ancestors only when asked", func(t *testing.T) {
		const q = `query($all: Boolean) { teams(includeAncestors: $all) { totalCount nodes { id inherited } }
			me { teams(includeAncestors: $all) { totalCount } } }`
		for _, all := range []bool{false, true} {
			var out struct {
				Teams struct {
					TotalCount int
					Nodes      []struct {
						ID        uuid.UUID
						Inherited bool
					}
				}
				Me struct{ Teams struct{ TotalCount int } }
			}
			a.mustDo(session(tm.Outsider), q, map[string]any{"all": all}, &out)
			want := map[bool]int{false: 2, true: 3}[all]
			if out.Teams.TotalCount != want || out.Me.Teams.TotalCount != want {
				t.Errorf("includeAncestors %v: teams %d, me.teams %d, want %d", all, out.Teams.TotalCount, out.Me.Teams.TotalCount, want)
			}
			for _, n := range out.Teams.Nodes {
				if n.Inherited != (n.ID == tm.ID) {
					t.Errorf("includeAncestors %v: team %s inherited %v", all, n.ID, n.Inherited)
				}
			}
		}
	})
	t.Run("refusals", func(t *testing.T) {
		const create = `mutation($p: ID!) { createTeam(input: {name: "x", parentId: $p}) { team { id } } }`
		expectCode(t, a.do(session(tm.Member), create, map[string]any{"p": tm.ID}, nil), graph.CodeForbidden, "")
		expectCode(t, a.do(session(tm.Outsider), create, map[string]any{"p": tm.ID}, nil), graph.CodeForbidden, "")
		expectCode(t, a.do(session(storetest.User(t, s, tm.Org).ID), create, map[string]any{"p": tm.ID}, nil), graph.CodeNotFound, "parentId")
		const move = `mutation($id: ID!, $p: ID) { moveTeam(input: {id: $id, parentId: $p}) { team { id depth } } }`
		expectCode(t, a.do(session(tm.Owner), move, map[string]any{"id": tm.ID, "p": child.ID}, nil), graph.CodeBadUserInput, "parentId")
		expectCode(t, a.do(session(tm.Admin), move, map[string]any{"id": child.ID, "p": nil}, nil), graph.CodeNotFound, "")
		other := storetest.TeamWithEveryRole(t, s)
		storetest.Access(t, s, other.ID, tm.Owner, store.RoleOwner)
		expectCode(t, a.do(session(tm.Owner), move, map[string]any{"id": child.ID, "p": other.ID}, nil), graph.CodeBadUserInput, "parentId")
		const del = `mutation($id: ID!) { deleteTeam(input: {id: $id}) { deletedId } }`
		r := a.do(session(tm.Owner), del, map[string]any{"id": tm.ID}, nil)
		expectCode(t, r, graph.CodeConflict, "cascade")
		if len(r.Errors) > 0 && !strings.Contains(r.Errors[0].Message, "1 child team") {
			t.Errorf("message %q does not name the children count", r.Errors[0].Message)
		}
	})
	t.Run("move and cascade", func(t *testing.T) {
		var out struct {
			MoveTeam struct{ Team treeNode }
		}
		a.mustDo(session(tm.Outsider), `mutation($id: ID!) { moveTeam(input: {id: $id, parentId: null}) { team { `+treeFields+` } } }`,
			map[string]any{"id": grandchild}, &out)
		if g := out.MoveTeam.Team; g.Depth != 1 || g.Parent != nil || len(g.Path) != 5 {
			t.Errorf("moved to the roots: %+v", g)
		}
		var del struct {
			DeleteTeam struct{ DeletedIds []uuid.UUID }
		}
		a.mustDo(session(tm.Owner), `mutation($id: ID!) { deleteTeam(input: {id: $id, cascade: true}) { deletedIds } }`, map[string]any{"id": tm.ID}, &del)
		if diff := cmp.Diff([]uuid.UUID{tm.ID, child.ID}, del.DeleteTeam.DeletedIds); diff != "" {
			t.Errorf("deleted (-want +got):\n%s", diff)
		}
	})
}

// Two members who manage both teams move each under the other at once: one move wins, the
// other is refused as a cycle.
func TestConcurrentMoveTeam(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	tm := storetest.TeamWithEveryRole(t, s)
	x, y := storetest.ChildTeam(t, s, tm.ID, "X"), storetest.ChildTeam(t, s, tm.ID, "Y")
	for _, team := range []uuid.UUID{x, y} {
		storetest.Access(t, s, team, tm.Owner, store.RoleOwner)
		storetest.Access(t, s, team, tm.Admin, store.RoleAdministrator)
	}
	const move = `mutation($id: ID!, $p: ID) { moveTeam(input: {id: $id, parentId: $p}) { team { id } } }`
	start := make(chan struct{})
	codes := make([]string, 2)
	var wg sync.WaitGroup
	for i, m := range []struct{ by, id, parent uuid.UUID }{{tm.Owner, x, y}, {tm.Admin, y, x}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			codes[i] = a.do(session(m.by), move, map[string]any{"id": m.id, "p": m.parent}, nil).Code()
		}()
	}
	close(start)
	wg.Wait()
	if !(codes[0] == "" && codes[1] == graph.CodeBadUserInput || codes[1] == "" && codes[0] == graph.CodeBadUserInput) {
		t.Errorf("codes = %q, want one success and one BAD_USER_INPUT", codes)
	}
}

// isVisibleAllServices follows People's defaults per entry point, and owners share their teams
// with their organization's services only.
func TestTeamServiceVisibility(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	tm := storetest.TeamWithEveryRole(t, s)
	sp := organizationServiceProvider(t, s, tm.Org)
	foreign := organizationServiceProvider(t, s, storetest.Organization(t, s))
	const create = `mutation($v: Boolean) { createTeam(input: {name: "Shared", isVisibleAllServices: $v}) { team { id isVisibleAllServices } } }`
	for _, tt := range []struct {
		name string
		who  uuid.UUID
		via  uuid.UUID
		in   any
		want bool
	}{
		{"browser, default", tm.Owner, uuid.Nil, nil, true},
		{"browser, false", tm.Owner, uuid.Nil, false, false},
		{"partner, default", tm.Owner, sp, nil, false},
		{"partner, true", tm.Owner, sp, true, true},
	} {
		p := session(tt.who)
		if tt.via != uuid.Nil {
			p = bearer(tt.who, tt.via)
		}
		var out struct {
			CreateTeam struct {
				Team struct{ IsVisibleAllServices bool }
			}
		}
		a.mustDo(p, create, map[string]any{"v": tt.in}, &out)
		if out.CreateTeam.Team.IsVisibleAllServices != tt.want {
			t.Errorf("%s: isVisibleAllServices = %v, want %v", tt.name, out.CreateTeam.Team.IsVisibleAllServices, tt.want)
		}
	}
	linkServiceProvider(t, s, tm.ID, foreign) // shared by staff: the partner sees the team
	var up struct {
		UpdateTeam struct {
			Team struct{ IsVisibleAllServices bool }
		}
	}
	a.mustDo(bearer(tm.Admin, foreign), `mutation($id: ID!) { updateTeam(input: {id: $id, isVisibleAllServices: true}) { team { isVisibleAllServices } } }`,
		map[string]any{"id": tm.ID}, &up)
	if !up.UpdateTeam.Team.IsVisibleAllServices {
		t.Errorf("partner update: not visible to all services")
	}
	expectCode(t, a.do(session(tm.Member), `mutation($id: ID!) { updateTeam(input: {id: $id, isVisibleAllServices: false}) { team { id } } }`,
		map[string]any{"id": tm.ID}, nil), graph.CodeForbidden, "")

	const link = `mutation($t: ID!, $sp: ID!) { linkTeamServiceProvider(input: {teamId: $t, serviceProviderId: $sp}) { team { serviceProviders { id } } } }`
	const unlink = `mutation($t: ID!, $sp: ID!) { unlinkTeamServiceProvider(input: {teamId: $t, serviceProviderId: $sp}) { team { serviceProviders { id } } } }`
	var out struct {
		LinkTeamServiceProvider struct {
			Team struct{ ServiceProviders []struct{ ID uuid.UUID } }
		}
	}
	a.mustDo(session(tm.Admin), link, map[string]any{"t": tm.ID, "sp": sp}, &out)
	if diff := cmp.Diff(sortUUIDs(sp, foreign), teamServiceProviders(t, s, tm.ID)); diff != "" || len(out.LinkTeamServiceProvider.Team.ServiceProviders) != 2 {
		t.Errorf("linked services (-want +got):\n%s%+v", diff, out.LinkTeamServiceProvider.Team.ServiceProviders)
	}
	other := organizationServiceProvider(t, s, storetest.Organization(t, s))
	expectCode(t, a.do(session(tm.Owner), link, map[string]any{"t": tm.ID, "sp": other}, nil), graph.CodeNotFound, "serviceProviderId")
	expectCode(t, a.do(session(tm.Owner), unlink, map[string]any{"t": tm.ID, "sp": other}, nil), graph.CodeNotFound, "serviceProviderId")
	expectCode(t, a.do(session(tm.Owner), link, map[string]any{"t": tm.ID, "sp": uuid.New()}, nil), graph.CodeNotFound, "serviceProviderId")
	expectCode(t, a.do(session(tm.Member), link, map[string]any{"t": tm.ID, "sp": sp}, nil), graph.CodeForbidden, "")
	expectCode(t, a.do(session(tm.Outsider), link, map[string]any{"t": tm.ID, "sp": sp}, nil), graph.CodeNotFound, "")
	expectCode(t, a.do(bearer(tm.Owner, sp), link, map[string]any{"t": tm.ID, "sp": sp}, nil), graph.CodeForbidden, "")
	expectCode(t, a.do(session(tm.Member), unlink, map[string]any{"t": tm.ID, "sp": sp}, nil), graph.CodeForbidden, "")
	// A service staff linked, outside the organization, can still be unlinked by the owners.
	a.mustDo(session(tm.Owner), unlink, map[string]any{"t": tm.ID, "sp": sp}, nil)
	a.mustDo(session(tm.Owner), unlink, map[string]any{"t": tm.ID, "sp": foreign}, nil)
	if got := teamServiceProviders(t, s, tm.ID); len(got) != 0 {
		t.Errorf("after unlink: %v", got)
	}
}

// Partners see the same tree, with the service filter applied to each team.
func TestTeamTreeThroughServiceProvider(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	tm := storetest.TeamWithEveryRole(t, s)
	sp := storetest.ServiceProvider(t, s)
	middle := storetest.ChildTeam(t, s, tm.ID, "Middle")
	leaf := storetest.ChildTeam(t, s, middle, "Leaf")
	storetest.Access(t, s, leaf, tm.Outsider, store.RoleMember)
	storetest.MustExec(t, s.DB(), "UPDATE teams SET is_visible_all_services = (id <> ?) WHERE id IN (?, ?, ?)", middle, tm.ID, middle, leaf)
	var out struct {
		Teams struct {
			Nodes []struct {
				ID        uuid.UUID
				Inherited bool
				Parent    *struct{ ID uuid.UUID }
				Ancestors []struct{ ID uuid.UUID }
			}
		}
	}
	a.mustDo(bearer(tm.Outsider, sp), `{ teams(includeAncestors: true, orderBy: NAME_ASC) { nodes { id inherited parent { id } ancestors { id } } } }`, nil, &out)
	var ids []uuid.UUID
	for _, n := range out.Teams.Nodes {
		ids = append(ids, n.ID)
	}
	if diff := cmp.Diff(sortUUIDs(tm.ID, leaf), sortUUIDs(ids...)); diff != "" {
		t.Fatalf("teams (-want +got):\n%s", diff)
	}
	for _, n := range out.Teams.Nodes {
		if n.ID == leaf && (n.Parent != nil || len(n.Ancestors) != 1 || n.Ancestors[0].ID != tm.ID) {
			t.Errorf("leaf through the partner: parent %v ancestors %v, want no parent (hidden) and the root", n.Parent, n.Ancestors)
		}
	}
}

// Staff move any team within its organization; the database's refusals reach them as input
// errors.
func TestAdminMoveTeam(t *testing.T) {
	t.Parallel()
	a := newStaffAPI(t, allFeatures)
	tm := storetest.TeamWithEveryRole(t, a.s)
	child := storetest.ChildTeam(t, a.s, tm.ID, "Child")
	other := storetest.Team(t, a.s, tm.Org, "Other")
	foreign := storetest.TeamWithEveryRole(t, a.s)
	const move = `mutation($id: ID!, $p: ID) { adminMoveTeam(input: {id: $id, parentId: $p}) { team { id parentId depth path numchild } } }`
	var out struct {
		AdminMoveTeam struct {
			Team struct {
				ParentID *uuid.UUID
				Depth    int
				Path     string
				Numchild int
			}
		}
	}
	a.admin(move, map[string]any{"id": tm.ID, "p": other}, &out)
	if got := out.AdminMoveTeam.Team; got.ParentID == nil || *got.ParentID != other || got.Depth != 2 || got.Numchild != 1 {
		t.Errorf("moved team = %+v", got)
	}
	expectCode(t, a.adminTry(move, map[string]any{"id": other, "p": child}), graph.CodeBadUserInput, "parentId")
	expectCode(t, a.adminTry(move, map[string]any{"id": child, "p": foreign.ID}), graph.CodeBadUserInput, "parentId")
	expectCode(t, a.adminTry(move, map[string]any{"id": child, "p": uuid.New()}), graph.CodeNotFound, "parentId")
	expectCode(t, a.adminTry(move, map[string]any{"id": uuid.New(), "p": nil}), graph.CodeNotFound, "")
	expectCode(t, a.do(session(tm.Owner), move, map[string]any{"id": child, "p": nil}, nil), graph.CodeForbidden, "")
}
