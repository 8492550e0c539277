package graph_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// auditNode is an AuditEvent as these tests read it.
type auditNode struct {
	ID              uuid.UUID
	CreatedAt       time.Time
	ActorID         *uuid.UUID
	Actor           *struct{ ID uuid.UUID }
	Method          string
	ServiceProvider *struct{ ID uuid.UUID }
	Operation       string
	TargetIDs       []uuid.UUID `json:"targetIds"`
	Changes         map[string]any
}

const auditQuery = `query($actor: ID, $target: ID, $op: String, $since: Time, $until: Time, $first: Int, $after: String) {
	adminAuditEvents(actorId: $actor, targetId: $target, operation: $op, since: $since, until: $until, first: $first, after: $after) {
		totalCount pageInfo { hasNextPage endCursor }
		nodes { id createdAt actorId actor { id } method serviceProvider { id } operation targetIds changes } } }`

type auditPage struct {
	AdminAuditEvents struct {
		TotalCount int
		PageInfo   struct {
			HasNextPage bool
			EndCursor   string
		}
		Nodes []auditNode
	}
}

func (a staffAPI) events(vars map[string]any) auditPage {
	a.tb.Helper()
	var out auditPage
	a.admin(auditQuery, vars, &out)
	return out
}

// audited is what one mutation's event must say.
type audited struct {
	actor   uuid.UUID
	method  string
	sp      uuid.UUID // the service of a bearer token
	target  uuid.UUID // one of the event's targets, the first unless alsoTarget
	changes map[string]any
}

