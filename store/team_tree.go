package store

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// The team tree's paths, depths and child counts are the database's work
// (migrations/0011_team_tree.up.sql): the store sets parent_id and reads the rest. A change of
// a tree's shape takes the tree lock of the organization first, before any row lock, in the
// same order as the database's triggers, so that concurrent moves queue instead of deadlocking.

// lockTeamTree takes the tree lock of the team's organization, for the rest of the transaction.
// A missing team takes none: the caller's next read reports it.
func lockTeamTree(ctx context.Context, tx bun.IDB, teamID uuid.UUID) error {
	if _, err := tx.ExecContext(ctx, "SELECT team_tree_lock(organization_id) FROM teams WHERE id = ?", teamID); err != nil {
		return fromDB("lock team tree", err)
	}
	return nil
}

// lockParentTeam is lockTeam for the team that is to receive a child: a parent the actor cannot
// see is reported on parentId, and only its direct owners and administrators may add to it.
func lockParentTeam(ctx context.Context, tx bun.IDB, actor Actor, parentID uuid.UUID) error {
	role, err := lockTeam(ctx, tx, actor, parentID)
	if KindOf(err) == KindNotFound {
		return &Error{Kind: KindNotFound, Field: "parentId", Message: "parent team not found"}
	} else if err != nil {
		return err
	}
	if !teamAbilities(role, actor.viaService()).Update {
		return forbidden("only owners and administrators of the parent team may add a team under it")
	}
	return nil
}

