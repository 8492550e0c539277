package store_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// TeamsWithAccesses and TeamWithAccesses give what Teams, TeamByID and TeamAccessesByTeamIDs
// give apart, for every order, search, page and shape; a narrower shape leaves out only what it
// says it does.
func TestTeamsWithAccessesMatchTheSeparateReads(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	ctx := context.Background()
	org := storetest.Organization(t, s)
	viewer := storetest.User(t, s, org).ID
	tok := storetest.Unique()
	var teams []uuid.UUID
	for i := range 5 {
		tm := storetest.Team(t, s, org, fmt.Sprintf("Team %d %s", i, tok))
		teams = append(teams, tm)
		storetest.Access(t, s, tm, viewer, []store.Role{store.RoleOwner, store.RoleMember, store.RoleAdministrator}[i%3])
		for j := range i * 2 { // 0 to 8 more members, some of them owners
			u := storetest.User(t, s, org, storetest.WithName(fmt.Sprintf("Member %d-%d %s", i, j, tok)))
			storetest.Access(t, s, tm, u.ID, []store.Role{store.RoleMember, store.RoleOwner, store.RoleAdministrator}[j%3])
		}
	}
	sp := storetest.Unique()
	var service uuid.UUID
	if err := s.DB().QueryRowContext(ctx, "INSERT INTO service_providers (name, audience_id) VALUES (?, ?) RETURNING id",
		"Service "+sp, "client-"+sp).Scan(&service); err != nil {
		t.Fatal(err)
	}
	storetest.MustExec(t, s.DB(), "INSERT INTO team_service_providers (team_id, service_provider_id) VALUES (?, ?), (?, ?)",
		teams[2], service, teams[4], service)

	actors := map[string]store.Actor{"session": store.UserActor(viewer), "service": {UserID: viewer, ServiceProviderID: service, Method: store.ActorBearer}}
	teamFilters := []store.TeamFilter{
		{Page: store.Page{Limit: 10}},
		{Page: store.Page{Limit: 2}},
		{Page: store.Page{Limit: 2, Offset: 2}, Order: store.TeamOrderNameAsc},
		{Page: store.Page{Limit: 3, Offset: 9}}, // past the end
		{Page: store.Page{Limit: 10}, Search: "team 3", Order: store.TeamOrderCreatedAsc},
		{Page: store.Page{Limit: 10}, Search: "nothing like it"},
	}
	accessFilters := []store.AccessFilter{
		{Page: store.Page{Limit: 10}},
		{Page: store.Page{Limit: 3}, Order: store.AccessOrderName},
		{Page: store.Page{Limit: 2, Offset: 4}, Order: store.AccessOrderEmail},
		{Page: store.Page{Limit: 5, Offset: 20}}, // past the end
		{Page: store.Page{Limit: 10}, Search: "member 4-"},
	}
	shapes := []store.AccessShape{{}, {NoCounts: true}, {BriefUser: true}, {NoDates: true}, {NoCounts: true, BriefUser: true, NoDates: true}}

	for name, actor := range actors {
		for _, tf := range teamFilters {
			want, err := s.Teams(ctx, actor, tf)
			if err != nil {
				t.Fatal(err)
			}
			ids := make([]uuid.UUID, len(want.Items))
			for i, tm := range want.Items {
				ids[i] = tm.ID
			}
			for _, af := range accessFilters {
				for _, shape := range shapes {
					af.Shape = shape
					what := fmt.Sprintf("%s, teams %+v, accesses %+v", name, tf, af)
					full := af
					full.Shape = store.AccessShape{}
					wantPages, err := s.TeamAccessesByTeamIDs(ctx, actor, ids, full)
					if err != nil {
						t.Fatal(err)
					}
					teamShape := store.TeamShape{Brief: shape.NoDates} // both ways, over the shapes
					tf.Shape = teamShape
					got, pages, err := s.TeamsWithAccesses(ctx, actor, tf, af)
					if err != nil {
						t.Fatalf("%s: %v", what, err)
					}
					if want := briefTeams(want, teamShape); !reflect.DeepEqual(got, want) {
						t.Errorf("%s: teams\n%+v\nwant\n%+v", what, got, want)
					}
					checkPages(t, what, shape, pages, wantPages)
					for _, id := range ids {
						tm, page, err := s.TeamWithAccesses(ctx, actor, id, teamShape, af)
						if err != nil {
							t.Fatalf("%s: team %s: %v", what, id, err)
						}
						alone, err := s.TeamByID(ctx, actor, id)
						if err != nil {
							t.Fatal(err)
						}
						if want := briefTeams(store.List[store.TeamView]{Items: []store.TeamView{*alone}}, teamShape).Items[0]; !reflect.DeepEqual(*tm, want) {
							t.Errorf("%s: team %+v, want %+v", what, tm, want)
						}
						gotOne, wantOne := map[uuid.UUID]store.List[store.TeamAccessView]{}, map[uuid.UUID]store.List[store.TeamAccessView]{}
						if !reflect.DeepEqual(page, store.List[store.TeamAccessView]{}) {
							gotOne[id] = page // an entry, as the page of teams gives
						}
						if w, ok := wantPages[id]; ok {
							wantOne[id] = w
						}
						checkPages(t, what+" (one team)", shape, gotOne, wantOne)
					}
				}
			}
		}
	}
	// A team the actor may not see is not found, with its accesses too.
	if _, _, err := s.TeamWithAccesses(ctx, actors["service"], teams[0], store.TeamShape{}, store.AccessFilter{Page: store.Page{Limit: 5}}); store.KindOf(err) != store.KindNotFound {
		t.Errorf("a team not shared with the service: %v, want KindNotFound", err)
	}
}

