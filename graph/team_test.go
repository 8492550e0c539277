package graph_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/graph"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// expectCode checks that r failed with code and, when field is not empty, extensions.field.
func expectCode(tb testing.TB, r result, code, field string) {
	tb.Helper()
	if r.Code() != code {
		tb.Errorf("code = %q, want %q (errors: %+v)", r.Code(), code, r.Errors)
		return
	}
	if field != "" && r.Errors[0].Extensions.Field != field {
		tb.Errorf("extensions.field = %q, want %q (errors: %+v)", r.Errors[0].Extensions.Field, field, r.Errors)
	}
}

type teamPageInfo struct {
	HasNextPage, HasPreviousPage bool
	StartCursor, EndCursor       *string
}

type teamNode struct {
	ID                   uuid.UUID
	Name                 string
	Role                 string
	IsVisibleAllServices bool
	ServiceProviders     []struct{ ID uuid.UUID }
}

type teamsOut struct {
	Teams struct {
		Nodes      []teamNode
		PageInfo   teamPageInfo
		TotalCount int
	}
}

const teamsQuery = `query($search: String, $orderBy: TeamOrder, $first: Int, $after: String) {
	teams(search: $search, orderBy: $orderBy, first: $first, after: $after) {
		nodes { id name role isVisibleAllServices serviceProviders { id } }
		pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
		totalCount
	}
}`

func teamIDs(nodes []teamNode) []uuid.UUID {
	ids := make([]uuid.UUID, len(nodes))
	for i, n := range nodes {
		ids[i] = n.ID
	}
	return ids
}

// joinTeam creates a team in org named name, created at created, with user in it as role.
func joinTeam(tb testing.TB, s *store.Store, org, user uuid.UUID, role store.Role, name string, created time.Time) uuid.UUID {
	tb.Helper()
	id := storetest.Team(tb, s, org, name)
	storetest.MustExec(tb, s.DB(), "UPDATE teams SET created_at = ? WHERE id = ?", created, id)
	storetest.Access(tb, s, id, user, role)
	return id
}

func TestTeams(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	org := storetest.Organization(t, s)
	viewer := storetest.User(t, s, org).ID
	tok := storetest.Unique()
	day := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)
	// Names and creation dates in different orders, so that each order is seen. The names sort
	// the same under the C collation and a linguistic one ("É" after the ASCII letters used).
	ete := joinTeam(t, s, org, viewer, store.RoleOwner, "Équipe Été "+tok, day.Add(time.Hour))
	alpha := joinTeam(t, s, org, viewer, store.RoleMember, "Alpha "+tok, day.Add(3*time.Hour))
	delta := joinTeam(t, s, org, viewer, store.RoleAdministrator, "Delta "+tok, day)
	percent := joinTeam(t, s, org, viewer, store.RoleMember, "100% "+tok, day.Add(2*time.Hour))
	// Teams the viewer is not in.
	storetest.Team(t, s, org, "Hidden "+tok)
	other := storetest.TeamWithEveryRole(t, s)

	list := func(t *testing.T, vars map[string]any) teamsOut {
		t.Helper()
		var out teamsOut
		a.mustDo(session(viewer), teamsQuery, vars, &out)
		return out
	}

	for _, tt := range []struct {
		name string
		vars map[string]any
		want []uuid.UUID
	}{
		{"the viewer's teams, newest first", nil, []uuid.UUID{alpha, percent, ete, delta}},
		{"CREATED_AT_DESC", map[string]any{"orderBy": "CREATED_AT_DESC"}, []uuid.UUID{alpha, percent, ete, delta}},
		{"CREATED_AT_ASC", map[string]any{"orderBy": "CREATED_AT_ASC"}, []uuid.UUID{delta, ete, percent, alpha}},
		{"NAME_ASC", map[string]any{"orderBy": "NAME_ASC"}, []uuid.UUID{percent, alpha, delta, ete}},
		{"NAME_DESC", map[string]any{"orderBy": "NAME_DESC"}, []uuid.UUID{ete, delta, alpha, percent}},
		{"search folds accents and case", map[string]any{"search": "equipe ete " + tok}, []uuid.UUID{ete}},
		{"search matches a fragment", map[string]any{"search": "ÉTÉ " + strings.ToUpper(tok)}, []uuid.UUID{ete}},
		{"search takes % literally", map[string]any{"search": "% " + tok}, []uuid.UUID{percent}},
		{"search takes _ literally", map[string]any{"search": "Alph_ " + tok}, nil},
		{"search with NUL", map[string]any{"search": "Alpha\x00 " + tok}, []uuid.UUID{alpha}},
		{"blank search is no search", map[string]any{"search": "  ", "orderBy": "NAME_ASC"}, []uuid.UUID{percent, alpha, delta, ete}},
		{"search never reaches other teams", map[string]any{"search": "hidden " + tok}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := list(t, tt.vars)
			if diff := cmp.Diff(tt.want, teamIDs(got.Teams.Nodes), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("teams (-want +got):\n%s", diff)
			}
			if got.Teams.TotalCount != len(tt.want) {
				t.Errorf("totalCount = %d, want %d", got.Teams.TotalCount, len(tt.want))
			}
		})
	}

	t.Run("role is the viewer's", func(t *testing.T) {
		t.Parallel()
		got := list(t, map[string]any{"orderBy": "NAME_ASC"}).Teams.Nodes
		roles := make([]string, len(got))
		for i, n := range got {
			roles[i] = n.Role
		}
		if diff := cmp.Diff([]string{"MEMBER", "MEMBER", "ADMINISTRATOR", "OWNER"}, roles); diff != "" {
			t.Errorf("roles (-want +got):\n%s", diff)
		}
	})

	t.Run("pages", func(t *testing.T) {
		t.Parallel()
		var seen []uuid.UUID
		vars := map[string]any{"orderBy": "NAME_ASC", "first": 3}
		first := list(t, vars).Teams
		want := teamPageInfo{HasNextPage: true, StartCursor: first.PageInfo.StartCursor, EndCursor: first.PageInfo.EndCursor}
		if diff := cmp.Diff(want, first.PageInfo); diff != "" || first.PageInfo.EndCursor == nil || first.TotalCount != 4 || len(first.Nodes) != 3 {
			t.Fatalf("first page: %d nodes, totalCount %d, pageInfo (-want +got):\n%s", len(first.Nodes), first.TotalCount, diff)
		}
		seen = append(seen, teamIDs(first.Nodes)...)
		vars["after"] = *first.PageInfo.EndCursor
		second := list(t, vars).Teams
		if second.PageInfo.HasNextPage || !second.PageInfo.HasPreviousPage || second.TotalCount != 4 || len(second.Nodes) != 1 {
			t.Fatalf("second page: %d nodes, totalCount %d, pageInfo %+v", len(second.Nodes), second.TotalCount, second.PageInfo)
		}
		seen = append(seen, teamIDs(second.Nodes)...)
		if diff := cmp.Diff([]uuid.UUID{percent, alpha, delta, ete}, seen); diff != "" {
			t.Errorf("teams over two pages (-want +got):\n%s", diff)
		}
		vars["after"] = *second.PageInfo.EndCursor
		past := list(t, vars).Teams
		if len(past.Nodes) != 0 || past.TotalCount != 4 || past.PageInfo.HasNextPage || !past.PageInfo.HasPreviousPage {
			t.Errorf("past the end: %d nodes, totalCount %d, pageInfo %+v; want none of 4", len(past.Nodes), past.TotalCount, past.PageInfo)
		}
	})

	for name, vars := range map[string]map[string]any{
		"first: 0":       {"first": 0},
		"first: -1":      {"first": -1},
		"first: 101":     {"first": 101},
		"garbage cursor": {"after": "not a cursor"},
		"forged cursor":  {"after": "Y3Vyc29yOi01"}, // "cursor:-5"
		"other cursor":   {"after": "eyJpZCI6MX0"},  // {"id":1}
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := a.do(session(viewer), teamsQuery, vars, nil)
			expectCode(t, r, graph.CodeBadUserInput, "")
		})
	}

	t.Run("a user in no team sees none", func(t *testing.T) {
		t.Parallel()
		var out teamsOut
		a.mustDo(session(other.Outsider), teamsQuery, nil, &out)
		if len(out.Teams.Nodes) != 0 || out.Teams.TotalCount != 0 || out.Teams.PageInfo.HasNextPage {
			t.Errorf("teams = %+v, want none", out.Teams)
		}
	})

	t.Run("anonymous", func(t *testing.T) {
		t.Parallel()
		expectCode(t, a.do(nil, teamsQuery, nil, nil), graph.CodeUnauthenticated, "")
	})
}

