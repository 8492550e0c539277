package graph_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// prefetchFixture is a viewer in three teams: one they own alone with three members (one of
// them French, one staff), one with a second owner, and one with nobody else.
type prefetchFixture struct {
	viewer                 store.User
	solo, shared, lonely   uuid.UUID
	french                 store.User
	soloNames, sharedNames []string // members in the default order: role, then name
}

// prefetchAPI is the API over a database of its own, whose statements counter counts, with the
// fixture in it.
func prefetchAPI(t *testing.T) (*api, *statementCounter, prefetchFixture) {
	t.Helper()
	counter := &statementCounter{}
	s := storetest.OpenFresh(t, counter)
	return newAPI(t, s, allFeatures), counter, newPrefetchFixture(t, s)
}

func newPrefetchFixture(t *testing.T, s *store.Store) prefetchFixture {
	t.Helper()
	org := storetest.Organization(t, s)
	tok := storetest.Unique()
	f := prefetchFixture{viewer: storetest.User(t, s, org, storetest.WithName("A viewer "+tok))}
	f.french = storetest.User(t, s, org, storetest.WithName("C french "+tok), func(u *store.User) {
		u.Language, u.Timezone = "fr-fr", "Europe/Paris"
	})
	staff := storetest.User(t, s, org, storetest.WithName("B staff "+tok), storetest.Staff())
	plain := storetest.User(t, s, org, storetest.WithName("D plain "+tok))
	co := storetest.User(t, s, org, storetest.WithName("E co-owner "+tok))

	f.solo = storetest.Team(t, s, org, "Solo "+tok)
	storetest.Access(t, s, f.solo, f.viewer.ID, store.RoleOwner)
	storetest.Access(t, s, f.solo, staff.ID, store.RoleMember)
	storetest.Access(t, s, f.solo, f.french.ID, store.RoleMember)
	storetest.Access(t, s, f.solo, plain.ID, store.RoleAdministrator)
	f.soloNames = []string{f.viewer.Name, plain.Name, staff.Name, f.french.Name}

	f.shared = storetest.Team(t, s, org, "Shared "+tok)
	storetest.Access(t, s, f.shared, f.viewer.ID, store.RoleOwner)
	storetest.Access(t, s, f.shared, co.ID, store.RoleOwner)
	storetest.Access(t, s, f.shared, plain.ID, store.RoleMember)
	f.sharedNames = []string{f.viewer.Name, co.Name, plain.Name}

	f.lonely = storetest.Team(t, s, org, "Lonely "+tok)
	storetest.Access(t, s, f.lonely, f.viewer.ID, store.RoleOwner)
	return f
}

type accessNode struct {
	ID        string
	Role      string
	Abilities struct {
		Delete    bool
		SetRoleTo []string
	}
	User struct {
		ID, Name, Email, Language, Timezone string
		IsStaff                             bool
	}
}

type accessPage struct {
	TotalCount int
	PageInfo   struct{ HasNextPage bool }
	Nodes      []accessNode
}

func names(p accessPage) []string {
	var out []string
	for _, n := range p.Nodes {
		out = append(out, n.User.Name)
	}
	return out
}

