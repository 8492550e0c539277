package store

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/uptrace/bun"
)

// TeamAccess gives a user a role in a team.
type TeamAccess struct {
	bun.BaseModel `bun:"table:team_accesses,alias:ta"`

	ID        uuid.UUID `bun:"id,pk,type:uuid,default:gen_random_uuid()"`
	CreatedAt time.Time `bun:"created_at,nullzero,notnull,default:now()"`
	UpdatedAt time.Time `bun:"updated_at,nullzero,notnull,default:now()"`
	TeamID    uuid.UUID `bun:"team_id,type:uuid,notnull"`
	UserID    uuid.UUID `bun:"user_id,type:uuid,notnull"`
	Role      Role      `bun:"role,notnull"`
}

// TeamAccessView is an access as one viewer sees it, with what is needed for its abilities.
type TeamAccessView struct {
	TeamAccess `bun:",extend"`
	ViewerRole Role      `bun:"viewer_role,scanonly"`
	Owners     int       `bun:"owners,scanonly"` // owners of the team
	ViewerID   uuid.UUID `bun:"-"`
	User       *User     `bun:"-"` // the access's user, when the query that read it joined it
	viaService bool      // the viewer acts through a partner service's token
	asStaff    bool      // the viewer is staff, reading through the admin operations
}

// Abilities is what the viewer may do with the access.
func (a TeamAccessView) Abilities() AccessAbilities {
	if a.asStaff {
		return staffAccessAbilities(a.Role, a.Owners)
	}
	return accessAbilities(a.ViewerRole, a.ViewerID == a.UserID, a.Role, a.Owners, a.viaService)
}

// AccessOrder is the order of a team's accesses.
type AccessOrder string

// Access orders. By role puts owners first, then administrators, then members.
const (
	AccessOrderRole  AccessOrder = "role"
	AccessOrderName  AccessOrder = "name"
	AccessOrderEmail AccessOrder = "email"
)

var accessOrders = map[AccessOrder]string{
	"":               "array_position(ARRAY['owner','administrator','member']::varchar[], ta.role), u.name, ta.id",
	AccessOrderRole:  "array_position(ARRAY['owner','administrator','member']::varchar[], ta.role), u.name, ta.id",
	AccessOrderName:  "u.name, u.email, ta.id",
	AccessOrderEmail: "u.email, ta.id",
}

// AccessFilter narrows a team's accesses.
type AccessFilter struct {
	Search string // fragment of the member's name or email
	Order  AccessOrder
	Shape  AccessShape
	Page
}

// AccessShape is how much of each access a page reads. The zero value reads everything; the
// GraphQL layer narrows it to what an operation selects, since the widest statement costs
// PostgreSQL about twice the narrowest for a page of 50 members.
type AccessShape struct {
	// NoCounts skips counting the team's accesses (the list's Total, left 0) and owners (the
	// accesses' Owners, which their abilities need). HasNext then comes from reading one row
	// more than the page.
	NoCounts bool
	// BriefUser reads only the id, email and name of each access's user: the other fields of
	// TeamAccessView.User are left zero.
	BriefUser bool
	// NoDates leaves the accesses' CreatedAt and UpdatedAt zero.
	NoDates bool
}

// TeamAccessesByTeamIDs returns one page of accesses for each of the teams that the actor
// may see, with their users, in one statement whatever the number of teams (a page per team).
// Teams the actor may not see, and teams with no access that the filter keeps, get no entry.
// The users come with the accesses so that a page of teams does not need a second round of
// user lookups, whose batching would depend on timing.
func (s *Store) TeamAccessesByTeamIDs(ctx context.Context, actor Actor, teamIDs []uuid.UUID, f AccessFilter) (map[uuid.UUID]List[TeamAccessView], error) {
	q := &stmt{}
	q.add("WITH v AS (SELECT t.id AS team_id, ", roleCode("va.role"), " AS viewer_role FROM teams t")
	visible := visibleTeamsSQL(q, actor, withAncestors)
	q.add(" WHERE ", visible, " AND t.id = ANY(", q.arg(uuidsArg(teamIDs)), "::uuid[]))")
	return s.teamAccessPages(ctx, q, f, actor.accessViewer(), nil)
}