const teamQuery = `query($id: ID!) { team(id: $id) {
	id name role isVisibleAllServices externalId createdAt updatedAt
	abilities { get update delete manageAccesses }
	serviceProviders { id name audienceId }
} }`

func TestTeam(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	tm := storetest.TeamWithEveryRole(t, s)
	sp := newServiceProvider(t, s)
	linkServiceProvider(t, s, tm.ID, sp)

	t.Run("as a member", func(t *testing.T) {
		t.Parallel()
		var out struct {
			Team struct {
				ID, ExternalID       uuid.UUID
				Name, Role           string
				IsVisibleAllServices bool
				Abilities            struct{ Get, Update, Delete, ManageAccesses bool }
				ServiceProviders     []struct{ ID uuid.UUID }
			}
		}
		a.mustDo(session(tm.Member), teamQuery, map[string]any{"id": tm.ID}, &out)
		got := out.Team
		if got.ID != tm.ID || got.Role != "MEMBER" || got.ExternalID == uuid.Nil || got.IsVisibleAllServices ||
			!got.Abilities.Get || got.Abilities.Update || got.Abilities.Delete || got.Abilities.ManageAccesses ||
			len(got.ServiceProviders) != 1 || got.ServiceProviders[0].ID != sp {
			t.Errorf("team = %+v", got)
		}
	})
	for name, tc := range map[string]struct {
		viewer uuid.UUID
		id     any
		code   string
	}{
		"someone outside the team":   {tm.Outsider, tm.ID, graph.CodeNotFound},
		"a team that does not exist": {tm.Owner, uuid.New(), graph.CodeNotFound},
		"a malformed id":             {tm.Owner, "team-1", graph.CodeBadUserInput},
		"an id that is a number":     {tm.Owner, 7, graph.CodeBadUserInput},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			expectCode(t, a.do(session(tc.viewer), teamQuery, map[string]any{"id": tc.id}, nil), tc.code, "")
		})
	}
	t.Run("a malformed literal id", func(t *testing.T) {
		t.Parallel()
		expectCode(t, a.do(session(tm.Owner), `{ team(id: "1") { id } }`, nil, nil), graph.CodeBadUserInput, "")
	})
}

const createTeamQuery = `mutation($name: String!, $sps: [ID!]) {
	createTeam(input: {name: $name, serviceProviderIds: $sps}) {
		team { id name role abilities { delete } serviceProviders { id }
			accesses { totalCount nodes { role user { id } } } }
	}
}`

type createdTeam struct {
	CreateTeam struct {
		Team struct {
			ID               uuid.UUID
			Name, Role       string
			Abilities        struct{ Delete bool }
			ServiceProviders []struct{ ID uuid.UUID }
			Accesses         struct {
				TotalCount int
				Nodes      []struct {
					Role string
					User struct{ ID uuid.UUID }
				}
			}
		}
	}
}

// teamServiceProviders reads a team's service providers with plain SQL, sorted.
func teamServiceProviders(tb testing.TB, s *store.Store, team uuid.UUID) []uuid.UUID {
	tb.Helper()
	var ids []uuid.UUID
	err := s.DB().NewSelect().TableExpr("team_service_providers").Column("service_provider_id").
		Where("team_id = ?", team).OrderExpr("service_provider_id").Scan(context.Background(), &ids)
	if err != nil {
		tb.Fatal(err)
	}
	return ids
}

// sortUUIDs sorts as PostgreSQL orders uuid values: by their bytes.
func sortUUIDs(ids ...uuid.UUID) []uuid.UUID {
	return slices.SortedFunc(slices.Values(ids), func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
}

func TestCreateTeam(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	org := storetest.Organization(t, s)
	creator := storetest.User(t, s, org).ID
	sp1, sp2 := organizationServiceProvider(t, s, org), organizationServiceProvider(t, s, org)

	t.Run("the creator owns it, in their organization, shared as asked", func(t *testing.T) {
		t.Parallel()
		var out createdTeam
		a.mustDo(session(creator), createTeamQuery, map[string]any{"name": "  New team  ", "sps": []uuid.UUID{sp1, sp2, sp1}}, &out)
		got := out.CreateTeam.Team
		if got.Name != "New team" || got.Role != "OWNER" || !got.Abilities.Delete {
			t.Errorf("team = %+v, want the trimmed name, role OWNER and the right to delete", got)
		}
		if got.Accesses.TotalCount != 1 || got.Accesses.Nodes[0].User.ID != creator || got.Accesses.Nodes[0].Role != "OWNER" {
			t.Errorf("accesses = %+v, want the creator as owner", got.Accesses)
		}
		if diff := cmp.Diff(sortUUIDs(sp1, sp2), teamServiceProviders(t, s, got.ID)); diff != "" {
			t.Errorf("service providers (-want +got):\n%s", diff)
		}
		if len(got.ServiceProviders) != 2 {
			t.Errorf("serviceProviders = %+v, want 2", got.ServiceProviders)
		}
		var teamOrg uuid.UUID
		if err := s.DB().QueryRowContext(t.Context(), "SELECT organization_id FROM teams WHERE id = ?", got.ID).Scan(&teamOrg); err != nil || teamOrg != org {
			t.Errorf("team organization = %v (%v), want %v", teamOrg, err, org)
		}
	})
	t.Run("a user without organization makes a team without one", func(t *testing.T) {
		t.Parallel()
		loner := storetest.User(t, s, uuid.Nil).ID
		var out createdTeam
		a.mustDo(session(loner), createTeamQuery, map[string]any{"name": "Loners"}, &out)
		var teamOrg *uuid.UUID
		if err := s.DB().QueryRowContext(t.Context(), "SELECT organization_id FROM teams WHERE id = ?", out.CreateTeam.Team.ID).Scan(&teamOrg); err != nil || teamOrg != nil {
			t.Errorf("team organization = %v (%v), want none", teamOrg, err)
		}
	})
	t.Run("a name of 100 characters", func(t *testing.T) {
		t.Parallel()
		name := strings.Repeat("é", 100)
		var out createdTeam
		a.mustDo(session(creator), createTeamQuery, map[string]any{"name": name}, &out)
		if out.CreateTeam.Team.Name != name {
			t.Errorf("name = %q", out.CreateTeam.Team.Name)
		}
	})

	for name, tc := range map[string]struct {
		vars        map[string]any
		code, field string
	}{
		"blank name":               {map[string]any{"name": " \t "}, graph.CodeBadUserInput, "name"},
		"empty name":               {map[string]any{"name": ""}, graph.CodeBadUserInput, "name"},
		"name of 101 characters":   {map[string]any{"name": strings.Repeat("a", 101)}, graph.CodeBadUserInput, "name"},
		"name with NUL":            {map[string]any{"name": "a\x00b"}, graph.CodeBadUserInput, "name"},
		"unknown service provider": {map[string]any{"name": "x", "sps": []uuid.UUID{sp1, uuid.New()}}, graph.CodeBadUserInput, "serviceProviderIds"},
		"malformed service id":     {map[string]any{"name": "x", "sps": []string{"sp"}}, graph.CodeBadUserInput, ""},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			user := storetest.User(t, s, org).ID
			expectCode(t, a.do(session(user), createTeamQuery, tc.vars, nil), tc.code, tc.field)
			if n := countAccesses(t, s, user); n != 0 {
				t.Errorf("the refused creation left %d accesses", n)
			}
		})
	}

	t.Run("refused when the feature is off", func(t *testing.T) {
		t.Parallel()
		off := allFeatures
		off.Features.TeamsCreate = false
		user := storetest.User(t, s, org).ID
		expectCode(t, newAPI(t, s, off).do(session(user), createTeamQuery, map[string]any{"name": "x"}, nil), graph.CodeForbidden, "")
		if n := countAccesses(t, s, user); n != 0 {
			t.Errorf("the refused creation left %d accesses", n)
		}
	})
	t.Run("anonymous", func(t *testing.T) {
		t.Parallel()
		expectCode(t, a.do(nil, createTeamQuery, map[string]any{"name": "x"}, nil), graph.CodeUnauthenticated, "")
	})
	t.Run("an inactive user", func(t *testing.T) {
		t.Parallel()
		gone := storetest.User(t, s, org, storetest.Inactive()).ID
		expectCode(t, a.do(session(gone), createTeamQuery, map[string]any{"name": "x"}, nil), graph.CodeNotFound, "")
	})
}