// A page of teams reads its members in the same statement, whatever the page sizes, and gives
// the same members as the accesses loader does on its own.
func TestTeamsReadTheirAccessesInTheSameStatement(t *testing.T) {
	t.Parallel()
	a, counter, f := prefetchAPI(t)

	type team struct {
		ID       uuid.UUID
		Accesses accessPage
		// Read through the loader: a second accesses field is not looked ahead.
		Full accessPage
	}
	var out struct{ Teams struct{ Nodes []team } }
	counter.n.Store(0)
	a.mustDo(session(f.viewer.ID), `query($n: Int!, $order: TeamAccessOrder) { teams(first: 10) { nodes { id
		accesses(first: $n, orderBy: $order) { nodes { id role user { id name email } } }
	} } }`, map[string]any{"n": 10, "order": "ROLE"}, &out)
	if got := counter.n.Load(); got != 1 {
		t.Errorf("teams with their accesses: %d statements, want 1", got)
	}
	want := map[uuid.UUID][]string{f.solo: f.soloNames, f.shared: f.sharedNames, f.lonely: {f.viewer.Name}}
	if len(out.Teams.Nodes) != 3 {
		t.Fatalf("got %d teams, want 3", len(out.Teams.Nodes))
	}
	for _, tm := range out.Teams.Nodes {
		if got := names(tm.Accesses); !slices.Equal(got, want[tm.ID]) {
			t.Errorf("team %s: members %q, want %q", tm.ID, got, want[tm.ID])
		}
		for _, n := range tm.Accesses.Nodes {
			if n.ID == "" || n.User.ID == "" || !strings.HasPrefix(n.User.Email, "user-") {
				t.Errorf("team %s: access %+v lacks its id or its user's", tm.ID, n)
			}
		}
	}

	// The looked-ahead page (brief users, no counts, a row more for hasNextPage) against a
	// second field read by the loader with every column and the counts.
	out.Teams.Nodes = nil
	counter.n.Store(0)
	a.mustDo(session(f.viewer.ID), `{ teams(first: 10) { nodes { id
		accesses(first: 2) { pageInfo { hasNextPage } nodes { id role user { id name email } } }
		full: accesses(first: 10) { totalCount pageInfo { hasNextPage } nodes { id role
			abilities { delete setRoleTo } user { id name email language timezone isStaff } } }
	} } }`, nil, &out)
	if got := counter.n.Load(); got != 2 {
		t.Errorf("teams with two accesses fields: %d statements, want 2", got)
	}
	for _, tm := range out.Teams.Nodes {
		full, pre := tm.Full, tm.Accesses
		if !slices.Equal(names(full), want[tm.ID]) || full.TotalCount != len(want[tm.ID]) || full.PageInfo.HasNextPage {
			t.Errorf("team %s: full page %+v, want members %q", tm.ID, full, want[tm.ID])
		}
		if pre.PageInfo.HasNextPage != (full.TotalCount > 2) {
			t.Errorf("team %s: first 2 of %d: hasNextPage %v", tm.ID, full.TotalCount, pre.PageInfo.HasNextPage)
		}
		if len(pre.Nodes) != min(2, len(full.Nodes)) {
			t.Fatalf("team %s: %d accesses in a page of 2 of %d", tm.ID, len(pre.Nodes), len(full.Nodes))
		}
		for i, n := range pre.Nodes {
			m := full.Nodes[i]
			if n.ID != m.ID || n.Role != m.Role || n.User.ID != m.User.ID || n.User.Name != m.User.Name || n.User.Email != m.User.Email {
				t.Errorf("team %s, access %d: looked ahead %+v, loaded %+v", tm.ID, i, n, m)
			}
		}
		for _, m := range full.Nodes {
			if m.User.Language == "" || m.User.Timezone == "" {
				t.Errorf("team %s: full user %+v lacks its language or time zone", tm.ID, m.User)
			}
			if m.User.ID == f.french.ID.String() && (m.User.Language != "fr-fr" || m.User.Timezone != "Europe/Paris") {
				t.Errorf("french user read as %+v", m.User)
			}
		}
	}
}

