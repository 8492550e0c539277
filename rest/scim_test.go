package rest_test

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"testing"

	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// TestSCIMMe: the caller as People's SCIM user, in its media type; groups are the caller's
// direct teams that the service sees, by external id, never the teams above them.
func TestSCIMMe(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	p := e.partner(t, uuid.Nil, "docs-"+storetest.Unique())
	org := *p.user.OrganizationID
	linked := teamAged(t, e.s, org, p.user.ID, store.RoleMember, "Linked", 0)
	p.link(t, linked)
	open := teamAged(t, e.s, org, p.user.ID, store.RoleOwner, "Open", 0)
	storetest.MustExec(t, e.s.DB(), "UPDATE teams SET is_visible_all_services = true WHERE id = ?", open)
	teamAged(t, e.s, org, p.user.ID, store.RoleOwner, "Another service's", 0)
	parent := storetest.Team(t, e.s, org, "Parent")
	p.link(t, parent)
	child := storetest.ChildTeam(t, e.s, parent, "Child")
	storetest.Access(t, e.s, child, p.user.ID, store.RoleAdministrator)
	p.link(t, child)

	a := p.do(t, http.MethodGet, mePath, nil)
	a.want(t, http.StatusOK, "")
	if ct := a.header.Get("Content-Type"); ct != "application/json+scim" {
		t.Errorf("Content-Type = %q", ct)
	}
	v := a.json(t)
	if v["id"] != p.user.ID.String() || v["active"] != true || v["userName"] != p.user.Sub || v["displayName"] != p.user.Name ||
		!slices.Equal(anyStrings(v["schemas"]), []string{"urn:ietf:params:scim:schemas:core:2.0:User"}) {
		t.Errorf("user %v", v)
	}
	emails := v["emails"].([]any)
	if len(emails) != 1 || emails[0].(map[string]any)["value"] != p.user.Email || emails[0].(map[string]any)["primary"] != true ||
		emails[0].(map[string]any)["type"] != "work" {
		t.Errorf("emails %v", emails)
	}
	meta := v["meta"].(map[string]any)
	iso := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$`)
	if meta["resourceType"] != "User" || meta["location"] != publicURL+mePath ||
		!iso.MatchString(meta["created"].(string)) || !iso.MatchString(meta["lastModified"].(string)) {
		t.Errorf("meta %v", meta)
	}

	var want []string
	for _, id := range []uuid.UUID{linked, open, child} {
		var ext uuid.UUID
		if err := e.s.DB().QueryRowContext(context.Background(), "SELECT external_id FROM teams WHERE id = ?", id).Scan(&ext); err != nil {
			t.Fatal(err)
		}
		if ext == id {
			t.Fatal("external id = id: the test cannot tell them apart")
		}
		want = append(want, ext.String()+"/"+map[uuid.UUID]string{linked: "Linked", open: "Open", child: "Child"}[id]+"/direct")
	}
	var got []string
	for _, g := range v["groups"].([]any) {
		g := g.(map[string]any)
		got = append(got, g["value"].(string)+"/"+g["display"].(string)+"/"+g["type"].(string))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("groups %v, want %v (the parent, seen in the team list, is no group of the user)", got, want)
	}

	t.Run("no name, no email, no team", func(t *testing.T) {
		t.Parallel()
		q := e.partner(t, uuid.Nil, p.audience, storetest.WithName(""), storetest.WithEmail(""))
		v := q.do(t, http.MethodGet, mePath, nil).json(t)
		if v["displayName"] != nil || len(v["emails"].([]any)) != 0 || len(v["groups"].([]any)) != 0 {
			t.Errorf("user %v", v)
		}
	})
	t.Run("many teams", func(t *testing.T) {
		t.Parallel()
		q := e.partner(t, uuid.Nil, p.audience)
		const n = 105 // more than a store page
		storetest.MustExec(t, e.s.DB(), `WITH t AS (INSERT INTO teams (name, organization_id, is_visible_all_services)
			SELECT 'Team ' || g, ?, true FROM generate_series(1, ?) g RETURNING id)
			INSERT INTO team_accesses (team_id, user_id, role) SELECT id, ?, 'member' FROM t`, q.user.OrganizationID, n, q.user.ID)
		v := q.do(t, http.MethodGet, mePath, nil).json(t)
		if got := len(v["groups"].([]any)); got != n {
			t.Errorf("%d groups, want %d", got, n)
		}
	})
}

func anyStrings(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}