// MoveTeam puts a team under another team of its organization, or makes it a root (parentID
// nil), with its whole subtree. The actor must be a direct owner or administrator of both the
// team and the new parent (People leaves this to its Django admin); a partner service's token
// moves nothing. The database refuses cycles and parents of another organization.
func (s *Store) MoveTeam(ctx context.Context, actor Actor, id uuid.UUID, parentID *uuid.UUID) (*TeamView, error) {
	if actor.viaService() {
		return nil, forbidden("a service provider cannot move a team")
	}
	t := &TeamView{}
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := lockTeamTree(ctx, tx, id); err != nil {
			return err
		}
		role, err := lockTeam(ctx, tx, actor, id)
		if err != nil {
			return err
		}
		if !teamAbilities(role, false).Update {
			return forbidden("only owners and administrators of the team may move it")
		}
		if parentID != nil {
			if err := lockParentTeam(ctx, tx, actor, *parentID); err != nil {
				return err
			}
		}
		if err := moveTeam(ctx, tx, id, parentID, &t.Team); err != nil {
			return err
		}
		t.ViewerRole = role
		return audit(ctx, tx, actor, "moveTeam", moveTargets(id, parentID), changes{"parentId": parentID})
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// AdminMoveTeam moves any team under any team of its organization, or makes it a root; staff only.
func (s *Store) AdminMoveTeam(ctx context.Context, actor Actor, id uuid.UUID, parentID *uuid.UUID) (*Team, error) {
	t := new(Team)
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
		if err := moveTeam(ctx, tx, id, parentID, t); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "adminMoveTeam", moveTargets(id, parentID), changes{"parentId": parentID})
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// moveTeam sets the team's parent under the tree lock, and reads the team back into t.
func moveTeam(ctx context.Context, tx bun.IDB, id uuid.UUID, parentID *uuid.UUID, t *Team) error {
	if parentID != nil && *parentID == id {
		return invalid("parentId", "a team cannot be moved under itself or one of its descendants")
	}
	if _, err := tx.ExecContext(ctx, "UPDATE teams SET parent_id = ? WHERE id = ?", parentID, id); err != nil {
		return fromDB("move team", err)
	}
	if err := tx.NewSelect().Model(t).Where("t.id = ?", id).Scan(ctx); err != nil {
		return fromDB("select moved team", err)
	}
	return nil
}

func moveTargets(id uuid.UUID, parentID *uuid.UUID) []uuid.UUID {
	if parentID == nil {
		return []uuid.UUID{id}
	}
	return []uuid.UUID{id, *parentID}
}

// TeamAncestorsByIDs returns, for each team among ids, its ancestors that the actor may see,
// root first, for loaders.
func (s *Store) TeamAncestorsByIDs(ctx context.Context, actor Actor, ids []uuid.UUID) (map[uuid.UUID][]TeamView, error) {
	var rows []struct {
		TeamView `bun:",extend"`
		ChildID  uuid.UUID `bun:"child_id,scanonly"`
	}
	q := s.db.NewSelect().Model(&rows).ColumnExpr("t.*, va.role AS viewer_role, c.id AS child_id").
		Join("JOIN teams AS c ON c.id IN (?) AND c.path LIKE t.path || '_%'", bun.List(ids))
	if err := visibleTeams(q, actor, withAncestors).OrderExpr("c.id, t.depth").Scan(ctx); err != nil {
		return nil, fromDB("select team ancestors", err)
	}
	out := make(map[uuid.UUID][]TeamView, len(ids))
	for _, r := range rows {
		r.viaService = actor.viaService()
		out[r.ChildID] = append(out[r.ChildID], r.TeamView)
	}
	return out, nil
}

// TeamChildren lists the children of a team that the actor may see, in the order of their
// paths (of creation): a child is seen through a direct access to it or to one of its
// descendants, never through the parent alone.
func (s *Store) TeamChildren(ctx context.Context, actor Actor, parentID uuid.UUID, p Page) (List[TeamView], error) {
	if err := CheckPage(p); err != nil {
		return List[TeamView]{}, err
	}
	var rows []teamViewRow
	q := s.db.NewSelect().Model(&rows).ColumnExpr("t.*, va.role AS viewer_role, count(*) OVER () AS total_count").
		Where("t.parent_id = ?", parentID)
	if err := p.window(visibleTeams(q, actor, withAncestors).OrderExpr("t.path")).Scan(ctx); err != nil {
		return List[TeamView]{}, fromDB("select team children", err)
	}
	via := actor.viaService()
	return newList(p, rows, func(r teamViewRow) TeamView {
		r.viaService = via
		return r.TeamView
	}), nil
}

type teamViewRow struct {
	TeamView `bun:",extend"`
	Total
}

// deleteTeamTree deletes a team that the caller locked under the tree lock, with its subtree
// when cascade; without it, a team with children is a conflict that names their count. It
// returns the ids deleted, in the order of their paths (the team's first), and the team's name.
func deleteTeamTree(ctx context.Context, tx bun.IDB, id uuid.UUID, cascade bool) ([]uuid.UUID, string, error) {
	var (
		name, path string
		numchild   int
	)
	if err := tx.QueryRowContext(ctx, "SELECT name, path, numchild FROM teams WHERE id = ?", id).Scan(&name, &path, &numchild); err != nil {
		return nil, "", notFoundOr(err, "team", "select team")
	}
	if numchild > 0 && !cascade {
		return nil, "", conflict("cascade", fmt.Sprintf("this team has %d child teams: delete or move them first, or delete with cascade", numchild))
	}
	var ids []uuid.UUID
	// The paths hold only letters and digits: no LIKE wildcard to escape.
	err := tx.NewRaw(`WITH d AS (DELETE FROM teams WHERE path LIKE ? || '%' RETURNING id, path)
		SELECT id FROM d ORDER BY path`, path).Scan(ctx, &ids)
	if err != nil {
		return nil, "", fromDB("delete team", err)
	}
	return ids, name, nil
}

// checkTeamOrganizationServices is checkOrganizationServices for the organization of a team.
func checkTeamOrganizationServices(ctx context.Context, tx bun.IDB, teamID uuid.UUID, sps []uuid.UUID) error {
	var org *uuid.UUID
	if err := tx.QueryRowContext(ctx, "SELECT organization_id FROM teams WHERE id = ?", teamID).Scan(&org); err != nil {
		return notFoundOr(err, "team", "select team organization")
	}
	return checkOrganizationServices(ctx, tx, org, sps)
}

// checkOrganizationServices refuses service providers that are not linked to the organization
// (People lets a team's owners pick any): owners share their teams with the services their
// organization uses, and staff link the others (adminUpdateTeam, adminLinkServiceProvider).
func checkOrganizationServices(ctx context.Context, tx bun.IDB, org *uuid.UUID, sps []uuid.UUID) error {
	if len(sps) == 0 {
		return nil
	}
	var outside int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM unnest(?::uuid[]) AS sp(id) WHERE NOT EXISTS (
		SELECT 1 FROM organization_service_providers osp WHERE osp.organization_id = ? AND osp.service_provider_id = sp.id)`,
		pgUUIDs(sps), org).Scan(&outside)
	if err != nil {
		return fromDB("check organization services", err)
	}
	if outside > 0 {
		return invalid("serviceProviderIds", "a team can be shared only with the service providers of its organization")
	}
	return nil
}

// LinkTeamServiceProvider shares a team with one service provider of the team's organization;
// the team's direct owners and administrators only, in a browser session. A service provider
// that is not the organization's is NOT_FOUND, as the serviceProviders query does not list it.
func (s *Store) LinkTeamServiceProvider(ctx context.Context, actor Actor, teamID, spID uuid.UUID) (*TeamView, error) {
	return s.changeTeamServiceProvider(ctx, actor, teamID, spID, true)
}

// UnlinkTeamServiceProvider stops sharing a team with a service provider: one of its
// organization, or one the team is linked to (by staff, or before the organization dropped
// it); owners and administrators only. Unlinking a service the team is not linked to is no
// change.
func (s *Store) UnlinkTeamServiceProvider(ctx context.Context, actor Actor, teamID, spID uuid.UUID) (*TeamView, error) {
	return s.changeTeamServiceProvider(ctx, actor, teamID, spID, false)
}

func (s *Store) changeTeamServiceProvider(ctx context.Context, actor Actor, teamID, spID uuid.UUID, link bool) (*TeamView, error) {
	if actor.viaService() {
		return nil, forbidden("a service provider cannot change the services of a team")
	}
	op := map[bool]string{true: "linkTeamServiceProvider", false: "unlinkTeamServiceProvider"}[link]
	t := &TeamView{}
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		role, err := lockTeam(ctx, tx, actor, teamID)
		if err != nil {
			return err
		}
		if !teamAbilities(role, false).Update {
			return forbidden("only owners and administrators may change the services of a team")
		}
		var known bool
		err = tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM organization_service_providers osp JOIN teams t ON t.organization_id = osp.organization_id
				WHERE t.id = ? AND osp.service_provider_id = ?)
			OR (? AND EXISTS (SELECT 1 FROM team_service_providers WHERE team_id = ? AND service_provider_id = ?))`,
			teamID, spID, !link, teamID, spID).Scan(&known)
		if err != nil {
			return fromDB("select service provider", err)
		}
		if !known {
			return &Error{Kind: KindNotFound, Field: "serviceProviderId", Message: "service provider not found"}
		}
		q := `INSERT INTO team_service_providers (team_id, service_provider_id) VALUES (?, ?) ON CONFLICT DO NOTHING`
		if !link {
			q = `DELETE FROM team_service_providers WHERE team_id = ? AND service_provider_id = ?`
		}
		if _, err := tx.ExecContext(ctx, q, teamID, spID); err != nil {
			return fromDB(op, err)
		}
		if err := tx.NewSelect().Model(&t.Team).Where("t.id = ?", teamID).Scan(ctx); err != nil {
			return fromDB("select team", err)
		}
		t.ViewerRole = role
		return audit(ctx, tx, actor, op, []uuid.UUID{teamID, spID}, changes{"serviceProviderId": spID})
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}