// Whatever a query selects of the accesses it gets, also through fragments, edges and
// variables: the narrower statements leave out only what nobody asked for.
func TestTeamAccessesReadWhatIsSelected(t *testing.T) {
	t.Parallel()
	a, counter, f := prefetchAPI(t)
	viewer := session(f.viewer.ID)

	team := func(t *testing.T, id uuid.UUID, query string, vars map[string]any) accessPage {
		t.Helper()
		if vars == nil {
			vars = map[string]any{}
		}
		vars["id"] = id.String()
		var out struct {
			Team struct {
				Accesses accessPage
				Edges    struct {
					Edges []struct{ Node accessNode }
				}
			}
		}
		counter.n.Store(0)
		a.mustDo(viewer, query, vars, &out)
		if got := counter.n.Load(); got != 1 {
			t.Errorf("one team with its accesses: %d statements, want 1", got)
		}
		p := out.Team.Accesses
		for _, e := range out.Team.Edges.Edges {
			p.Nodes = append(p.Nodes, e.Node)
		}
		return p
	}

	t.Run("the members a team shows", func(t *testing.T) {
		p := team(t, f.solo, `query($id: ID!) { team(id: $id) { accesses(first: 10) { nodes { role user { name email } } } } }`, nil)
		if !slices.Equal(names(p), f.soloNames) {
			t.Errorf("members %q, want %q", names(p), f.soloNames)
		}
		if p.Nodes[0].Role != "OWNER" || p.Nodes[1].Role != "ADMINISTRATOR" || p.Nodes[3].Role != "MEMBER" {
			t.Errorf("roles %+v", p.Nodes)
		}
	})
	t.Run("a user's other fields through a fragment", func(t *testing.T) {
		p := team(t, f.solo, `query($id: ID!) { team(id: $id) { accesses(first: 10) { nodes { user { name ...Prefs } } } } }
			fragment Prefs on User { language timezone isStaff }`, nil)
		var french, staff int
		for _, n := range p.Nodes {
			if n.User.Language == "fr-fr" && n.User.Timezone == "Europe/Paris" {
				french++
			}
			if n.User.IsStaff {
				staff++
			}
		}
		if french != 1 || staff != 1 {
			t.Errorf("users %+v: want one French and one staff", p.Nodes)
		}
	})
	t.Run("an inline fragment on the connection", func(t *testing.T) {
		p := team(t, f.solo, `query($id: ID!) { team(id: $id) { accesses(first: 1) {
			... on TeamAccessConnection { totalCount nodes { user { ... on User { language } } } } } } }`, nil)
		if p.TotalCount != 4 || len(p.Nodes) != 1 || p.Nodes[0].User.Language != "en-us" {
			t.Errorf("page %+v: want a total of 4 and the owner's language", p)
		}
	})
	t.Run("abilities count the owners", func(t *testing.T) {
		for id, wantDelete := range map[uuid.UUID]bool{f.solo: false, f.shared: true} {
			p := team(t, id, `query($id: ID!) { team(id: $id) { edges: accesses(first: 1) { edges { node {
				abilities { delete } user { name } } } } } }`, nil)
			if len(p.Nodes) != 1 || p.Nodes[0].User.Name != f.viewer.Name || p.Nodes[0].Abilities.Delete != wantDelete {
				t.Errorf("team %s: own access %+v, want delete %v (the last owner cannot leave)", id, p.Nodes, wantDelete)
			}
		}
	})
	t.Run("pages by variables, with and without a next one", func(t *testing.T) {
		q := `query($id: ID!, $n: Int!, $after: String, $order: TeamAccessOrder) { team(id: $id) {
			accesses(first: $n, after: $after, orderBy: $order) { pageInfo { hasNextPage endCursor } nodes { user { name } } } } }`
		for _, c := range []struct {
			n        int
			wantNext bool
		}{{1, true}, {3, true}, {4, false}, {10, false}} {
			p := team(t, f.solo, q, map[string]any{"n": c.n, "order": "ROLE"})
			if len(p.Nodes) != min(c.n, 4) || p.PageInfo.HasNextPage != c.wantNext {
				t.Errorf("first %d of 4: %d members, hasNextPage %v", c.n, len(p.Nodes), p.PageInfo.HasNextPage)
			}
		}
	})
	t.Run("a search", func(t *testing.T) {
		p := team(t, f.solo, `query($id: ID!) { team(id: $id) { accesses(search: "french", first: 5) { totalCount nodes { user { name } } } } }`, nil)
		if p.TotalCount != 1 || len(p.Nodes) != 1 || p.Nodes[0].User.Name != f.french.Name {
			t.Errorf("search: %+v", p)
		}
	})
	t.Run("one fragment's accesses merged with different siblings", func(t *testing.T) {
		// The same accesses field of F is read narrowly (names only) in one team and merged
		// with a wider selection in the other: the shape worked out for one is not the other's.
		q := `query($id: ID!) {
			a: team(id: $id) { ...F }
			b: team(id: $id) { ...F accesses(first: 10) { nodes { user { language } } } }
			c: team(id: $id) { ...F }
		}
		fragment F on Team { accesses(first: 10) { nodes { user { name } } } }`
		for range 20 {
			var out struct{ A, B, C struct{ Accesses accessPage } }
			a.mustDo(viewer, q, map[string]any{"id": f.solo.String()}, &out)
			var french int
			for _, n := range out.B.Accesses.Nodes {
				if n.User.Language == "fr-fr" {
					french++
				}
			}
			if french != 1 || !slices.Equal(names(out.A.Accesses), f.soloNames) || !slices.Equal(names(out.C.Accesses), f.soloNames) {
				t.Fatalf("teams %+v: want the members' names in each, and one French member in b", out)
			}
		}
	})
	t.Run("a team with nobody else", func(t *testing.T) {
		p := team(t, f.lonely, `query($id: ID!) { team(id: $id) { accesses(first: 5) { pageInfo { hasNextPage } nodes { user { name } } } } }`, nil)
		if len(p.Nodes) != 1 || p.PageInfo.HasNextPage {
			t.Errorf("lonely team: %+v", p)
		}
	})
}

