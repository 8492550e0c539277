package graph_test

import (
	"context"
	"crypto/sha256"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"lasuite.fr/people/graph"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

const noID = "00000000-0000-4000-8000-000000000001"

// adminOperations are one operation per staff field, for the refusal tests (rootOperations).
var adminOperations = map[string]string{
	"adminUsers":            `{ adminUsers { totalCount } }`,
	"adminOrganizations":    `{ adminOrganizations { totalCount } }`,
	"adminServiceProviders": `{ adminServiceProviders { totalCount } }`,
	"adminTeams":            `{ adminTeams { totalCount } }`,
	"adminTeam":             `{ adminTeam(id: "` + noID + `") { id } }`,
	"adminAuditEvents":      `{ adminAuditEvents { totalCount } }`,
	"adminUpdateUser":       `mutation { adminUpdateUser(input: {id: "` + noID + `"}) { user { id } } }`,
	"adminCreateOrganization": `mutation { adminCreateOrganization(input: {name: "x", domains: ["refused.test"]}) {
		organization { id } } }`,
	"adminUpdateOrganization": `mutation { adminUpdateOrganization(input: {id: "` + noID + `"}) { organization { id } } }`,
	"adminGrantOrganizationAdministrator": `mutation { adminGrantOrganizationAdministrator(input: {organizationId: "` + noID + `",
		userId: "` + noID + `"}) { organization { id } } }`,
	"adminRevokeOrganizationAdministrator": `mutation { adminRevokeOrganizationAdministrator(input: {organizationId: "` + noID + `",
		userId: "` + noID + `"}) { organization { id } } }`,
	"adminCreateServiceProvider": `mutation { adminCreateServiceProvider(input: {audienceId: "refused"}) { serviceProvider { id } } }`,
	"adminUpdateServiceProvider": `mutation { adminUpdateServiceProvider(input: {id: "` + noID + `"}) { serviceProvider { id } } }`,
	"adminLinkServiceProvider":   `mutation { adminLinkServiceProvider(input: {id: "` + noID + `"}) { serviceProvider { id } } }`,
	"adminUnlinkServiceProvider": `mutation { adminUnlinkServiceProvider(input: {id: "` + noID + `"}) { serviceProvider { id } } }`,
	"adminUpdateTeam":            `mutation { adminUpdateTeam(input: {id: "` + noID + `"}) { team { id } } }`,
	"adminMoveTeam":              `mutation { adminMoveTeam(input: {id: "` + noID + `"}) { team { id } } }`,
	"adminCreateTeamAccess": `mutation { adminCreateTeamAccess(input: {teamId: "` + noID + `", userId: "` + noID + `"}) {
		access { id } } }`,
	"adminUpdateTeamAccess": `mutation { adminUpdateTeamAccess(input: {id: "` + noID + `", role: MEMBER}) { access { id } } }`,
	"adminDeleteTeamAccess": `mutation { adminDeleteTeamAccess(input: {id: "` + noID + `"}) { deletedId } }`,
	"adminCreateTeamWebhook": `mutation { adminCreateTeamWebhook(input: {teamId: "` + noID + `", url: "https://hook.test/x"}) {
		webhook { id } } }`,
	"adminUpdateTeamWebhook": `mutation { adminUpdateTeamWebhook(input: {id: "` + noID + `"}) { webhook { id } } }`,
	"adminDeleteTeamWebhook": `mutation { adminDeleteTeamWebhook(input: {id: "` + noID + `"}) { deletedId } }`,
}

// The staff fields join rootOperations, which every root field must have an operation in.
func init() { maps.Copy(rootOperations, adminOperations) }

// staffAPI is the API with a staff user in a fresh organization.
type staffAPI struct {
	*api
	staff uuid.UUID
	org   uuid.UUID
}

func newStaffAPI(t *testing.T, settings graph.Settings) staffAPI {
	t.Helper()
	s := storetest.Open(t)
	org := storetest.Organization(t, s)
	return staffAPI{api: newAPI(t, s, settings), staff: storetest.User(t, s, org, storetest.Staff()).ID, org: org}
}

// admin runs an operation as the staff user and fails the test on any error.
func (a staffAPI) admin(query string, vars map[string]any, out any) {
	a.tb.Helper()
	a.mustDo(session(a.staff), query, vars, out)
}

// adminTry runs an operation as the staff user.
func (a staffAPI) adminTry(query string, vars map[string]any) result {
	a.tb.Helper()
	return a.do(session(a.staff), query, vars, nil)
}

// in returns the API for a subtest, so that its helpers fail that subtest.
func (a staffAPI) in(t *testing.T) staffAPI {
	c := *a.api
	c.tb = t
	a.api = &c
	return a
}

type adminUserNode struct {
	ID           uuid.UUID
	Email, Name  *string
	IsActive     bool
	IsStaff      bool
	Organization *struct{ ID uuid.UUID }
}

const adminUsersQuery = `query($search: String, $active: Boolean, $staff: Boolean, $org: ID) {
	adminUsers(search: $search, isActive: $active, isStaff: $staff, organizationId: $org, first: 100) {
		totalCount nodes { id email name isActive isStaff organization { id } } } }`

func (a staffAPI) users(vars map[string]any) []adminUserNode {
	a.tb.Helper()
	var out struct {
		AdminUsers struct{ Nodes []adminUserNode }
	}
	a.admin(adminUsersQuery, vars, &out)
	return out.AdminUsers.Nodes
}

func adminUserIDs(ns []adminUserNode) []uuid.UUID {
	return idsOf(ns, func(n adminUserNode) uuid.UUID { return n.ID })
}

func TestAdminUsers(t *testing.T) {
	t.Parallel()
	a := newStaffAPI(t, allFeatures)
	s := a.s
	org := storetest.Organization(t, s)
	tok := storetest.Unique()
	name := "Zébulon " + tok
	active := storetest.User(t, s, org, storetest.WithName(name+" Active"))
	gone := storetest.User(t, s, org, storetest.WithName(name+" Gone"), storetest.Inactive())
	boss := storetest.User(t, s, org, storetest.WithName(name+" Boss"), storetest.Staff())
	elsewhere := storetest.User(t, s, storetest.Organization(t, s), storetest.WithName(name+" Elsewhere"))

	tests := []struct {
		name string
		vars map[string]any
		want []uuid.UUID // newest first
	}{
		{"search, accents and case aside, inactive users too", map[string]any{"search": "ZEBULON " + tok},
			[]uuid.UUID{elsewhere.ID, boss.ID, gone.ID, active.ID}},
		{"active only", map[string]any{"search": name, "active": true}, []uuid.UUID{elsewhere.ID, boss.ID, active.ID}},
		{"inactive only", map[string]any{"search": name, "active": false}, []uuid.UUID{gone.ID}},
		{"staff only", map[string]any{"search": name, "staff": true}, []uuid.UUID{boss.ID}},
		{"one organization", map[string]any{"org": org}, []uuid.UUID{boss.ID, gone.ID, active.ID}},
		{"exact sub", map[string]any{"search": gone.Sub}, []uuid.UUID{gone.ID}},
		{"exact id", map[string]any{"search": active.ID.String()}, []uuid.UUID{active.ID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, adminUserIDs(a.in(t).users(tt.vars))); diff != "" {
				t.Errorf("adminUsers (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("a page too large", func(t *testing.T) {
		t.Parallel()
		assertCode(t, a.adminTry(`{ adminUsers(first: 101) { totalCount } }`, nil), "BAD_USER_INPUT", "first")
	})
}

const adminUpdateUserMutation = `mutation($in: AdminUpdateUserInput!) {
	adminUpdateUser(input: $in) { user { id email name isActive isStaff organization { id } } } }`

func TestAdminUpdateUser(t *testing.T) {
	t.Parallel()
	a := newStaffAPI(t, allFeatures)
	s := a.s
	update := func(a staffAPI, in map[string]any) adminUserNode {
		a.tb.Helper()
		var out struct{ AdminUpdateUser struct{ User adminUserNode } }
		a.admin(adminUpdateUserMutation, map[string]any{"in": in}, &out)
		return out.AdminUpdateUser.User
	}

	t.Run("profile and organization", func(t *testing.T) {
		t.Parallel()
		u := storetest.User(t, s, a.org)
		other := storetest.Organization(t, s)
		got := update(a.in(t), map[string]any{"id": u.ID, "name": "  New Name ", "email": "New@Example.TEST", "organizationId": other})
		if *got.Name != "New Name" || *got.Email != "New@example.test" || got.Organization.ID != other {
			t.Errorf("user = %+v, want the new name, email (domain lower-cased) and organization", got)
		}
		got = update(a.in(t), map[string]any{"id": u.ID, "name": "", "email": ""})
		if got.Name != nil || got.Email != nil {
			t.Errorf("name %v, email %v; want both removed", got.Name, got.Email)
		}
	})

	t.Run("staff status", func(t *testing.T) {
		t.Parallel()
		u := storetest.User(t, s, a.org)
		if got := update(a.in(t), map[string]any{"id": u.ID, "isStaff": true}); !got.IsStaff {
			t.Fatal("isStaff = false after promotion")
		}
		// The new staff user administers at once, and may demote the one who promoted them.
		var out struct{ AdminUpdateUser struct{ User adminUserNode } }
		a.mustDo(session(u.ID), adminUpdateUserMutation, map[string]any{"in": map[string]any{"id": a.staff, "isStaff": true}}, &out)
	})

	t.Run("deactivation ends the sessions", func(t *testing.T) {
		t.Parallel()
		u := storetest.User(t, s, a.org)
		ctx := context.Background()
		if _, err := s.CreateSession(ctx, sessionHash(), store.NewSession{UserID: u.ID, Issuer: "https://op.test", Subject: u.Sub}, time.Hour); err != nil {
			t.Fatal(err)
		}
		if got := update(a.in(t), map[string]any{"id": u.ID, "isActive": false}); got.IsActive {
			t.Fatal("isActive = true after deactivation")
		}
		n, err := s.DB().NewSelect().TableExpr("sessions").Where("user_id = ?", u.ID).Count(ctx)
		if err != nil || n != 0 {
			t.Errorf("sessions left: %d (%v), want 0", n, err)
		}
		if got := update(a.in(t), map[string]any{"id": u.ID, "isActive": true}); !got.IsActive {
			t.Error("isActive = false after reactivation")
		}
	})

	for _, tc := range []struct {
		name        string
		in          func() map[string]any
		code, field string
	}{
		{"staff cannot deactivate themselves", func() map[string]any { return map[string]any{"id": a.staff, "isActive": false} }, "FORBIDDEN", ""},
		{"staff cannot drop their own staff status", func() map[string]any { return map[string]any{"id": a.staff, "isStaff": false} }, "FORBIDDEN", ""},
		{"unknown user", func() map[string]any { return map[string]any{"id": uuid.New(), "name": "x"} }, "NOT_FOUND", ""},
		{"unknown organization", func() map[string]any {
			return map[string]any{"id": storetest.User(t, s, a.org).ID, "organizationId": uuid.New()}
		}, "NOT_FOUND", "organizationId"},
		{"malformed email", func() map[string]any {
			return map[string]any{"id": storetest.User(t, s, a.org).ID, "email": "not an email"}
		}, "BAD_USER_INPUT", "email"},
		{"name too long", func() map[string]any {
			return map[string]any{"id": storetest.User(t, s, a.org).ID, "name": strings.Repeat("n", 101)}
		}, "BAD_USER_INPUT", "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assertCode(t, a.in(t).adminTry(adminUpdateUserMutation, map[string]any{"in": tc.in()}), tc.code, tc.field)
		})
	}
	t.Run("the refusal of oneself changes nothing", func(t *testing.T) {
		t.Parallel()
		u, err := s.UserByID(context.Background(), a.staff)
		if err != nil || !u.IsActive || !u.IsStaff {
			t.Errorf("staff user after refused self-demotion: %+v (%v)", u, err)
		}
	})
}

type adminOrgNode struct {
	ID               uuid.UUID
	Name             string
	RegistrationIDs  []string `json:"registrationIds"`
	Domains          []string
	Metadata         map[string]any
	IsActive         bool
	Administrators   []struct{ ID uuid.UUID }
	ServiceProviders []struct {
		ID uuid.UUID
	}
}

const adminOrgFields = `id name registrationIds domains metadata isActive administrators { id } serviceProviders { id }`

func TestAdminOrganizations(t *testing.T) {
	t.Parallel()
	// Registration ids of this deployment: a letter and five digits.
	settings := allFeatures
	settings.RegistrationIDPattern = regexp.MustCompile(`[A-Z][0-9]{5}`)
	a := newStaffAPI(t, settings)
	s := a.s
	create := func(a staffAPI, in map[string]any) (adminOrgNode, result) {
		a.tb.Helper()
		var out struct {
			AdminCreateOrganization struct{ Organization adminOrgNode }
		}
		r := a.do(session(a.staff), `mutation($in: AdminCreateOrganizationInput!) {
			adminCreateOrganization(input: $in) { organization { `+adminOrgFields+` } } }`, map[string]any{"in": in}, &out)
		return out.AdminCreateOrganization.Organization, r
	}
	update := func(a staffAPI, in map[string]any) (adminOrgNode, result) {
		a.tb.Helper()
		var out struct {
			AdminUpdateOrganization struct{ Organization adminOrgNode }
		}
		r := a.do(session(a.staff), `mutation($in: AdminUpdateOrganizationInput!) {
			adminUpdateOrganization(input: $in) { organization { `+adminOrgFields+` } } }`, map[string]any{"in": in}, &out)
		return out.AdminUpdateOrganization.Organization, r
	}
	regID := func() string { return "Q" + storetest.Unique()[:5] }
	digits := func() string {
		var b strings.Builder
		for _, c := range storetest.Unique() {
			b.WriteByte(byte('0' + int(c)%10))
		}
		return b.String()[:5]
	}

	t.Run("create, list and update", func(t *testing.T) {
		t.Parallel()
		a := a.in(t)
		id, domain := "Z"+digits(), "Admin-"+storetest.Unique()+".TEST"
		o, r := create(a, map[string]any{"name": " Mairie ", "registrationIds": []string{id, id}, "domains": []string{domain}})
		if len(r.Errors) > 0 {
			t.Fatalf("create: %+v", r.Errors)
		}
		want := adminOrgNode{ID: o.ID, Name: "Mairie", RegistrationIDs: []string{id}, Domains: []string{strings.ToLower(domain)},
			Metadata: map[string]any{}, IsActive: true, Administrators: nil, ServiceProviders: nil}
		if diff := cmp.Diff(want, o, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("created (-want +got):\n%s", diff)
		}
		var list struct {
			AdminOrganizations struct{ Nodes []adminOrgNode }
		}
		a.admin(`query($q: String) { adminOrganizations(search: $q) { nodes { id } } }`, map[string]any{"q": id}, &list)
		if len(list.AdminOrganizations.Nodes) != 1 || list.AdminOrganizations.Nodes[0].ID != o.ID {
			t.Errorf("search by registration id: %+v", list.AdminOrganizations.Nodes)
		}
		d2 := "second-" + storetest.Unique() + ".test"
		o, r = update(a, map[string]any{"id": o.ID, "name": "Commune", "registrationIds": []string{}, "domains": []string{d2},
			"metadata": map[string]any{"is_commune": true}, "isActive": false})
		if len(r.Errors) > 0 {
			t.Fatalf("update: %+v", r.Errors)
		}
		want = adminOrgNode{ID: o.ID, Name: "Commune", Domains: []string{d2}, Metadata: map[string]any{"is_commune": true}}
		if diff := cmp.Diff(want, o, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("updated (-want +got):\n%s", diff)
		}
		// Fields left out are unchanged.
		o, _ = update(a, map[string]any{"id": o.ID, "isActive": true})
		if o.Name != "Commune" || !slices.Equal(o.Domains, []string{d2}) || o.Metadata["is_commune"] != true || !o.IsActive {
			t.Errorf("after a partial update: %+v", o)
		}
	})

	taken := storetest.Organization(t, s)
	var takenDomain string
	if err := s.DB().NewSelect().TableExpr("organization_domains").Column("domain").Where("organization_id = ?", taken).Limit(1).
		Scan(context.Background(), &takenDomain); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		in          map[string]any
		code, field string
	}{
		{"a domain of another organization", map[string]any{"name": "x", "domains": []string{takenDomain}}, "CONFLICT", "domains"},
		{"a registration id of the wrong format", map[string]any{"name": "x", "registrationIds": []string{"12345678901234"}}, "BAD_USER_INPUT", "registrationIds"},
		{"no identifier", map[string]any{"name": "x"}, "BAD_USER_INPUT", "registrationIds"},
		{"a malformed domain", map[string]any{"name": "x", "domains": []string{"not a domain"}}, "BAD_USER_INPUT", "domains"},
		{"a blank name", map[string]any{"name": " ", "registrationIds": []string{regID()}}, "BAD_USER_INPUT", "name"},
	} {
		t.Run("create: "+tc.name, func(t *testing.T) {
			t.Parallel()
			_, r := create(a.in(t), tc.in)
			assertCode(t, r, tc.code, tc.field)
		})
	}
	t.Run("a registration id taken by another organization", func(t *testing.T) {
		t.Parallel()
		id := "R" + digits()
		if _, r := create(a.in(t), map[string]any{"name": "First", "registrationIds": []string{id}}); len(r.Errors) > 0 {
			t.Fatal(r.Errors)
		}
		_, r := create(a.in(t), map[string]any{"name": "Second", "registrationIds": []string{id}})
		assertCode(t, r, "CONFLICT", "registrationIds")
	})
	for _, tc := range []struct {
		name        string
		in          func() map[string]any
		code, field string
	}{
		{"taking another organization's domain", func() map[string]any {
			return map[string]any{"id": storetest.Organization(t, s), "domains": []string{takenDomain}}
		}, "CONFLICT", "domains"},
		{"removing every identifier", func() map[string]any {
			return map[string]any{"id": storetest.Organization(t, s), "domains": []string{}}
		}, "BAD_USER_INPUT", "registrationIds"},
		{"metadata holding NUL", func() map[string]any {
			return map[string]any{"id": storetest.Organization(t, s), "metadata": map[string]any{"x": "a\x00b"}}
		}, "BAD_USER_INPUT", "metadata"},
		{"unknown organization", func() map[string]any { return map[string]any{"id": uuid.New(), "name": "x"} }, "NOT_FOUND", ""},
	} {
		t.Run("update: "+tc.name, func(t *testing.T) {
			t.Parallel()
			_, r := update(a.in(t), tc.in())
			assertCode(t, r, tc.code, tc.field)
		})
	}

	t.Run("administrators", func(t *testing.T) {
		t.Parallel()
		a := a.in(t)
		org := storetest.Organization(t, s)
		u := storetest.User(t, s, org)
		in := map[string]any{"in": map[string]any{"organizationId": org, "userId": u.ID}}
		const grant = `mutation($in: AdminOrganizationAdministratorInput!) {
			adminGrantOrganizationAdministrator(input: $in) { organization { administrators { id } } } }`
		const revoke = `mutation($in: AdminOrganizationAdministratorInput!) {
			adminRevokeOrganizationAdministrator(input: $in) { organization { administrators { id } } } }`
		var out struct {
			AdminGrantOrganizationAdministrator  struct{ Organization adminOrgNode }
			AdminRevokeOrganizationAdministrator struct{ Organization adminOrgNode }
		}
		a.admin(grant, in, &out)
		if got := out.AdminGrantOrganizationAdministrator.Organization.Administrators; len(got) != 1 || got[0].ID != u.ID {
			t.Errorf("administrators after grant = %+v", got)
		}
		// The new administrator may rename their organization.
		a.mustDo(session(u.ID), `mutation($id: ID!) { updateOrganization(input: {id: $id, name: "Renamed"}) { organization { id } } }`,
			map[string]any{"id": org}, nil)
		assertCode(t, a.adminTry(grant, in), "CONFLICT", "userId")
		a.admin(revoke, in, &out)
		if got := out.AdminRevokeOrganizationAdministrator.Organization.Administrators; len(got) != 0 {
			t.Errorf("administrators after revoke = %+v", got)
		}
		assertCode(t, a.adminTry(revoke, in), "NOT_FOUND", "")
		assertCode(t, a.adminTry(grant, map[string]any{"in": map[string]any{"organizationId": org, "userId": uuid.New()}}), "NOT_FOUND", "")
		assertCode(t, a.adminTry(grant, map[string]any{"in": map[string]any{"organizationId": uuid.New(), "userId": u.ID}}), "NOT_FOUND", "")
	})
}

type adminSPNode struct {
	ID            uuid.UUID
	Name          string
	AudienceID    string `json:"audienceId"`
	TeamCount     int
	Organizations []struct{ ID uuid.UUID }
}

const adminSPFields = `id name audienceId teamCount organizations { id }`

func TestAdminServiceProviders(t *testing.T) {
	t.Parallel()
	a := newStaffAPI(t, allFeatures)
	s := a.s
	create := func(a staffAPI, in map[string]any) (adminSPNode, result) {
		var out struct {
			AdminCreateServiceProvider struct{ ServiceProvider adminSPNode }
		}
		r := a.do(session(a.staff), `mutation($in: AdminCreateServiceProviderInput!) {
			adminCreateServiceProvider(input: $in) { serviceProvider { `+adminSPFields+` } } }`, map[string]any{"in": in}, &out)
		return out.AdminCreateServiceProvider.ServiceProvider, r
	}
	mutate := func(a staffAPI, op, input string, in map[string]any) (adminSPNode, result) {
		var out map[string]struct{ ServiceProvider adminSPNode }
		r := a.do(session(a.staff), `mutation($in: `+input+`!) { `+op+`(input: $in) { serviceProvider { `+adminSPFields+` } } }`,
			map[string]any{"in": in}, &out)
		return out[op].ServiceProvider, r
	}

	t.Run("create, update, link and unlink", func(t *testing.T) {
		t.Parallel()
		a := a.in(t)
		audience := "client-" + storetest.Unique()
		sp, r := create(a, map[string]any{"audienceId": " " + audience + " "})
		if len(r.Errors) > 0 {
			t.Fatal(r.Errors)
		}
		if sp.Name != audience || sp.AudienceID != audience {
			t.Errorf("created %+v: the name defaults to the audience id", sp)
		}
		name := "Docs " + storetest.Unique()
		if sp, r = mutate(a, "adminUpdateServiceProvider", "AdminUpdateServiceProviderInput", map[string]any{"id": sp.ID, "name": name}); len(r.Errors) > 0 || sp.Name != name {
			t.Fatalf("update: %+v %+v", sp, r.Errors)
		}
		org := storetest.Organization(t, s)
		team := storetest.Team(t, s, org, "Linked "+storetest.Unique())
		links := map[string]any{"id": sp.ID, "organizationIds": []uuid.UUID{org}, "teamIds": []uuid.UUID{team}}
		for range 2 { // linking twice is linking once
			if sp, r = mutate(a, "adminLinkServiceProvider", "AdminServiceProviderLinksInput", links); len(r.Errors) > 0 {
				t.Fatal(r.Errors)
			}
		}
		if sp.TeamCount != 1 || len(sp.Organizations) != 1 || sp.Organizations[0].ID != org {
			t.Errorf("after linking: %+v", sp)
		}
		// The organization's members now see it among their service providers.
		member := storetest.User(t, s, org)
		var mine struct {
			ServiceProviders struct{ Nodes []struct{ ID uuid.UUID } }
		}
		a.mustDo(session(member.ID), `{ serviceProviders { nodes { id } } }`, nil, &mine)
		if len(mine.ServiceProviders.Nodes) != 1 || mine.ServiceProviders.Nodes[0].ID != sp.ID {
			t.Errorf("the organization's members see %+v", mine.ServiceProviders.Nodes)
		}
		if sp, r = mutate(a, "adminUnlinkServiceProvider", "AdminServiceProviderLinksInput", links); len(r.Errors) > 0 {
			t.Fatal(r.Errors)
		}
		if sp.TeamCount != 0 || len(sp.Organizations) != 0 {
			t.Errorf("after unlinking: %+v", sp)
		}
		var list struct{ AdminServiceProviders struct{ Nodes []adminSPNode } }
		a.admin(`query($q: String) { adminServiceProviders(search: $q) { nodes { id } } }`, map[string]any{"q": audience}, &list)
		if len(list.AdminServiceProviders.Nodes) != 1 || list.AdminServiceProviders.Nodes[0].ID != sp.ID {
			t.Errorf("search by audience id: %+v", list.AdminServiceProviders.Nodes)
		}
	})

	taken := "taken-" + storetest.Unique()
	if _, r := create(a, map[string]any{"audienceId": taken}); len(r.Errors) > 0 {
		t.Fatal(r.Errors)
	}
	for _, tc := range []struct {
		name        string
		run         func(a staffAPI) result
		code, field string
	}{
		{"an audience id taken", func(a staffAPI) result {
			_, r := create(a, map[string]any{"audienceId": taken, "name": "Other " + storetest.Unique()})
			return r
		}, "CONFLICT", "audienceId"},
		{"a name taken", func(a staffAPI) result {
			_, r := create(a, map[string]any{"audienceId": "other-" + storetest.Unique(), "name": taken})
			return r
		}, "CONFLICT", "name"},
		{"a blank audience id", func(a staffAPI) result {
			_, r := create(a, map[string]any{"audienceId": " "})
			return r
		}, "BAD_USER_INPUT", "audienceId"},
		{"linking an unknown team", func(a staffAPI) result {
			sp, _ := create(a, map[string]any{"audienceId": "c-" + storetest.Unique()})
			_, r := mutate(a, "adminLinkServiceProvider", "AdminServiceProviderLinksInput", map[string]any{"id": sp.ID, "teamIds": []uuid.UUID{uuid.New()}})
			return r
		}, "NOT_FOUND", "teamIds"},
		{"linking an unknown organization", func(a staffAPI) result {
			sp, _ := create(a, map[string]any{"audienceId": "c-" + storetest.Unique()})
			_, r := mutate(a, "adminLinkServiceProvider", "AdminServiceProviderLinksInput", map[string]any{"id": sp.ID, "organizationIds": []uuid.UUID{uuid.New()}})
			return r
		}, "NOT_FOUND", "organizationIds"},
		{"an unknown service provider", func(a staffAPI) result {
			_, r := mutate(a, "adminUpdateServiceProvider", "AdminUpdateServiceProviderInput", map[string]any{"id": uuid.New(), "name": "x"})
			return r
		}, "NOT_FOUND", ""},
		{"unlinking an unknown service provider", func(a staffAPI) result {
			_, r := mutate(a, "adminUnlinkServiceProvider", "AdminServiceProviderLinksInput", map[string]any{"id": uuid.New(), "teamIds": []uuid.UUID{}})
			return r
		}, "NOT_FOUND", ""},
		{"linking an unknown service provider", func(a staffAPI) result {
			_, r := mutate(a, "adminLinkServiceProvider", "AdminServiceProviderLinksInput", map[string]any{"id": uuid.New(), "teamIds": []uuid.UUID{}})
			return r
		}, "NOT_FOUND", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assertCode(t, tc.run(a.in(t)), tc.code, tc.field)
		})
	}
}

