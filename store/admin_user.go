package store

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// The admin_*.go files are the staff operations, People's Django admin as an API. Their readers
// take no actor: the API lets only staff reach them (@auth(staff: true)). Their writers take the
// actor and check again, inside the transaction that writes (requireStaff), so no caller can
// skip the rule and a staff user removed a moment earlier cannot slip a change in.

// requireStaff refuses an actor who is not an active staff user acting through a browser
// session: a partner service's token never administers, whoever it acts for.
func requireStaff(ctx context.Context, db bun.IDB, actor Actor) error {
	if actor.method() != ActorSession {
		return forbidden("staff operations need a browser session")
	}
	ok, err := db.NewSelect().TableExpr("users").Where("id = ? AND is_active AND is_staff", actor.UserID).Exists(ctx)
	if err != nil {
		return fromDB("select staff user", err)
	}
	if !ok {
		return forbidden("only staff may do this")
	}
	return nil
}

// AdminUserFilter narrows AdminUsers; nil fields do not filter.
type AdminUserFilter struct {
	Search         string // fragment of the name or email, or exactly a sub or an id
	IsActive       *bool
	IsStaff        *bool
	OrganizationID *uuid.UUID
	Page
}

// AdminUsers lists every user, active or not, newest first, for staff.
func (s *Store) AdminUsers(ctx context.Context, f AdminUserFilter) (List[User], error) {
	if err := CheckPage(f.Page); err != nil {
		return List[User]{}, err
	}
	var rows []userRow
	q := s.db.NewSelect().Model(&rows).ColumnExpr("u.*").ColumnExpr("count(*) OVER () AS total_count")
	if term := searchTerm(f.Search); term != "" {
		exact := strings.TrimSpace(strings.ReplaceAll(f.Search, "\x00", ""))
		id, err := uuid.Parse(exact)
		if err != nil {
			id = uuid.Nil // matches no user
		}
		q = q.Where("(search_key(u.name) LIKE search_key(?0) OR search_key(u.email) LIKE search_key(?0) OR u.sub = ?1 OR u.id = ?2)",
			term, exact, id)
	}
	if f.IsActive != nil {
		q = q.Where("u.is_active = ?", *f.IsActive)
	}
	if f.IsStaff != nil {
		q = q.Where("u.is_staff = ?", *f.IsStaff)
	}
	if f.OrganizationID != nil {
		q = q.Where("u.organization_id = ?", *f.OrganizationID)
	}
	if err := f.Page.window(q.OrderExpr("u.created_at DESC, u.id DESC")).Scan(ctx); err != nil {
		return List[User]{}, fromDB("select users", err)
	}
	return newList(f.Page, rows, func(r userRow) User { return r.User }), nil
}

// AdminUserUpdate holds what staff change on a user; nil means unchanged. An empty Name or
// Email removes it.
type AdminUserUpdate struct {
	IsActive, IsStaff *bool
	OrganizationID    *uuid.UUID
	Name, Email       *string
}

