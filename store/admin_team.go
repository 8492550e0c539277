package store

import (
	"context"
	"slices"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// AdminTeamFilter narrows AdminTeams.
type AdminTeamFilter struct {
	Search         string // fragment of the name
	OrganizationID *uuid.UUID
	Page
}

type adminTeamRow struct {
	Team `bun:",extend"`
	Total
}

// AdminTeams lists every team, newest first, for staff.
func (s *Store) AdminTeams(ctx context.Context, staff StaffActor, f AdminTeamFilter) (List[Team], error) {
	if err := staff.check(); err != nil {
		return List[Team]{}, err
	}
	if err := CheckPage(f.Page); err != nil {
		return List[Team]{}, err
	}
	var rows []adminTeamRow
	q := s.db.NewSelect().Model(&rows).ColumnExpr("t.*, count(*) OVER () AS total_count")
	if term := searchTerm(f.Search); term != "" {
		q = q.Where("search_key(t.name) LIKE search_key(?)", term)
	}
	if f.OrganizationID != nil {
		q = q.Where("t.organization_id = ?", *f.OrganizationID)
	}
	if err := f.Page.window(q.OrderExpr("t.created_at DESC, t.id DESC")).Scan(ctx); err != nil {
		return List[Team]{}, fromDB("select teams", err)
	}
	return newList(f.Page, rows, func(r adminTeamRow) Team { return r.Team }), nil
}

// AdminTeamByID returns any team, for staff.
func (s *Store) AdminTeamByID(ctx context.Context, staff StaffActor, id uuid.UUID) (*Team, error) {
	if err := staff.check(); err != nil {
		return nil, err
	}
	t := new(Team)
	if err := s.db.NewSelect().Model(t).Where("t.id = ?", id).Scan(ctx); err != nil {
		return nil, notFoundOr(err, "team", "select team")
	}
	return t, nil
}

// lockTeamForStaff takes the team's row lock, as lockTeam does for its members: staff changes
// to a team's accesses queue behind its members' and theirs behind staff's.
func lockTeamForStaff(ctx context.Context, tx bun.IDB, teamID uuid.UUID) error {
	err := tx.NewSelect().TableExpr("teams AS t").Column("t.id").Where("t.id = ?", teamID).
		For("NO KEY UPDATE OF t").Scan(ctx, new(uuid.UUID))
	return notFoundOr(err, "team", "lock team")
}

// AdminTeamUpdate holds the team fields staff change; nil means unchanged. ServiceProviderIDs
// replaces the team's services.
type AdminTeamUpdate struct {
	Name                 *string
	IsVisibleAllServices *bool
	ServiceProviderIDs   *[]uuid.UUID
}

// AdminUpdateTeam renames a team, shares it with every service or not, or sets the services
// it is shared with; staff only.
func (s *Store) AdminUpdateTeam(ctx context.Context, actor Actor, id uuid.UUID, up AdminTeamUpdate) (*Team, error) {
	if up.Name != nil {
		name, err := checkName(*up.Name, 100)
		if err != nil {
			return nil, err
		}
		up.Name = &name
	}
	t := new(Team)
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := requireStaff(ctx, tx, actor); err != nil {
			return err
		}
		if err := lockTeamForStaff(ctx, tx, id); err != nil {
			return err
		}
		q, set := tx.NewUpdate().TableExpr("teams").Where("id = ?", id), false
		if up.Name != nil {
			q, set = q.Set("name = ?", *up.Name), true
		}
		if up.IsVisibleAllServices != nil {
			q, set = q.Set("is_visible_all_services = ?", *up.IsVisibleAllServices), true
		}
		if set {
			if _, err := q.Exec(ctx); err != nil {
				return fromDB("update team", err)
			}
		}
		if up.ServiceProviderIDs != nil {
			if err := setTeamServiceProviders(ctx, tx, id, *up.ServiceProviderIDs); err != nil {
				return err
			}
		}
		if err := tx.NewSelect().Model(t).Where("t.id = ?", id).Scan(ctx); err != nil {
			return fromDB("select updated team", err)
		}
		return audit(ctx, tx, actor, "adminUpdateTeam", []uuid.UUID{id}, changes{}.set("name", up.Name).
			set("isVisibleAllServices", up.IsVisibleAllServices).set("serviceProviderIds", up.ServiceProviderIDs))
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// staffAccessForUpdate locks the access's team and returns the access with staff's view of it.
func staffAccessForUpdate(ctx context.Context, tx bun.IDB, id uuid.UUID) (*TeamAccessView, error) {
	a := &TeamAccessView{asStaff: true}
	var teamID uuid.UUID
	if err := tx.NewSelect().TableExpr("team_accesses").Column("team_id").Where("id = ?", id).Scan(ctx, &teamID); err != nil {
		return nil, notFoundOr(err, "team access", "select team access")
	}
	if err := lockTeamForStaff(ctx, tx, teamID); err != nil {
		return nil, notFoundOr(err, "team access", "lock team")
	}
	// Read again under the lock: the access may have changed while we waited.
	if err := tx.NewSelect().Model(&a.TeamAccess).Where("ta.id = ?", id).Scan(ctx); err != nil {
		return nil, notFoundOr(err, "team access", "select team access")
	}
	var err error
	a.Owners, err = countOwners(ctx, tx, teamID)
	return a, err
}

// AdminCreateTeamAccess adds an active user to any team with any role; staff only.
func (s *Store) AdminCreateTeamAccess(ctx context.Context, actor Actor, teamID, userID uuid.UUID, role Role) (*TeamAccessView, error) {
	if !role.Valid() {
		return nil, invalid("role", "unknown role")
	}
	a := &TeamAccessView{asStaff: true}
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := requireStaff(ctx, tx, actor); err != nil {
			return err
		}
		if err := lockTeamForStaff(ctx, tx, teamID); err != nil {
			return err
		}
		err := tx.NewRaw(`INSERT INTO team_accesses (team_id, user_id, role)
			SELECT ?, id, ? FROM users WHERE id = ? AND is_active RETURNING *`, teamID, role, userID).Scan(ctx, &a.TeamAccess)
		if err != nil {
			return notFoundOr(err, "user", "insert team access")
		}
		if a.Owners, err = countOwners(ctx, tx, teamID); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "adminCreateTeamAccess", []uuid.UUID{a.ID, teamID, userID}, changes{"role": role})
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// AdminSetTeamAccessRole changes the role of any access; staff only, as staffAccessAbilities
// allows: never the role of a team's only owner.
func (s *Store) AdminSetTeamAccessRole(ctx context.Context, actor Actor, id uuid.UUID, role Role) (*TeamAccessView, error) {
	if !role.Valid() {
		return nil, invalid("role", "unknown role")
	}
	var a *TeamAccessView
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := requireStaff(ctx, tx, actor); err != nil {
			return err
		}
		var err error
		if a, err = staffAccessForUpdate(ctx, tx, id); err != nil {
			return err
		}
		if !slices.Contains(a.Abilities().SetRoleTo, role) {
			if a.Role == role {
				return forbidden("this access already has this role")
			}
			return forbidden("a team must keep at least one owner")
		}
		if _, err := tx.ExecContext(ctx, "UPDATE team_accesses SET role = ? WHERE id = ?", role, id); err != nil {
			return fromDB("update team access", err)
		}
		if a.Role == RoleOwner {
			a.Owners--
		} else if role == RoleOwner {
			a.Owners++
		}
		a.Role = role
		return audit(ctx, tx, actor, "adminUpdateTeamAccess", []uuid.UUID{id, a.TeamID, a.UserID}, changes{"role": role})
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// AdminDeleteTeamAccess removes anyone from any team; staff only, but never a team's only
// owner. It returns the team's id.
func (s *Store) AdminDeleteTeamAccess(ctx context.Context, actor Actor, id uuid.UUID) (uuid.UUID, error) {
	var teamID uuid.UUID
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := requireStaff(ctx, tx, actor); err != nil {
			return err
		}
		a, err := staffAccessForUpdate(ctx, tx, id)
		if err != nil {
			return err
		}
		if !a.Abilities().Delete {
			return forbidden("a team must keep at least one owner")
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM team_accesses WHERE id = ?", id); err != nil {
			return fromDB("delete team access", err)
		}
		teamID = a.TeamID
		return audit(ctx, tx, actor, "adminDeleteTeamAccess", []uuid.UUID{id, a.TeamID, a.UserID}, changes{"role": a.Role})
	})
	return teamID, err
}
