package graph_test

import (
	"fmt"
	"testing"

	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// teamsPageQuery asks for everything a team list page shows, nested three levels deep.
const teamsPageQuery = `query($n: Int!) { teams(first: $n) { nodes {
	name role abilities { update } serviceProviders { name }
	accesses(first: 10) { totalCount nodes { role user { name email } abilities { delete setRoleTo } } }
	invitations(first: 5) { nodes { email issuer { name } } }
} } }`

// wantTeamPageStatements is what one page of teams costs, whatever its size: the teams with
// their accesses and the accesses' users (one statement, graph/prefetch.go), then one statement
// each for the page's service providers and invitations (with their issuers, joined). Before
// the joins, users were a fifth batch that split in two whenever accesses and invitations
// returned more than the loader wait apart.
const wantTeamPageStatements = 3

// A page of 20 teams with their members, invitations and services costs the same statements as
// a page of one: nested fields go through loaders, never one query per team, and a page's
// nested lists are fetched for the whole page whatever the timing (graph/loaders.go pageLoader).
func TestTeamPageStatementCount(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 20} {
		t.Run(fmt.Sprintf("%d teams", n), func(t *testing.T) {
			t.Parallel()
			counter := &statementCounter{}
			s := storetest.OpenFresh(t, counter)
			a := newAPI(t, s, allFeatures)
			viewer := teamsWithEverything(t, s, n)

			for attempt := range 3 { // the same count every time, not only on a lucky schedule
				counter.n.Store(0)
				var out struct {
					Teams struct {
						Nodes []struct {
							Accesses struct {
								TotalCount int
								Nodes      []struct{ User struct{ Email string } }
							}
							Invitations struct {
								Nodes []struct{ Issuer struct{ Name string } }
							}
							ServiceProviders []struct{ Name string }
						}
					}
				}
				a.mustDo(session(viewer), teamsPageQuery, map[string]any{"n": n}, &out)
				if got := counter.n.Load(); got != wantTeamPageStatements {
					t.Errorf("attempt %d: %d statements for %d teams, want %d", attempt, got, n, wantTeamPageStatements)
				}
				if len(out.Teams.Nodes) != n {
					t.Fatalf("got %d teams, want %d", len(out.Teams.Nodes), n)
				}
				for _, tm := range out.Teams.Nodes {
					if tm.Accesses.TotalCount != 4 || len(tm.Accesses.Nodes) != 4 || tm.Accesses.Nodes[0].User.Email == "" {
						t.Errorf("accesses = %+v, want 4 with users", tm.Accesses)
					}
					if len(tm.Invitations.Nodes) != 2 || tm.Invitations.Nodes[0].Issuer.Name == "" {
						t.Errorf("invitations = %+v, want 2 with issuers", tm.Invitations)
					}
					if len(tm.ServiceProviders) != 1 {
						t.Errorf("service providers = %+v, want 1", tm.ServiceProviders)
					}
				}
			}
		})
	}
}

// teamsWithEverything makes a user who owns n teams, each with three more members, two
// invitations and a service provider, and returns the user.
func teamsWithEverything(tb testing.TB, s *store.Store, n int) uuid.UUID {
	tb.Helper()
	org := storetest.Organization(tb, s)
	viewer := storetest.User(tb, s, org).ID
	for i := range n {
		team := storetest.Team(tb, s, org, fmt.Sprintf("Team %d %s", i, storetest.Unique()))
		storetest.Access(tb, s, team, viewer, store.RoleOwner)
		storetest.Access(tb, s, team, storetest.User(tb, s, org).ID, store.RoleAdministrator)
		storetest.Access(tb, s, team, storetest.User(tb, s, org).ID, store.RoleMember)
		storetest.Access(tb, s, team, storetest.User(tb, s, org).ID, store.RoleMember)
		for range 2 {
			storetest.MustExec(tb, s.DB(), "INSERT INTO invitations (email, team_id, role, issuer_id) VALUES (?, ?, 'member', ?)",
				"invitee-"+storetest.Unique()+"@example.test", team, viewer)
		}
		linkServiceProvider(tb, s, team, newServiceProvider(tb, s))
	}
	return viewer
}

// newServiceProvider inserts a service provider with a unique name and audience.
func newServiceProvider(tb testing.TB, s *store.Store) uuid.UUID {
	tb.Helper()
	tok := storetest.Unique()
	var id uuid.UUID
	if err := s.DB().QueryRowContext(tb.Context(), "INSERT INTO service_providers (name, audience_id) VALUES (?, ?) RETURNING id",
		"Service "+tok, "client-"+tok).Scan(&id); err != nil {
		tb.Fatalf("create service provider: %v", err)
	}
	return id
}

// linkServiceProvider shares a team with a service provider.
func linkServiceProvider(tb testing.TB, s *store.Store, team, sp uuid.UUID) {
	tb.Helper()
	storetest.MustExec(tb, s.DB(), "INSERT INTO team_service_providers (team_id, service_provider_id) VALUES (?, ?)", team, sp)
}
