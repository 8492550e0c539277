package store

import (
	"context"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// AdminInvitationFilter narrows AdminInvitations; zero fields do not filter.
type AdminInvitationFilter struct {
	Search string // fragment of the email
	TeamID *uuid.UUID
	Page
}

type adminInvitationRow struct {
	Invitation `bun:",extend"`
	Total
}

// AdminInvitations lists every invitation, newest first, expired ones included, for staff.
func (s *Store) AdminInvitations(ctx context.Context, staff StaffActor, f AdminInvitationFilter) (List[Invitation], error) {
	if err := staff.check(); err != nil {
		return List[Invitation]{}, err
	}
	if err := CheckPage(f.Page); err != nil {
		return List[Invitation]{}, err
	}
	var rows []adminInvitationRow
	q := s.db.NewSelect().Model(&rows).ColumnExpr("inv.*, count(*) OVER () AS total_count")
	if term := searchTerm(f.Search); term != "" {
		q = q.Where("search_key(inv.email) LIKE search_key(?)", term)
	}
	if f.TeamID != nil {
		q = q.Where("inv.team_id = ?", *f.TeamID)
	}
	if err := f.Page.window(q.OrderExpr("inv.created_at DESC, inv.id DESC")).Scan(ctx); err != nil {
		return List[Invitation]{}, fromDB("select invitations", err)
	}
	return newList(f.Page, rows, func(r adminInvitationRow) Invitation {
		r.ExpiresAt = r.CreatedAt.Add(s.invitationValidity)
		return r.Invitation
	}), nil
}

// AdminDeleteInvitation withdraws any invitation, its queued email with it; staff only. The
// team is locked first, as DeleteInvitation locks it, so that staff's and the owners' changes
// to the team's invitations queue one behind the other.
func (s *Store) AdminDeleteInvitation(ctx context.Context, actor Actor, id uuid.UUID) error {
	return s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := requireStaff(ctx, tx, actor); err != nil {
			return err
		}
		var teamID uuid.UUID
		if err := tx.NewSelect().TableExpr("invitations").Column("team_id").Where("id = ?", id).Scan(ctx, &teamID); err != nil {
			return notFoundOr(err, "invitation", "select invitation")
		}
		if err := lockTeamForStaff(ctx, tx, teamID); err != nil {
			return notFoundOr(err, "invitation", "lock team")
		}
		// An invitation accepted (or withdrawn) meanwhile is gone: NOT_FOUND.
		if err := tx.QueryRowContext(ctx, "DELETE FROM invitations WHERE id = ? RETURNING id", id).Scan(new(uuid.UUID)); err != nil {
			return notFoundOr(err, "invitation", "delete invitation")
		}
		return audit(ctx, tx, actor, "adminDeleteInvitation", []uuid.UUID{id, teamID}, nil)
	})
}
