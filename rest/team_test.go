package rest_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"testing"

	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// teamAged creates a team of org in which user has role, created minutes ago.
func teamAged(tb testing.TB, s *store.Store, org, user uuid.UUID, role store.Role, name string, minutes int) uuid.UUID {
	tb.Helper()
	id := storetest.Team(tb, s, org, name)
	storetest.MustExec(tb, s.DB(), "UPDATE teams SET created_at = now() - make_interval(mins => ?) WHERE id = ?", minutes, id)
	storetest.Access(tb, s, id, user, role)
	return id
}

func resultIDs(tb testing.TB, v map[string]any) []string {
	tb.Helper()
	var ids []string
	for _, r := range v["results"].([]any) {
		ids = append(ids, r.(map[string]any)["id"].(string))
	}
	return ids
}

// TestListTeams: the caller's teams that the service sees, and the ancestors of theirs, in
// People's page: count, absolute next and previous URLs, ?page, ?page_size, ?ordering.
func TestListTeams(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	p := e.partner(t, uuid.Nil, "docs-"+storetest.Unique())
	org := *p.user.OrganizationID
	var newest []string // the teams the service sees, newest first
	for i := range 5 {
		id := teamAged(t, e.s, org, p.user.ID, store.RoleMember, fmt.Sprint("Linked ", i), 50-i)
		p.link(t, id)
		newest = slices.Insert(newest, 0, id.String())
	}
	all := teamAged(t, e.s, org, p.user.ID, store.RoleOwner, "For all services", 1)
	storetest.MustExec(t, e.s.DB(), "UPDATE teams SET is_visible_all_services = true WHERE id = ?", all)
	newest = slices.Insert(newest, 0, all.String())
	// A team of another service only: not seen.
	teamAged(t, e.s, org, p.user.ID, store.RoleOwner, "Other service", 0)
	// The parent of a team of the caller's is seen (read-only), its own service filter applied.
	parent := storetest.Team(t, e.s, org, "Parent")
	storetest.MustExec(t, e.s.DB(), "UPDATE teams SET created_at = now() - interval '2 hours' WHERE id = ?", parent)
	p.link(t, parent)
	child := storetest.ChildTeam(t, e.s, parent, "Child")
	storetest.MustExec(t, e.s.DB(), "UPDATE teams SET created_at = now() - interval '3 hours' WHERE id = ?", child)
	storetest.Access(t, e.s, child, p.user.ID, store.RoleMember)
	p.link(t, child)
	newest = append(newest, parent.String(), child.String())

	v := p.do(t, http.MethodGet, teamsPath, nil).json(t)
	if v["count"] != float64(len(newest)) || v["next"] != nil || v["previous"] != nil {
		t.Errorf("count %v next %v previous %v, want %d, null, null", v["count"], v["next"], v["previous"], len(newest))
	}
	if got := resultIDs(t, v); !slices.Equal(got, newest) {
		t.Errorf("teams %v, want newest first %v", got, newest)
	}
	first := v["results"].([]any)[0].(map[string]any)
	if first["name"] != "For all services" || first["is_visible_all_services"] != true || first["depth"] != float64(1) ||
		first["numchild"] != float64(0) || !regexp.MustCompile(`^[0-9A-Za-z]{5}$`).MatchString(first["path"].(string)) ||
		!regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$`).MatchString(first["created_at"].(string)) {
		t.Errorf("team %v", first)
	}
	if len(first) != 8 {
		t.Errorf("team has fields %v, want People's 8", first)
	}

	t.Run("oldest first", func(t *testing.T) {
		t.Parallel()
		v := p.do(t, http.MethodGet, teamsPath+"?ordering=name,created_at", nil).json(t)
		if got, want := resultIDs(t, v), slices.Clone(newest); !slices.Equal(got, reversed(want)) {
			t.Errorf("teams %v, want oldest first", got)
		}
		v = p.do(t, http.MethodGet, teamsPath+"?ordering=name", nil).json(t) // ignored
		if got := resultIDs(t, v); !slices.Equal(got, newest) {
			t.Errorf("?ordering=name: teams %v, want the default order", got)
		}
	})
	t.Run("pages", func(t *testing.T) {
		t.Parallel()
		v := p.do(t, http.MethodGet, teamsPath+"?page_size=3&ordering=-created_at", nil).json(t)
		if got := resultIDs(t, v); v["count"] != float64(8) || !slices.Equal(got, newest[:3]) ||
			v["next"] != publicURL+teamsPath+"?ordering=-created_at&page=2&page_size=3" || v["previous"] != nil {
			t.Errorf("page 1: %v", v)
		}
		v = p.do(t, http.MethodGet, teamsPath+"?page=2&page_size=3&ordering=-created_at", nil).json(t)
		if got := resultIDs(t, v); !slices.Equal(got, newest[3:6]) ||
			v["next"] != publicURL+teamsPath+"?ordering=-created_at&page=3&page_size=3" ||
			v["previous"] != publicURL+teamsPath+"?ordering=-created_at&page_size=3" {
			t.Errorf("page 2: %v", v)
		}
		v = p.do(t, http.MethodGet, teamsPath+"?page=last&page_size=3", nil).json(t)
		if got := resultIDs(t, v); !slices.Equal(got, newest[6:]) || v["next"] != nil ||
			v["previous"] != publicURL+teamsPath+"?page=2&page_size=3" {
			t.Errorf("last page: %v", v)
		}
		v = p.do(t, http.MethodGet, teamsPath+"?page_size=1000", nil).json(t)
		if len(resultIDs(t, v)) != 8 {
			t.Errorf("page_size above 100: %v", v)
		}
		v = p.do(t, http.MethodGet, teamsPath+"?page_size=zero", nil).json(t)
		if len(resultIDs(t, v)) != 8 {
			t.Errorf("page_size not a number takes the default: %v", v)
		}
		for _, page := range []string{"4", "0", "-1", "two", ""} {
			p.do(t, http.MethodGet, teamsPath+"?page_size=3&page="+page, nil).want(t, http.StatusNotFound, `{"detail":"Invalid page."}`)
		}
	})
	t.Run("a user without teams, a service without teams", func(t *testing.T) {
		t.Parallel()
		empty := `{"count":0,"next":null,"previous":null,"results":[]}`
		e.partner(t, org, p.audience).do(t, http.MethodGet, teamsPath, nil).want(t, http.StatusOK, empty)
		q := e.partner(t, org, "unknown-"+storetest.Unique())
		storetest.Access(t, e.s, uuid.MustParse(newest[1]), q.user.ID, store.RoleOwner)
		q.do(t, http.MethodGet, teamsPath, nil).want(t, http.StatusOK, "")
		if v := q.do(t, http.MethodGet, teamsPath, nil).json(t); v["count"] != float64(0) {
			t.Errorf("another service sees %v", v)
		}
		q.do(t, http.MethodGet, teamsPath+"?page=1", nil).want(t, http.StatusOK, empty)
	})
}

func reversed(s []string) []string {
	slices.Reverse(s)
	return s
}

// TestCreateTeam: a root team of the caller's organization, owned by the caller, linked to the
// calling service alone, through store.CreateTeam: audited as the GraphQL mutation is.
func TestCreateTeam(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	p := e.partner(t, uuid.Nil, "docs-"+storetest.Unique())
	other := storetest.ServiceProvider(t, e.s)

	a := p.do(t, http.MethodPost, teamsPath, map[string]any{"name": "  Partners  ", "service_providers": []string{other.String()},
		"organization": uuid.NewString(), "path": "00001"})
	a.want(t, http.StatusCreated, "")
	v := a.json(t)
	id := uuid.MustParse(v["id"].(string))
	if v["name"] != "Partners" || v["is_visible_all_services"] != false || v["depth"] != float64(1) || v["numchild"] != float64(0) {
		t.Errorf("team %v", v)
	}
	var row struct {
		OrganizationID uuid.UUID `bun:"organization_id"`
		Role           string    `bun:"role"`
		SPs            []string  `bun:"sps,array"`
	}
	err := e.s.DB().NewSelect().TableExpr("teams t").ColumnExpr("t.organization_id, a.role").
		ColumnExpr("ARRAY(SELECT service_provider_id::text FROM team_service_providers WHERE team_id = t.id) AS sps").
		Join("JOIN team_accesses a ON a.team_id = t.id AND a.user_id = ?", p.user.ID).Where("t.id = ?", id).Scan(context.Background(), &row)
	if err != nil || row.OrganizationID != *p.user.OrganizationID || row.Role != "owner" || !slices.Equal(row.SPs, []string{p.sp.String()}) {
		t.Errorf("stored team %+v (%v): want the caller's organization, owner, linked to %s only", row, err, p.sp)
	}
	var ev struct {
		Method string    `bun:"actor_method"`
		SP     uuid.UUID `bun:"service_provider_id"`
	}
	err = e.s.DB().NewSelect().TableExpr("audit_events").ColumnExpr("actor_method, service_provider_id").
		Where("operation = 'createTeam' AND actor_id = ? AND ? = ANY (target_ids)", p.user.ID, id).Scan(context.Background(), &ev)
	if err != nil || ev.Method != "bearer" || ev.SP != p.sp {
		t.Errorf("audit event %+v (%v)", ev, err)
	}
	p.do(t, http.MethodGet, teamsPath+id.String()+"/", nil).want(t, http.StatusOK, "")

	t.Run("visible to all services", func(t *testing.T) {
		t.Parallel()
		v := p.do(t, http.MethodPost, teamsPath, map[string]any{"name": "Open", "is_visible_all_services": true}).json(t)
		if v["is_visible_all_services"] != true {
			t.Errorf("team %v", v)
		}
	})
	t.Run("a form", func(t *testing.T) {
		t.Parallel()
		r := newFormRequest(http.MethodPost, teamsPath, "name=Formed&is_visible_all_services=true")
		r.Header.Set("Authorization", "Bearer "+p.token)
		a := p.e.serve(t, r)
		a.want(t, http.StatusCreated, "")
		if v := a.json(t); v["name"] != "Formed" || v["is_visible_all_services"] != true {
			t.Errorf("team %v", v)
		}
	})
	for _, tc := range []struct {
		name   string
		body   any
		status int
		want   string
	}{
		{"no name", map[string]any{"is_visible_all_services": true}, 400, `{"name":["This field is required."]}`},
		{"null name", map[string]any{"name": nil}, 400, `{"name":["This field may not be null."]}`},
		{"no body", nil, 400, `{"name":["This field is required."]}`},
		{"bad boolean", map[string]any{"name": "x", "is_visible_all_services": "maybe"}, 400, `{"is_visible_all_services":["Must be a valid boolean."]}`},
		{"blank name", map[string]any{"name": "   "}, 400, ""},
		{"long name", map[string]any{"name": string(make([]byte, 101))}, 400, ""},
		{"not JSON", "{", 400, ""},
		{"not an object", "[]", 400, `{"non_field_errors":["Invalid data. Expected a dictionary, but got list."]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := p.do(t, http.MethodPost, teamsPath, tc.body)
			a.want(t, tc.status, tc.want)
			if tc.name == "blank name" || tc.name == "long name" {
				if msgs, _ := a.json(t)["name"].([]any); len(msgs) != 1 {
					t.Errorf("body %s: want one message for name", a.body)
				}
			}
		})
	}
	t.Run("not JSON nor a form", func(t *testing.T) {
		t.Parallel()
		r := newFormRequest(http.MethodPost, teamsPath, "name=x")
		r.Header.Set("Content-Type", "text/plain")
		r.Header.Set("Authorization", "Bearer "+p.token)
		p.e.serve(t, r).want(t, http.StatusUnsupportedMediaType, `{"detail":"Unsupported media type \"text/plain\" in request."}`)
	})
}

