package store_test

import (
	"testing"

	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// TestAdminRequiresStaff: the staff methods check the actor themselves, inside their
// transaction, whatever the API checked before.
func TestAdminRequiresStaff(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	org := storetest.Organization(t, s)
	staff := storetest.User(t, s, org, storetest.Staff()).ID
	for name, actor := range map[string]store.Actor{
		"a user who is not staff":  store.UserActor(storetest.User(t, s, org).ID),
		"a deactivated staff user": store.UserActor(storetest.User(t, s, org, storetest.Staff(), storetest.Inactive()).ID),
		"a staff user's token":     {UserID: staff, ServiceProviderID: storetest.ServiceProvider(t, s), Method: store.ActorBearer},
		"the command line":         store.CommandActor,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			target := storetest.User(t, s, org)
			team := storetest.TeamWithEveryRole(t, s)
			for op, call := range map[string]func() error{
				"AdminUpdateUser": func() error {
					_, err := s.AdminUpdateUser(t.Context(), actor, target.ID, store.AdminUserUpdate{IsStaff: ptr(true)})
					return err
				},
				"AdminCreateOrganization": func() error {
					_, err := s.AdminCreateOrganization(t.Context(), actor, store.NewOrganization{Name: "x", Domains: []string{"x-" + storetest.Unique() + ".test"}}, nil)
					return err
				},
				"AdminCreateTeamAccess": func() error {
					_, err := s.AdminCreateTeamAccess(t.Context(), actor, team.ID, team.Outsider, store.RoleOwner)
					return err
				},
				"AdminDeleteTeamAccess": func() error {
					_, err := s.AdminDeleteTeamAccess(t.Context(), actor, team.MemberAccess)
					return err
				},
				"AdminCreateServiceProvider": func() error {
					_, err := s.AdminCreateServiceProvider(t.Context(), actor, store.NewServiceProvider{AudienceID: "x-" + storetest.Unique()})
					return err
				},
				"AdminCreateTeamWebhook": func() error {
					_, err := s.AdminCreateTeamWebhook(t.Context(), actor, store.NewTeamWebhook{TeamID: team.ID, URL: "https://x.test/"})
					return err
				},
				"AdminCreateTeam": func() error {
					_, err := s.AdminCreateTeam(t.Context(), actor, store.NewAdminTeam{Name: "x", OrganizationID: team.Org, OwnerID: target.ID})
					return err
				},
				"AdminDeleteTeam": func() error {
					_, err := s.AdminDeleteTeam(t.Context(), actor, team.ID, true)
					return err
				},
				"AdminDeleteUser": func() error {
					_, err := s.AdminDeleteUser(t.Context(), actor, target.ID, store.UserDeletion{})
					return err
				},
				"AdminDeleteOrganization": func() error { return s.AdminDeleteOrganization(t.Context(), actor, storetest.Organization(t, s)) },
				"AdminDeleteServiceProvider": func() error {
					return s.AdminDeleteServiceProvider(t.Context(), actor, storetest.ServiceProvider(t, s))
				},
				"AdminDeleteInvitation": func() error { return s.AdminDeleteInvitation(t.Context(), actor, uuid.New()) },
				"AdminUpdateContact": func() error {
					_, err := s.AdminUpdateContact(t.Context(), actor, uuid.New(), store.ContactUpdate{})
					return err
				},
			} {
				if err := call(); store.KindOf(err) != store.KindForbidden {
					t.Errorf("%s: err = %v, want forbidden", op, err)
				}
			}
			if u, _ := s.UserByID(t.Context(), target.ID); u.IsStaff {
				t.Error("the refused promotion happened")
			}
			if events := eventsOn(t, s, team.ID); len(events) != 0 {
				t.Errorf("refusals were audited: %+v", events)
			}
		})
	}
}

// TestAdminSetTeamAccessRole: staff set any role on any access, owners included, except the
// role of a team's only owner.
func TestAdminSetTeamAccessRole(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	staff := store.UserActor(storetest.User(t, s, storetest.Organization(t, s), storetest.Staff()).ID)
	tests := []struct {
		name        string
		target, to  store.Role
		secondOwner bool
		want        store.Kind
	}{
		{"member to owner", store.RoleMember, store.RoleOwner, false, 0},
		{"administrator to member", store.RoleAdministrator, store.RoleMember, false, 0},
		{"the only owner stays", store.RoleOwner, store.RoleAdministrator, false, store.KindForbidden},
		{"one of two owners steps down", store.RoleOwner, store.RoleMember, true, 0},
		{"the same role", store.RoleMember, store.RoleMember, false, store.KindForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			team := storetest.TeamWithEveryRole(t, s)
			if tt.secondOwner {
				storetest.Access(t, s, team.ID, team.Outsider, store.RoleOwner)
			}
			a, err := s.AdminSetTeamAccessRole(t.Context(), staff, team.AccessOf(tt.target), tt.to)
			if got := store.KindOf(err); got != tt.want {
				t.Fatalf("AdminSetTeamAccessRole() kind = %v, want %v (err: %v)", got, tt.want, err)
			}
			if err == nil && a.Role != tt.to {
				t.Errorf("role = %s, want %s", a.Role, tt.to)
			}
		})
	}
	t.Run("unknown access", func(t *testing.T) {
		t.Parallel()
		if _, err := s.AdminSetTeamAccessRole(t.Context(), staff, uuid.New(), store.RoleMember); store.KindOf(err) != store.KindNotFound {
			t.Errorf("err = %v, want not found", err)
		}
	})
}