// TestEveryMutationIsAudited runs each mutation once and finds its one event, with who did it,
// how, what it touched and what it set. Every mutation of the schema must have a case.
func TestEveryMutationIsAudited(t *testing.T) {
	t.Parallel()
	a := newStaffAPI(t, allFeatures)
	s := a.s
	secret := "hook-secret-" + storetest.Unique()

	// run performs the mutation as p, fails on any error, and decodes the first id found at
	// path (a dot-separated path in the data).
	run := func(t *testing.T, p *auth.Principal, q string, vars map[string]any, path string) uuid.UUID {
		t.Helper()
		var data map[string]any
		a.in(t).mustDo(p, q, vars, &data)
		var v any = data
		for _, k := range strings.Split(path, ".") {
			v = v.(map[string]any)[k]
		}
		id, err := uuid.Parse(v.(string))
		if err != nil {
			t.Fatalf("%s = %v: %v", path, v, err)
		}
		return id
	}
	cases := map[string]func(t *testing.T) audited{
		"updateMe": func(t *testing.T) audited {
			u := storetest.User(t, s, a.org).ID
			run(t, session(u), `mutation { updateMe(input: {language: "fr-fr"}) { user { id } } }`, nil, "updateMe.user.id")
			return audited{actor: u, method: "SESSION", target: u, changes: map[string]any{"language": "fr-fr"}}
		},
		"updateOrganization": func(t *testing.T) audited {
			org := storetest.Organization(t, s)
			u := storetest.User(t, s, org).ID
			storetest.MustExec(t, s.DB(), "INSERT INTO organization_accesses (organization_id, user_id) VALUES (?, ?)", org, u)
			run(t, session(u), `mutation($id: ID!) { updateOrganization(input: {id: $id, name: "Audited"}) { organization { id } } }`,
				map[string]any{"id": org}, "updateOrganization.organization.id")
			return audited{actor: u, method: "SESSION", target: org, changes: map[string]any{"name": "Audited"}}
		},
		"createContact": func(t *testing.T) audited {
			u := storetest.User(t, s, a.org).ID
			c := run(t, session(u), `mutation { createContact(input: {fullName: "Private Person", notes: "private notes"}) { contact { id } } }`,
				nil, "createContact.contact.id")
			return audited{actor: u, method: "SESSION", target: c, changes: map[string]any{"fullName": "[changed]", "notes": "[changed]"}}
		},
		"updateContact": func(t *testing.T) audited {
			u := storetest.User(t, s, a.org).ID
			c := run(t, session(u), `mutation { createContact(input: {fullName: "Before"}) { contact { id } } }`, nil, "createContact.contact.id")
			run(t, session(u), `mutation($id: ID!) { updateContact(input: {id: $id, fullName: "After"}) { contact { id } } }`,
				map[string]any{"id": c}, "updateContact.contact.id")
			return audited{actor: u, method: "SESSION", target: c, changes: map[string]any{"fullName": "[changed]"}}
		},
		"deleteContact": func(t *testing.T) audited {
			u := storetest.User(t, s, a.org).ID
			c := run(t, session(u), `mutation { createContact(input: {fullName: "Doomed"}) { contact { id } } }`, nil, "createContact.contact.id")
			run(t, session(u), `mutation($id: ID!) { deleteContact(input: {id: $id}) { deletedId } }`, map[string]any{"id": c}, "deleteContact.deletedId")
			return audited{actor: u, method: "SESSION", target: c}
		},
		"createTeam": func(t *testing.T) audited {
			// Through a partner service's token: the event names the service.
			u := storetest.User(t, s, a.org).ID
			sp := storetest.ServiceProvider(t, s)
			team := run(t, bearer(u, sp), `mutation { createTeam(input: {name: "By a service"}) { team { id } } }`, nil, "createTeam.team.id")
			return audited{actor: u, method: "BEARER", sp: sp, target: team, changes: map[string]any{"name": "By a service"}}
		},
		"updateTeam": func(t *testing.T) audited {
			team := storetest.TeamWithEveryRole(t, s)
			run(t, session(team.Admin), `mutation($id: ID!) { updateTeam(input: {id: $id, name: "New name"}) { team { id } } }`,
				map[string]any{"id": team.ID}, "updateTeam.team.id")
			return audited{actor: team.Admin, method: "SESSION", target: team.ID, changes: map[string]any{"name": "New name"}}
		},
		"deleteTeam": func(t *testing.T) audited {
			team := storetest.TeamWithEveryRole(t, s)
			run(t, session(team.Owner), `mutation($id: ID!) { deleteTeam(input: {id: $id}) { deletedId } }`, map[string]any{"id": team.ID}, "deleteTeam.deletedId")
			return audited{actor: team.Owner, method: "SESSION", target: team.ID}
		},
		"moveTeam": func(t *testing.T) audited {
			team := storetest.TeamWithEveryRole(t, s)
			child := storetest.ChildTeam(t, s, team.ID, "Child")
			storetest.Access(t, s, child, team.Owner, store.RoleOwner)
			run(t, session(team.Owner), `mutation($id: ID!) { moveTeam(input: {id: $id, parentId: null}) { team { id } } }`,
				map[string]any{"id": child}, "moveTeam.team.id")
			return audited{actor: team.Owner, method: "SESSION", target: child, changes: map[string]any{"parentId": nil}}
		},
		"linkTeamServiceProvider": func(t *testing.T) audited {
			team := storetest.TeamWithEveryRole(t, s)
			sp := organizationServiceProvider(t, s, team.Org)
			run(t, session(team.Admin), `mutation($t: ID!, $sp: ID!) { linkTeamServiceProvider(input: {teamId: $t, serviceProviderId: $sp}) { team { id } } }`,
				map[string]any{"t": team.ID, "sp": sp}, "linkTeamServiceProvider.team.id")
			return audited{actor: team.Admin, method: "SESSION", target: team.ID, changes: map[string]any{"serviceProviderId": sp.String()}}
		},
		"unlinkTeamServiceProvider": func(t *testing.T) audited {
			team := storetest.TeamWithEveryRole(t, s)
			sp := organizationServiceProvider(t, s, team.Org)
			run(t, session(team.Admin), `mutation($t: ID!, $sp: ID!) { unlinkTeamServiceProvider(input: {teamId: $t, serviceProviderId: $sp}) { team { id } } }`,
				map[string]any{"t": team.ID, "sp": sp}, "unlinkTeamServiceProvider.team.id")
			return audited{actor: team.Admin, method: "SESSION", target: team.ID, changes: map[string]any{"serviceProviderId": sp.String()}}
		},
		"createTeamAccess": func(t *testing.T) audited {
			team := storetest.TeamWithEveryRole(t, s)
			access := run(t, session(team.Owner), `mutation($t: ID!, $u: ID!) { createTeamAccess(input: {teamId: $t, userId: $u, role: ADMINISTRATOR}) {
				access { id } } }`, map[string]any{"t": team.ID, "u": team.Outsider}, "createTeamAccess.access.id")
			return audited{actor: team.Owner, method: "SESSION", target: access, changes: map[string]any{"role": "administrator"}}
		},
		"updateTeamAccess": func(t *testing.T) audited {
			team := storetest.TeamWithEveryRole(t, s)
			run(t, session(team.Owner), `mutation($id: ID!) { updateTeamAccess(input: {id: $id, role: ADMINISTRATOR}) { access { id } } }`,
				map[string]any{"id": team.MemberAccess}, "updateTeamAccess.access.id")
			return audited{actor: team.Owner, method: "SESSION", target: team.MemberAccess, changes: map[string]any{"role": "administrator"}}
		},
		"deleteTeamAccess": func(t *testing.T) audited {
			team := storetest.TeamWithEveryRole(t, s)
			run(t, session(team.Admin), `mutation($id: ID!) { deleteTeamAccess(input: {id: $id}) { deletedId } }`,
				map[string]any{"id": team.MemberAccess}, "deleteTeamAccess.deletedId")
			return audited{actor: team.Admin, method: "SESSION", target: team.MemberAccess, changes: map[string]any{"role": "member"}}
		},
		"createInvitation": func(t *testing.T) audited {
			team := storetest.TeamWithEveryRole(t, s)
			email := "invited-" + storetest.Unique() + "@example.test"
			inv := run(t, session(team.Owner), `mutation($t: ID!, $e: String!) { createInvitation(input: {teamId: $t, email: $e}) { invitation { id } } }`,
				map[string]any{"t": team.ID, "e": email}, "createInvitation.invitation.id")
			return audited{actor: team.Owner, method: "SESSION", target: inv, changes: map[string]any{"email": email, "role": "member"}}
		},
		"deleteInvitation": func(t *testing.T) audited {
			team := storetest.TeamWithEveryRole(t, s)
			inv := run(t, session(team.Owner), `mutation($t: ID!, $e: String!) { createInvitation(input: {teamId: $t, email: $e}) { invitation { id } } }`,
				map[string]any{"t": team.ID, "e": "gone-" + storetest.Unique() + "@example.test"}, "createInvitation.invitation.id")
			run(t, session(team.Owner), `mutation($id: ID!) { deleteInvitation(input: {id: $id}) { deletedId } }`, map[string]any{"id": inv}, "deleteInvitation.deletedId")
			return audited{actor: team.Owner, method: "SESSION", target: inv}
		},
		"adminUpdateUser": func(t *testing.T) audited {
			u := storetest.User(t, s, a.org).ID
			run(t, session(a.staff), `mutation($id: ID!) { adminUpdateUser(input: {id: $id, isActive: false}) { user { id } } }`,
				map[string]any{"id": u}, "adminUpdateUser.user.id")
			return audited{actor: a.staff, method: "SESSION", target: u, changes: map[string]any{"isActive": false}}
		},
		"adminCreateOrganization": func(t *testing.T) audited {
			d := "audited-" + storetest.Unique() + ".test"
			org := run(t, session(a.staff), `mutation($d: String!) { adminCreateOrganization(input: {name: "Audited", domains: [$d]}) { organization { id } } }`,
				map[string]any{"d": d}, "adminCreateOrganization.organization.id")
			return audited{actor: a.staff, method: "SESSION", target: org, changes: map[string]any{"name": "Audited", "domains": []any{d}}}
		},
		"adminUpdateOrganization": func(t *testing.T) audited {
			org := storetest.Organization(t, s)
			run(t, session(a.staff), `mutation($id: ID!) { adminUpdateOrganization(input: {id: $id, metadata: {is_commune: true}}) { organization { id } } }`,
				map[string]any{"id": org}, "adminUpdateOrganization.organization.id")
			return audited{actor: a.staff, method: "SESSION", target: org, changes: map[string]any{"metadata": map[string]any{"is_commune": true}}}
		},
		"adminGrantOrganizationAdministrator": func(t *testing.T) audited {
			org := storetest.Organization(t, s)
			u := storetest.User(t, s, org).ID
			run(t, session(a.staff), `mutation($o: ID!, $u: ID!) { adminGrantOrganizationAdministrator(input: {organizationId: $o, userId: $u}) {
				organization { id } } }`, map[string]any{"o": org, "u": u}, "adminGrantOrganizationAdministrator.organization.id")
			return audited{actor: a.staff, method: "SESSION", target: org}
		},
		"adminRevokeOrganizationAdministrator": func(t *testing.T) audited {
			org := storetest.Organization(t, s)
			u := storetest.User(t, s, org).ID
			storetest.MustExec(t, s.DB(), "INSERT INTO organization_accesses (organization_id, user_id) VALUES (?, ?)", org, u)
			run(t, session(a.staff), `mutation($o: ID!, $u: ID!) { adminRevokeOrganizationAdministrator(input: {organizationId: $o, userId: $u}) {
				organization { id } } }`, map[string]any{"o": org, "u": u}, "adminRevokeOrganizationAdministrator.organization.id")
			return audited{actor: a.staff, method: "SESSION", target: org}
		},
		"adminCreateServiceProvider": func(t *testing.T) audited {
			aud := "audited-" + storetest.Unique()
			sp := run(t, session(a.staff), `mutation($a: String!) { adminCreateServiceProvider(input: {audienceId: $a}) { serviceProvider { id } } }`,
				map[string]any{"a": aud}, "adminCreateServiceProvider.serviceProvider.id")
			return audited{actor: a.staff, method: "SESSION", target: sp, changes: map[string]any{"audienceId": aud, "name": aud}}
		},
		"adminUpdateServiceProvider": func(t *testing.T) audited {
			sp := storetest.ServiceProvider(t, s)
			name := "Renamed " + storetest.Unique()
			run(t, session(a.staff), `mutation($id: ID!, $n: String!) { adminUpdateServiceProvider(input: {id: $id, name: $n}) { serviceProvider { id } } }`,
				map[string]any{"id": sp, "n": name}, "adminUpdateServiceProvider.serviceProvider.id")
			return audited{actor: a.staff, method: "SESSION", target: sp, changes: map[string]any{"name": name}}
		},
		"adminLinkServiceProvider": func(t *testing.T) audited {
			sp, org := storetest.ServiceProvider(t, s), storetest.Organization(t, s)
			run(t, session(a.staff), `mutation($id: ID!, $o: ID!) { adminLinkServiceProvider(input: {id: $id, organizationIds: [$o]}) { serviceProvider { id } } }`,
				map[string]any{"id": sp, "o": org}, "adminLinkServiceProvider.serviceProvider.id")
			return audited{actor: a.staff, method: "SESSION", target: sp, changes: map[string]any{"organizationIds": []any{org.String()}}}
		},
		"adminUnlinkServiceProvider": func(t *testing.T) audited {
			sp, team := storetest.ServiceProvider(t, s), storetest.TeamWithEveryRole(t, s).ID
			run(t, session(a.staff), `mutation($id: ID!, $t: ID!) { adminUnlinkServiceProvider(input: {id: $id, teamIds: [$t]}) { serviceProvider { id } } }`,
				map[string]any{"id": sp, "t": team}, "adminUnlinkServiceProvider.serviceProvider.id")
			return audited{actor: a.staff, method: "SESSION", target: sp, changes: map[string]any{"teamIds": []any{team.String()}}}
		},
		"adminUpdateTeam": func(t *testing.T) audited {
			team := storetest.TeamWithEveryRole(t, s).ID
			run(t, session(a.staff), `mutation($id: ID!) { adminUpdateTeam(input: {id: $id, isVisibleAllServices: true}) { team { id } } }`,
				map[string]any{"id": team}, "adminUpdateTeam.team.id")
			return audited{actor: a.staff, method: "SESSION", target: team, changes: map[string]any{"isVisibleAllServices": true}}
		},
		"adminCreateTeamAccess": func(t *testing.T) audited {
			team := storetest.TeamWithEveryRole(t, s)
			access := run(t, session(a.staff), adminCreateAccess, map[string]any{"in": map[string]any{"teamId": team.ID, "userId": team.Outsider}},
				"adminCreateTeamAccess.access.id")
			return audited{actor: a.staff, method: "SESSION", target: access, changes: map[string]any{"role": "member"}}
		},
		"adminUpdateTeamAccess": func(t *testing.T) audited {
			team := storetest.TeamWithEveryRole(t, s)
			run(t, session(a.staff), adminUpdateAccess, map[string]any{"id": team.AdminAccess, "role": "OWNER"}, "adminUpdateTeamAccess.access.id")
			return audited{actor: a.staff, method: "SESSION", target: team.AdminAccess, changes: map[string]any{"role": "owner"}}
		},
		"adminDeleteTeamAccess": func(t *testing.T) audited {
			team := storetest.TeamWithEveryRole(t, s)
			run(t, session(a.staff), adminDeleteAccess, map[string]any{"id": team.AdminAccess}, "adminDeleteTeamAccess.deletedId")
			return audited{actor: a.staff, method: "SESSION", target: team.AdminAccess, changes: map[string]any{"role": "administrator"}}
		},
		"adminMoveTeam": func(t *testing.T) audited {
			team := storetest.TeamWithEveryRole(t, s)
			other := storetest.Team(t, s, team.Org, "Other")
			run(t, session(a.staff), `mutation($id: ID!, $p: ID!) { adminMoveTeam(input: {id: $id, parentId: $p}) { team { id } } }`,
				map[string]any{"id": team.ID, "p": other}, "adminMoveTeam.team.id")
			return audited{actor: a.staff, method: "SESSION", target: team.ID, changes: map[string]any{"parentId": other.String()}}
		},
		"adminCreateTeam": func(t *testing.T) audited {
			org := storetest.Organization(t, s)
			owner := storetest.User(t, s, org).ID
			team := run(t, session(a.staff), `mutation($o: ID!, $u: ID!) { adminCreateTeam(input: {name: "Staff made", organizationId: $o, ownerId: $u}) {
				team { id } } }`, map[string]any{"o": org, "u": owner}, "adminCreateTeam.team.id")
			return audited{actor: a.staff, method: "SESSION", target: team,
				changes: map[string]any{"name": "Staff made", "organizationId": org.String(), "ownerId": owner.String(), "isVisibleAllServices": true}}
		},
		"adminDeleteTeam": func(t *testing.T) audited {
			team := storetest.TeamWithEveryRole(t, s).ID
			run(t, session(a.staff), `mutation($id: ID!) { adminDeleteTeam(input: {id: $id}) { deletedId } }`, map[string]any{"id": team},
				"adminDeleteTeam.deletedId")
			return audited{actor: a.staff, method: "SESSION", target: team}
		},
		"adminDeleteUser": func(t *testing.T) audited {
			tm := storetest.TeamWithEveryRole(t, s)
			run(t, session(a.staff), `mutation($id: ID!, $to: ID) { adminDeleteUser(input: {id: $id, reassignTo: $to}) { deletedId } }`,
				map[string]any{"id": tm.Owner, "to": tm.Member}, "adminDeleteUser.deletedId")
			return audited{actor: a.staff, method: "SESSION", target: tm.Owner,
				changes: map[string]any{"reassignTo": tm.Member.String(), "reassignedTeamIds": []string{tm.ID.String()}}}
		},
		"adminDeleteOrganization": func(t *testing.T) audited {
			org := storetest.Organization(t, s)
			run(t, session(a.staff), `mutation($id: ID!) { adminDeleteOrganization(input: {id: $id}) { deletedId } }`, map[string]any{"id": org},
				"adminDeleteOrganization.deletedId")
			return audited{actor: a.staff, method: "SESSION", target: org}
		},
		"adminDeleteServiceProvider": func(t *testing.T) audited {
			sp := storetest.ServiceProvider(t, s)
			run(t, session(a.staff), `mutation($id: ID!) { adminDeleteServiceProvider(input: {id: $id}) { deletedId } }`, map[string]any{"id": sp},
				"adminDeleteServiceProvider.deletedId")
			return audited{actor: a.staff, method: "SESSION", target: sp}
		},
		"adminDeleteInvitation": func(t *testing.T) audited {
			tm := storetest.TeamWithEveryRole(t, s)
			inv := insertInvitation(t, s, tm.ID, tm.Owner, "gone-"+storetest.Unique()+"@example.test", "now()")
			run(t, session(a.staff), `mutation($id: ID!) { adminDeleteInvitation(input: {id: $id}) { deletedId } }`, map[string]any{"id": inv},
				"adminDeleteInvitation.deletedId")
			return audited{actor: a.staff, method: "SESSION", target: inv}
		},
		"adminUpdateContact": func(t *testing.T) audited {
			u := storetest.User(t, s, a.org).ID
			c := run(t, session(u), `mutation { createContact(input: {fullName: "Theirs"}) { contact { id } } }`, nil, "createContact.contact.id")
			run(t, session(a.staff), `mutation($id: ID!) { adminUpdateContact(input: {id: $id, notes: "private notes"}) { contact { id } } }`,
				map[string]any{"id": c}, "adminUpdateContact.contact.id")
			return audited{actor: a.staff, method: "SESSION", target: c, changes: map[string]any{"notes": "[changed]"}}
		},
		"adminCreateTeamWebhook": func(t *testing.T) audited {
			team := storetest.TeamWithEveryRole(t, s).ID
			w := run(t, session(a.staff), `mutation($t: ID!, $s: String!) { adminCreateTeamWebhook(input: {teamId: $t, url: "https://scim.example.test/g", secret: $s}) {
				webhook { id } } }`, map[string]any{"t": team, "s": secret}, "adminCreateTeamWebhook.webhook.id")
			return audited{actor: a.staff, method: "SESSION", target: w,
				changes: map[string]any{"url": "https://scim.example.test/g", "secret": store.Redacted, "protocol": "scim"}}
		},
		"adminUpdateTeamWebhook": func(t *testing.T) audited {
			team := storetest.TeamWithEveryRole(t, s).ID
			w := run(t, session(a.staff), `mutation($t: ID!) { adminCreateTeamWebhook(input: {teamId: $t, url: "https://scim.example.test/u"}) {
				webhook { id } } }`, map[string]any{"t": team}, "adminCreateTeamWebhook.webhook.id")
			run(t, session(a.staff), `mutation($id: ID!, $s: String!) { adminUpdateTeamWebhook(input: {id: $id, secret: $s}) { webhook { id } } }`,
				map[string]any{"id": w, "s": secret}, "adminUpdateTeamWebhook.webhook.id")
			return audited{actor: a.staff, method: "SESSION", target: w, changes: map[string]any{"secret": store.Redacted}}
		},
		"adminDeleteTeamWebhook": func(t *testing.T) audited {
			team := storetest.TeamWithEveryRole(t, s).ID
			w := run(t, session(a.staff), `mutation($t: ID!) { adminCreateTeamWebhook(input: {teamId: $t, url: "https://scim.example.test/d"}) {
				webhook { id } } }`, map[string]any{"t": team}, "adminCreateTeamWebhook.webhook.id")
			run(t, session(a.staff), `mutation($id: ID!) { adminDeleteTeamWebhook(input: {id: $id}) { deletedId } }`, map[string]any{"id": w},
				"adminDeleteTeamWebhook.deletedId")
			return audited{actor: a.staff, method: "SESSION", target: w}
		},
	}

	for _, f := range rootFields(t) {
		if _, ok := rootOperations[f.Name]; ok && strings.HasPrefix(rootOperations[f.Name], "mutation") {
			if _, ok := cases[f.Name]; !ok {
				t.Errorf("mutation %s has no audit case", f.Name)
			}
		}
	}
	for op, run := range cases {
		t.Run(op, func(t *testing.T) {
			t.Parallel()
			want := run(t)
			got := a.in(t).events(map[string]any{"op": op, "target": want.target})
			if got.AdminAuditEvents.TotalCount != 1 {
				t.Fatalf("%d events for %s on %s, want 1: %+v", got.AdminAuditEvents.TotalCount, op, want.target, got.AdminAuditEvents.Nodes)
			}
			e := got.AdminAuditEvents.Nodes[0]
			if e.ActorID == nil || *e.ActorID != want.actor || e.Actor == nil || e.Actor.ID != want.actor {
				t.Errorf("actor = %v / %+v, want %s", e.ActorID, e.Actor, want.actor)
			}
			if e.Method != want.method {
				t.Errorf("method = %s, want %s", e.Method, want.method)
			}
			switch {
			case want.sp == uuid.Nil && e.ServiceProvider != nil:
				t.Errorf("serviceProvider = %+v, want none", e.ServiceProvider)
			case want.sp != uuid.Nil && (e.ServiceProvider == nil || e.ServiceProvider.ID != want.sp):
				t.Errorf("serviceProvider = %+v, want %s", e.ServiceProvider, want.sp)
			}
			if len(e.TargetIDs) == 0 || e.TargetIDs[0] != want.target {
				t.Errorf("targetIds = %v, want %s first", e.TargetIDs, want.target)
			}
			for k, v := range want.changes {
				got, _ := json.Marshal(e.Changes[k])
				if w, _ := json.Marshal(v); string(got) != string(w) {
					t.Errorf("changes[%s] = %s, want %s (changes: %v)", k, got, w, e.Changes)
				}
			}
			if time.Since(e.CreatedAt) > time.Minute || time.Until(e.CreatedAt) > time.Minute {
				t.Errorf("createdAt = %v, not now", e.CreatedAt)
			}
			if raw, _ := json.Marshal(e); strings.Contains(string(raw), secret) || strings.Contains(string(raw), "private notes") {
				t.Errorf("the event holds a secret or a contact's content: %s", raw)
			}
		})
	}
}