// countAccesses counts a user's team accesses with plain SQL.
func countAccesses(tb testing.TB, s *store.Store, user uuid.UUID) int {
	tb.Helper()
	var n int
	if err := s.DB().QueryRowContext(context.Background(), "SELECT count(*) FROM team_accesses WHERE user_id = ?", user).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

const updateTeamQuery = `mutation($input: UpdateTeamInput!) { updateTeam(input: $input) { team { id name role serviceProviders { id } } } }`

func TestUpdateTeam(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	sp1, sp2 := newServiceProvider(t, s), newServiceProvider(t, s)

	t.Run("rename and change services", func(t *testing.T) {
		t.Parallel()
		tm := storetest.TeamWithEveryRole(t, s)
		linkServiceProvider(t, s, tm.ID, sp1)
		storetest.MustExec(t, s.DB(), "INSERT INTO organization_service_providers (organization_id, service_provider_id) VALUES (?, ?)", tm.Org, sp2)
		var out struct {
			UpdateTeam struct {
				Team struct {
					Name, Role       string
					ServiceProviders []struct{ ID uuid.UUID }
				}
			}
		}
		a.mustDo(session(tm.Admin), updateTeamQuery, map[string]any{"input": map[string]any{
			"id": tm.ID, "name": " Renamed ", "serviceProviderIds": []uuid.UUID{sp2}}}, &out)
		got := out.UpdateTeam.Team
		if got.Name != "Renamed" || got.Role != "ADMINISTRATOR" || len(got.ServiceProviders) != 1 || got.ServiceProviders[0].ID != sp2 {
			t.Errorf("team = %+v", got)
		}
		if diff := cmp.Diff([]uuid.UUID{sp2}, teamServiceProviders(t, s, tm.ID)); diff != "" {
			t.Errorf("service providers (-want +got):\n%s", diff)
		}
	})
	t.Run("absent fields are unchanged, an empty list unlinks", func(t *testing.T) {
		t.Parallel()
		tm := storetest.TeamWithEveryRole(t, s)
		linkServiceProvider(t, s, tm.ID, sp1)
		a.mustDo(session(tm.Owner), updateTeamQuery, map[string]any{"input": map[string]any{"id": tm.ID, "name": "Only the name"}}, nil)
		if diff := cmp.Diff([]uuid.UUID{sp1}, teamServiceProviders(t, s, tm.ID)); diff != "" {
			t.Errorf("service providers after a rename (-want +got):\n%s", diff)
		}
		var out struct {
			UpdateTeam struct{ Team struct{ Name string } }
		}
		a.mustDo(session(tm.Owner), updateTeamQuery, map[string]any{"input": map[string]any{"id": tm.ID, "serviceProviderIds": []uuid.UUID{}}}, &out)
		if out.UpdateTeam.Team.Name != "Only the name" || len(teamServiceProviders(t, s, tm.ID)) != 0 {
			t.Errorf("name %q, service providers %v; want the name kept and none", out.UpdateTeam.Team.Name, teamServiceProviders(t, s, tm.ID))
		}
	})

	for name, tc := range map[string]struct {
		viewer      func(storetest.TeamRoles) uuid.UUID
		input       func(storetest.TeamRoles) map[string]any
		code, field string
	}{
		"a member":        {func(tm storetest.TeamRoles) uuid.UUID { return tm.Member }, nameInput("x"), graph.CodeForbidden, ""},
		"an outsider":     {func(tm storetest.TeamRoles) uuid.UUID { return tm.Outsider }, nameInput("x"), graph.CodeNotFound, ""},
		"a blank name":    {func(tm storetest.TeamRoles) uuid.UUID { return tm.Owner }, nameInput("  "), graph.CodeBadUserInput, "name"},
		"a long name":     {func(tm storetest.TeamRoles) uuid.UUID { return tm.Owner }, nameInput(strings.Repeat("x", 101)), graph.CodeBadUserInput, "name"},
		"a name with NUL": {func(tm storetest.TeamRoles) uuid.UUID { return tm.Owner }, nameInput("x\x00"), graph.CodeBadUserInput, "name"},
		"a missing team": {func(tm storetest.TeamRoles) uuid.UUID { return tm.Owner }, func(storetest.TeamRoles) map[string]any {
			return map[string]any{"id": uuid.New(), "name": "x"}
		}, graph.CodeNotFound, ""},
		"an unknown service provider": {func(tm storetest.TeamRoles) uuid.UUID { return tm.Owner }, func(tm storetest.TeamRoles) map[string]any {
			return map[string]any{"id": tm.ID, "serviceProviderIds": []uuid.UUID{uuid.New()}}
		}, graph.CodeBadUserInput, "serviceProviderIds"},
		// People lets owners pick any service provider; here only their organization's.
		"a service provider of no organization of the team's": {func(tm storetest.TeamRoles) uuid.UUID { return tm.Owner }, func(tm storetest.TeamRoles) map[string]any {
			return map[string]any{"id": tm.ID, "serviceProviderIds": []uuid.UUID{sp1}}
		}, graph.CodeBadUserInput, "serviceProviderIds"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tm := storetest.TeamWithEveryRole(t, s)
			expectCode(t, a.do(session(tc.viewer(tm)), updateTeamQuery, map[string]any{"input": tc.input(tm)}, nil), tc.code, tc.field)
			var name string
			if err := s.DB().QueryRowContext(t.Context(), "SELECT name FROM teams WHERE id = ?", tm.ID).Scan(&name); err != nil || name == "x" {
				t.Errorf("team name = %q (%v) after a refused update", name, err)
			}
		})
	}
}

func nameInput(name string) func(storetest.TeamRoles) map[string]any {
	return func(tm storetest.TeamRoles) map[string]any { return map[string]any{"id": tm.ID, "name": name} }
}

const deleteTeamQuery = `mutation($id: ID!) { deleteTeam(input: {id: $id}) { deletedId } }`

func TestDeleteTeam(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)

	t.Run("an owner deletes it with its accesses and invitations", func(t *testing.T) {
		t.Parallel()
		tm := storetest.TeamWithEveryRole(t, s)
		insertInvitation(t, s, tm.ID, tm.Owner, "gone-"+storetest.Unique()+"@example.test", "now()")
		var out struct{ DeleteTeam struct{ DeletedID uuid.UUID } }
		a.mustDo(session(tm.Owner), deleteTeamQuery, map[string]any{"id": tm.ID}, &out)
		if out.DeleteTeam.DeletedID != tm.ID {
			t.Errorf("deletedId = %v, want %v", out.DeleteTeam.DeletedID, tm.ID)
		}
		var left int
		err := s.DB().QueryRowContext(t.Context(), `SELECT (SELECT count(*) FROM teams WHERE id = ?0)
			+ (SELECT count(*) FROM team_accesses WHERE team_id = ?0) + (SELECT count(*) FROM invitations WHERE team_id = ?0)`, tm.ID).Scan(&left)
		if err != nil || left != 0 {
			t.Errorf("%d rows left (%v)", left, err)
		}
		expectCode(t, a.do(session(tm.Owner), teamQuery, map[string]any{"id": tm.ID}, nil), graph.CodeNotFound, "")
	})
	for name, tc := range map[string]struct {
		viewer func(storetest.TeamRoles) uuid.UUID
		code   string
	}{
		"an administrator": {func(tm storetest.TeamRoles) uuid.UUID { return tm.Admin }, graph.CodeForbidden},
		"an outsider":      {func(tm storetest.TeamRoles) uuid.UUID { return tm.Outsider }, graph.CodeNotFound},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tm := storetest.TeamWithEveryRole(t, s)
			expectCode(t, a.do(session(tc.viewer(tm)), deleteTeamQuery, map[string]any{"id": tm.ID}, nil), tc.code, "")
			a.mustDo(session(tm.Owner), teamQuery, map[string]any{"id": tm.ID}, nil)
		})
	}
	t.Run("a missing team", func(t *testing.T) {
		t.Parallel()
		tm := storetest.TeamWithEveryRole(t, s)
		expectCode(t, a.do(session(tm.Owner), deleteTeamQuery, map[string]any{"id": uuid.New()}, nil), graph.CodeNotFound, "")
	})
	t.Run("a malformed id", func(t *testing.T) {
		t.Parallel()
		tm := storetest.TeamWithEveryRole(t, s)
		expectCode(t, a.do(session(tm.Owner), deleteTeamQuery, map[string]any{"id": "x"}, nil), graph.CodeBadUserInput, "")
	})
}