// TestRetrieveTeam: a team the caller sees, through the service; 404 otherwise.
func TestRetrieveTeam(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	p := e.partner(t, uuid.Nil, "docs-"+storetest.Unique())
	org := *p.user.OrganizationID
	mine := teamAged(t, e.s, org, p.user.ID, store.RoleMember, "Mine", 0)
	p.link(t, mine)
	unlinked := teamAged(t, e.s, org, p.user.ID, store.RoleOwner, "Another service's", 0)
	notMine := storetest.Team(t, e.s, org, "Not mine")
	p.link(t, notMine)
	parent := storetest.Team(t, e.s, org, "Parent")
	p.link(t, parent)
	child := storetest.ChildTeam(t, e.s, parent, "Child")
	storetest.Access(t, e.s, child, p.user.ID, store.RoleMember)
	p.link(t, child)
	grandchild := storetest.ChildTeam(t, e.s, child, "Grandchild")
	p.link(t, grandchild)

	v := p.do(t, http.MethodGet, teamsPath+mine.String()+"/", nil).json(t)
	if v["id"] != mine.String() || v["name"] != "Mine" {
		t.Errorf("team %v", v)
	}
	v = p.do(t, http.MethodGet, teamsPath+parent.String()+"/", nil).json(t)
	if v["id"] != parent.String() || v["numchild"] != float64(1) || v["depth"] != float64(1) {
		t.Errorf("parent %v", v)
	}
	v = p.do(t, http.MethodGet, teamsPath+child.String()+"/", nil).json(t)
	if v["depth"] != float64(2) || len(v["path"].(string)) != 10 {
		t.Errorf("child %v", v)
	}
	for name, id := range map[string]string{
		"linked to another service": unlinked.String(), "not the caller's": notMine.String(),
		"below the caller's": grandchild.String(), "absent": uuid.NewString(), "not a UUID": "team",
	} {
		if a := p.do(t, http.MethodGet, teamsPath+id+"/", nil); a.status != http.StatusNotFound || string(a.body) != noTeam {
			t.Errorf("%s: status %d body %s, want 404 %s", name, a.status, a.body, noTeam)
		}
	}
}