// AdminUpdateUser changes a user; staff only. Deactivating a user ends their sessions in the
// same transaction, and their partner services' tokens fail from the next request on (the bearer
// middleware asks UserIsActive every time, cached introspection included). Staff cannot
// deactivate themselves or drop their own staff status, so that a slip never leaves the
// deployment without anyone able to undo it: another staff member, or the command line, can.
func (s *Store) AdminUpdateUser(ctx context.Context, actor Actor, id uuid.UUID, up AdminUserUpdate) (*User, error) {
	if up.Name != nil {
		name := strings.TrimSpace(*up.Name)
		switch {
		case utf8.RuneCountInString(name) > 100:
			return nil, invalid("name", "the name may have at most 100 characters")
		case !utf8.ValidString(name) || !storableText(name):
			return nil, invalid("name", "the name cannot contain NUL characters")
		}
		up.Name = &name
	}
	if up.Email != nil && strings.TrimSpace(*up.Email) != "" {
		email, err := NormalizeEmail("email", *up.Email)
		if err != nil || !emailLike(email) {
			return nil, invalid("email", "enter a valid email address")
		}
		up.Email = &email
	} else if up.Email != nil {
		up.Email = new(string)
	}
	if id == actor.UserID && ((up.IsActive != nil && !*up.IsActive) || (up.IsStaff != nil && !*up.IsStaff)) {
		return nil, forbidden("you cannot deactivate yourself or remove your own staff status: ask another staff member")
	}
	u := new(User)
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := requireStaff(ctx, tx, actor); err != nil {
			return err
		}
		if err := tx.NewSelect().Model(u).Where("u.id = ?", id).For("NO KEY UPDATE OF u").Scan(ctx); err != nil {
			return notFoundOr(err, "user", "select user")
		}
		if up.OrganizationID != nil {
			ok, err := tx.NewSelect().TableExpr("organizations").Where("id = ?", *up.OrganizationID).Exists(ctx)
			if err != nil {
				return fromDB("select organization", err)
			}
			if !ok {
				return &Error{Kind: KindNotFound, Field: "organizationId", Message: "organization not found"}
			}
		}
		q := tx.NewUpdate().Model(u).Where("id = ?", id).Returning("*")
		set := false
		if up.IsActive != nil {
			q, set = q.Set("is_active = ?", *up.IsActive), true
		}
		if up.IsStaff != nil {
			q, set = q.Set("is_staff = ?", *up.IsStaff), true
		}
		if up.OrganizationID != nil {
			q, set = q.Set("organization_id = ?", *up.OrganizationID), true
		}
		if up.Name != nil {
			q, set = q.Set("name = ?", nullable(*up.Name)), true
		}
		if up.Email != nil {
			q, set = q.Set("email = ?", nullable(*up.Email)), true
		}
		if set {
			if _, err := q.Exec(ctx, u); err != nil {
				return fromDB("update user", err)
			}
		}
		if up.IsActive != nil && !*up.IsActive {
			if _, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE user_id = ?", id); err != nil {
				return fromDB("end sessions", err)
			}
		}
		return audit(ctx, tx, actor, "adminUpdateUser", []uuid.UUID{id}, changes{}.
			set("isActive", up.IsActive).set("isStaff", up.IsStaff).set("organizationId", up.OrganizationID).
			set("name", up.Name).set("email", up.Email))
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// PromoteStaff makes the user with this email (compared case-insensitively), or with this id
// when email is "", active staff: the first staff user comes from the command line
// (people create-staff), as People's from createsuperuser. It never creates a user: a user
// is made by a first login, which gives them the identity provider's subject, the identity
// link and the organization that no command-line input could be trusted to give. Several
// users with one email are refused: the operator names one by id instead. The event is
// recorded with the command line as its actor.
func (s *Store) PromoteStaff(ctx context.Context, email string, id uuid.UUID) (*User, error) {
	if email != "" {
		var err error
		if email, err = NormalizeEmail("email", email); err != nil {
			return nil, err
		}
	}
	u := new(User)
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var users []User
		q := tx.NewSelect().Model(&users).OrderExpr("u.created_at, u.id").Limit(2).For("NO KEY UPDATE OF u")
		if email != "" {
			q = q.Where("lower(u.email) = lower(?)", email)
		} else {
			q = q.Where("u.id = ?", id)
		}
		if err := q.Scan(ctx); err != nil {
			return fromDB("select user", err)
		}
		switch len(users) {
		case 0:
			return notFound("user")
		case 2:
			return conflict("email", "several users have this email: name one by id")
		}
		*u = users[0]
		c := changes{}
		if !u.IsStaff {
			c["isStaff"] = true
		}
		if !u.IsActive {
			c["isActive"] = true
		}
		err := tx.NewRaw("UPDATE users SET is_staff = true, is_active = true WHERE id = ? RETURNING *", u.ID).Scan(ctx, u)
		if err != nil {
			return fromDB("update user", err)
		}
		return audit(ctx, tx, CommandActor, "createStaff", []uuid.UUID{u.ID}, c)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}