const createTeamAccessQuery = `mutation($team: ID!, $user: ID!, $role: TeamRole) {
	createTeamAccess(input: {teamId: $team, userId: $user, role: $role}) {
		access { id role user { id } abilities { delete setRoleTo } }
	}
}`

func TestCreateTeamAccess(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)

	t.Run("a member by default", func(t *testing.T) {
		t.Parallel()
		tm := storetest.TeamWithEveryRole(t, s)
		newcomer := storetest.User(t, s, storetest.Organization(t, s)).ID // any organization, as in People
		var out struct {
			CreateTeamAccess struct {
				Access struct {
					ID        uuid.UUID
					Role      string
					User      struct{ ID uuid.UUID }
					Abilities struct {
						Delete    bool
						SetRoleTo []string
					}
				}
			}
		}
		a.mustDo(session(tm.Admin), createTeamAccessQuery, map[string]any{"team": tm.ID, "user": newcomer}, &out)
		got := out.CreateTeamAccess.Access
		if got.Role != "MEMBER" || got.User.ID != newcomer || !got.Abilities.Delete ||
			!cmp.Equal(got.Abilities.SetRoleTo, []string{"ADMINISTRATOR"}) {
			t.Errorf("access = %+v", got)
		}
		if r := storedRole(t, s, got.ID); r != store.RoleMember {
			t.Errorf("stored role = %q", r)
		}
	})
	for name, tc := range map[string]struct {
		user func(t *testing.T, tm storetest.TeamRoles) any
		code string
	}{
		"someone already in the team": {func(_ *testing.T, tm storetest.TeamRoles) any { return tm.Member }, graph.CodeConflict},
		"the caller again":            {func(_ *testing.T, tm storetest.TeamRoles) any { return tm.Owner }, graph.CodeConflict},
		"an unknown user":             {func(*testing.T, storetest.TeamRoles) any { return uuid.New() }, graph.CodeNotFound},
		"an inactive user": {func(t *testing.T, tm storetest.TeamRoles) any {
			return storetest.User(t, s, tm.Org, storetest.Inactive()).ID
		}, graph.CodeNotFound},
		"a malformed user id": {func(*testing.T, storetest.TeamRoles) any { return "user" }, graph.CodeBadUserInput},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tm := storetest.TeamWithEveryRole(t, s)
			r := a.do(session(tm.Owner), createTeamAccessQuery, map[string]any{"team": tm.ID, "user": tc.user(t, tm), "role": "OWNER"}, nil)
			expectCode(t, r, tc.code, "")
			if r := storedRole(t, s, tm.MemberAccess); r != store.RoleMember {
				t.Errorf("member's role is now %q", r)
			}
		})
	}
	t.Run("a missing team", func(t *testing.T) {
		t.Parallel()
		tm := storetest.TeamWithEveryRole(t, s)
		r := a.do(session(tm.Owner), createTeamAccessQuery, map[string]any{"team": uuid.New(), "user": tm.Outsider}, nil)
		expectCode(t, r, graph.CodeNotFound, "")
	})
}

func TestChangeMissingTeamAccess(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	tm := storetest.TeamWithEveryRole(t, s)
	for name, tc := range map[string]struct {
		query string
		vars  map[string]any
		code  string
	}{
		"update a missing access": {`mutation($id: ID!) { updateTeamAccess(input: {id: $id, role: MEMBER}) { access { id } } }`,
			map[string]any{"id": uuid.New()}, graph.CodeNotFound},
		"update with a malformed id": {`mutation($id: ID!) { updateTeamAccess(input: {id: $id, role: MEMBER}) { access { id } } }`,
			map[string]any{"id": "x"}, graph.CodeBadUserInput},
		"delete a missing access": {`mutation($id: ID!) { deleteTeamAccess(input: {id: $id}) { deletedId } }`,
			map[string]any{"id": uuid.New()}, graph.CodeNotFound},
		"delete with a malformed id": {`mutation($id: ID!) { deleteTeamAccess(input: {id: $id}) { deletedId } }`,
			map[string]any{"id": "x"}, graph.CodeBadUserInput},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			expectCode(t, a.do(session(tm.Owner), tc.query, tc.vars, nil), tc.code, "")
		})
	}
}

const accessesQuery = `query($id: ID!, $search: String, $orderBy: TeamAccessOrder, $first: Int, $after: String) {
	team(id: $id) {
		accesses(search: $search, orderBy: $orderBy, first: $first, after: $after) {
			nodes { id role user { id name email } }
			pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
			totalCount
		}
	}
}`

type accessesOut struct {
	Team struct {
		Accesses struct {
			Nodes []struct {
				ID   uuid.UUID
				Role string
				User struct {
					ID          uuid.UUID
					Name, Email string
				}
			}
			PageInfo   teamPageInfo
			TotalCount int
		}
	}
}

func (o accessesOut) userIDs() []uuid.UUID {
	var ids []uuid.UUID
	for _, n := range o.Team.Accesses.Nodes {
		ids = append(ids, n.User.ID)
	}
	return ids
}

