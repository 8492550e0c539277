package auth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/google/uuid"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/auth/oidctest"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// TestBearerSubjects: ProConnect may give each service its own subject for a person.
func TestBearerSubjects(t *testing.T) {
	t.Parallel()
	e := newRSEnv(t, auth.BackendJWT)
	docs, meet := "docs-"+storetest.Unique(), "meet-"+storetest.Unique()

	t.Run("public and pairwise subjects resolve to the same user", func(t *testing.T) {
		t.Parallel()
		u, pub := e.user(t)
		pairwise := "pw-" + storetest.Unique()
		e.link(t, u.ID, pairwise, docs)
		for _, tok := range []oidctest.Token{
			{Subject: pub, ClientID: docs},
			{Subject: pub, ClientID: meet},
			{Subject: pairwise, ClientID: docs},
		} {
			if got := e.me(t, e.as.Mint(tok)); got != u.ID.String() {
				t.Errorf("%+v: me = %s, want %s", tok, got, u.ID)
			}
		}
		// The pairwise subject of docs means nothing when meet presents it.
		a := e.do(t, "Bearer "+e.as.Mint(oidctest.Token{Subject: pairwise, ClientID: meet}), `{ me { id } }`, nil)
		if a.status != http.StatusUnauthorized {
			t.Errorf("docs' pairwise subject presented by meet: status %d, want 401", a.status)
		}
	})

	t.Run("email fallback links a pairwise subject once", func(t *testing.T) {
		t.Parallel()
		u, _ := e.user(t)
		pairwise := "pw-" + storetest.Unique()
		tok := e.as.Mint(oidctest.Token{Subject: pairwise, ClientID: docs, Email: u.Email})
		if got := e.me(t, tok); got != u.ID.String() {
			t.Fatalf("me = %s, want %s", got, u.ID)
		}
		// Linked: a token without the email now finds the user, and nothing more was linked.
		if got := e.me(t, e.as.Mint(oidctest.Token{Subject: pairwise, ClientID: docs})); got != u.ID.String() {
			t.Errorf("after linking, me = %s, want %s", got, u.ID)
		}
		e.me(t, e.as.Mint(oidctest.Token{Subject: pairwise, ClientID: docs, Email: u.Email}))
		var links []string
		err := e.s.DB().NewSelect().TableExpr("user_identities").ColumnExpr("audience").
			Where("user_id = ? AND subject = ?", u.ID, pairwise).Scan(context.Background(), &links)
		if err != nil || !slices.Equal(links, []string{docs}) {
			t.Errorf("identities linked = %v (%v), want one for %s", links, err, docs)
		}
	})

	t.Run("an unverified email is not used", func(t *testing.T) {
		t.Parallel()
		u, _ := e.user(t)
		tok := e.as.Mint(oidctest.Token{Subject: "pw-" + storetest.Unique(), ClientID: docs, Email: u.Email,
			Claims: map[string]any{"email_verified": false}})
		if a := e.do(t, "Bearer "+tok, `{ me { id } }`, nil); a.status != http.StatusUnauthorized {
			t.Errorf("status = %d, want 401", a.status)
		}
	})

	t.Run("unknown subject is refused and no user is created", func(t *testing.T) {
		t.Parallel()
		email := "stranger-" + storetest.Unique() + "@example.test"
		a := e.do(t, "Bearer "+e.as.Mint(oidctest.Token{Subject: "nobody-" + storetest.Unique(), ClientID: docs, Email: email}), `{ me { id } }`, nil)
		if a.status != http.StatusUnauthorized || a.code() != "UNAUTHENTICATED" {
			t.Errorf("status %d code %q, want 401 UNAUTHENTICATED", a.status, a.code())
		}
		n, err := e.s.DB().NewSelect().TableExpr("users").Where("email = ?", email).Count(context.Background())
		if err != nil || n != 0 {
			t.Errorf("users with the token's email = %d (%v), want 0", n, err)
		}
	})

	t.Run("deactivation cuts a cached token at once", func(t *testing.T) {
		t.Parallel()
		u, pub := e.user(t)
		tok := e.as.Mint(oidctest.Token{Subject: pub, ClientID: docs})
		if got := e.me(t, tok); got != u.ID.String() { // now cached
			t.Fatalf("me = %s, want %s", got, u.ID)
		}
		storetest.MustExec(t, e.s.DB(), "UPDATE users SET is_active = false WHERE id = ?", u.ID)
		if a := e.do(t, "Bearer "+tok, `{ me { id } }`, nil); a.status != http.StatusUnauthorized {
			t.Errorf("deactivated user's cached token: status %d, want 401", a.status)
		}
	})

	t.Run("without email fallback", func(t *testing.T) {
		t.Parallel()
		strict := newRSEnv(t, auth.BackendJSON, func(c *auth.ResourceServerConfig) { c.FallbackToEmail = false })
		u, _ := strict.user(t)
		tok := strict.as.Mint(oidctest.Token{Subject: "pw-" + storetest.Unique(), ClientID: docs, Email: u.Email})
		if a := strict.do(t, "Bearer "+tok, `{ me { id } }`, nil); a.status != http.StatusUnauthorized {
			t.Errorf("status = %d, want 401", a.status)
		}
	})
}

const rsTeamsQuery = `{ teams(first: 100) { nodes { id } } }`