// A team the caller may not see is not found, with its accesses looked ahead or not, and a bad
// page of accesses is the accesses field's error.
func TestTeamAccessesLookAheadRefuses(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	f := newPrefetchFixture(t, s)
	outsider := storetest.User(t, s, uuid.Nil)

	r := a.do(session(outsider.ID), `query($id: ID!) { team(id: $id) { accesses(first: 5) { nodes { user { name } } } } }`,
		map[string]any{"id": f.solo.String()}, nil)
	if r.Code() != "NOT_FOUND" {
		t.Errorf("an outsider's team with accesses: %+v, want NOT_FOUND", r.Errors)
	}
	r = a.do(session(f.viewer.ID), `query($id: ID!) { team(id: $id) { name accesses(first: 5, after: "no cursor") { nodes { user { name } } } } }`,
		map[string]any{"id": f.solo.String()}, nil)
	if len(r.Errors) != 1 || r.Code() == "" || r.Code() == "INTERNAL" || len(r.Errors[0].Path) == 0 || r.Errors[0].Path[len(r.Errors[0].Path)-1] != "accesses" {
		t.Errorf("a bad cursor: %+v, want one client error at accesses", r.Errors)
	}
}

// A team's and its accesses' other columns are read when they are selected, also through a
// fragment, with the accesses looked ahead.
func TestTeamColumnsReadWhenSelected(t *testing.T) {
	t.Parallel()
	a, counter, f := prefetchAPI(t)
	type team struct {
		ID, ExternalID       string
		CreatedAt, UpdatedAt time.Time
		Accesses             struct {
			Nodes []struct{ CreatedAt time.Time }
		}
	}
	check := func(t *testing.T, what string, tm team) {
		t.Helper()
		if tm.CreatedAt.IsZero() || tm.UpdatedAt.IsZero() || tm.ExternalID == "" || tm.ExternalID == uuid.Nil.String() {
			t.Errorf("%s: team %+v lacks its dates or external id", what, tm)
		}
		if len(tm.Accesses.Nodes) == 0 {
			t.Errorf("%s: no accesses", what)
		}
		for _, n := range tm.Accesses.Nodes {
			if n.CreatedAt.IsZero() {
				t.Errorf("%s: an access without its creation date", what)
			}
		}
	}
	var one struct{ Team team }
	counter.n.Store(0)
	a.mustDo(session(f.viewer.ID), `query($id: ID!) { team(id: $id) { ...Dates accesses(first: 5) { nodes { ... on TeamAccess { createdAt } } } } }
		fragment Dates on Team { id externalId createdAt updatedAt }`, map[string]any{"id": f.solo.String()}, &one)
	if got := counter.n.Load(); got != 1 {
		t.Errorf("one team: %d statements, want 1", got)
	}
	check(t, "team", one.Team)
	var page struct {
		Teams struct{ Edges []struct{ Node team } }
	}
	a.mustDo(session(f.viewer.ID), `{ teams(first: 5) { edges { node { id externalId createdAt updatedAt
		accesses(first: 5) { edges { node { createdAt } } nodes { createdAt } } } } } }`, nil, &page)
	if len(page.Teams.Edges) != 3 {
		t.Fatalf("%d teams, want 3", len(page.Teams.Edges))
	}
	for _, e := range page.Teams.Edges {
		check(t, "teams", e.Node)
	}
}