// AdminTeamAccessesByTeamIDs is TeamAccessesByTeamIDs for staff: every team among teamIDs,
// with the abilities staff have (staffAccessAbilities). The caller checks that the principal is
// staff.
func (s *Store) AdminTeamAccessesByTeamIDs(ctx context.Context, staff StaffActor, teamIDs []uuid.UUID, f AccessFilter) (map[uuid.UUID]List[TeamAccessView], error) {
	if err := staff.check(); err != nil {
		return nil, err
	}
	q := &stmt{}
	q.add("WITH v AS (SELECT t.id AS team_id, 0 AS viewer_role FROM teams t WHERE t.id = ANY(", q.arg(uuidsArg(teamIDs)), "::uuid[]))")
	return s.teamAccessPages(ctx, q, f, func(a *TeamAccessView) { a.asStaff = true }, nil)
}

// accessViewer sets who views an access: the actor, through a service or not.
func (a Actor) accessViewer() func(*TeamAccessView) {
	return func(v *TeamAccessView) { v.ViewerID, v.viaService = a.UserID, a.viaService() }
}

// userSlab is how many users teamAccessPages allocates at once: a page's users take one
// allocation or a few, and a small page does not pay for a big one.
const userSlab = 16

// teamAccessPages pages the accesses of the teams that q's CTE v selects (team_id, and the
// viewer's role code in it), and view sets who views each one. A viewer whose role is
// inherited sees no access: as in People, a team's members are shown to its direct members only. For each team, one lateral
// subquery counts the accesses the filter keeps and the owners (an index-only scan of
// team_accesses_team_id_role_idx without a search; not at all with f.Shape.NoCounts), and
// another reads only the page: LIMIT and OFFSET in the team's order, with the page's users.
//
// With teams, v also carries the teams' own columns (teamViewColumns), and the statement is the
// page of teams and their accesses at once: each team goes to teams.
func (s *Store) teamAccessPages(ctx context.Context, q *stmt, f AccessFilter, view func(*TeamAccessView), teams *teamRows) (map[uuid.UUID]List[TeamAccessView], error) {
	if err := CheckPage(f.Page); err != nil {
		return nil, err
	}
	order, ok := accessOrders[f.Order]
	if !ok {
		return nil, invalid("orderBy", "unknown order")
	}
	search, total, users := "", "count(*)", ""
	if term := searchTerm(f.Search); term != "" {
		p := q.arg(term)
		search = " AND (search_key(u.name) LIKE search_key(" + p + ") OR search_key(u.email) LIKE search_key(" + p + "))"
		total, users = "count(*) FILTER (WHERE true"+search+")", " JOIN users u ON u.id = ta.user_id"
	}
	counts, limit, userSQL := true, f.Limit, userColumnsSQL
	if f.Shape.NoCounts {
		counts, limit = false, f.Limit+1
	}
	if f.Shape.BriefUser {
		userSQL = briefUserColumnsSQL
	}
	dates := "ta.created_at, ta.updated_at, "
	if f.Shape.NoDates {
		dates = ""
	}
	q.add(" SELECT v.team_id, v.viewer_role")
	if teams != nil {
		q.add(", ", teams.columns())
	}
	if counts {
		q.add(", n.total, n.owners")
	}
	q.add(", a.* FROM v")
	if counts {
		q.add(` CROSS JOIN LATERAL (
			SELECT `, total, ` AS total, count(*) FILTER (WHERE ta.role = 'owner') AS owners
			FROM team_accesses ta`, users, ` WHERE ta.team_id = v.team_id AND v.viewer_role <> `, inheritedCode, `
		) n`)
	}
	q.add(` LEFT JOIN LATERAL (
			SELECT ta.id, `, dates, roleCode("ta.role"), `, `, userSQL, `
			FROM team_accesses ta JOIN users u ON u.id = ta.user_id
			WHERE ta.team_id = v.team_id AND v.viewer_role <> `, inheritedCode, search, `
			ORDER BY `, order, ` LIMIT `, q.arg(limit), ` OFFSET `, q.arg(f.Offset), `
		) a ON true`)
	var (
		team                 uuid.UUID
		viewer, all, owners  int32
		id                   pgtype.UUID
		createdAt, updatedAt pgtype.Timestamptz
		role                 pgtype.Int4
		u                    userCols
		slab                 []User // the users, allocated userSlab at a time
	)
	dest := []any{uuidDest(&team), &viewer}
	if teams != nil {
		dest = append(dest, teams.dest()...)
	}
	if counts {
		dest = append(dest, &all, &owners)
	}
	dest = append(dest, &id)
	if !f.Shape.NoDates {
		dest = append(dest, &createdAt, &updatedAt)
	}
	dest = append(dest, &role)
	if f.Shape.BriefUser {
		dest = append(dest, u.briefDest()...)
	} else {
		dest = append(dest, u.dest()...)
	}
	out := map[uuid.UUID]List[TeamAccessView]{}
	// A team's rows come in its page's order: each is the output of its lateral subquery.
	err := s.prepared(ctx, q.String(), q.args, func(r pgx.Rows) error {
		if err := r.Scan(dest...); err != nil {
			return err
		}
		if teams != nil {
			teams.add(team, viewer)
		}
		if (counts && all == 0) || (!counts && !id.Valid) {
			return nil // no access the filter keeps: the team gets no entry
		}
		l, ok := out[team]
		if !ok {
			n := min(f.Limit, 16) // without the counts, the page's size is unknown: append grows it
			if counts {
				n = min(f.Limit, max(int(all)-f.Offset, 0))
			}
			l = List[TeamAccessView]{Offset: f.Offset, Items: make([]TeamAccessView, 0, n)}
			if counts {
				l.Total, l.HasNext = int(all), f.Offset+f.Limit < int(all)
			}
		}
		switch {
		case !id.Valid: // a page past the end: the list's size, no items
			out[team] = l
			return nil
		case len(l.Items) == f.Limit: // the row past the page (NoCounts)
			l.HasNext = true
			out[team] = l
			return nil
		}
		if len(slab) == cap(slab) {
			slab = make([]User, 0, userSlab)
		}
		slab = append(slab, u.user())
		a := TeamAccessView{
			TeamAccess: TeamAccess{ID: id.Bytes, CreatedAt: createdAt.Time, UpdatedAt: updatedAt.Time, TeamID: team, UserID: u.id.Bytes, Role: roleOf(role.Int32)},
			ViewerRole: roleOf(viewer), Owners: int(owners), User: &slab[len(slab)-1],
		}
		view(&a)
		l.Items = append(l.Items, a)
		out[team] = l
		return nil
	})
	if err != nil {
		return nil, fromDB("select team accesses", err)
	}
	return out, nil
}

