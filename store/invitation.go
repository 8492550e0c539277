package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Invitation asks someone without an account to join a team; it becomes a team access at
// their first login. It cannot be edited after creation.
type Invitation struct {
	bun.BaseModel `bun:"table:invitations,alias:inv"`

	ID          uuid.UUID  `bun:"id,pk,type:uuid,default:gen_random_uuid()"`
	CreatedAt   time.Time  `bun:"created_at,nullzero,notnull,default:now()"`
	UpdatedAt   time.Time  `bun:"updated_at,nullzero,notnull,default:now()"`
	Email       string     `bun:"email,notnull"`
	TeamID      uuid.UUID  `bun:"team_id,type:uuid,notnull"`
	Role        Role       `bun:"role,notnull"`
	IssuerID    uuid.UUID  `bun:"issuer_id,type:uuid,notnull"`
	EmailSentAt *time.Time `bun:"email_sent_at"`
	ExpiresAt   time.Time  `bun:"-"` // CreatedAt + the configured validity
	Issuer      *User      `bun:"-"` // when the query that read it joined the issuer
}

// IsExpired reports whether the invitation can no longer be accepted.
func (i Invitation) IsExpired() bool { return !time.Now().Before(i.ExpiresAt) }

type invitationRow struct {
	Invitation `bun:",extend"`
	Total
	Rank   int  `bun:"rn,scanonly"` // position in its team's list, from 1: the window's filter
	Joined User `bun:"embed:issuer__"`
}

// InvitationsByTeamIDs returns one page of invitations, newest first and expired ones
// included (as People lists them), with their issuers, for each team the actor may see, in
// one statement.
func (s *Store) InvitationsByTeamIDs(ctx context.Context, actor Actor, teamIDs []uuid.UUID, p Page) (map[uuid.UUID]List[Invitation], error) {
	if err := CheckPage(p); err != nil {
		return nil, err
	}
	var rows []invitationRow
	err := s.db.NewRaw(`
		SELECT * FROM (
			SELECT inv.*, ?, row_number() OVER (PARTITION BY inv.team_id ORDER BY inv.created_at DESC, inv.id) AS rn,
				count(*) OVER (PARTITION BY inv.team_id) AS total_count
			FROM invitations inv
			JOIN users u ON u.id = inv.issuer_id
			WHERE inv.team_id IN (?)
		) w WHERE (rn > ? AND rn <= ?) OR rn = total_count ORDER BY team_id, rn`,
		bun.Safe(s.userColumns("u", "issuer__")),
		// Only direct members see invitations (People shows them to no inherited viewer).
		visibleTeams(s.db.NewSelect().TableExpr("teams AS t").Column("t.id"), actor, ownTeams).Where("t.id IN (?)", bun.List(teamIDs)),
		p.Offset, p.Offset+p.Limit+1).Scan(ctx, &rows)
	if err != nil {
		return nil, fromDB("select invitations", err)
	}
	return pagesByTeam(p, rows, func(r invitationRow) (uuid.UUID, int) { return r.TeamID, r.Rank }, func(r invitationRow) Invitation {
		r.ExpiresAt = r.CreatedAt.Add(s.invitationValidity)
		r.Issuer = &r.Joined
		return r.Invitation
	}), nil
}

// InvitationByID returns the invitation id of the team teamID, when the actor is a direct
// member of that team (as InvitationsByTeamIDs shows invitations); any other is KindNotFound.
// The team is part of the question because People's URLs name it: an invitation asked for
// under another team is not found.
func (s *Store) InvitationByID(ctx context.Context, actor Actor, teamID, id uuid.UUID) (*Invitation, error) {
	inv := new(Invitation)
	err := s.db.NewSelect().Model(inv).Where("inv.id = ? AND inv.team_id = ?", id, teamID).
		Where("inv.team_id IN (?)", visibleTeams(s.db.NewSelect().TableExpr("teams AS t").Column("t.id"), actor, ownTeams)).
		Scan(ctx)
	if err != nil {
		return nil, notFoundOr(err, "invitation", "select invitation")
	}
	inv.ExpiresAt = inv.CreatedAt.Add(s.invitationValidity)
	return inv, nil
}

// NewInvitation is an invitation to create.
type NewInvitation struct {
	TeamID uuid.UUID
	Email  string
	Role   Role
}