// The look-ahead that primes the accesses loader and the resolver that reads it key the loader
// by one function's result (accessFilterOf): whatever form the arguments take, the resolver
// finds the primed page, and a team with its members costs one statement. Were the two to
// compute their filters apart, a form where they differ would cost a second statement.
func TestLookAheadMeetsTheResolver(t *testing.T) {
	t.Parallel()
	a, counter, f := prefetchAPI(t)
	const nodes = `nodes { role user { name } }`
	forms := []struct {
		name, accesses string // the accesses field, with its arguments
		vars           map[string]any
		members        int // of the solo team
	}{
		{"no arguments (defaults)", `accesses { ` + nodes + ` }`, nil, 4},
		{"literals", `accesses(first: 2, orderBy: NAME, search: "") { ` + nodes + ` }`, nil, 2},
		{"variables", `accesses(first: $n, orderBy: $o) { ` + nodes + ` }`, map[string]any{"n": 3, "o": "NAME"}, 3},
		{"null variables", `accesses(first: $n, orderBy: $o) { ` + nodes + ` }`, map[string]any{"n": nil, "o": nil}, 4},
		{"omitted variables", `accesses(first: $n, orderBy: $o) { ` + nodes + ` }`, map[string]any{}, 4},
		{"an alias", `members: accesses(first: 2) { ` + nodes + ` }`, nil, 2},
		{"a search", `accesses(search: "french") { ` + nodes + ` }`, nil, 1},
		{"a fragment spread", `...M`, nil, 4},
		{"an inline fragment", `... on Team { accesses(first: 1) { totalCount ` + nodes + ` } }`, nil, 1},
		{"edges", `accesses(first: 2) { edges { cursor node { role } } pageInfo { hasNextPage } }`, nil, 2},
	}
	for _, form := range forms {
		t.Run(form.name, func(t *testing.T) {
			vars := map[string]any{"id": f.solo.String()}
			for k, v := range form.vars {
				vars[k] = v
			}
			decl := "$id: ID!"
			if strings.Contains(form.accesses, "$n") {
				decl += ", $n: Int, $o: TeamAccessOrder"
			}
			query := `query(` + decl + `) { team(id: $id) { id ` + form.accesses + ` } }`
			if strings.Contains(form.accesses, "...M") {
				query += ` fragment M on Team { accesses { ` + nodes + ` } }`
			}
			var out struct {
				Team struct {
					Accesses, Members struct {
						Nodes []json.RawMessage
						Edges []json.RawMessage
					}
				}
			}
			counter.n.Store(0)
			a.mustDo(session(f.viewer.ID), query, vars, &out)
			if got := counter.n.Load(); got != 1 {
				t.Errorf("%d statements, want 1: the resolver missed the looked-ahead page", got)
			}
			got := len(out.Team.Accesses.Nodes) + len(out.Team.Accesses.Edges) + len(out.Team.Members.Nodes)
			if got != form.members {
				t.Errorf("%d members, want %d", got, form.members)
			}
		})
	}
}
