package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// The admin_*.go files are the staff operations, People's Django admin as an API. requireStaff
// is the only statement of who is staff. The readers take a StaffActor, which only Staff makes
// (once per operation, by the API), so that nothing reaches them unchecked. The writers take
// the plain actor and check again inside the transaction that writes, so that a staff user
// removed a moment earlier cannot slip a change in.

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

// StaffActor is an actor that Staff found to be an active staff user acting through a browser
// session: what the staff readers ask for. Its zero value is refused.
type StaffActor struct {
	actor   Actor
	checked bool // set by Staff only
}

// Staff checks actor against the staff rule and returns the proof the staff readers take. The
// API asks once per operation; GRAPHQL_INTROSPECTION=auto asks it too.
func (s *Store) Staff(ctx context.Context, actor Actor) (StaffActor, error) {
	if err := requireStaff(ctx, s.db, actor); err != nil {
		return StaffActor{}, err
	}
	return StaffActor{actor: actor, checked: true}, nil
}

// Actor is who the staff user is.
func (a StaffActor) Actor() Actor { return a.actor }

func (a StaffActor) check() error {
	if !a.checked {
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
func (s *Store) AdminUsers(ctx context.Context, staff StaffActor, f AdminUserFilter) (List[User], error) {
	if err := staff.check(); err != nil {
		return List[User]{}, err
	}
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
// same transaction, and their partner services' tokens fail from then on, cached introspection
// included (the bearer middleware asks UserIsActive, or a credential cache that the
// deactivation's announcement empties of the user on every instance). Staff cannot
// deactivate themselves or drop their own staff status, so that a slip never leaves the
// deployment without anyone able to undo it: another staff member, or the command line, can.
func (s *Store) AdminUpdateUser(ctx context.Context, actor Actor, id uuid.UUID, up AdminUserUpdate) (*User, error) {
	if up.Name != nil {
		name, err := checkUserName(*up.Name)
		if err != nil {
			return nil, err
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

// checkUserName trims a user's name given by staff or an operator and refuses one users.name
// cannot hold; "" stands for no name.
func checkUserName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case utf8.RuneCountInString(name) > 100:
		return "", invalid("name", "the name may have at most 100 characters")
	case !utf8.ValidString(name) || !storableText(name):
		return "", invalid("name", "the name cannot contain NUL characters")
	}
	return name, nil
}

// UserDeletion says how AdminDeleteUser deletes a user.
type UserDeletion struct {
	// ReassignTo, an active user, becomes the owner of each team the user is the last owner of;
	// nil refuses to delete such a user.
	ReassignTo *uuid.UUID
	// DropProfileContact deletes the user's profile contact too, for an erasure request; by
	// default it stays, as a public contact no longer tied to anyone.
	DropProfileContact bool
}

// maxTeamsNamed bounds the teams a refusal of AdminDeleteUser names.
const maxTeamsNamed = 20

// AdminDeleteUser deletes a user; staff only, and never oneself (deactivation, which
// AdminUpdateUser does, is the reversible alternative). Their team and organization accesses,
// identities, sessions (announced to every instance by the revocation triggers), the
// invitations they issued and their private contacts go with them; every removed membership is
// announced to its team's webhooks by the database's triggers. The teams they are the last
// owner of are refused (KindConflict, naming the teams) unless d.ReassignTo names the new
// owner of each. Their profile contact stays, public, unless d.DropProfileContact; the audit
// trail keeps their id as actor and target (it has no foreign keys). It returns the ids of the
// teams given to d.ReassignTo.
//
// The teams the user owns are locked first, as every change of a team's accesses starts with
// its team's lock (lockTeam), and the user's row after them: a co-owner leaving one of those
// teams at the same moment is counted before or after, never missed, so that no team is ever
// left without an owner. The user's row lock (FOR UPDATE) then keeps anyone from giving them a
// new access until the deletion commits.
func (s *Store) AdminDeleteUser(ctx context.Context, actor Actor, id uuid.UUID, d UserDeletion) ([]uuid.UUID, error) {
	if id == actor.UserID {
		return nil, forbidden("you cannot delete yourself: ask another staff member")
	}
	if d.ReassignTo != nil && *d.ReassignTo == id {
		return nil, invalid("reassignTo", "the new owner must be another user")
	}
	var reassigned []uuid.UUID
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := requireStaff(ctx, tx, actor); err != nil {
			return err
		}
		locked := map[uuid.UUID]bool{}
		lockOwned := func() ([]uuid.UUID, error) {
			var teams []uuid.UUID
			err := tx.NewSelect().TableExpr("team_accesses").Column("team_id").Where("user_id = ? AND role = ?", id, RoleOwner).
				OrderExpr("team_id").Scan(ctx, &teams)
			if err != nil {
				return nil, fromDB("select owned teams", err)
			}
			for _, t := range teams {
				if locked[t] {
					continue
				}
				if err := lockTeamForStaff(ctx, tx, t); err != nil && KindOf(err) != KindNotFound {
					return nil, err
				}
				locked[t] = true
			}
			return teams, nil
		}
		if _, err := lockOwned(); err != nil {
			return err
		}
		u := new(User)
		if err := tx.NewSelect().Model(u).Where("u.id = ?", id).For("UPDATE OF u").Scan(ctx); err != nil {
			return notFoundOr(err, "user", "lock user")
		}
		// Read again under the user's lock: an owner access given before it was taken is
		// locked now too.
		if _, err := lockOwned(); err != nil {
			return err
		}
		var last []struct {
			ID   uuid.UUID `bun:"id"`
			Name string    `bun:"name"`
		}
		err := tx.NewRaw(`SELECT t.id, t.name FROM teams t JOIN team_accesses ta ON ta.team_id = t.id AND ta.user_id = ? AND ta.role = ?
			WHERE NOT EXISTS (SELECT 1 FROM team_accesses o WHERE o.team_id = t.id AND o.role = ? AND o.user_id <> ?)
			ORDER BY t.name, t.id`, id, RoleOwner, RoleOwner, id).Scan(ctx, &last)
		if err != nil {
			return fromDB("select last owned teams", err)
		}
		if len(last) > 0 && d.ReassignTo == nil {
			names := make([]string, 0, min(len(last), maxTeamsNamed))
			for _, t := range last[:min(len(last), maxTeamsNamed)] {
				names = append(names, fmt.Sprintf("%q (%s)", t.Name, t.ID))
			}
			more := ""
			if len(last) > maxTeamsNamed {
				more = fmt.Sprintf(" and %d more", len(last)-maxTeamsNamed)
			}
			return conflict("reassignTo", fmt.Sprintf("this user is the last owner of %d teams: name their new owner with reassignTo, or give them another owner first: %s%s",
				len(last), strings.Join(names, ", "), more))
		}
		if len(last) > 0 {
			active, err := tx.NewSelect().TableExpr("users").Where("id = ? AND is_active", *d.ReassignTo).For("KEY SHARE").Exists(ctx)
			if err != nil {
				return fromDB("select new owner", err)
			} else if !active {
				return &Error{Kind: KindNotFound, Field: "reassignTo", Message: "new owner not found among active users"}
			}
			for _, t := range last {
				// A new access is a membership change, announced to the team's webhooks; a
				// member promoted to owner is not (role changes never are).
				_, err := tx.ExecContext(ctx, `INSERT INTO team_accesses (team_id, user_id, role) VALUES (?, ?, ?)
					ON CONFLICT (team_id, user_id) DO UPDATE SET role = EXCLUDED.role`, t.ID, *d.ReassignTo, RoleOwner)
				if err != nil {
					return fromDB("reassign team", err)
				}
				reassigned = append(reassigned, t.ID)
			}
		}
		profile := "UPDATE contacts SET owner_id = NULL, user_id = NULL WHERE user_id = ? RETURNING id"
		if d.DropProfileContact {
			profile = "DELETE FROM contacts WHERE user_id = ? RETURNING id"
		}
		var contact uuid.NullUUID
		if err := tx.QueryRowContext(ctx, profile, id).Scan(&contact); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fromDB("detach profile contact", err)
		}
		// The accesses go first (a trigger on users), announced while the user's email is there.
		if _, err := tx.ExecContext(ctx, "DELETE FROM users WHERE id = ?", id); err != nil {
			return fromDB("delete user", err)
		}
		c := changes{"reassignedTeamIds": nonNil(reassigned)}
		if d.ReassignTo != nil {
			c["reassignTo"] = *d.ReassignTo
		}
		if contact.Valid {
			c["profileContactId"], c["profileContactKept"] = contact.UUID, !d.DropProfileContact
		}
		return audit(ctx, tx, actor, "adminDeleteUser", append([]uuid.UUID{id}, reassigned...), c)
	})
	if err != nil {
		return nil, err
	}
	return reassigned, nil
}