// TestUpdateTeam: PUT and PATCH for the team's direct owners and administrators, through
// store.UpdateTeam; 403 for a member or a viewer of an ancestor, 404 for a team not seen.
func TestUpdateTeam(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	audience := "docs-" + storetest.Unique()
	tr := storetest.TeamWithEveryRole(t, e.s)
	owner := e.partnerFor(t, tr.Owner, audience)
	admin := e.partnerFor(t, tr.Admin, audience)
	member := e.partnerFor(t, tr.Member, audience)
	outsider := e.partnerFor(t, tr.Outsider, audience)
	owner.link(t, tr.ID)
	path := teamsPath + tr.ID.String() + "/"

	v := owner.do(t, http.MethodPut, path, map[string]any{"name": "Renamed"}).json(t)
	if v["name"] != "Renamed" || v["is_visible_all_services"] != false {
		t.Errorf("after PUT: %v", v)
	}
	v = admin.do(t, http.MethodPatch, path, map[string]any{"is_visible_all_services": true}).json(t)
	if v["name"] != "Renamed" || v["is_visible_all_services"] != true {
		t.Errorf("after PATCH: %v", v)
	}
	owner.do(t, http.MethodPut, path, map[string]any{"is_visible_all_services": false}).want(t, http.StatusBadRequest, `{"name":["This field is required."]}`)
	owner.do(t, http.MethodPatch, path, map[string]any{}).want(t, http.StatusOK, "")
	member.do(t, http.MethodPatch, path, map[string]any{"name": "Mine now"}).want(t, http.StatusForbidden, forbidden)
	outsider.do(t, http.MethodPatch, path, map[string]any{"name": "Mine now"}).want(t, http.StatusNotFound, noTeam)
	n, err := e.s.DB().NewSelect().TableExpr("audit_events").
		Where("operation = 'updateTeam' AND actor_method = 'bearer' AND ? = ANY (target_ids)", tr.ID).Count(context.Background())
	if err != nil || n != 3 {
		t.Errorf("updateTeam audit events = %d (%v), want 3", n, err)
	}

	// The owner of a child team sees its parent, but may not change it.
	child := storetest.ChildTeam(t, e.s, tr.ID, "Child")
	storetest.Access(t, e.s, child, tr.Outsider, store.RoleOwner)
	outsider.do(t, http.MethodGet, path, nil).want(t, http.StatusOK, "")
	outsider.do(t, http.MethodPatch, path, map[string]any{"name": "Mine now"}).want(t, http.StatusForbidden, forbidden)
}

// partnerFor is partner for an existing user.
func (e *env) partnerFor(tb testing.TB, user uuid.UUID, audience string) partner {
	tb.Helper()
	u, err := e.s.UserByID(context.Background(), user)
	if err != nil {
		tb.Fatal(err)
	}
	sub := "sub-" + storetest.Unique()
	storetest.MustExec(tb, e.s.DB(), "INSERT INTO user_identities (user_id, issuer, subject, audience) VALUES (?, ?, ?, '')", u.ID, e.as.URL, sub)
	sp, err := e.s.ServiceProviderByAudience(context.Background(), audience)
	if err != nil {
		tb.Fatal(err)
	}
	return partner{e: e, user: *u, audience: audience, sp: sp.ID, token: e.as.Mint(oidctestToken(sub, audience))}
}
