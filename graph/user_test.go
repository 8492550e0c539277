package graph_test

import (
	"fmt"
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

// leakMarkers are fragments of driver, SQL or Go error text that must never reach a client.
var leakMarkers = []string{"sql", "pq:", "pgx", "error:", "constraint", "violates", "relation", "syntax", "database"}

// assertNoLeak fails when an error message of r looks like database or driver output.
func assertNoLeak(tb testing.TB, r result) {
	tb.Helper()
	for _, e := range r.Errors {
		msg := strings.ToLower(e.Message)
		for _, m := range leakMarkers {
			if strings.Contains(msg, m) {
				tb.Errorf("error message %q leaks %q", e.Message, m)
			}
		}
	}
}

// assertCode checks that r failed with code and, when field is not empty, extensions.field.
func assertCode(tb testing.TB, r result, code, field string) {
	tb.Helper()
	assertNoLeak(tb, r)
	if r.Code() != code {
		tb.Errorf("code = %q, want %q (errors: %+v)", r.Code(), code, r.Errors)
		return
	}
	if field != "" && r.Errors[0].Extensions.Field != field {
		tb.Errorf("extensions.field = %q, want %q (errors: %+v)", r.Errors[0].Extensions.Field, field, r.Errors)
	}
}

// userNode is the shape of a User in these tests.
type userNode struct {
	ID           uuid.UUID
	Email        *string
	Name         *string
	Language     string
	Timezone     string
	IsDevice     bool
	IsStaff      bool
	Organization *orgRef
	Abilities    *abilitiesNode
}

type orgRef struct {
	ID   uuid.UUID
	Name string
}

type abilitiesNode struct {
	Teams    struct{ CanView, CanCreate bool }
	Contacts struct{ CanView, CanCreate bool }
}

type pageInfoNode struct {
	HasNextPage, HasPreviousPage bool
	StartCursor, EndCursor       *string
}

type usersOut struct {
	Users struct {
		Nodes      []userNode
		PageInfo   pageInfoNode
		TotalCount int
	}
}

func idsOf[T any](nodes []T, id func(T) uuid.UUID) []uuid.UUID {
	out := make([]uuid.UUID, len(nodes))
	for i, n := range nodes {
		out[i] = id(n)
	}
	return out
}

func userIDs(nodes []userNode) []uuid.UUID {
	return idsOf(nodes, func(n userNode) uuid.UUID { return n.ID })
}

const meQuery = `{ me { id email name language timezone isDevice isStaff organization { id name }
	abilities { teams { canView canCreate } contacts { canView canCreate } } } }`

func TestMe(t *testing.T) {
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	org := storetest.Organization(t, s)
	u := storetest.User(t, s, org, storetest.WithName("Ada Lovelace"), storetest.Staff())

	var orgName string
	if err := s.DB().QueryRowContext(t.Context(), "SELECT name FROM organizations WHERE id = ?", org).Scan(&orgName); err != nil {
		t.Fatal(err)
	}

	var out struct{ Me userNode }
	a.mustDo(session(u.ID), meQuery, nil, &out)
	want := userNode{ID: u.ID, Email: &u.Email, Name: &u.Name, Language: "en-us", Timezone: "UTC", IsStaff: true,
		Organization: &orgRef{org, orgName},
		Abilities:    &abilitiesNode{Teams: struct{ CanView, CanCreate bool }{true, true}, Contacts: struct{ CanView, CanCreate bool }{true, true}}}
	if diff := cmp.Diff(want, out.Me); diff != "" {
		t.Errorf("me (-want +got):\n%s", diff)
	}

	t.Run("without organization", func(t *testing.T) {
		t.Parallel()
		loner := storetest.User(t, s, uuid.Nil, storetest.WithName(""), storetest.WithEmail(""))
		var out struct{ Me userNode }
		a.mustDo(session(loner.ID), meQuery, nil, &out)
		if out.Me.Organization != nil || out.Me.Email != nil || out.Me.Name != nil {
			t.Errorf("me = %+v, want no organization, email or name", out.Me)
		}
	})
	t.Run("through a partner service", func(t *testing.T) {
		t.Parallel()
		var out struct{ Me userNode }
		a.mustDo(bearer(u.ID, uuid.New()), `{ me { id abilities { contacts { canView } } } }`, nil, &out)
		if out.Me.ID != u.ID || out.Me.Abilities == nil {
			t.Errorf("me over bearer = %+v", out.Me)
		}
	})
	t.Run("abilities are the caller's only", func(t *testing.T) {
		t.Parallel()
		other := storetest.User(t, s, org)
		var out usersOut
		a.mustDo(session(u.ID), `{ users(first: 100) { nodes { id abilities { teams { canView } } } } }`, nil, &out)
		seen := 0
		for _, n := range out.Users.Nodes {
			switch n.ID {
			case u.ID:
				seen++
				if n.Abilities == nil {
					t.Error("the caller's own abilities are null")
				}
			case other.ID:
				seen++
				if n.Abilities != nil {
					t.Errorf("another user's abilities = %+v, want null", n.Abilities)
				}
			}
		}
		if seen != 2 {
			t.Errorf("users listed %d of the 2 expected", seen)
		}
	})
	t.Run("teams: the caller's, through a partner service only that service's", func(t *testing.T) {
		t.Parallel()
		user := storetest.User(t, s, org)
		sp, other := newServiceProvider(t, s), newServiceProvider(t, s)
		day := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		shared := joinTeam(t, s, org, user.ID, store.RoleMember, "Shared "+storetest.Unique(), day)
		linkServiceProvider(t, s, shared, sp)
		elsewhere := joinTeam(t, s, org, user.ID, store.RoleOwner, "Elsewhere "+storetest.Unique(), day.Add(time.Hour))
		linkServiceProvider(t, s, elsewhere, other)
		all := joinTeam(t, s, org, user.ID, store.RoleMember, "All "+storetest.Unique(), day.Add(2*time.Hour))
		storetest.MustExec(t, s.DB(), "UPDATE teams SET is_visible_all_services = true WHERE id = ?", all)
		const q = `{ me { id teams(first: 100) { totalCount nodes { id } } } }`
		var out struct {
			Me struct {
				ID    uuid.UUID
				Teams struct {
					TotalCount int
					Nodes      []struct{ ID uuid.UUID }
				}
			}
		}
		ids := func() []uuid.UUID {
			return idsOf(out.Me.Teams.Nodes, func(n struct{ ID uuid.UUID }) uuid.UUID { return n.ID })
		}
		a.mustDo(bearer(user.ID, sp), q, nil, &out)
		if diff := cmp.Diff([]uuid.UUID{all, shared}, ids()); diff != "" || out.Me.Teams.TotalCount != 2 {
			t.Errorf("me.teams through the service (-want +got):\n%s", diff)
		}
		a.mustDo(session(user.ID), q, nil, &out)
		if diff := cmp.Diff([]uuid.UUID{all, elsewhere, shared}, ids()); diff != "" {
			t.Errorf("me.teams in a session (-want +got):\n%s", diff)
		}
		// Another user's teams are not shown.
		var users struct {
			Users struct {
				Nodes []struct {
					ID    uuid.UUID
					Teams *struct{ TotalCount int }
				}
			}
		}
		a.mustDo(session(u.ID), `query($q: String) { users(search: $q) { nodes { id teams { totalCount } } } }`, map[string]any{"q": user.Email}, &users)
		if n := users.Users.Nodes; len(n) != 1 || n[0].Teams != nil {
			t.Errorf("another user's teams = %+v, want null", n)
		}
	})
}

func TestMeAbilities(t *testing.T) {
	s := storetest.Open(t)
	org := storetest.Organization(t, s)
	// One user per relation to teams: none, a plain member, an administrator, an owner.
	team := storetest.TeamWithEveryRole(t, s)
	nobody := storetest.User(t, s, org).ID
	users := []struct {
		name    string
		id      uuid.UUID
		manages bool
	}{
		{"no team", nobody, false},
		{"member", team.Member, false},
		{"administrator", team.Admin, true},
		{"owner", team.Owner, true},
	}
	for mask := range 16 {
		f := graph.Features{ContactsDisplay: mask&1 != 0, ContactsCreate: mask&2 != 0, TeamsDisplay: mask&4 != 0, TeamsCreate: mask&8 != 0}
		a := newAPI(t, s, graph.Settings{Features: f})
		for _, u := range users {
			t.Run(fmt.Sprintf("%+v/%s", f, u.name), func(t *testing.T) {
				t.Parallel()
				var want abilitiesNode
				want.Teams.CanView = f.TeamsDisplay || u.manages
				want.Teams.CanCreate = f.TeamsCreate
				want.Contacts.CanView = f.ContactsDisplay
				want.Contacts.CanCreate = f.ContactsDisplay && f.ContactsCreate
				var out struct{ Me userNode }
				a.mustDo(session(u.id), `{ me { abilities { teams { canView canCreate } contacts { canView canCreate } } } }`, nil, &out)
				if out.Me.Abilities == nil {
					t.Fatal("abilities are null")
				}
				if diff := cmp.Diff(want, *out.Me.Abilities); diff != "" {
					t.Errorf("abilities (-want +got):\n%s", diff)
				}
			})
		}
	}
}

const usersQuery = `query($search: String, $notInTeam: ID, $first: Int, $after: String) {
	users(search: $search, notInTeam: $notInTeam, first: $first, after: $after) {
		nodes { id email name organization { id } }
		pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
		totalCount
	}
}`

func TestUsers(t *testing.T) {
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	org, otherOrg := storetest.Organization(t, s), storetest.Organization(t, s)
	tok := storetest.Unique()
	viewer := storetest.User(t, s, org)
	elodie := storetest.User(t, s, org, storetest.WithName("Élodie Zoé Crête"))
	bob := storetest.User(t, s, org, storetest.WithName("Bob"), storetest.WithEmail("bob.marché-"+tok+"@example.test"))
	storetest.User(t, s, org, storetest.WithName("Élodie Inactive"), storetest.Inactive())
	storetest.User(t, s, otherOrg, storetest.WithName("Élodie Elsewhere"))
	newestFirst := []uuid.UUID{bob.ID, elodie.ID, viewer.ID}

	list := func(t *testing.T, vars map[string]any) usersOut {
		t.Helper()
		var out usersOut
		a.mustDo(session(viewer.ID), usersQuery, vars, &out)
		return out
	}

	t.Run("active users of the viewer's organization, newest first", func(t *testing.T) {
		t.Parallel()
		out := list(t, nil)
		if diff := cmp.Diff(newestFirst, userIDs(out.Users.Nodes)); diff != "" {
			t.Errorf("users (-want +got):\n%s", diff)
		}
		if out.Users.TotalCount != 3 || out.Users.PageInfo.HasNextPage || out.Users.PageInfo.HasPreviousPage {
			t.Errorf("totalCount = %d, pageInfo = %+v", out.Users.TotalCount, out.Users.PageInfo)
		}
		for _, n := range out.Users.Nodes {
			if n.Organization == nil || n.Organization.ID != org {
				t.Errorf("user %s organization = %+v, want %s", n.ID, n.Organization, org)
			}
		}
	})

	searches := []struct {
		search string
		want   []uuid.UUID
	}{
		{"elodie", []uuid.UUID{elodie.ID}},
		{"ÉLODIE", []uuid.UUID{elodie.ID}},
		{"zoe crete", []uuid.UUID{elodie.ID}},
		{"  elodie  ", []uuid.UUID{elodie.ID}},
		{"marche-" + tok, []uuid.UUID{bob.ID}},              // email, accent-insensitive
		{"MARCHÉ-" + tok + "@example", []uuid.UUID{bob.ID}}, // email domain, case-insensitive
		{"elo\x00die", []uuid.UUID{elodie.ID}},              // PostgreSQL refuses NUL: it is dropped
		{"é C", []uuid.UUID{elodie.ID}},                     // no three letters in a row: no trigram to look up
		{"bO", []uuid.UUID{bob.ID}},                         // nor here: the organization's index serves it
		{"%", nil},                                          // LIKE wildcards are literal
		{"_", nil},
		{"", newestFirst},
	}
	for _, tt := range searches {
		t.Run("search "+tt.search, func(t *testing.T) {
			t.Parallel()
			out := list(t, map[string]any{"search": tt.search})
			if diff := cmp.Diff(tt.want, userIDs(out.Users.Nodes), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("users (-want +got):\n%s", diff)
			}
			if out.Users.TotalCount != len(tt.want) {
				t.Errorf("totalCount = %d, want %d", out.Users.TotalCount, len(tt.want))
			}
		})
	}

	t.Run("notInTeam leaves out the team's members", func(t *testing.T) {
		t.Parallel()
		team := storetest.Team(t, s, org, "Team "+tok)
		storetest.Access(t, s, team, viewer.ID, store.RoleOwner)
		storetest.Access(t, s, team, elodie.ID, store.RoleMember)
		out := list(t, map[string]any{"notInTeam": team})
		if diff := cmp.Diff([]uuid.UUID{bob.ID}, userIDs(out.Users.Nodes)); diff != "" {
			t.Errorf("users (-want +got):\n%s", diff)
		}
	})

	t.Run("notInTeam of a team the viewer is not in reveals nothing", func(t *testing.T) {
		t.Parallel()
		// The team's membership is private to its members: filtering by it would tell an
		// outsider who belongs to it.
		team := storetest.Team(t, s, org, "Secret "+tok)
		storetest.Access(t, s, team, bob.ID, store.RoleOwner)
		out := list(t, map[string]any{"notInTeam": team})
		if diff := cmp.Diff(newestFirst, userIDs(out.Users.Nodes)); diff != "" {
			t.Errorf("users (-want +got):\n%s", diff)
		}
	})

	t.Run("pagination", func(t *testing.T) {
		t.Parallel()
		first := list(t, map[string]any{"first": 2})
		if diff := cmp.Diff(newestFirst[:2], userIDs(first.Users.Nodes)); diff != "" {
			t.Errorf("first page (-want +got):\n%s", diff)
		}
		pi := first.Users.PageInfo
		if !pi.HasNextPage || pi.HasPreviousPage || first.Users.TotalCount != 3 || pi.EndCursor == nil || pi.StartCursor == nil {
			t.Fatalf("first page info = %+v, totalCount %d", pi, first.Users.TotalCount)
		}
		second := list(t, map[string]any{"first": 2, "after": *pi.EndCursor})
		if diff := cmp.Diff(newestFirst[2:], userIDs(second.Users.Nodes)); diff != "" {
			t.Errorf("second page (-want +got):\n%s", diff)
		}
		if pi := second.Users.PageInfo; pi.HasNextPage || !pi.HasPreviousPage || second.Users.TotalCount != 3 {
			t.Errorf("second page info = %+v, totalCount %d", pi, second.Users.TotalCount)
		}
		last := list(t, map[string]any{"first": 2, "after": *second.Users.PageInfo.EndCursor})
		if len(last.Users.Nodes) != 0 || last.Users.PageInfo.HasNextPage {
			t.Errorf("past the end = %+v", last.Users)
		}
	})

	for _, tt := range []struct {
		vars  map[string]any
		field string
	}{
		{map[string]any{"first": 0}, "first"},
		{map[string]any{"first": -1}, "first"},
		{map[string]any{"first": 101}, "first"},
		{map[string]any{"after": "not a cursor"}, "after"},
		{map[string]any{"after": "Y3Vyc29yOi01"}, "after"},                         // "cursor:-5"
		{map[string]any{"after": "Y3Vyc29yOjk5OTk5OTk5OTk5OTk5OTk5OTk5"}, "after"}, // beyond int64
	} {
		t.Run(fmt.Sprintf("bad arguments %v", tt.vars), func(t *testing.T) {
			t.Parallel()
			assertCode(t, a.do(session(viewer.ID), usersQuery, tt.vars, nil), "BAD_USER_INPUT", tt.field)
		})
	}
	t.Run("first 100 is allowed", func(t *testing.T) {
		t.Parallel()
		if out := list(t, map[string]any{"first": 100}); len(out.Users.Nodes) != 3 {
			t.Errorf("got %d users", len(out.Users.Nodes))
		}
	})

	t.Run("a viewer without organization sees nobody", func(t *testing.T) {
		t.Parallel()
		loner := storetest.User(t, s, uuid.Nil)
		storetest.User(t, s, uuid.Nil) // another user without organization
		var out usersOut
		a.mustDo(session(loner.ID), usersQuery, nil, &out)
		if len(out.Users.Nodes) != 0 || out.Users.TotalCount != 0 {
			t.Errorf("users = %+v, want none", out.Users)
		}
	})
}

const updateMeQuery = `mutation($language: String, $timezone: String) {
	updateMe(input: {language: $language, timezone: $timezone}) { user { id language timezone } }
}`

func TestUpdateMe(t *testing.T) {
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	org := storetest.Organization(t, s)

	t.Run("changes language and time zone", func(t *testing.T) {
		t.Parallel()
		u := storetest.User(t, s, org)
		var out struct{ UpdateMe struct{ User userNode } }
		a.mustDo(session(u.ID), updateMeQuery, map[string]any{"language": "fr-fr", "timezone": "Europe/Paris"}, &out)
		if got := out.UpdateMe.User; got.ID != u.ID || got.Language != "fr-fr" || got.Timezone != "Europe/Paris" {
			t.Errorf("updateMe = %+v", got)
		}
		// A field left out is unchanged.
		a.mustDo(session(u.ID), updateMeQuery, map[string]any{"timezone": "America/Cayenne"}, &out)
		if got := out.UpdateMe.User; got.Language != "fr-fr" || got.Timezone != "America/Cayenne" {
			t.Errorf("updateMe timezone only = %+v", got)
		}
		a.mustDo(session(u.ID), updateMeQuery, nil, &out)
		if got := out.UpdateMe.User; got.Language != "fr-fr" || got.Timezone != "America/Cayenne" {
			t.Errorf("updateMe with nothing = %+v", got)
		}
		var me struct{ Me userNode }
		a.mustDo(session(u.ID), `{ me { language timezone } }`, nil, &me)
		if me.Me.Language != "fr-fr" || me.Me.Timezone != "America/Cayenne" {
			t.Errorf("me after updateMe = %+v", me.Me)
		}
	})

	for _, tt := range []struct {
		name  string
		vars  map[string]any
		field string
	}{
		{"unknown language", map[string]any{"language": "de-de"}, "language"},
		{"language in the wrong case", map[string]any{"language": "FR-FR"}, "language"},
		{"empty language", map[string]any{"language": ""}, "language"},
		{"unknown time zone", map[string]any{"timezone": "Mars/Olympus"}, "timezone"},
		{"empty time zone", map[string]any{"timezone": ""}, "timezone"},
		{"NUL in time zone", map[string]any{"timezone": "UTC\x00"}, "timezone"},
		{"NUL in language", map[string]any{"language": "fr-fr\x00"}, "language"},
		{"valid language, bad time zone", map[string]any{"language": "fr-fr", "timezone": "Mars/Olympus"}, "timezone"},
		{"both bad: the language is reported", map[string]any{"language": "xx", "timezone": "Mars/Olympus"}, "language"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := storetest.User(t, s, org)
			r := a.do(session(u.ID), updateMeQuery, tt.vars, nil)
			assertCode(t, r, "BAD_USER_INPUT", tt.field)
			// Nothing was written, not even the valid half.
			var me struct{ Me userNode }
			a.mustDo(session(u.ID), `{ me { language timezone } }`, nil, &me)
			if me.Me.Language != "en-us" || me.Me.Timezone != "UTC" {
				t.Errorf("me after a refused updateMe = %+v", me.Me)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	s := storetest.Open(t)
	settings := graph.Settings{
		Features: graph.Features{ContactsDisplay: true, ContactsCreate: false, TeamsDisplay: false, TeamsCreate: true},
		Release:  "1.2.3", Commit: "deadbeef",
	}
	a := newAPI(t, s, settings)
	type config struct {
		Languages []struct{ Code, Name string }
		Features  struct{ ContactsDisplay, ContactsCreate, TeamsDisplay, TeamsCreate bool }
		Release   string
		Commit    string
	}
	want := config{
		Languages: []struct{ Code, Name string }{{"en-us", "English"}, {"fr-fr", "Français"}},
		Features:  struct{ ContactsDisplay, ContactsCreate, TeamsDisplay, TeamsCreate bool }{true, false, false, true},
		Release:   "1.2.3", Commit: "deadbeef",
	}
	const q = `{ config { languages { code name } features { contactsDisplay contactsCreate teamsDisplay teamsCreate } release commit } }`
	u := storetest.User(t, s, uuid.Nil)
	for name, p := range map[string]*auth.Principal{"anonymous": nil, "session": session(u.ID), "bearer": bearer(u.ID, uuid.New())} {
		t.Run(name, func(t *testing.T) {
			var out struct{ Config config }
			a.mustDo(p, q, nil, &out)
			if diff := cmp.Diff(want, out.Config); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

// rootOperations has one operation per authenticated root field, with valid arguments.
var rootOperations = map[string]string{
	"me":                        `{ me { id } }`,
	"users":                     `{ users { totalCount } }`,
	"contacts":                  `{ contacts { totalCount } }`,
	"contact":                   `{ contact(id: "00000000-0000-4000-8000-000000000001") { id } }`,
	"organization":              `{ organization(id: "00000000-0000-4000-8000-000000000001") { id } }`,
	"teams":                     `{ teams { totalCount } }`,
	"team":                      `{ team(id: "00000000-0000-4000-8000-000000000001") { id } }`,
	"serviceProviders":          `{ serviceProviders { totalCount } }`,
	"updateMe":                  `mutation { updateMe(input: {}) { user { id } } }`,
	"updateOrganization":        `mutation { updateOrganization(input: {id: "00000000-0000-4000-8000-000000000001", name: "x"}) { organization { id } } }`,
	"createContact":             `mutation { createContact(input: {fullName: "x"}) { contact { id } } }`,
	"updateContact":             `mutation { updateContact(input: {id: "00000000-0000-4000-8000-000000000001"}) { contact { id } } }`,
	"deleteContact":             `mutation { deleteContact(input: {id: "00000000-0000-4000-8000-000000000001"}) { deletedId } }`,
	"createTeam":                `mutation { createTeam(input: {name: "x"}) { team { id } } }`,
	"updateTeam":                `mutation { updateTeam(input: {id: "00000000-0000-4000-8000-000000000001"}) { team { id } } }`,
	"deleteTeam":                `mutation { deleteTeam(input: {id: "00000000-0000-4000-8000-000000000001"}) { deletedId } }`,
	"moveTeam":                  `mutation { moveTeam(input: {id: "00000000-0000-4000-8000-000000000001"}) { team { id } } }`,
	"linkTeamServiceProvider":   `mutation { linkTeamServiceProvider(input: {teamId: "00000000-0000-4000-8000-000000000001", serviceProviderId: "00000000-0000-4000-8000-000000000001"}) { team { id } } }`,
	"unlinkTeamServiceProvider": `mutation { unlinkTeamServiceProvider(input: {teamId: "00000000-0000-4000-8000-000000000001", serviceProviderId: "00000000-0000-4000-8000-000000000001"}) { team { id } } }`,
	"createTeamAccess":          `mutation { createTeamAccess(input: {teamId: "00000000-0000-4000-8000-000000000001", userId: "00000000-0000-4000-8000-000000000001"}) { access { id } } }`,
	"updateTeamAccess":          `mutation { updateTeamAccess(input: {id: "00000000-0000-4000-8000-000000000001", role: MEMBER}) { access { id } } }`,
	"deleteTeamAccess":          `mutation { deleteTeamAccess(input: {id: "00000000-0000-4000-8000-000000000001"}) { deletedId } }`,
	"createInvitation":          `mutation { createInvitation(input: {teamId: "00000000-0000-4000-8000-000000000001", email: "a@b.test"}) { invitation { id } } }`,
	"deleteInvitation":          `mutation { deleteInvitation(input: {id: "00000000-0000-4000-8000-000000000001"}) { deletedId } }`,
}

func TestAnonymousIsRefused(t *testing.T) {
	a := newAPI(t, storetest.Open(t), allFeatures)
	for field, q := range rootOperations {
		t.Run(field, func(t *testing.T) {
			t.Parallel()
			r := a.do(nil, q, nil, nil)
			assertCode(t, r, "UNAUTHENTICATED", "")
			if len(r.Errors) > 0 && r.Errors[0].Message != "authentication required" {
				t.Errorf("message = %q", r.Errors[0].Message)
			}
		})
	}
}

func TestBearerIsRefusedOnSessionFields(t *testing.T) {
	s := storetest.Open(t)
	a := newAPI(t, s, allFeatures)
	u := storetest.User(t, s, storetest.Organization(t, s))
	for _, field := range []string{"users", "contacts", "contact", "organization", "serviceProviders",
		"updateMe", "updateOrganization", "createContact", "updateContact", "deleteContact",
		"deleteTeam", "moveTeam", "linkTeamServiceProvider", "unlinkTeamServiceProvider",
		"createTeamAccess", "updateTeamAccess", "deleteTeamAccess"} {
		t.Run(field, func(t *testing.T) {
			t.Parallel()
			assertCode(t, a.do(bearer(u.ID, uuid.New()), rootOperations[field], nil, nil), "FORBIDDEN", "")
		})
	}
	t.Run("the refusal comes before any change", func(t *testing.T) {
		t.Parallel()
		assertCode(t, a.do(bearer(u.ID, uuid.New()), updateMeQuery, map[string]any{"language": "fr-fr"}, nil), "FORBIDDEN", "")
		var me struct{ Me userNode }
		a.mustDo(session(u.ID), `{ me { language } }`, nil, &me)
		if me.Me.Language != "en-us" {
			t.Errorf("language = %q after a refused bearer updateMe", me.Me.Language)
		}
	})
}