type adminTeamNode struct {
	ID                   uuid.UUID
	Name                 string
	IsVisibleAllServices bool
	Organization         *struct{ ID uuid.UUID }
	ServiceProviders     []struct{ ID uuid.UUID }
	Accesses             struct {
		TotalCount int
		Nodes      []struct {
			ID        uuid.UUID
			Role      string
			User      struct{ ID uuid.UUID }
			Abilities struct {
				Delete    bool
				SetRoleTo []string
			}
		}
	}
	Webhooks []webhookNode
}

type webhookNode struct {
	ID             uuid.UUID
	URL            string `json:"url"`
	Protocol       string
	HasSecret      bool
	Status         string
	Pending        int
	Failed         int
	Attempts       int
	LastDeliveryAt *string
	LastError      *string
}

const adminTeamFields = `id name isVisibleAllServices organization { id } serviceProviders { id }
	accesses { totalCount nodes { id role user { id } abilities { delete setRoleTo } } }
	webhooks { id url protocol hasSecret status pending failed attempts lastDeliveryAt lastError }`

func (a staffAPI) team(id uuid.UUID) adminTeamNode {
	a.tb.Helper()
	var out struct{ AdminTeam adminTeamNode }
	a.admin(`query($id: ID!) { adminTeam(id: $id) { `+adminTeamFields+` } }`, map[string]any{"id": id}, &out)
	return out.AdminTeam
}