// Who is staff is decided in one place, Store.Staff (requireStaff): an active staff user acting
// through a browser session. The staff readers take its proof, and refuse the zero value, so
// that no caller can reach them unchecked.
func TestStaffReadersNeedProof(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	ctx := t.Context()
	org := storetest.Organization(t, s)
	staff := storetest.User(t, s, org, storetest.Staff()).ID
	inactive := storetest.User(t, s, org, storetest.Staff(), func(u *store.User) { u.IsActive = false }).ID
	for _, tt := range []struct {
		name  string
		actor store.Actor
		want  store.Kind
	}{
		{"staff in a browser session", store.UserActor(staff), 0},
		{"staff through a partner's token", store.Actor{UserID: staff, ServiceProviderID: storetest.ServiceProvider(t, s), Method: store.ActorBearer}, store.KindForbidden},
		{"inactive staff", store.UserActor(inactive), store.KindForbidden},
		{"not staff", store.UserActor(storetest.User(t, s, org).ID), store.KindForbidden},
		{"nobody", store.UserActor(uuid.New()), store.KindForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			proof, err := s.Staff(ctx, tt.actor)
			if got := store.KindOf(err); got != tt.want {
				t.Fatalf("Staff() kind = %v, want %v (err: %v)", got, tt.want, err)
			}
			if err == nil && proof.Actor() != tt.actor {
				t.Errorf("proof of %+v, want %+v", proof.Actor(), tt.actor)
			}
		})
	}

	var none store.StaffActor
	ids := []uuid.UUID{org}
	for name, read := range map[string]func() error{
		"AdminUsers": func() error {
			_, err := s.AdminUsers(ctx, none, store.AdminUserFilter{Page: store.Page{Limit: 1}})
			return err
		},
		"AdminOrganizations": func() error {
			_, err := s.AdminOrganizations(ctx, none, store.AdminOrganizationFilter{Page: store.Page{Limit: 1}})
			return err
		},
		"AdminOrganizationsByIDs": func() error { _, err := s.AdminOrganizationsByIDs(ctx, none, ids); return err },
		"AdminServiceProviders": func() error {
			_, err := s.AdminServiceProviders(ctx, none, store.ServiceProviderFilter{Page: store.Page{Limit: 1}})
			return err
		},
		"AdminServiceProvidersByIDs": func() error { _, err := s.AdminServiceProvidersByIDs(ctx, none, ids); return err },
		"AdminTeams": func() error {
			_, err := s.AdminTeams(ctx, none, store.AdminTeamFilter{Page: store.Page{Limit: 1}})
			return err
		},
		"AdminTeamByID": func() error { _, err := s.AdminTeamByID(ctx, none, org); return err },
		"AdminTeamAccessesByTeamIDs": func() error {
			_, err := s.AdminTeamAccessesByTeamIDs(ctx, none, ids, store.AccessFilter{Page: store.Page{Limit: 1}})
			return err
		},
		"AuditEvents": func() error {
			_, err := s.AuditEvents(ctx, none, store.AuditFilter{Page: store.Page{Limit: 1}})
			return err
		},
		"OrganizationAdministratorsByOrganizationIDs": func() error { _, err := s.OrganizationAdministratorsByOrganizationIDs(ctx, none, ids); return err },
		"ServiceProvidersByOrganizationIDs":           func() error { _, err := s.ServiceProvidersByOrganizationIDs(ctx, none, ids); return err },
		"OrganizationsByServiceProviderIDs":           func() error { _, err := s.OrganizationsByServiceProviderIDs(ctx, none, ids); return err },
		"TeamWebhooks":                                func() error { _, err := s.TeamWebhooks(ctx, none, ids); return err },
		"AdminTeamsByIDs":                             func() error { _, err := s.AdminTeamsByIDs(ctx, none, ids); return err },
		"AdminInvitations": func() error {
			_, err := s.AdminInvitations(ctx, none, store.AdminInvitationFilter{Page: store.Page{Limit: 1}})
			return err
		},
		"AdminContacts": func() error {
			_, err := s.AdminContacts(ctx, none, store.AdminContactFilter{Page: store.Page{Limit: 1}})
			return err
		},
		"AdminUserExport": func() error { _, err := s.AdminUserExport(ctx, none, staff); return err },
	} {
		if got := store.KindOf(read()); got != store.KindForbidden {
			t.Errorf("%s without proof: kind %v, want KindForbidden", name, got)
		}
	}
}