func TestTeamAccesses(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	org := storetest.Organization(t, s)
	tok := storetest.Unique()
	team := storetest.Team(t, s, org, "Accesses "+tok)
	add := func(name, email string, role store.Role) uuid.UUID {
		u := storetest.User(t, s, org, storetest.WithName(name+" "+tok), storetest.WithEmail(email+"-"+tok+"@example.test")).ID
		storetest.Access(t, s, team, u, role)
		return u
	}
	// Names, emails and roles in different orders.
	zoe := add("Zoé Member", "a", store.RoleMember)
	yann := add("Yann Owner", "d", store.RoleOwner)
	xavier := add("Xavier Admin", "b", store.RoleAdministrator)
	anna := add("Anna Owner", "c", store.RoleOwner)
	storetest.TeamWithEveryRole(t, s) // another team's accesses never show

	list := func(t *testing.T, vars map[string]any) accessesOut {
		t.Helper()
		vars["id"] = team
		var out accessesOut
		a.mustDo(session(zoe), accessesQuery, vars, &out)
		return out
	}
	for _, tt := range []struct {
		name string
		vars map[string]any
		want []uuid.UUID
	}{
		{"by role by default: owners first", map[string]any{}, []uuid.UUID{anna, yann, xavier, zoe}},
		{"ROLE", map[string]any{"orderBy": "ROLE"}, []uuid.UUID{anna, yann, xavier, zoe}},
		{"NAME", map[string]any{"orderBy": "NAME"}, []uuid.UUID{anna, xavier, yann, zoe}},
		{"EMAIL", map[string]any{"orderBy": "EMAIL"}, []uuid.UUID{zoe, xavier, anna, yann}},
		{"search a name, accents and case folded", map[string]any{"search": "ZOE MEMB"}, []uuid.UUID{zoe}},
		{"search an email", map[string]any{"search": "b-" + tok + "@"}, []uuid.UUID{xavier}},
		{"search the word shared by owners", map[string]any{"search": "owner " + tok}, []uuid.UUID{anna, yann}},
		{"search with no match", map[string]any{"search": "nobody"}, nil},
		{"search with NUL", map[string]any{"search": "Zo\x00é"}, []uuid.UUID{zoe}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := list(t, tt.vars)
			if diff := cmp.Diff(tt.want, got.userIDs(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("accesses (-want +got):\n%s", diff)
			}
			if got.Team.Accesses.TotalCount != len(tt.want) {
				t.Errorf("totalCount = %d, want %d", got.Team.Accesses.TotalCount, len(tt.want))
			}
		})
	}
	t.Run("pages", func(t *testing.T) {
		t.Parallel()
		first := list(t, map[string]any{"first": 3}).Team.Accesses
		if len(first.Nodes) != 3 || first.TotalCount != 4 || !first.PageInfo.HasNextPage || first.PageInfo.HasPreviousPage || first.PageInfo.EndCursor == nil {
			t.Fatalf("first page = %+v", first)
		}
		second := list(t, map[string]any{"first": 3, "after": *first.PageInfo.EndCursor})
		if diff := cmp.Diff([]uuid.UUID{zoe}, second.userIDs()); diff != "" {
			t.Errorf("second page (-want +got):\n%s", diff)
		}
		if p := second.Team.Accesses.PageInfo; p.HasNextPage || !p.HasPreviousPage || second.Team.Accesses.TotalCount != 4 {
			t.Errorf("second page info = %+v, totalCount %d", p, second.Team.Accesses.TotalCount)
		}
		past := list(t, map[string]any{"first": 3, "after": *second.Team.Accesses.PageInfo.EndCursor}).Team.Accesses
		if len(past.Nodes) != 0 || past.TotalCount != 4 || past.PageInfo.HasNextPage {
			t.Errorf("past the end: %+v, want no nodes of 4", past)
		}
	})
	for name, vars := range map[string]map[string]any{
		"first: 0":   {"first": 0},
		"first: 101": {"first": 101},
		"bad cursor": {"after": "zzz"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			vars["id"] = team
			expectCode(t, a.do(session(zoe), accessesQuery, vars, nil), graph.CodeBadUserInput, "")
		})
	}
}

const invitationsQuery = `query($id: ID!, $first: Int, $after: String) {
	team(id: $id) {
		invitations(first: $first, after: $after) {
			nodes { id email role issuer { id } createdAt expiresAt isExpired }
			pageInfo { hasNextPage hasPreviousPage endCursor }
			totalCount
		}
	}
}`

type invitationNode struct {
	ID                   uuid.UUID
	Email, Role          string
	Issuer               struct{ ID uuid.UUID }
	CreatedAt, ExpiresAt time.Time
	IsExpired            bool
}

type invitationsOut struct {
	Team struct {
		Invitations struct {
			Nodes      []invitationNode
			PageInfo   teamPageInfo
			TotalCount int
		}
	}
}

func TestInvitations(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	tm := storetest.TeamWithEveryRole(t, s)
	tok := storetest.Unique()
	old := insertInvitation(t, s, tm.ID, tm.Owner, "old-"+tok+"@example.test", "now() - interval '8 days'")
	recent := insertInvitation(t, s, tm.ID, tm.Admin, "recent-"+tok+"@example.test", "now() - interval '6 days'")
	fresh := insertInvitation(t, s, tm.ID, tm.Owner, "fresh-"+tok+"@example.test", "now()")
	storetest.TeamWithEveryRole(t, s) // another team's invitations never show

	var out invitationsOut
	a.mustDo(session(tm.Member), invitationsQuery, map[string]any{"id": tm.ID}, &out)
	got := out.Team.Invitations
	if got.TotalCount != 3 || len(got.Nodes) != 3 {
		t.Fatalf("invitations = %+v, want 3", got)
	}
	wantIDs, wantExpired := []uuid.UUID{fresh, recent, old}, []bool{false, false, true}
	for i, n := range got.Nodes {
		if n.ID != wantIDs[i] || n.IsExpired != wantExpired[i] || n.Role != "MEMBER" {
			t.Errorf("invitation %d = %+v, want id %v, isExpired %v", i, n, wantIDs[i], wantExpired[i])
		}
		if d := n.ExpiresAt.Sub(n.CreatedAt); d != 7*24*time.Hour {
			t.Errorf("invitation %d is valid for %v, want 7 days", i, d)
		}
	}
	if got.Nodes[1].Issuer.ID != tm.Admin || got.Nodes[1].Email != "recent-"+tok+"@example.test" {
		t.Errorf("recent invitation = %+v, want issued by the administrator", got.Nodes[1])
	}

	t.Run("pages", func(t *testing.T) {
		t.Parallel()
		var p1, p2 invitationsOut
		a.mustDo(session(tm.Member), invitationsQuery, map[string]any{"id": tm.ID, "first": 2}, &p1)
		if n := p1.Team.Invitations; len(n.Nodes) != 2 || !n.PageInfo.HasNextPage || n.TotalCount != 3 {
			t.Fatalf("first page = %+v", n)
		}
		a.mustDo(session(tm.Member), invitationsQuery, map[string]any{"id": tm.ID, "first": 2, "after": *p1.Team.Invitations.PageInfo.EndCursor}, &p2)
		if n := p2.Team.Invitations; len(n.Nodes) != 1 || n.Nodes[0].ID != old || n.PageInfo.HasNextPage || !n.PageInfo.HasPreviousPage {
			t.Fatalf("second page = %+v", n)
		}
		var p3 invitationsOut
		a.mustDo(session(tm.Member), invitationsQuery, map[string]any{"id": tm.ID, "first": 2, "after": *p2.Team.Invitations.PageInfo.EndCursor}, &p3)
		if n := p3.Team.Invitations; len(n.Nodes) != 0 || n.TotalCount != 3 || n.PageInfo.HasNextPage {
			t.Errorf("past the end = %+v, want no nodes of 3", n)
		}
	})
	t.Run("first: 101", func(t *testing.T) {
		t.Parallel()
		expectCode(t, a.do(session(tm.Member), invitationsQuery, map[string]any{"id": tm.ID, "first": 101}, nil), graph.CodeBadUserInput, "")
	})
}

const createInvitationQuery = `mutation($team: ID!, $email: String!, $role: TeamRole) {
	createInvitation(input: {teamId: $team, email: $email, role: $role}) {
		invitation { id email role issuer { id } isExpired }
	}
}`

