package rest_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// invitationTeam is a team with one user per role, each acting through the same service,
// which the team is linked to.
type invitationTeam struct {
	storetest.TeamRoles
	owner, admin, member, outsider partner
	path                           string // its invitations' URL
}

func (e *env) invitationTeam(tb testing.TB) invitationTeam {
	tb.Helper()
	audience := "docs-" + storetest.Unique()
	tr := storetest.TeamWithEveryRole(tb, e.s)
	it := invitationTeam{TeamRoles: tr, owner: e.partnerFor(tb, tr.Owner, audience), admin: e.partnerFor(tb, tr.Admin, audience),
		member: e.partnerFor(tb, tr.Member, audience), outsider: e.partnerFor(tb, tr.Outsider, audience),
		path: teamsPath + tr.ID.String() + "/invitations/"}
	it.owner.link(tb, tr.ID)
	return it
}

// TestCreateInvitation: store.CreateInvitation behind People's POST, its errors in People's
// shapes; the invitation is audited and its email queued as through GraphQL.
func TestCreateInvitation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	it := e.invitationTeam(t)
	email := "guest-" + storetest.Unique() + "@example.test"

	a := it.admin.do(t, http.MethodPost, it.path, map[string]any{"email": email})
	a.want(t, http.StatusCreated, "")
	v := a.json(t)
	id := uuid.MustParse(v["id"].(string))
	if v["email"] != email || v["team"] != it.ID.String() || v["role"] != "member" || v["issuer"] != it.Admin.String() || v["is_expired"] != false {
		t.Errorf("invitation %v", v)
	}
	ctx := context.Background()
	if n, err := e.s.DB().NewSelect().TableExpr("audit_events").
		Where("operation = 'createInvitation' AND actor_method = 'bearer' AND service_provider_id = ? AND ? = ANY (target_ids)", it.admin.sp, id).
		Count(ctx); err != nil || n != 1 {
		t.Errorf("audit events = %d (%v), want 1", n, err)
	}
	if n, err := e.s.DB().NewSelect().TableExpr("mail_queue").Where("invitation_id = ?", id).Count(ctx); err != nil || n != 1 {
		t.Errorf("queued emails = %d (%v), want 1", n, err)
	}

	for _, tc := range []struct {
		name   string
		by     partner
		body   any
		status int
		want   string
	}{
		{"again", it.owner, map[string]any{"email": email, "role": "administrator"}, 400,
			`{"__all__":["Team invitation with this Email address and Team already exists."]}`},
		{"by a member", it.member, map[string]any{"email": "x-" + storetest.Unique() + "@example.test"}, 403, forbidden},
		{"an owner by an administrator", it.admin, map[string]any{"email": "x-" + storetest.Unique() + "@example.test", "role": "owner"}, 403, forbidden},
		{"by an outsider", it.outsider, map[string]any{"email": "x-" + storetest.Unique() + "@example.test"}, 400, `{"team":["Team not found."]}`},
		{"no email", it.owner, map[string]any{"role": "member"}, 400, `{"email":["This field is required."]}`},
		{"bad role", it.owner, map[string]any{"email": "x-" + storetest.Unique() + "@example.test", "role": "king"}, 400,
			`{"role":["\"king\" is not a valid choice."]}`},
		{"bad email", it.owner, map[string]any{"email": "nobody"}, 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := tc.by.do(t, http.MethodPost, it.path, tc.body)
			a.want(t, tc.status, tc.want)
			if tc.name == "bad email" {
				if msgs, _ := a.json(t)["email"].([]any); len(msgs) != 1 {
					t.Errorf("body %s: want one message for email", a.body)
				}
			}
		})
	}

	t.Run("a team visible to all services but not linked to this one", func(t *testing.T) {
		t.Parallel()
		q := e.partner(t, uuid.Nil, it.owner.audience)
		open := storetest.Team(t, e.s, *q.user.OrganizationID, "Open")
		storetest.Access(t, e.s, open, q.user.ID, store.RoleOwner)
		storetest.MustExec(t, e.s.DB(), "UPDATE teams SET is_visible_all_services = true WHERE id = ?", open)
		path := teamsPath + open.String() + "/invitations/"
		q.do(t, http.MethodGet, teamsPath+open.String()+"/", nil).want(t, http.StatusOK, "") // the team list shows it
		q.do(t, http.MethodPost, path, map[string]any{"email": "x-" + storetest.Unique() + "@example.test"}).
			want(t, http.StatusBadRequest, `{"team":["Team not found."]}`)
		q.do(t, http.MethodGet, path, nil).want(t, http.StatusOK, `{"count":0,"next":null,"previous":null,"results":[]}`)
	})
	t.Run("the email of a user of the organization", func(t *testing.T) {
		t.Parallel()
		colleague := storetest.User(t, e.s, it.Org)
		it.owner.do(t, http.MethodPost, it.path, map[string]any{"email": colleague.Email}).
			want(t, http.StatusBadRequest, `{"email":["this email is already associated to a registered user"]}`)
		if n, err := e.s.DB().NewSelect().TableExpr("invitations").Where("team_id = ? AND email = ?", it.ID, colleague.Email).
			Count(context.Background()); err != nil || n != 0 {
			t.Errorf("invitations = %d (%v), want none", n, err)
		}
	})
}

