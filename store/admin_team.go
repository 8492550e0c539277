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

// AdminTeamsByIDs returns teams by id, for staff's loaders.
func (s *Store) AdminTeamsByIDs(ctx context.Context, staff StaffActor, ids []uuid.UUID) ([]Team, error) {
	if err := staff.check(); err != nil {
		return nil, err
	}
	var ts []Team
	if err := s.db.NewSelect().Model(&ts).Where("t.id IN (?)", bun.List(ids)).Scan(ctx); err != nil {
		return nil, fromDB("select teams", err)
	}
	return ts, nil
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

// NewAdminTeam is a team that staff create in any organization, with its first owner.
type NewAdminTeam struct {
	Name           string
	OrganizationID uuid.UUID
	OwnerID        uuid.UUID // an active user, of any organization (People's admin allows any)
	// ParentID puts the team under a team of the same organization; nil makes a root.
	ParentID *uuid.UUID
	// IsVisibleAllServices nil is true, as for a team created in a browser session.
	IsVisibleAllServices *bool
}

// AdminCreateTeam creates a team in any organization, with an owner, optionally under a
// parent of that organization; staff only. The organization is locked (KEY SHARE, as the
// foreign key would) so that it cannot be deleted under the new team.
func (s *Store) AdminCreateTeam(ctx context.Context, actor Actor, in NewAdminTeam) (*Team, error) {
	name, err := checkName(in.Name, 100)
	if err != nil {
		return nil, err
	}
	visibleAll := in.IsVisibleAllServices == nil || *in.IsVisibleAllServices
	t := new(Team)
	err = s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := requireStaff(ctx, tx, actor); err != nil {
			return err
		}
		if in.ParentID != nil {
			if err := lockTeamTree(ctx, tx, *in.ParentID); err != nil {
				return err
			}
			err := lockTeamForStaff(ctx, tx, *in.ParentID)
			if KindOf(err) == KindNotFound {
				return &Error{Kind: KindNotFound, Field: "parentId", Message: "parent team not found"}
			} else if err != nil {
				return err
			}
		}
		err := tx.NewSelect().TableExpr("organizations").Column("id").Where("id = ?", in.OrganizationID).
			For("KEY SHARE").Scan(ctx, new(uuid.UUID))
		if err := notFoundOr(err, "organization", "lock organization"); err != nil {
			if KindOf(err) == KindNotFound {
				return &Error{Kind: KindNotFound, Field: "organizationId", Message: "organization not found"}
			}
			return err
		}
		active, err := tx.NewSelect().TableExpr("users").Where("id = ? AND is_active", in.OwnerID).For("KEY SHARE").Exists(ctx)
		if err != nil {
			return fromDB("select owner", err)
		} else if !active {
			return &Error{Kind: KindNotFound, Field: "ownerId", Message: "owner not found among active users"}
		}
		err = tx.NewRaw(`INSERT INTO teams (name, organization_id, parent_id, is_visible_all_services) VALUES (?, ?, ?, ?) RETURNING *`,
			name, in.OrganizationID, in.ParentID, visibleAll).Scan(ctx, t)
		if err != nil {
			return fromDB("insert team", err)
		}
		var access uuid.UUID
		if err := tx.QueryRowContext(ctx, "INSERT INTO team_accesses (team_id, user_id, role) VALUES (?, ?, ?) RETURNING id",
			t.ID, in.OwnerID, RoleOwner).Scan(&access); err != nil {
			return fromDB("insert owner access", err)
		}
		c := changes{"name": name, "organizationId": in.OrganizationID, "ownerId": in.OwnerID, "isVisibleAllServices": visibleAll}
		if in.ParentID != nil {
			c["parentId"] = *in.ParentID
		}
		return audit(ctx, tx, actor, "adminCreateTeam", []uuid.UUID{t.ID, access, in.OrganizationID, in.OwnerID}, c)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// AdminDeleteTeam deletes any team; staff only, with DeleteTeam's rules for children: a team
// with children is a conflict naming their count unless cascade, which deletes the whole
// subtree, every removed membership announced to its team's webhooks by the database's
// triggers. It returns the ids deleted, the team's first.
func (s *Store) AdminDeleteTeam(ctx context.Context, actor Actor, id uuid.UUID, cascade bool) ([]uuid.UUID, error) {
	var deleted []uuid.UUID
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := requireStaff(ctx, tx, actor); err != nil {
			return err
		}
		if err := lockTeamTree(ctx, tx, id); err != nil {
			return err
		}
		if err := lockTeamForStaff(ctx, tx, id); err != nil {
			return err
		}
		var (
			name string
			err  error
		)
		if deleted, name, err = deleteTeamTree(ctx, tx, id, cascade); err != nil {
			return err
		}
		c := changes{"name": name}
		if cascade {
			c["cascade"] = true
		}
		return audit(ctx, tx, actor, "adminDeleteTeam", deleted, c)
	})
	if err != nil {
		return nil, err
	}
	return deleted, nil
}