func TestCreateInvitation(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)

	t.Run("queues the invitation email", func(t *testing.T) {
		t.Parallel()
		tm := storetest.TeamWithEveryRole(t, s)
		email := "New.Person-" + storetest.Unique() + "@Example.TEST"
		var out struct {
			CreateInvitation struct{ Invitation invitationNode }
		}
		a.mustDo(session(tm.Admin), createInvitationQuery, map[string]any{"team": tm.ID, "email": email, "role": "ADMINISTRATOR"}, &out)
		got := out.CreateInvitation.Invitation
		wantEmail := strings.Split(email, "@")[0] + "@example.test" // the domain is lower-cased, as Django does
		if got.Email != wantEmail || got.Role != "ADMINISTRATOR" || got.Issuer.ID != tm.Admin || got.IsExpired {
			t.Errorf("invitation = %+v", got)
		}
		var mail struct{ Template, Recipient, Role, Team string }
		err := s.DB().QueryRowContext(t.Context(), `SELECT template, recipient, payload->>'role', payload->>'team_name'
			FROM mail_queue WHERE invitation_id = ? AND sent_at IS NULL`, got.ID).Scan(&mail.Template, &mail.Recipient, &mail.Role, &mail.Team)
		if err != nil {
			t.Fatalf("mail_queue row: %v", err)
		}
		if mail.Template != "invitation" || mail.Recipient != wantEmail || mail.Role != "administrator" || !strings.HasPrefix(mail.Team, "Team ") {
			t.Errorf("queued mail = %+v", mail)
		}
	})

	for name, tc := range map[string]struct {
		email       func(t *testing.T, tm storetest.TeamRoles) string
		code, field string
	}{
		"the email of a user of the organization, in another case": {func(t *testing.T, tm storetest.TeamRoles) string {
			email := "Known-" + storetest.Unique() + "@example.test"
			storetest.User(t, s, tm.Org, storetest.WithEmail(email))
			return strings.ToUpper(email[:1]) + strings.ToLower(email[1:])
		}, graph.CodeConflict, "email"},
		"a team member's email": {func(t *testing.T, tm storetest.TeamRoles) string {
			var email string
			if err := s.DB().QueryRowContext(context.Background(), "SELECT email FROM users WHERE id = ?", tm.Member).Scan(&email); err != nil {
				t.Fatal(err)
			}
			return strings.ToUpper(email)
		}, graph.CodeConflict, "email"},
		"an email already invited": {func(t *testing.T, tm storetest.TeamRoles) string {
			email := "twice-" + storetest.Unique() + "@example.test"
			insertInvitation(t, s, tm.ID, tm.Admin, email, "now()")
			return email
		}, graph.CodeConflict, "email"},
		"an email already invited, in another case": {func(t *testing.T, tm storetest.TeamRoles) string {
			email := "twice-" + storetest.Unique() + "@example.test"
			insertInvitation(t, s, tm.ID, tm.Admin, email, "now()")
			return strings.ToUpper(email)
		}, graph.CodeConflict, "email"},
		"not an email":      {func(*testing.T, storetest.TeamRoles) string { return "nobody" }, graph.CodeBadUserInput, "email"},
		"a display name":    {func(*testing.T, storetest.TeamRoles) string { return "Bob <bob@example.test>" }, graph.CodeBadUserInput, "email"},
		"an empty email":    {func(*testing.T, storetest.TeamRoles) string { return "" }, graph.CodeBadUserInput, "email"},
		"two at signs":      {func(*testing.T, storetest.TeamRoles) string { return "a@b@example.test" }, graph.CodeBadUserInput, "email"},
		"NUL in the email":  {func(*testing.T, storetest.TeamRoles) string { return "a\x00b@example.test" }, graph.CodeBadUserInput, "email"},
		"an overlong email": {func(*testing.T, storetest.TeamRoles) string { return strings.Repeat("a", 250) + "@example.test" }, graph.CodeBadUserInput, "email"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tm := storetest.TeamWithEveryRole(t, s)
			email := tc.email(t, tm)
			stored := strings.ReplaceAll(email, "\x00", "") // PostgreSQL text cannot hold NUL
			const rows = `SELECT (SELECT count(*) FROM invitations WHERE team_id = ?0)
				+ (SELECT count(*) FROM mail_queue WHERE lower(recipient) = lower(?1))`
			before := countTeamRows(t, s, rows, tm.ID, stored)
			expectCode(t, a.do(session(tm.Owner), createInvitationQuery, map[string]any{"team": tm.ID, "email": email}, nil), tc.code, tc.field)
			if after := countTeamRows(t, s, rows, tm.ID, stored); after != before {
				t.Errorf("%d invitations and mails after a refusal, %d before", after, before)
			}
		})
	}
	t.Run("the same email to another team", func(t *testing.T) {
		t.Parallel()
		tm, other := storetest.TeamWithEveryRole(t, s), storetest.TeamWithEveryRole(t, s)
		email := "both-" + storetest.Unique() + "@example.test"
		insertInvitation(t, s, other.ID, other.Owner, email, "now()")
		a.mustDo(session(tm.Owner), createInvitationQuery, map[string]any{"team": tm.ID, "email": email}, nil)
	})
	t.Run("a missing team", func(t *testing.T) {
		t.Parallel()
		tm := storetest.TeamWithEveryRole(t, s)
		r := a.do(session(tm.Owner), createInvitationQuery, map[string]any{"team": uuid.New(), "email": "x-" + storetest.Unique() + "@example.test"}, nil)
		expectCode(t, r, graph.CodeNotFound, "")
	})
}

// TestCreateInvitationRevealsNoAccount: the address of a user outside the inviter's organization
// (or of a user without one) is invited exactly as an address nobody has: same answer, same
// rows, same email queued, so that inviting tells nothing of who has an account in the
// directory. Only the users the inviter can already list (their organization's) are refused.
func TestCreateInvitationRevealsNoAccount(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	tm := storetest.TeamWithEveryRole(t, s)
	elsewhere := storetest.Organization(t, s)

	// shape is what the inviter learns: the answer with the address and the id blanked out, and
	// what the invitation queued.
	shape := func(email string) string {
		t.Helper()
		var out struct {
			CreateInvitation struct{ Invitation invitationNode }
		}
		r := a.do(session(tm.Owner), createInvitationQuery, map[string]any{"team": tm.ID, "email": email, "role": "MEMBER"}, &out)
		inv := out.CreateInvitation.Invitation
		var queued, audited int
		if inv.ID != uuid.Nil {
			queued = countTeamRows(t, s, "SELECT count(*) FROM mail_queue WHERE invitation_id = ? AND lower(recipient) = lower(?)", inv.ID, email)
			audited = countTeamRows(t, s, "SELECT count(*) FROM audit_events WHERE operation = 'createInvitation' AND ? = ANY (target_ids)", inv.ID)
		}
		return fmt.Sprintf("errors %v, email matches %v, role %s, issuer %v, expired %v, queued %d, audited %d", r.Errors,
			strings.EqualFold(inv.Email, email), inv.Role, inv.Issuer.ID == tm.Owner, inv.IsExpired, queued, audited)
	}
	unknown := shape("nobody-" + storetest.Unique() + "@example.test")
	if !strings.HasPrefix(unknown, "errors [], email matches true, role MEMBER, issuer true, expired false, queued 1, audited 1") {
		t.Fatalf("an unknown address: %s", unknown)
	}
	for name, email := range map[string]string{
		"a user of another organization": storetest.User(t, s, elsewhere).Email,
		"a user without organization":    storetest.User(t, s, uuid.Nil).Email,
		"another case of such a user":    strings.ToUpper(storetest.User(t, s, elsewhere).Email),
	} {
		if got := shape(email); got != unknown {
			t.Errorf("%s: %s\nan unknown address: %s", name, got, unknown)
		}
	}
}

// TestInvitationRateLimit: a user creates at most INVITATION_RATE_LIMIT invitations an hour,
// whichever teams, withdrawn ones included; then RATE_LIMITED, nothing written. Other users
// keep their own allowance.
func TestInvitationRateLimit(t *testing.T) {
	t.Parallel()
	s := store.New(storetest.Open(t).DB(), store.Options{InvitationsPerHour: 3})
	a := newAPI(t, s, allFeatures)
	tm, other := storetest.TeamWithEveryRole(t, s), storetest.TeamWithEveryRole(t, s)
	storetest.Access(t, s, other.ID, tm.Owner, store.RoleOwner)
	invite := func(user, team uuid.UUID) result {
		t.Helper()
		return a.do(session(user), createInvitationQuery, map[string]any{"team": team, "email": "rl-" + storetest.Unique() + "@example.test"}, nil)
	}
	var first struct {
		CreateInvitation struct{ Invitation struct{ ID uuid.UUID } }
	}
	a.mustDo(session(tm.Owner), createInvitationQuery, map[string]any{"team": tm.ID, "email": "rl-" + storetest.Unique() + "@example.test"}, &first)
	a.mustDo(session(tm.Owner), deleteInvitationQuery, map[string]any{"id": first.CreateInvitation.Invitation.ID}, nil)
	for _, team := range []uuid.UUID{tm.ID, other.ID} {
		if r := invite(tm.Owner, team); len(r.Errors) > 0 {
			t.Fatalf("an invitation within the limit: %+v", r.Errors)
		}
	}
	const rows = "SELECT (SELECT count(*) FROM invitations WHERE issuer_id = ?0) + (SELECT count(*) FROM audit_events WHERE actor_id = ?0)"
	before := countTeamRows(t, s, rows, tm.Owner)
	expectCode(t, invite(tm.Owner, other.ID), graph.CodeRateLimited, "")
	if after := countTeamRows(t, s, rows, tm.Owner); after != before {
		t.Errorf("%d invitations and mails after the refusal, %d before", after, before)
	}
	if r := invite(tm.Admin, tm.ID); len(r.Errors) > 0 {
		t.Errorf("another user's invitation: %+v", r.Errors)
	}
}

