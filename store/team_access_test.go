package store_test

import (
	"sync"
	"testing"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

func TestSetTeamAccessRole(t *testing.T) {
	s := storetest.Open(t)
	tests := []struct {
		name              string
		actor, target, to store.Role // in a fresh team with one user per role; "" is an outsider
		want              store.Kind
	}{
		{"owner promotes member to administrator", store.RoleOwner, store.RoleMember, store.RoleAdministrator, 0},
		{"owner makes member owner", store.RoleOwner, store.RoleMember, store.RoleOwner, 0},
		{"owner demotes administrator", store.RoleOwner, store.RoleAdministrator, store.RoleMember, 0},
		{"sole owner cannot step down", store.RoleOwner, store.RoleOwner, store.RoleMember, store.KindForbidden},
		{"administrator promotes member", store.RoleAdministrator, store.RoleMember, store.RoleAdministrator, 0},
		{"administrator cannot make owners", store.RoleAdministrator, store.RoleMember, store.RoleOwner, store.KindForbidden},
		{"administrator cannot demote owner", store.RoleAdministrator, store.RoleOwner, store.RoleMember, store.KindForbidden},
		{"administrator steps down", store.RoleAdministrator, store.RoleAdministrator, store.RoleMember, 0},
		{"member cannot promote self", store.RoleMember, store.RoleMember, store.RoleAdministrator, store.KindForbidden},
		{"member cannot change administrator", store.RoleMember, store.RoleAdministrator, store.RoleMember, store.KindForbidden},
		{"outsider cannot see the team", "", store.RoleMember, store.RoleAdministrator, store.KindNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			team := storetest.TeamWithEveryRole(t, s)
			_, err := s.SetTeamAccessRole(t.Context(), store.UserActor(team.UserWith(tt.actor)), team.AccessOf(tt.target), tt.to)
			if got := store.KindOf(err); got != tt.want {
				t.Errorf("SetTeamAccessRole() kind = %v, want %v (err: %v)", got, tt.want, err)
			}
		})
	}
}

// Two owners step down at the same moment: exactly one may, so the team keeps an owner.
func TestLastOwnerRace(t *testing.T) {
	s := storetest.Open(t)
	for range 20 {
		team := storetest.TeamWithEveryRole(t, s)
		second := storetest.User(t, s, team.Org).ID
		secondAccess := storetest.Access(t, s, team.ID, second, store.RoleOwner)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{}) // a barrier: both step down at once, not one after the other
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			_, errs[0] = s.DeleteTeamAccess(t.Context(), store.UserActor(team.Owner), team.OwnerAccess)
		}()
		go func() {
			defer wg.Done()
			<-start
			_, errs[1] = s.SetTeamAccessRole(t.Context(), store.UserActor(second), secondAccess, store.RoleMember)
		}()
		close(start)
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch store.KindOf(err) {
			case 0:
				ok++
			case store.KindForbidden:
			default:
				t.Fatalf("unexpected error: %v", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d of 2 owners stepped down, want exactly 1 (errs: %v)", ok, errs)
		}
		var owners int
		if err := s.DB().QueryRowContext(t.Context(), "SELECT count(*) FROM team_accesses WHERE team_id = ? AND role = 'owner'", team.ID).Scan(&owners); err != nil {
			t.Fatal(err)
		}
		if owners != 1 {
			t.Fatalf("team has %d owners, want 1", owners)
		}
	}
}