func TestAdminTeams(t *testing.T) {
	t.Parallel()
	a := newStaffAPI(t, allFeatures)
	s := a.s

	t.Run("list, search and organization", func(t *testing.T) {
		t.Parallel()
		a := a.in(t)
		org := storetest.Organization(t, s)
		tok := storetest.Unique()
		name := "Équipe " + tok
		first := storetest.Team(t, s, org, name+" one")
		second := storetest.Team(t, s, org, name+" two")
		other := storetest.Team(t, s, storetest.Organization(t, s), name+" other")
		var out struct {
			AdminTeams struct {
				TotalCount int
				Nodes      []adminTeamNode
			}
		}
		a.admin(`query($q: String, $org: ID) { adminTeams(search: $q, organizationId: $org) { totalCount nodes { `+adminTeamFields+` } } }`,
			map[string]any{"q": "equipe " + tok}, &out)
		if diff := cmp.Diff([]uuid.UUID{other, second, first}, idsOf(out.AdminTeams.Nodes, func(n adminTeamNode) uuid.UUID { return n.ID })); diff != "" {
			t.Errorf("search (-want +got):\n%s", diff)
		}
		a.admin(`query($q: String, $org: ID) { adminTeams(search: $q, organizationId: $org) { totalCount nodes { id } } }`,
			map[string]any{"q": name, "org": org}, &out)
		if diff := cmp.Diff([]uuid.UUID{second, first}, idsOf(out.AdminTeams.Nodes, func(n adminTeamNode) uuid.UUID { return n.ID })); diff != "" {
			t.Errorf("one organization (-want +got):\n%s", diff)
		}
		assertCode(t, a.adminTry(`query($id: ID!) { adminTeam(id: $id) { id } }`, map[string]any{"id": uuid.New()}), "NOT_FOUND", "")
	})

	t.Run("update", func(t *testing.T) {
		t.Parallel()
		a := a.in(t)
		team := storetest.TeamWithEveryRole(t, s)
		sp := storetest.ServiceProvider(t, s)
		const update = `mutation($in: AdminUpdateTeamInput!) { adminUpdateTeam(input: $in) { team { ` + adminTeamFields + ` } } }`
		var out struct{ AdminUpdateTeam struct{ Team adminTeamNode } }
		a.admin(update, map[string]any{"in": map[string]any{"id": team.ID, "name": "Renamed", "isVisibleAllServices": true,
			"serviceProviderIds": []uuid.UUID{sp}}}, &out)
		got := out.AdminUpdateTeam.Team
		if got.Name != "Renamed" || !got.IsVisibleAllServices || len(got.ServiceProviders) != 1 || got.ServiceProviders[0].ID != sp ||
			got.Organization.ID != team.Org || got.Accesses.TotalCount != 3 {
			t.Errorf("updated team = %+v", got)
		}
		a.admin(update, map[string]any{"in": map[string]any{"id": team.ID, "serviceProviderIds": []uuid.UUID{}}}, &out)
		if got := out.AdminUpdateTeam.Team; got.Name != "Renamed" || len(got.ServiceProviders) != 0 {
			t.Errorf("after removing the services: %+v", got)
		}
		assertCode(t, a.adminTry(update, map[string]any{"in": map[string]any{"id": team.ID, "serviceProviderIds": []uuid.UUID{uuid.New()}}}),
			"BAD_USER_INPUT", "serviceProviderIds")
		assertCode(t, a.adminTry(update, map[string]any{"in": map[string]any{"id": uuid.New(), "name": "x"}}), "NOT_FOUND", "")
	})
}