// countTeamRows runs a count query with plain SQL.
func countTeamRows(tb testing.TB, s *store.Store, query string, args ...any) int {
	tb.Helper()
	var n int
	if err := s.DB().QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

const deleteInvitationQuery = `mutation($id: ID!) { deleteInvitation(input: {id: $id}) { deletedId } }`

func TestDeleteInvitation(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)

	t.Run("withdraws it and its queued email", func(t *testing.T) {
		t.Parallel()
		tm := storetest.TeamWithEveryRole(t, s)
		var created struct {
			CreateInvitation struct{ Invitation struct{ ID uuid.UUID } }
		}
		a.mustDo(session(tm.Owner), createInvitationQuery, map[string]any{"team": tm.ID, "email": "w-" + storetest.Unique() + "@example.test"}, &created)
		id := created.CreateInvitation.Invitation.ID
		var out struct{ DeleteInvitation struct{ DeletedID uuid.UUID } }
		a.mustDo(session(tm.Admin), deleteInvitationQuery, map[string]any{"id": id}, &out)
		if out.DeleteInvitation.DeletedID != id {
			t.Errorf("deletedId = %v, want %v", out.DeleteInvitation.DeletedID, id)
		}
		if n := countTeamRows(t, s, "SELECT (SELECT count(*) FROM invitations WHERE id = ?0) + (SELECT count(*) FROM mail_queue WHERE invitation_id = ?0)", id); n != 0 {
			t.Errorf("%d rows left", n)
		}
		expectCode(t, a.do(session(tm.Admin), deleteInvitationQuery, map[string]any{"id": id}, nil), graph.CodeNotFound, "")
	})
	t.Run("a missing invitation", func(t *testing.T) {
		t.Parallel()
		tm := storetest.TeamWithEveryRole(t, s)
		expectCode(t, a.do(session(tm.Owner), deleteInvitationQuery, map[string]any{"id": uuid.New()}, nil), graph.CodeNotFound, "")
	})
	t.Run("another team's invitation", func(t *testing.T) {
		t.Parallel()
		tm, other := storetest.TeamWithEveryRole(t, s), storetest.TeamWithEveryRole(t, s)
		id := insertInvitation(t, s, other.ID, other.Owner, "o-"+storetest.Unique()+"@example.test", "now()")
		expectCode(t, a.do(session(tm.Owner), deleteInvitationQuery, map[string]any{"id": id}, nil), graph.CodeNotFound, "")
		if n := countTeamRows(t, s, "SELECT count(*) FROM invitations WHERE id = ?", id); n != 1 {
			t.Errorf("the invitation is gone")
		}
	})
}

