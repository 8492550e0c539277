package storetest

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"lasuite.fr/people/store"
)

// Fixtures write rows with plain SQL, not through the store methods under test, and with
// unique values so that parallel tests never collide.

// Unique returns a short random token for building unique names, emails and domains.
func Unique() string { return randomHex(5) }

// MustExec runs one statement or fails the test.
func MustExec(tb testing.TB, db bun.IDB, query string, args ...any) {
	tb.Helper()
	if _, err := db.ExecContext(context.Background(), query, args...); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
}

// Organization creates an organization identified by a fresh domain and returns its id.
func Organization(tb testing.TB, s *store.Store) uuid.UUID {
	tb.Helper()
	domain := "org-" + Unique() + ".test"
	var id uuid.UUID
	err := s.DB().RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		if err := tx.QueryRowContext(ctx, "INSERT INTO organizations (name) VALUES (?) RETURNING id", "Org "+domain).Scan(&id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO organization_domains (organization_id, domain) VALUES (?, ?)", id, domain)
		return err
	})
	if err != nil {
		tb.Fatalf("create organization: %v", err)
	}
	return id
}

// UserOpt customises User.
type UserOpt func(*store.User)

// WithName sets the user's name.
func WithName(name string) UserOpt { return func(u *store.User) { u.Name = name } }

// WithEmail sets the user's email.
func WithEmail(email string) UserOpt { return func(u *store.User) { u.Email = email } }

// Inactive makes the user inactive.
func Inactive() UserOpt { return func(u *store.User) { u.IsActive = false } }

// Staff makes the user staff.
func Staff() UserOpt { return func(u *store.User) { u.IsStaff = true } }

// StaffActor creates an active staff user and returns the store's proof of it, which the
// staff readers take.
func StaffActor(tb testing.TB, s *store.Store) store.StaffActor {
	tb.Helper()
	staff, err := s.Staff(context.Background(), store.UserActor(User(tb, s, uuid.Nil, Staff()).ID))
	if err != nil {
		tb.Fatalf("staff actor: %v", err)
	}
	return staff
}

// User creates an active user in org (uuid.Nil for none) with a fresh sub and email.
func User(tb testing.TB, s *store.Store, org uuid.UUID, opts ...UserOpt) store.User {
	tb.Helper()
	tok := Unique()
	u := store.User{Sub: "sub-" + tok, Email: "user-" + tok + "@example.test", Name: "User " + tok,
		Language: "en-us", Timezone: "UTC", IsActive: true}
	if org != uuid.Nil {
		u.OrganizationID = &org
	}
	for _, o := range opts {
		o(&u)
	}
	_, err := s.DB().NewInsert().Model(&u).Returning("*").Exec(context.Background())
	if err != nil {
		tb.Fatalf("create user: %v", err)
	}
	return u
}

// Team creates a team in org (uuid.Nil for none) and returns its id.
func Team(tb testing.TB, s *store.Store, org uuid.UUID, name string) uuid.UUID {
	tb.Helper()
	var orgID *uuid.UUID
	if org != uuid.Nil {
		orgID = &org
	}
	var id uuid.UUID
	err := s.DB().QueryRowContext(context.Background(),
		"INSERT INTO teams (name, organization_id) VALUES (?, ?) RETURNING id", name, orgID).Scan(&id)
	if err != nil {
		tb.Fatalf("create team: %v", err)
	}
	return id
}

// ChildTeam creates a team under parent, in the parent's organization, and returns its id.
func ChildTeam(tb testing.TB, s *store.Store, parent uuid.UUID, name string) uuid.UUID {
	tb.Helper()
	var id uuid.UUID
	err := s.DB().QueryRowContext(context.Background(),
		"INSERT INTO teams (name, organization_id, parent_id) SELECT ?, organization_id, id FROM teams WHERE id = ? RETURNING id",
		name, parent).Scan(&id)
	if err != nil {
		tb.Fatalf("create child team: %v", err)
	}
	return id
}

// Access gives user a role in team and returns the access id.
func Access(tb testing.TB, s *store.Store, team, user uuid.UUID, role store.Role) uuid.UUID {
	tb.Helper()
	var id uuid.UUID
	err := s.DB().QueryRowContext(context.Background(),
		"INSERT INTO team_accesses (team_id, user_id, role) VALUES (?, ?, ?) RETURNING id", team, user, role).Scan(&id)
	if err != nil {
		tb.Fatalf("create team access: %v", err)
	}
	return id
}

// TeamRoles is a team with one user per role, and an outsider from the same organization.
type TeamRoles struct {
	ID, Org                                uuid.UUID
	Owner, Admin, Member, Outsider         uuid.UUID
	OwnerAccess, AdminAccess, MemberAccess uuid.UUID
}

// UserWith returns the user holding role; "" is the outsider.
func (t TeamRoles) UserWith(role store.Role) uuid.UUID {
	switch role {
	case store.RoleOwner:
		return t.Owner
	case store.RoleAdministrator:
		return t.Admin
	case store.RoleMember:
		return t.Member
	}
	return t.Outsider
}

// AccessOf returns the access id of the user holding role.
func (t TeamRoles) AccessOf(role store.Role) uuid.UUID {
	switch role {
	case store.RoleOwner:
		return t.OwnerAccess
	case store.RoleAdministrator:
		return t.AdminAccess
	case store.RoleMember:
		return t.MemberAccess
	}
	return uuid.Nil
}

// TeamWithEveryRole creates a fresh organization and a team with an owner, an administrator
// and a member, plus an outsider in the same organization.
func TeamWithEveryRole(tb testing.TB, s *store.Store) TeamRoles {
	tb.Helper()
	t := TeamRoles{Org: Organization(tb, s)}
	t.ID = Team(tb, s, t.Org, "Team "+Unique())
	t.Owner = User(tb, s, t.Org).ID
	t.Admin = User(tb, s, t.Org).ID
	t.Member = User(tb, s, t.Org).ID
	t.Outsider = User(tb, s, t.Org).ID
	t.OwnerAccess = Access(tb, s, t.ID, t.Owner, store.RoleOwner)
	t.AdminAccess = Access(tb, s, t.ID, t.Admin, store.RoleAdministrator)
	t.MemberAccess = Access(tb, s, t.ID, t.Member, store.RoleMember)
	return t
}

// ServiceProvider creates a service provider with a fresh name and audience id and returns its id.
func ServiceProvider(tb testing.TB, s *store.Store) uuid.UUID {
	tb.Helper()
	tok := Unique()
	var id uuid.UUID
	err := s.DB().QueryRowContext(context.Background(),
		"INSERT INTO service_providers (name, audience_id) VALUES (?, ?) RETURNING id", "Service "+tok, "client-"+tok).Scan(&id)
	if err != nil {
		tb.Fatalf("create service provider: %v", err)
	}
	return id
}