// TestRefusedMutationIsNotAudited: a refusal writes nothing, its event included.
func TestRefusedMutationIsNotAudited(t *testing.T) {
	t.Parallel()
	a := newStaffAPI(t, allFeatures)
	team := storetest.TeamWithEveryRole(t, a.s)
	assertCode(t, a.do(session(team.Member), `mutation($id: ID!) { deleteTeam(input: {id: $id}) { deletedId } }`,
		map[string]any{"id": team.ID}, nil), "FORBIDDEN", "")
	assertCode(t, a.adminTry(adminDeleteAccess, map[string]any{"id": team.OwnerAccess}), "FORBIDDEN", "")
	if got := a.events(map[string]any{"target": team.ID}); got.AdminAuditEvents.TotalCount != 0 {
		t.Errorf("events after refusals: %+v", got.AdminAuditEvents.Nodes)
	}
}

func TestAdminAuditEventsFilters(t *testing.T) {
	t.Parallel()
	a := newStaffAPI(t, allFeatures)
	s := a.s
	u := storetest.User(t, s, a.org).ID
	before := time.Now().Add(-time.Second)
	for _, lang := range []string{"fr-fr", "en-us", "fr-fr"} {
		a.mustDo(session(u), `mutation($l: String) { updateMe(input: {language: $l}) { user { id } } }`, map[string]any{"l": lang}, nil)
	}
	after := time.Now().Add(time.Second)

	mine := a.events(map[string]any{"actor": u})
	if mine.AdminAuditEvents.TotalCount != 3 {
		t.Fatalf("events of the actor = %d, want 3", mine.AdminAuditEvents.TotalCount)
	}
	if got := mine.AdminAuditEvents.Nodes[0].Changes["language"]; got != "fr-fr" {
		t.Errorf("newest first: first event's language = %v, want fr-fr", got)
	}
	// One at a time, with cursors, newest first.
	var seen []uuid.UUID
	vars := map[string]any{"actor": u, "first": 1}
	for {
		p := a.events(vars)
		for _, n := range p.AdminAuditEvents.Nodes {
			seen = append(seen, n.ID)
		}
		if !p.AdminAuditEvents.PageInfo.HasNextPage {
			break
		}
		vars["after"] = p.AdminAuditEvents.PageInfo.EndCursor
	}
	if len(seen) != 3 || seen[0] != mine.AdminAuditEvents.Nodes[0].ID || seen[2] != mine.AdminAuditEvents.Nodes[2].ID {
		t.Errorf("paged events %v, want %v", seen, mine.AdminAuditEvents.Nodes)
	}
	for name, tc := range map[string]struct {
		vars map[string]any
		want int
	}{
		"within the window":   {map[string]any{"actor": u, "since": before.Format(time.RFC3339Nano), "until": after.Format(time.RFC3339Nano)}, 3},
		"until before them":   {map[string]any{"actor": u, "until": before.Format(time.RFC3339Nano)}, 0},
		"since after them":    {map[string]any{"actor": u, "since": after.Format(time.RFC3339Nano)}, 0},
		"another operation":   {map[string]any{"actor": u, "op": "createTeam"}, 0},
		"by target":           {map[string]any{"target": u, "op": "updateMe"}, 3},
		"an unknown actor":    {map[string]any{"actor": uuid.New()}, 0},
		"an operation w/ NUL": {map[string]any{"actor": u, "op": "update\x00Me"}, 0},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := a.in(t).events(tc.vars).AdminAuditEvents.TotalCount; got != tc.want {
				t.Errorf("totalCount = %d, want %d", got, tc.want)
			}
		})
	}
}