// TestTeamsThroughServiceProvider covers a partner service acting on a user's behalf: it sees
// only the teams shared with it (or with all services) and may not use session-only fields.
func TestTeamsThroughServiceProvider(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	org := storetest.Organization(t, s)
	user := storetest.User(t, s, org).ID
	creator := storetest.User(t, s, org).ID // for subtests that add teams, so that user's lists stay fixed
	spA, spB, spC := newServiceProvider(t, s), newServiceProvider(t, s), newServiceProvider(t, s)
	tok := storetest.Unique()
	day := time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)
	onlyA := joinTeam(t, s, org, user, store.RoleOwner, "Only A "+tok, day)
	onlyB := joinTeam(t, s, org, user, store.RoleOwner, "Only B "+tok, day.Add(time.Hour))
	everywhere := joinTeam(t, s, org, user, store.RoleMember, "Everywhere "+tok, day.Add(2*time.Hour))
	storetest.MustExec(t, s.DB(), "UPDATE teams SET is_visible_all_services = true WHERE id = ?", everywhere)
	unshared := joinTeam(t, s, org, user, store.RoleOwner, "Unshared "+tok, day.Add(3*time.Hour))
	linkServiceProvider(t, s, onlyA, spA)
	linkServiceProvider(t, s, onlyB, spB)
	// A team shared with A that the user is not in stays hidden.
	notMine := storetest.TeamWithEveryRole(t, s)
	linkServiceProvider(t, s, notMine.ID, spA)

	for name, tc := range map[string]struct {
		sp   uuid.UUID
		want []uuid.UUID
	}{
		"service A":           {spA, []uuid.UUID{everywhere, onlyA}},
		"service B":           {spB, []uuid.UUID{everywhere, onlyB}},
		"a service with none": {spC, []uuid.UUID{everywhere}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var out teamsOut
			a.mustDo(bearer(user, tc.sp), teamsQuery, nil, &out)
			if diff := cmp.Diff(tc.want, teamIDs(out.Teams.Nodes)); diff != "" || out.Teams.TotalCount != len(tc.want) {
				t.Errorf("teams (-want +got):\n%s, totalCount %d", diff, out.Teams.TotalCount)
			}
		})
	}
	t.Run("a session sees them all", func(t *testing.T) {
		t.Parallel()
		var out teamsOut
		a.mustDo(session(user), teamsQuery, nil, &out)
		if diff := cmp.Diff([]uuid.UUID{unshared, everywhere, onlyB, onlyA}, teamIDs(out.Teams.Nodes)); diff != "" {
			t.Errorf("teams (-want +got):\n%s", diff)
		}
	})
	for name, tc := range map[string]struct {
		team uuid.UUID
		code string
	}{
		"its own team":            {onlyA, ""},
		"a team for all services": {everywhere, ""},
		"another service's team":  {onlyB, graph.CodeNotFound},
		"an unshared team":        {unshared, graph.CodeNotFound},
	} {
		t.Run("team(id): "+name, func(t *testing.T) {
			t.Parallel()
			expectCode(t, a.do(bearer(user, spA), teamQuery, map[string]any{"id": tc.team}, nil), tc.code, "")
		})
	}
	t.Run("abilities hide what a service may not do", func(t *testing.T) {
		t.Parallel()
		var out struct {
			Team struct {
				Abilities struct{ Get, Update, Delete, ManageAccesses bool }
				Accesses  struct {
					Nodes []struct {
						Abilities struct {
							Delete    bool
							SetRoleTo []string
						}
					}
				}
			}
		}
		a.mustDo(bearer(user, spA), `query($id: ID!) { team(id: $id) { abilities { get update delete manageAccesses }
			accesses { nodes { abilities { delete setRoleTo } } } } }`, map[string]any{"id": onlyA}, &out)
		if ab := out.Team.Abilities; !ab.Get || !ab.Update || ab.Delete || !ab.ManageAccesses {
			t.Errorf("team abilities = %+v, want all but delete", ab)
		}
		if len(out.Team.Accesses.Nodes) == 0 {
			t.Fatal("no access listed: nothing to check the abilities of")
		}
		for _, n := range out.Team.Accesses.Nodes {
			if n.Abilities.Delete || len(n.Abilities.SetRoleTo) != 0 {
				t.Errorf("access abilities = %+v, want none", n.Abilities)
			}
		}
	})

	t.Run("serviceProviders names the calling service only", func(t *testing.T) {
		t.Parallel()
		viewer := storetest.User(t, s, org).ID
		shared := joinTeam(t, s, org, viewer, store.RoleMember, "Shared "+tok, day)
		for _, sp := range []uuid.UUID{spA, spB, spC} {
			linkServiceProvider(t, s, shared, sp)
		}
		forAll := joinTeam(t, s, org, viewer, store.RoleMember, "For all "+tok, day.Add(time.Hour))
		storetest.MustExec(t, s.DB(), "UPDATE teams SET is_visible_all_services = true WHERE id = ?", forAll)
		linkServiceProvider(t, s, forAll, spB)
		type spsOut = []struct{ ID uuid.UUID }
		ids := func(sps spsOut) []uuid.UUID {
			out := []uuid.UUID{}
			for _, sp := range sps {
				out = append(out, sp.ID)
			}
			if len(out) == 0 {
				return out // [] rather than nil, to compare with the wanted empty lists
			}
			return sortUUIDs(out...)
		}
		for _, tc := range []struct {
			name   string
			caller *auth.Principal
			want   map[uuid.UUID][]uuid.UUID
		}{
			{"service A", bearer(viewer, spA), map[uuid.UUID][]uuid.UUID{shared: {spA}, forAll: {}}},
			{"service B", bearer(viewer, spB), map[uuid.UUID][]uuid.UUID{shared: {spB}, forAll: {spB}}},
			{"a session", session(viewer), map[uuid.UUID][]uuid.UUID{shared: sortUUIDs(spA, spB, spC), forAll: {spB}}},
		} {
			var list struct {
				Teams struct {
					Nodes []struct {
						ID               uuid.UUID
						ServiceProviders spsOut
					}
				}
			}
			a.mustDo(tc.caller, `{ teams { nodes { id serviceProviders { id } } } }`, nil, &list)
			got := map[uuid.UUID][]uuid.UUID{}
			for _, n := range list.Teams.Nodes {
				got[n.ID] = ids(n.ServiceProviders)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s: teams' serviceProviders (-want +got):\n%s", tc.name, diff)
			}
			for team, want := range tc.want {
				var one struct {
					Team struct{ ServiceProviders spsOut }
				}
				a.mustDo(tc.caller, `query($id: ID!) { team(id: $id) { serviceProviders { id } } }`, map[string]any{"id": team}, &one)
				if diff := cmp.Diff(want, ids(one.Team.ServiceProviders)); diff != "" {
					t.Errorf("%s: team(id).serviceProviders (-want +got):\n%s", tc.name, diff)
				}
			}
		}
	})
	t.Run("createTeam shares the team with the calling service only", func(t *testing.T) {
		t.Parallel()
		var out createdTeam
		a.mustDo(bearer(creator, spA), createTeamQuery, map[string]any{"name": "From A " + tok, "sps": []uuid.UUID{spB}}, &out)
		got := out.CreateTeam.Team
		if diff := cmp.Diff([]uuid.UUID{spA}, teamServiceProviders(t, s, got.ID)); diff != "" {
			t.Errorf("service providers (-want +got):\n%s", diff)
		}
		if got.Role != "OWNER" {
			t.Errorf("role = %q", got.Role)
		}
		// The organization is the user's, as for a session.
		var teamOrg uuid.UUID
		if err := s.DB().QueryRowContext(t.Context(), "SELECT organization_id FROM teams WHERE id = ?", got.ID).Scan(&teamOrg); err != nil || teamOrg != org {
			t.Errorf("organization = %v (%v), want the user's %v", teamOrg, err, org)
		}
		expectCode(t, a.do(bearer(creator, spB), teamQuery, map[string]any{"id": got.ID}, nil), graph.CodeNotFound, "")
	})
	t.Run("updateTeam renames, but cannot change services", func(t *testing.T) {
		t.Parallel()
		tm := joinTeam(t, s, org, creator, store.RoleAdministrator, "Renamable "+tok, day)
		linkServiceProvider(t, s, tm, spA)
		var out struct {
			UpdateTeam struct{ Team struct{ Name string } }
		}
		a.mustDo(bearer(creator, spA), updateTeamQuery, map[string]any{"input": map[string]any{"id": tm, "name": "Renamed " + tok}}, &out)
		if out.UpdateTeam.Team.Name != "Renamed "+tok {
			t.Errorf("name = %q", out.UpdateTeam.Team.Name)
		}
		r := a.do(bearer(creator, spA), updateTeamQuery, map[string]any{"input": map[string]any{"id": tm, "serviceProviderIds": []uuid.UUID{spA, spB}}}, nil)
		expectCode(t, r, graph.CodeForbidden, "")
		expectCode(t, a.do(bearer(creator, spB), updateTeamQuery, map[string]any{"input": map[string]any{"id": tm, "name": "x"}}, nil), graph.CodeNotFound, "")
		if diff := cmp.Diff([]uuid.UUID{spA}, teamServiceProviders(t, s, tm)); diff != "" {
			t.Errorf("service providers (-want +got):\n%s", diff)
		}
	})
	t.Run("invitations only in the service's teams", func(t *testing.T) {
		t.Parallel()
		email := "sp-" + storetest.Unique() + "@example.test"
		a.mustDo(bearer(user, spA), createInvitationQuery, map[string]any{"team": onlyA, "email": email}, nil)
		r := a.do(bearer(user, spA), createInvitationQuery, map[string]any{"team": onlyB, "email": email}, nil)
		expectCode(t, r, graph.CodeNotFound, "")
	})
	t.Run("invitations: list, create and delete with the session's role rules", func(t *testing.T) {
		t.Parallel()
		tm := storetest.TeamWithEveryRole(t, s)
		linkServiceProvider(t, s, tm.ID, spA)
		invite := func(p *auth.Principal, role string) result {
			return a.do(p, createInvitationQuery, map[string]any{"team": tm.ID, "email": "bi-" + storetest.Unique() + "@example.test", "role": role}, nil)
		}
		var made struct {
			CreateInvitation struct{ Invitation struct{ ID uuid.UUID } }
		}
		a.mustDo(bearer(tm.Owner, spA), createInvitationQuery, map[string]any{"team": tm.ID, "email": "bo-" + storetest.Unique() + "@example.test", "role": "OWNER"}, &made)
		expectCode(t, invite(bearer(tm.Admin, spA), "ADMINISTRATOR"), "", "")
		expectCode(t, invite(bearer(tm.Admin, spA), "OWNER"), graph.CodeForbidden, "")
		expectCode(t, invite(bearer(tm.Member, spA), "MEMBER"), graph.CodeForbidden, "")
		expectCode(t, invite(bearer(tm.Owner, spB), "MEMBER"), graph.CodeNotFound, "")

		var out invitationsOut
		a.mustDo(bearer(tm.Member, spA), invitationsQuery, map[string]any{"id": tm.ID}, &out)
		if out.Team.Invitations.TotalCount != 2 {
			t.Errorf("invitations seen by a member through A = %d, want 2", out.Team.Invitations.TotalCount)
		}
		expectCode(t, a.do(bearer(tm.Member, spB), invitationsQuery, map[string]any{"id": tm.ID}, nil), graph.CodeNotFound, "")

		id := map[string]any{"id": made.CreateInvitation.Invitation.ID}
		expectCode(t, a.do(bearer(tm.Member, spA), deleteInvitationQuery, id, nil), graph.CodeForbidden, "")
		expectCode(t, a.do(bearer(tm.Admin, spB), deleteInvitationQuery, id, nil), graph.CodeNotFound, "")
		a.mustDo(bearer(tm.Admin, spA), deleteInvitationQuery, id, nil)
		if n := countTeamRows(t, s, "SELECT count(*) FROM invitations WHERE team_id = ?", tm.ID); n != 1 {
			t.Errorf("invitations left = %d, want 1", n)
		}
	})

	for name, tc := range map[string]struct {
		query string
		vars  map[string]any
	}{
		"deleteTeam":       {deleteTeamQuery, map[string]any{"id": onlyA}},
		"createTeamAccess": {createTeamAccessQuery, map[string]any{"team": onlyA, "user": notMine.Outsider}},
		"updateTeamAccess": {`mutation($id: ID!) { updateTeamAccess(input: {id: $id, role: MEMBER}) { access { id } } }`, map[string]any{"id": uuid.New()}},
		"deleteTeamAccess": {`mutation($id: ID!) { deleteTeamAccess(input: {id: $id}) { deletedId } }`, map[string]any{"id": uuid.New()}},
		"users":            {`{ users { totalCount } }`, nil},
	} {
		t.Run(name+" is session-only", func(t *testing.T) {
			t.Parallel()
			expectCode(t, a.do(bearer(user, spA), tc.query, tc.vars, nil), graph.CodeForbidden, "")
			if n := countTeamRows(t, s, "SELECT count(*) FROM team_accesses WHERE team_id = ?", onlyA); n != 1 {
				t.Errorf("team has %d accesses, want its 1 owner", n)
			}
		})
	}
}