// TestInvitations: listing, reading and withdrawing, for direct members of a team linked to
// the service.
func TestInvitations(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	it := e.invitationTeam(t)
	// Invitations cannot be edited (a trigger): made with their age, the oldest one 8 days old,
	// past the validity.
	var newest []string
	for _, age := range []string{"8 days", "5 minutes", "1 minute"} {
		var id uuid.UUID
		err := e.s.DB().QueryRowContext(context.Background(), `INSERT INTO invitations (email, team_id, role, issuer_id, created_at, updated_at)
			VALUES (?, ?, 'member', ?, now() - ?::interval, now() - ?::interval) RETURNING id`,
			"guest-"+storetest.Unique()+"@example.test", it.ID, it.Owner, age, age).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		newest = slices.Insert(newest, 0, id.String())
	}

	v := it.member.do(t, http.MethodGet, it.path, nil).json(t)
	if got := resultIDs(t, v); v["count"] != float64(3) || !slices.Equal(got, newest) {
		t.Errorf("invitations %v, want newest first %v", v, newest)
	}
	if last := v["results"].([]any)[2].(map[string]any); last["is_expired"] != true {
		t.Errorf("an 8-day-old invitation: %v", last)
	}
	v = it.admin.do(t, http.MethodGet, it.path+"?page_size=2&page=2", nil).json(t)
	if got := resultIDs(t, v); !slices.Equal(got, newest[2:]) || v["previous"] != publicURL+it.path+"?page_size=2" || v["next"] != nil {
		t.Errorf("page 2: %v", v)
	}
	it.admin.do(t, http.MethodGet, it.path+"?page=3&page_size=2", nil).want(t, http.StatusNotFound, `{"detail":"Invalid page."}`)
	it.outsider.do(t, http.MethodGet, it.path, nil).want(t, http.StatusOK, `{"count":0,"next":null,"previous":null,"results":[]}`)

	one := it.path + newest[0] + "/"
	if v := it.member.do(t, http.MethodGet, one, nil).json(t); v["id"] != newest[0] || v["team"] != it.ID.String() {
		t.Errorf("invitation %v", v)
	}
	it.outsider.do(t, http.MethodGet, one, nil).want(t, http.StatusNotFound, noInvitation)
	otherTeam := teamAged(t, e.s, it.Org, it.Owner, store.RoleOwner, "Other", 0)
	it.owner.link(t, otherTeam)
	it.owner.do(t, http.MethodGet, teamsPath+otherTeam.String()+"/invitations/"+newest[0]+"/", nil).want(t, http.StatusNotFound, noInvitation)
	it.owner.do(t, http.MethodGet, it.path+"nope/", nil).want(t, http.StatusNotFound, noInvitation)

	it.member.do(t, http.MethodDelete, one, nil).want(t, http.StatusForbidden, forbidden)
	it.outsider.do(t, http.MethodDelete, one, nil).want(t, http.StatusNotFound, noInvitation)
	a := it.admin.do(t, http.MethodDelete, one, nil)
	if a.status != http.StatusNoContent || len(a.body) != 0 {
		t.Fatalf("DELETE: status %d body %q, want 204 and nothing", a.status, a.body)
	}
	it.admin.do(t, http.MethodDelete, one, nil).want(t, http.StatusNotFound, noInvitation)
	if n, err := e.s.DB().NewSelect().TableExpr("audit_events").
		Where("operation = 'deleteInvitation' AND actor_id = ? AND ? = ANY (target_ids)", it.Admin, uuid.MustParse(newest[0])).
		Count(context.Background()); err != nil || n != 1 {
		t.Errorf("deleteInvitation audit events = %d (%v), want 1", n, err)
	}

	// Unlinked from the service, the team's invitations are none of its business, even
	// visible to all services.
	storetest.MustExec(t, e.s.DB(), "DELETE FROM team_service_providers WHERE team_id = ?", it.ID)
	storetest.MustExec(t, e.s.DB(), "UPDATE teams SET is_visible_all_services = true WHERE id = ?", it.ID)
	it.owner.do(t, http.MethodGet, it.path, nil).want(t, http.StatusOK, `{"count":0,"next":null,"previous":null,"results":[]}`)
	it.owner.do(t, http.MethodGet, it.path+newest[1]+"/", nil).want(t, http.StatusNotFound, noInvitation)
	it.owner.do(t, http.MethodDelete, it.path+newest[1]+"/", nil).want(t, http.StatusNotFound, noInvitation)
}