const (
	adminCreateAccess = `mutation($in: CreateTeamAccessInput!) { adminCreateTeamAccess(input: $in) { access { id role abilities { delete setRoleTo } } } }`
	adminUpdateAccess = `mutation($id: ID!, $role: TeamRole!) { adminUpdateTeamAccess(input: {id: $id, role: $role}) { access { id role } } }`
	adminDeleteAccess = `mutation($id: ID!) { adminDeleteTeamAccess(input: {id: $id}) { deletedId } }`
)

// TestAdminTeamAccesses: staff manage any team's members as an owner would, and more (they
// demote owners), but a team never loses its last owner.
func TestAdminTeamAccesses(t *testing.T) {
	t.Parallel()
	a := newStaffAPI(t, allFeatures)
	s := a.s

	t.Run("add, change and remove in a team staff are not in", func(t *testing.T) {
		t.Parallel()
		a := a.in(t)
		team := storetest.TeamWithEveryRole(t, s)
		var out struct {
			AdminCreateTeamAccess struct {
				Access struct {
					ID        uuid.UUID
					Role      string
					Abilities struct {
						Delete    bool
						SetRoleTo []string
					}
				}
			}
		}
		a.admin(adminCreateAccess, map[string]any{"in": map[string]any{"teamId": team.ID, "userId": team.Outsider, "role": "OWNER"}}, &out)
		access := out.AdminCreateTeamAccess.Access
		if access.Role != "OWNER" || !access.Abilities.Delete || !slices.Equal(access.Abilities.SetRoleTo, []string{"ADMINISTRATOR", "MEMBER"}) {
			t.Errorf("new owner access = %+v", access)
		}
		a.admin(adminUpdateAccess, map[string]any{"id": team.OwnerAccess, "role": "MEMBER"}, nil) // two owners: one may go
		a.admin(adminDeleteAccess, map[string]any{"id": team.MemberAccess}, nil)
		got := a.team(team.ID)
		roles := map[uuid.UUID]string{}
		for _, n := range got.Accesses.Nodes {
			roles[n.User.ID] = n.Role
		}
		want := map[uuid.UUID]string{team.Outsider: "OWNER", team.Owner: "MEMBER", team.Admin: "ADMINISTRATOR"}
		if diff := cmp.Diff(want, roles); diff != "" {
			t.Errorf("roles (-want +got):\n%s", diff)
		}
		for _, n := range got.Accesses.Nodes {
			if n.Role == "OWNER" && (n.Abilities.Delete || len(n.Abilities.SetRoleTo) > 0) {
				t.Errorf("the only owner's abilities for staff = %+v, want none", n.Abilities)
			}
		}
	})

	t.Run("the last owner stays", func(t *testing.T) {
		t.Parallel()
		a := a.in(t)
		team := storetest.TeamWithEveryRole(t, s)
		assertCode(t, a.adminTry(adminUpdateAccess, map[string]any{"id": team.OwnerAccess, "role": "ADMINISTRATOR"}), "FORBIDDEN", "")
		assertCode(t, a.adminTry(adminDeleteAccess, map[string]any{"id": team.OwnerAccess}), "FORBIDDEN", "")
		assertCode(t, a.adminTry(adminUpdateAccess, map[string]any{"id": team.MemberAccess, "role": "MEMBER"}), "FORBIDDEN", "")
		if got := a.team(team.ID); got.Accesses.TotalCount != 3 {
			t.Errorf("accesses after refusals = %d, want 3", got.Accesses.TotalCount)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		t.Parallel()
		a := a.in(t)
		team := storetest.TeamWithEveryRole(t, s)
		gone := storetest.User(t, s, team.Org, storetest.Inactive()).ID
		assertCode(t, a.adminTry(adminCreateAccess, map[string]any{"in": map[string]any{"teamId": team.ID, "userId": team.Member}}), "CONFLICT", "userId")
		assertCode(t, a.adminTry(adminCreateAccess, map[string]any{"in": map[string]any{"teamId": team.ID, "userId": gone}}), "NOT_FOUND", "")
		assertCode(t, a.adminTry(adminCreateAccess, map[string]any{"in": map[string]any{"teamId": uuid.New(), "userId": team.Outsider}}), "NOT_FOUND", "")
		assertCode(t, a.adminTry(adminDeleteAccess, map[string]any{"id": uuid.New()}), "NOT_FOUND", "")
	})
}

func TestAdminTeamWebhooks(t *testing.T) {
	t.Parallel()
	a := newStaffAPI(t, allFeatures)
	s := a.s
	const (
		create = `mutation($in: AdminCreateTeamWebhookInput!) { adminCreateTeamWebhook(input: $in) { webhook {
			id url protocol hasSecret status pending failed attempts lastDeliveryAt lastError } } }`
		update = `mutation($in: AdminUpdateTeamWebhookInput!) { adminUpdateTeamWebhook(input: $in) { webhook { id url hasSecret } } }`
		remove = `mutation($id: ID!) { adminDeleteTeamWebhook(input: {id: $id}) { deletedId } }`
	)

	t.Run("create, list, update and delete", func(t *testing.T) {
		t.Parallel()
		a := a.in(t)
		team := storetest.TeamWithEveryRole(t, s)
		var out struct{ AdminCreateTeamWebhook struct{ Webhook webhookNode } }
		a.admin(create, map[string]any{"in": map[string]any{"teamId": team.ID, "url": "https://scim.example.test/Groups/1", "secret": "s3cr3t-" + storetest.Unique()}}, &out)
		w := out.AdminCreateTeamWebhook.Webhook
		want := webhookNode{ID: w.ID, URL: "https://scim.example.test/Groups/1", Protocol: "SCIM", HasSecret: true, Status: "PENDING"}
		if diff := cmp.Diff(want, w); diff != "" {
			t.Errorf("created (-want +got):\n%s", diff)
		}
		// A membership change queues a delivery, which the webhook's state shows.
		storetest.Access(t, s, team.ID, team.Outsider, store.RoleMember)
		got := a.team(team.ID).Webhooks
		if len(got) != 1 || got[0].ID != w.ID || got[0].Pending != 1 || got[0].Status != "PENDING" {
			t.Errorf("webhooks = %+v, want the new one with one pending delivery", got)
		}
		// Staff see how often it was tried (the sender's bookkeeping, written here by hand).
		storetest.MustExec(t, s.DB(), "UPDATE team_webhook_deliveries SET attempts = 2, last_attempt_at = now() WHERE webhook_id = ?", w.ID)
		if got := a.team(team.ID).Webhooks; len(got) != 1 || got[0].Attempts != 2 || got[0].Status != "PENDING" {
			t.Errorf("webhooks = %+v, want the pending delivery's 2 attempts", got)
		}
		var up struct{ AdminUpdateTeamWebhook struct{ Webhook webhookNode } }
		a.admin(update, map[string]any{"in": map[string]any{"id": w.ID, "url": "https://scim.example.test/Groups/2", "secret": ""}}, &up)
		if w := up.AdminUpdateTeamWebhook.Webhook; w.URL != "https://scim.example.test/Groups/2" || w.HasSecret {
			t.Errorf("updated = %+v, want the new URL and no secret", w)
		}
		a.admin(remove, map[string]any{"id": w.ID}, nil)
		if got := a.team(team.ID).Webhooks; len(got) != 0 {
			t.Errorf("webhooks after delete = %+v", got)
		}
		assertCode(t, a.adminTry(remove, map[string]any{"id": w.ID}), "NOT_FOUND", "")
	})

	for _, tc := range []struct {
		name        string
		in          func() map[string]any
		code, field string
	}{
		{"plain http", func() map[string]any {
			return map[string]any{"teamId": storetest.TeamWithEveryRole(t, s).ID, "url": "http://scim.example.test/"}
		}, "BAD_USER_INPUT", "url"},
		{"credentials in the URL", func() map[string]any {
			return map[string]any{"teamId": storetest.TeamWithEveryRole(t, s).ID, "url": "https://u:p@scim.example.test/"}
		}, "BAD_USER_INPUT", "url"},
		{"a secret with spaces", func() map[string]any {
			return map[string]any{"teamId": storetest.TeamWithEveryRole(t, s).ID, "url": "https://scim.example.test/", "secret": "a b"}
		}, "BAD_USER_INPUT", "secret"},
		{"an unknown team", func() map[string]any {
			return map[string]any{"teamId": uuid.New(), "url": "https://scim.example.test/"}
		}, "NOT_FOUND", "teamId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assertCode(t, a.in(t).adminTry(create, map[string]any{"in": tc.in()}), tc.code, tc.field)
		})
	}
	t.Run("a Matrix room", func(t *testing.T) {
		t.Parallel()
		a := a.in(t)
		team := storetest.TeamWithEveryRole(t, s).ID
		room := "https://www.tchap.gouv.fr/#/room/!abc:agent.tchap.gouv.fr"
		var out struct{ AdminCreateTeamWebhook struct{ Webhook webhookNode } }
		a.admin(create, map[string]any{"in": map[string]any{"teamId": team, "url": room, "protocol": "MATRIX"}}, &out)
		w := out.AdminCreateTeamWebhook.Webhook
		if want := (webhookNode{ID: w.ID, URL: room, Protocol: "MATRIX", Status: "PENDING"}); !cmp.Equal(want, w) {
			t.Errorf("created %+v, want %+v", w, want)
		}
		var up struct{ AdminUpdateTeamWebhook struct{ Webhook webhookNode } }
		a.admin(update, map[string]any{"in": map[string]any{"id": w.ID, "url": "!xyz:matrix.example.org"}}, &up)
		if got := up.AdminUpdateTeamWebhook.Webhook.URL; got != "https://matrix.to/#/!xyz:matrix.example.org" {
			t.Errorf("updated URL %q, want the bare room id's matrix.to link", got)
		}
		// The URL's rules are the protocol's: a room link is no SCIM URL, nor the reverse.
		assertCode(t, a.adminTry(update, map[string]any{"in": map[string]any{"id": w.ID, "protocol": "SCIM"}}), "BAD_USER_INPUT", "url")
		assertCode(t, a.adminTry(create, map[string]any{"in": map[string]any{"teamId": team, "url": "https://scim.example.test/Groups/3",
			"protocol": "MATRIX"}}), "BAD_USER_INPUT", "url")
	})
	t.Run("the same URL twice in a team", func(t *testing.T) {
		t.Parallel()
		a := a.in(t)
		in := map[string]any{"in": map[string]any{"teamId": storetest.TeamWithEveryRole(t, s).ID, "url": "https://scim.example.test/"}}
		a.admin(create, in, nil)
		assertCode(t, a.adminTry(create, in), "CONFLICT", "url")
	})
	t.Run("an unknown webhook", func(t *testing.T) {
		t.Parallel()
		assertCode(t, a.in(t).adminTry(update, map[string]any{"in": map[string]any{"id": uuid.New(), "url": "https://x.test/"}}), "NOT_FOUND", "")
	})
}

// sessionHash is a fresh 32-byte session token hash.
func sessionHash() []byte {
	h := sha256.Sum256([]byte(storetest.Unique()))
	return h[:]
}