// pagesByTeam splits the rows of a window query over several teams into one page per team.
// The query also returns each team's last row (rn = total_count), so that a page past the end
// still knows the size of its list; that row belongs to the page only if it is in the window.
func pagesByTeam[R counted, T any](p Page, rows []R, key func(R) (team uuid.UUID, rank int), item func(R) T) map[uuid.UUID]List[T] {
	byTeam, totals := map[uuid.UUID][]R{}, map[uuid.UUID]int{}
	for _, r := range rows {
		team, rank := key(r)
		totals[team] = r.total()
		if rank > p.Offset {
			byTeam[team] = append(byTeam[team], r)
		}
	}
	out := make(map[uuid.UUID]List[T], len(totals))
	for team, total := range totals {
		l := newList(p, byTeam[team], item)
		l.Total = total
		out[team] = l
	}
	return out
}

// userColumns selects every column of User from alias, each renamed with prefix, for scanning
// into a field tagged embed:prefix. The list comes from the model, so a new column cannot be
// forgotten here.
func (s *Store) userColumns(alias, prefix string) string {
	fields := s.db.Table(reflect.TypeFor[User]()).Fields
	cols := make([]string, len(fields))
	for i, f := range fields {
		cols[i] = fmt.Sprintf("%s.%s AS %s%s", alias, f.Name, prefix, f.Name)
	}
	return strings.Join(cols, ", ")
}

