package graph_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// A connection makes its edges and cursors, and an access mutation loads the access's user,
// only when the selection asks for them (graph/team_access.go selects): asked for through
// named and inline fragments and aliases, they are there all the same.
func TestSelectionThroughFragments(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	org := storetest.Organization(t, s)
	viewer := storetest.User(t, s, org).ID
	var team uuid.UUID
	for range 3 {
		team = storetest.Team(t, s, org, "Team "+storetest.Unique())
		storetest.Access(t, s, team, viewer, store.RoleOwner)
	}

	t.Run("edges and page info", func(t *testing.T) {
		t.Parallel()
		const direct = `{ teams(first: 2) { edges { cursor node { id } } pageInfo { startCursor endCursor hasNextPage } } }`
		const fragments = `{ teams(first: 2) { ...Page } }
			fragment Page on TeamConnection { ... on TeamConnection { e: edges { cursor node { id } } } ...Info }
			fragment Info on TeamConnection { pageInfo { startCursor endCursor hasNextPage } }`
		type page struct {
			Teams struct {
				Edges    []struct{ Cursor, Node json.RawMessage }
				E        []struct{ Cursor, Node json.RawMessage }
				PageInfo struct {
					StartCursor, EndCursor string
					HasNextPage            bool
				}
			}
		}
		var want, got page
		a.mustDo(session(viewer), direct, nil, &want)
		a.mustDo(session(viewer), fragments, nil, &got)
		if len(want.Teams.Edges) != 2 || want.Teams.PageInfo.EndCursor == "" || !want.Teams.PageInfo.HasNextPage {
			t.Fatalf("direct selection: %+v, want 2 edges and a next page", want.Teams)
		}
		got.Teams.Edges, got.Teams.E = got.Teams.E, nil
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("through fragments (-direct +fragments):\n%s", diff)
		}
	})

	t.Run("an added access's user", func(t *testing.T) {
		t.Parallel()
		newcomer := storetest.User(t, s, org).ID
		const query = `mutation($team: ID!, $user: ID!) {
			createTeamAccess(input: {teamId: $team, userId: $user}) { ...Added }
		}
		fragment Added on CreateTeamAccessPayload { a: access { ... on TeamAccess { u: user { id } } } }`
		var out struct {
			CreateTeamAccess struct {
				A struct{ U struct{ ID uuid.UUID } }
			}
		}
		a.mustDo(session(viewer), query, map[string]any{"team": team, "user": newcomer}, &out)
		if got := out.CreateTeamAccess.A.U.ID; got != newcomer {
			t.Errorf("access user = %s, want %s", got, newcomer)
		}
	})
}