// briefTeams is l as a read of shape gives it: a brief team has only its id, name and the
// viewer's role (and what the viewer's method says of its abilities).
func briefTeams(l store.List[store.TeamView], shape store.TeamShape) store.List[store.TeamView] {
	if !shape.Brief {
		return l
	}
	l.Items = slices.Clone(l.Items)
	for i, t := range l.Items {
		b := t
		b.Team = store.Team{ID: t.ID, Name: t.Name}
		l.Items[i] = b
	}
	return l
}

// checkPages compares pages read with shape to want, read in full: equal but for what the shape
// leaves out (counts, and the user's columns but id, email and name).
func checkPages(t *testing.T, what string, shape store.AccessShape, got, want map[uuid.UUID]store.List[store.TeamAccessView]) {
	t.Helper()
	for id, w := range want {
		g := got[id]
		if shape.NoCounts {
			if g.Total != 0 {
				t.Errorf("%s: team %s: total %d without counts", what, id, g.Total)
			}
			w.Total = 0
			if len(w.Items) == 0 {
				// Without counts, a page with no access gives no entry, as a team with none.
				if _, ok := got[id]; ok {
					t.Errorf("%s: team %s: an entry for an empty page without counts", what, id)
				}
				continue
			}
		}
		if len(g.Items) != len(w.Items) {
			t.Errorf("%s: team %s: %d accesses, want %d", what, id, len(g.Items), len(w.Items))
			continue
		}
		w.Items = slices.Clone(w.Items)
		for i := range w.Items {
			if shape.NoCounts {
				if g.Items[i].Owners != 0 {
					t.Errorf("%s: owners %d without counts", what, g.Items[i].Owners)
				}
				w.Items[i].Owners = 0
			}
			if shape.BriefUser {
				u := *w.Items[i].User
				w.Items[i].User = &store.User{ID: u.ID, Email: u.Email, Name: u.Name}
			}
			if shape.NoDates {
				w.Items[i].CreatedAt, w.Items[i].UpdatedAt = time.Time{}, time.Time{}
			}
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: team %s: accesses\n%+v\nwant\n%+v", what, id, g, w)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok && len(got[id].Items) > 0 {
			t.Errorf("%s: team %s has accesses it should not", what, id)
		}
	}
}