// accessForUpdate locks the access's team and returns the access with the actor's view of it.
// An access of a team the actor does not belong to, or sees only as an ancestor of theirs, is
// KindNotFound.
func accessForUpdate(ctx context.Context, tx bun.IDB, actor Actor, id uuid.UUID) (*TeamAccessView, error) {
	a := &TeamAccessView{ViewerID: actor.UserID, viaService: actor.viaService()}
	var teamID uuid.UUID
	if err := tx.NewSelect().TableExpr("team_accesses").Column("team_id").Where("id = ?", id).Scan(ctx, &teamID); err != nil {
		return nil, notFoundOr(err, "team access", "select team access")
	}
	role, err := lockTeam(ctx, tx, actor, teamID)
	if err != nil {
		return nil, notFoundOr(err, "team access", "lock team")
	} else if role == RoleInherited {
		return nil, notFound("team access") // a team's accesses are shown to its direct members only
	}
	// Read again under the lock: the access may have changed while we waited.
	if err := tx.NewSelect().Model(&a.TeamAccess).Where("ta.id = ?", id).Scan(ctx); err != nil {
		return nil, notFoundOr(err, "team access", "select team access")
	}
	if a.Owners, err = countOwners(ctx, tx, teamID); err != nil {
		return nil, err
	}
	a.ViewerRole = role
	return a, nil
}

// CreateTeamAccess adds an active user to a team. Owners and administrators manage accesses;
// only owners grant the owner role.
func (s *Store) CreateTeamAccess(ctx context.Context, actor Actor, teamID, userID uuid.UUID, role Role) (*TeamAccessView, error) {
	if !role.Valid() {
		return nil, invalid("role", "unknown role")
	}
	a := &TeamAccessView{ViewerID: actor.UserID, viaService: actor.viaService()}
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		viewer, err := lockTeam(ctx, tx, actor, teamID)
		if err != nil {
			return err
		}
		if actor.viaService() {
			return forbidden("a service provider cannot add members to a team")
		}
		if !teamAbilities(viewer, false).ManageAccesses {
			return forbidden("you are not allowed to manage accesses for this team")
		}
		if !canGrant(viewer, role) {
			return forbidden("only owners of a team can make other users owners")
		}
		err = tx.NewRaw(`INSERT INTO team_accesses (team_id, user_id, role)
			SELECT ?, id, ? FROM users WHERE id = ? AND is_active RETURNING *`, teamID, role, userID).Scan(ctx, &a.TeamAccess)
		if err != nil {
			return notFoundOr(err, "user", "insert team access")
		}
		a.ViewerRole = viewer
		if a.Owners, err = countOwners(ctx, tx, teamID); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "createTeamAccess", []uuid.UUID{a.ID, teamID, userID}, changes{"role": role})
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// SetTeamAccessRole changes the role of an access, as its abilities allow: see accessAbilities.
func (s *Store) SetTeamAccessRole(ctx context.Context, actor Actor, id uuid.UUID, role Role) (*TeamAccessView, error) {
	if !role.Valid() {
		return nil, invalid("role", "unknown role")
	}
	var a *TeamAccessView
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if a, err = accessForUpdate(ctx, tx, actor, id); err != nil {
			return err
		}
		// Setting the current role again is refused like any role outside SetRoleTo (People
		// answers 403 too): an update succeeds exactly when the abilities list the role, so a
		// caller without rights on an access never gets a success from a no-op update.
		if ab := a.Abilities(); !slices.Contains(ab.SetRoleTo, role) {
			switch {
			case a.Role == RoleOwner && a.Owners <= 1 && a.UserID == actor.UserID:
				return forbidden("a team must keep at least one owner")
			case a.Role == role && len(ab.SetRoleTo) > 0:
				return forbidden("this access already has this role")
			}
			return forbidden("you are not allowed to set this role for this access")
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
		return audit(ctx, tx, actor, "updateTeamAccess", []uuid.UUID{id, a.TeamID, a.UserID}, changes{"role": role})
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// DeleteTeamAccess removes a user from a team, as the access's abilities allow. It returns the
// team's id.
func (s *Store) DeleteTeamAccess(ctx context.Context, actor Actor, id uuid.UUID) (uuid.UUID, error) {
	var teamID uuid.UUID
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		a, err := accessForUpdate(ctx, tx, actor, id)
		if err != nil {
			return err
		}
		if !a.Abilities().Delete {
			if a.Role == RoleOwner && a.Owners <= 1 && a.UserID == actor.UserID {
				return forbidden("a team must keep at least one owner")
			}
			return forbidden("you are not allowed to remove this access")
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM team_accesses WHERE id = ?", id); err != nil {
			return fromDB("delete team access", err)
		}
		teamID = a.TeamID
		return audit(ctx, tx, actor, "deleteTeamAccess", []uuid.UUID{id, a.TeamID, a.UserID}, changes{"role": a.Role})
	})
	return teamID, err
}