// CreateInvitation invites an email address to a team and queues the invitation email, in one
// transaction. Owners and administrators invite; only owners invite owners (People lets
// administrators invite owners, a privilege escalation). An address of a user the actor can
// already find (an active user of their organization, as Users lists them), compared
// case-insensitively, is a conflict: add that user instead. Any other address is invited
// alike, whether someone elsewhere in the directory has it or nobody does, so that the answer
// tells nothing of who has an account (People answered "Email already known" for any user); a
// user who has it joins the team at their next login, as invitations are accepted at every
// login. An actor may create at most invitationsPerHour invitations in an hour.
func (s *Store) CreateInvitation(ctx context.Context, actor Actor, in NewInvitation) (*Invitation, error) {
	email, err := NormalizeEmail("email", in.Email)
	if err != nil {
		return nil, err
	}
	if !in.Role.Valid() {
		return nil, invalid("role", "unknown role")
	}
	inv := new(Invitation)
	err = s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		viewer, err := lockTeam(ctx, tx, actor, in.TeamID)
		if err != nil {
			return err
		}
		if !teamAbilities(viewer, actor.viaService()).ManageAccesses {
			return forbidden("you are not allowed to manage invitations for this team")
		}
		if !canGrant(viewer, in.Role) {
			return forbidden("only owners of a team can invite owners")
		}
		if err := s.checkInvitationRate(ctx, tx, actor); err != nil {
			return err
		}
		known, err := tx.NewSelect().TableExpr("users AS u").Where("lower(u.email) = lower(?)", email).
			Where("u.is_active AND u.organization_id = (SELECT organization_id FROM users WHERE id = ?)", actor.UserID).Exists(ctx)
		if err != nil {
			return fromDB("look up invited email", err)
		}
		if known {
			return conflict("email", "this email is already associated to a registered user")
		}
		err = tx.NewRaw(`INSERT INTO invitations (email, team_id, role, issuer_id) VALUES (?, ?, ?, ?) RETURNING *`,
			email, in.TeamID, in.Role, actor.UserID).Scan(ctx, inv)
		if err != nil {
			return fromDB("insert invitation", err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO mail_queue (template, recipient, language, invitation_id, payload)
			SELECT 'invitation', ?, u.language, ?, jsonb_build_object('team_name', t.name, 'role', ?::text, 'issuer_name', coalesce(u.name, u.email))
			FROM users u, teams t WHERE u.id = ? AND t.id = ?`, email, inv.ID, in.Role, actor.UserID, in.TeamID)
		if err != nil {
			return fromDB("queue invitation email", err)
		}
		return audit(ctx, tx, actor, "createInvitation", []uuid.UUID{inv.ID, in.TeamID}, changes{"email": email, "role": in.Role})
	})
	if err != nil {
		return nil, err
	}
	inv.ExpiresAt = inv.CreatedAt.Add(s.invitationValidity)
	return inv, nil
}

// checkInvitationRate refuses an invitation beyond invitationsPerHour from the actor in the
// last hour, counted from the audit trail: withdrawn and accepted invitations count too, and
// the count holds across server instances. The advisory lock (per actor, until the
// transaction ends) keeps two concurrent invitations from both fitting under the limit's last
// place.
func (s *Store) checkInvitationRate(ctx context.Context, tx bun.Tx, actor Actor) error {
	if s.invitationsPerHour <= 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('people/invitations/' || ?::text, 0))", actor.UserID); err != nil {
		return fromDB("lock invitation rate", err)
	}
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM audit_events
		WHERE actor_id = ? AND operation = 'createInvitation' AND created_at > now() - interval '1 hour'`, actor.UserID).Scan(&n)
	if err != nil {
		return fromDB("count recent invitations", err)
	}
	if n >= s.invitationsPerHour {
		return &Error{Kind: KindLimited, Message: fmt.Sprintf("you may send at most %d invitations an hour: retry later", s.invitationsPerHour)}
	}
	return nil
}

// DeleteInvitation withdraws an invitation; the team's owners and administrators only.
func (s *Store) DeleteInvitation(ctx context.Context, actor Actor, id uuid.UUID) error {
	return s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var teamID uuid.UUID
		if err := tx.NewSelect().TableExpr("invitations").Column("team_id").Where("id = ?", id).Scan(ctx, &teamID); err != nil {
			return notFoundOr(err, "invitation", "select invitation")
		}
		viewer, err := lockTeam(ctx, tx, actor, teamID)
		if err != nil {
			return notFoundOr(err, "invitation", "lock team")
		} else if viewer == RoleInherited {
			return notFound("invitation") // invitations are shown to direct members only
		}
		if !teamAbilities(viewer, actor.viaService()).ManageAccesses {
			return forbidden("you are not allowed to manage invitations for this team")
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM invitations WHERE id = ?", id)
		if err != nil {
			return fromDB("delete invitation", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("invitation")
		}
		return audit(ctx, tx, actor, "deleteInvitation", []uuid.UUID{id, teamID}, nil)
	})
}