// TestBearerServices: two services acting for the same user see the teams shared with each.
func TestBearerServices(t *testing.T) {
	t.Parallel()
	e := newRSEnv(t, auth.BackendJSON)
	u, sub := e.user(t)
	docs, meet := "docs-"+storetest.Unique(), "meet-"+storetest.Unique()
	docsTok := e.as.Mint(oidctest.Token{Subject: sub, ClientID: docs})
	meetTok := e.as.Mint(oidctest.Token{Subject: sub, ClientID: meet})
	// The first request of each service creates its service provider.
	e.me(t, docsTok)
	e.me(t, meetTok)
	spID := func(audience string) uuid.UUID {
		sp, err := e.s.ServiceProviderByAudience(context.Background(), audience)
		if err != nil {
			t.Fatal(err)
		}
		return sp.ID
	}

	org := *u.OrganizationID
	team := func(name string, sps ...uuid.UUID) uuid.UUID {
		id := storetest.Team(t, e.s, org, name+" "+storetest.Unique())
		storetest.Access(t, e.s, id, u.ID, store.RoleOwner)
		for _, sp := range sps {
			storetest.MustExec(t, e.s.DB(), "INSERT INTO team_service_providers (team_id, service_provider_id) VALUES (?, ?)", id, sp)
		}
		return id
	}
	onlyDocs, onlyMeet := team("docs", spID(docs)), team("meet", spID(meet))
	shared := team("both", spID(docs), spID(meet))
	none := team("none")
	all := team("all")
	storetest.MustExec(t, e.s.DB(), "UPDATE teams SET is_visible_all_services = true WHERE id = ?", all)

	teams := func(tok string) []uuid.UUID {
		t.Helper()
		a := e.do(t, "Bearer "+tok, rsTeamsQuery, nil)
		var out struct {
			Teams struct{ Nodes []struct{ ID uuid.UUID } }
		}
		if a.status != http.StatusOK || len(a.Errors) > 0 || json.Unmarshal(a.Data, &out) != nil {
			t.Fatalf("teams: %d %s", a.status, a.body)
		}
		var ids []uuid.UUID
		for _, n := range out.Teams.Nodes {
			ids = append(ids, n.ID)
		}
		slices.SortFunc(ids, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
		return ids
	}
	sorted := func(ids ...uuid.UUID) []uuid.UUID {
		slices.SortFunc(ids, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
		return ids
	}
	if got, want := teams(docsTok), sorted(onlyDocs, shared, all); !slices.Equal(got, want) {
		t.Errorf("docs sees %v, want %v", got, want)
	}
	if got, want := teams(meetTok), sorted(onlyMeet, shared, all); !slices.Equal(got, want) {
		t.Errorf("meet sees %v, want %v", got, want)
	}
	// me carries the same teams: the user, and only what the service may see.
	a := e.do(t, "Bearer "+docsTok, `{ me { id teams(first: 100) { nodes { id } } } }`, nil)
	var me struct {
		Me struct {
			Teams struct{ Nodes []struct{ ID uuid.UUID } }
		}
	}
	if a.status != http.StatusOK || len(a.Errors) > 0 || json.Unmarshal(a.Data, &me) != nil {
		t.Fatalf("me: %d %s", a.status, a.body)
	}
	var mine []uuid.UUID
	for _, n := range me.Me.Teams.Nodes {
		mine = append(mine, n.ID)
	}
	if got, want := sorted(mine...), sorted(onlyDocs, shared, all); !slices.Equal(got, want) {
		t.Errorf("me.teams for docs = %v, want %v", got, want)
	}
	for _, tc := range []struct {
		tok  string
		team uuid.UUID
		code string
	}{
		{docsTok, onlyMeet, "NOT_FOUND"}, {meetTok, onlyDocs, "NOT_FOUND"}, {docsTok, none, "NOT_FOUND"},
		{docsTok, onlyDocs, ""}, {meetTok, all, ""},
	} {
		if a := e.do(t, "Bearer "+tc.tok, `query($id: ID!) { team(id: $id) { id } }`, map[string]any{"id": tc.team}); a.code() != tc.code {
			t.Errorf("team %s: code %q, want %q", tc.team, a.code(), tc.code)
		}
	}

	// A team created through docs belongs to docs (whatever the input says) and the user owns it.
	a = e.do(t, "Bearer "+docsTok, `mutation($in: CreateTeamInput!) { createTeam(input: $in) { team { id } } }`,
		map[string]any{"in": map[string]any{"name": "Made by docs " + storetest.Unique(), "serviceProviderIds": []uuid.UUID{spID(meet)}}})
	var created struct {
		CreateTeam struct{ Team struct{ ID uuid.UUID } }
	}
	if a.status != http.StatusOK || len(a.Errors) > 0 || json.Unmarshal(a.Data, &created) != nil {
		t.Fatalf("createTeam: %d %s", a.status, a.body)
	}
	made := created.CreateTeam.Team.ID
	if !slices.Contains(teams(docsTok), made) || slices.Contains(teams(meetTok), made) {
		t.Errorf("a team created by docs: seen by docs %v, by meet %v; want docs only", slices.Contains(teams(docsTok), made), slices.Contains(teams(meetTok), made))
	}
	storetest.MustExec(t, e.s.DB(), "UPDATE teams SET is_visible_all_services = true WHERE id = ?", made)
	if !slices.Contains(teams(meetTok), made) {
		t.Error("a team visible to all services is hidden from meet")
	}

	// deleteTeam is not open to partner services, even to the team's owner.
	a = e.do(t, "Bearer "+docsTok, `mutation($id: ID!) { deleteTeam(input: {id: $id}) { deletedId } }`, map[string]any{"id": onlyDocs})
	if a.code() != "FORBIDDEN" {
		t.Errorf("deleteTeam by a bearer token: code %q, want FORBIDDEN (%s)", a.code(), a.body)
	}
	if !slices.Contains(teams(docsTok), onlyDocs) {
		t.Error("the team is gone after a refused deleteTeam")
	}
}
