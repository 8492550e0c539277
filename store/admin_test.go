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
