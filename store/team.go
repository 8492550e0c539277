package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// Team is a group of users with roles, optionally shared with service providers.
type Team struct {
	bun.BaseModel `bun:"table:teams,alias:t"`

	ID                   uuid.UUID  `bun:"id,pk,type:uuid,default:gen_random_uuid()"`
	CreatedAt            time.Time  `bun:"created_at,nullzero,notnull,default:now()"`
	UpdatedAt            time.Time  `bun:"updated_at,nullzero,notnull,default:now()"`
	Name                 string     `bun:"name,notnull"`
	OrganizationID       *uuid.UUID `bun:"organization_id,type:uuid"`
	IsVisibleAllServices bool       `bun:"is_visible_all_services,notnull"`
	ExternalID           uuid.UUID  `bun:"external_id,type:uuid,nullzero,notnull,default:gen_random_uuid()"`
	// The tree, kept by the database (migrations/0011_team_tree.up.sql) as People's treebeard
	// keeps it: Path is 5-character base-62 steps from the root, Depth is 1 for a root.
	ParentID *uuid.UUID `bun:"parent_id,type:uuid"`
	Path     string     `bun:"path,nullzero"`
	Depth    int        `bun:"depth,nullzero"`
	Numchild int        `bun:"numchild,notnull"`
}

// TeamView is a team as one viewer sees it: with the viewer's role in it, RoleInherited for a
// strict ancestor of a team the viewer is in.
type TeamView struct {
	Team       `bun:",extend"`
	ViewerRole Role `bun:"viewer_role,scanonly"`
	viaService bool // the viewer acts through a partner service's token
}

// Abilities is what the viewer may do with the team.
func (t TeamView) Abilities() TeamAbilities { return teamAbilities(t.ViewerRole, t.viaService) }

// Role is the viewer's role as clients see it: an inherited role reads as a member, as People
// counts a missing access on a shallower team of the tree; Inherited tells them apart.
func (t TeamView) Role() Role {
	if t.ViewerRole == RoleInherited {
		return RoleMember
	}
	return t.ViewerRole
}

// Inherited reports whether the viewer sees the team only as an ancestor of one of theirs.
func (t TeamView) Inherited() bool { return t.ViewerRole == RoleInherited }

// TeamOrder is the order of a team list.
type TeamOrder string

// Team orders; People's default is newest first.
const (
	TeamOrderCreatedDesc TeamOrder = "-created_at"
	TeamOrderCreatedAsc  TeamOrder = "created_at"
	TeamOrderNameAsc     TeamOrder = "name"
	TeamOrderNameDesc    TeamOrder = "-name"
)

var teamOrders = map[TeamOrder]string{
	"":                   "t.created_at DESC, t.id DESC",
	TeamOrderCreatedDesc: "t.created_at DESC, t.id DESC",
	TeamOrderCreatedAsc:  "t.created_at ASC, t.id ASC",
	TeamOrderNameAsc:     "t.name ASC, t.id ASC",
	TeamOrderNameDesc:    "t.name DESC, t.id DESC",
}

// TeamFilter narrows Teams.
type TeamFilter struct {
	Search string
	Order  TeamOrder
	Shape  TeamShape // of TeamsWithAccesses
	// IncludeAncestors adds the strict ancestors of the actor's teams (RoleInherited); a list
	// holds only the actor's own teams by default.
	IncludeAncestors bool
	Page
}

// TeamShape is how much of each team a read with its accesses takes (TeamsWithAccesses,
// TeamWithAccesses): the zero value reads every column.
type TeamShape struct {
	// Brief reads only the team's id and name, with the viewer's role: its dates, organization,
	// visibility to services and external id are left zero.
	Brief bool
}

// Which teams an actor sees, written once for both ways the store reads teams (bun's builder
// in visibleTeams, the prepared hot reads in visibleTeamsSQL): a team the actor has an access
// to, joined as va so that callers read va.role, and for a service provider's token only the
// teams shared with that service or with all services. Each "?" is the one argument that
// follows it: the actor's user id, then the calling service provider's id.
//
// With the tree, va also holds the strict ancestors of the actor's teams, with the role
// 'inherited' (RoleInherited: read-only). People shows every shallower team of the same root
// tree, uncles included; only the ancestors are shown here. As in People, ancestors come only
// through teams of the actor's own organization. The service filter applies to each team seen,
// the ancestors included. The tree's rule has two forms, kept one rule by
// TestVisibleTeamsOneRule:
//
//   - visibleTreeJoin, for lists (withAncestors): each of the actor's accesses gives its
//     team's path prefixes, one a level, matched on the unique path index. The cost is the
//     actor's accesses times their depth, whatever the size of the directory, once a list.
//   - visibleTreeOneJoin, for reads by id (ancestorsByID: TeamByID, TeamWithAccesses,
//     lockTeam), where the list form would build and sort every prefix of the actor's teams to
//     keep one. It decides for t alone: first the actor's access to t, one index probe; only
//     without one, an access of the actor to a strict descendant of t, among the actor's
//     accesses. coalesce stops at its first argument that is not null, so the direct role wins,
//     as ORDER BY g = d.depth DESC makes it win in the list form, and a member reading their
//     team (W3 of make bench) pays the probe alone. The list form's d.organization_id =
//     u.organization_id compares t's organization instead: a tree never crosses organizations
//     (migrations/0011), and so the planner has no way in through the organization's teams,
//     however many. OFFSET 0 keeps the subquery whole: pulled up into the statement, its
//     coalesce would run again at each use of va.role.
const (
	visibleTeamJoin = "JOIN team_accesses AS va ON va.team_id = t.id AND va.user_id = ?"
	visibleTreeJoin = `JOIN (SELECT DISTINCT ON (1) left(d.path, 5 * g) AS path,
			CASE WHEN g = d.depth THEN a.role ELSE 'inherited' END AS role
		FROM team_accesses a JOIN teams d ON d.id = a.team_id JOIN users u ON u.id = a.user_id
		CROSS JOIN generate_series(1, d.depth) g
		WHERE a.user_id = ? AND (g = d.depth OR d.organization_id = u.organization_id)
		ORDER BY 1, g = d.depth DESC) AS va ON va.path = t.path`
	visibleTreeOneJoin = `JOIN LATERAL (SELECT coalesce(
			(SELECT a.role FROM team_accesses a WHERE a.user_id = me.id AND a.team_id = t.id),
			(SELECT 'inherited' FROM team_accesses a JOIN teams d ON d.id = a.team_id JOIN users u ON u.id = a.user_id
				WHERE a.user_id = me.id AND u.organization_id = t.organization_id AND d.path LIKE t.path || '_%' LIMIT 1)) AS role
		FROM (SELECT ?::uuid AS id) me OFFSET 0) AS va ON va.role IS NOT NULL`
	visibleTeamService = "(t.is_visible_all_services OR EXISTS (SELECT 1 FROM team_service_providers tsp WHERE tsp.team_id = t.id AND tsp.service_provider_id = ?))"
	linkedTeamService  = "EXISTS (SELECT 1 FROM team_service_providers tsp WHERE tsp.team_id = t.id AND tsp.service_provider_id = ?)"
)

// serviceCondition is the service filter of actor (through a service's token): the teams
// shared with it or with all services, or with Actor.LinkedOnly those linked to it only.
func (a Actor) serviceCondition() string {
	if a.LinkedOnly {
		return linkedTeamService
	}
	return visibleTeamService
}

// teamScope is which teams a read covers, and for the tree, the form of the rule that fits it.
type teamScope uint8

const (
	ownTeams      teamScope = iota // the actor's own teams
	withAncestors                  // and their strict ancestors, for a list (visibleTreeJoin)
	ancestorsByID                  // the same teams, for a read of one team by id (visibleTreeOneJoin)
)

// listScope is the scope of a list of teams, with the ancestors or not.
func listScope(ancestors bool) teamScope {
	if ancestors {
		return withAncestors
	}
	return ownTeams
}

func (sc teamScope) join() string {
	switch sc {
	case withAncestors:
		return visibleTreeJoin
	case ancestorsByID:
		return visibleTreeOneJoin
	}
	return visibleTeamJoin
}

// visibleTeams restricts q (over teams t) to the teams actor sees in scope.
func visibleTeams(q *bun.SelectQuery, actor Actor, scope teamScope) *bun.SelectQuery {
	q = q.Join(scope.join(), actor.UserID)
	if actor.viaService() {
		q = q.Where(actor.serviceCondition(), actor.ServiceProviderID)
	}
	return q
}

// visibleTeamsSQL is visibleTeams for a prepared statement (prepared.go): written after
// "FROM teams t", it joins the actor's access as va, and returns the condition to AND into the
// WHERE clause.
func visibleTeamsSQL(q *stmt, actor Actor, scope teamScope) (cond string) {
	q.add(" ", strings.Replace(scope.join(), "?", q.arg(uuidArg(actor.UserID)), 1))
	if actor.viaService() {
		return strings.Replace(actor.serviceCondition(), "?", q.arg(uuidArg(actor.ServiceProviderID)), 1)
	}
	return "true"
}

// teamColumnsSQL are the columns of Team from the table aliased t, in teamDest's order.
const teamColumnsSQL = "t.id, t.created_at, t.updated_at, t.name, t.organization_id, t.is_visible_all_services, t.external_id, t.parent_id, t.path, t.depth, t.numchild"

// teamDest returns the scan destinations of teamColumnsSQL: t's fields, and org and parent for
// its nullable organization and parent (set t.OrganizationID = uuidPtr(*org) and t.ParentID =
// uuidPtr(*parent) after the scan).
func teamDest(t *Team, org, parent *pgtype.UUID) []any {
	return []any{uuidDest(&t.ID), &t.CreatedAt, &t.UpdatedAt, &t.Name, org, &t.IsVisibleAllServices, uuidDest(&t.ExternalID),
		parent, &t.Path, &t.Depth, &t.Numchild}
}

// Teams lists the teams the actor may see.
func (s *Store) Teams(ctx context.Context, actor Actor, f TeamFilter) (List[TeamView], error) {
	if err := CheckPage(f.Page); err != nil {
		return List[TeamView]{}, err
	}
	order, ok := teamOrders[f.Order]
	if !ok {
		return List[TeamView]{}, invalid("orderBy", "unknown order")
	}
	term := searchTerm(f.Search)
	q := &stmt{}
	q.add("SELECT ", teamColumnsSQL, ", ", roleCode("va.role"), ", count(*) OVER () FROM teams t")
	visible := visibleTeamsSQL(q, actor, listScope(f.IncludeAncestors))
	q.add(" WHERE ", visible)
	if term != "" {
		q.add(" AND search_key(t.name) LIKE search_key(", q.arg(term), ")")
	}
	q.add(" ORDER BY ", order, " LIMIT ", q.arg(f.Limit+1), " OFFSET ", q.arg(f.Offset))
	var (
		t           TeamView
		org, parent pgtype.UUID
		role, total int32
	)
	t.viaService = actor.viaService()
	dest := append(teamDest(&t.Team, &org, &parent), &role, &total)
	l, err := preparedPage(ctx, s, q.String(), q.args, f.Page, dest, func() (TeamView, int) {
		t.OrganizationID, t.ParentID, t.ViewerRole = uuidPtr(org), uuidPtr(parent), roleOf(role)
		return t, int(total)
	})
	if err != nil {
		return List[TeamView]{}, fromDB("select teams", err)
	}
	if len(l.Items) == 0 && f.Offset > 0 {
		if l.Total, err = s.countTeams(ctx, actor, listScope(f.IncludeAncestors), term); err != nil {
			return List[TeamView]{}, err
		}
	}
	return l, nil
}

// countTeams counts the teams the actor may see whose name matches term (all when it is
// empty). Past the end of a list the window count has no row to ride on: it is counted apart,
// so that the total stays the size of the list.
func (s *Store) countTeams(ctx context.Context, actor Actor, scope teamScope, term string) (int, error) {
	q := s.db.NewSelect().TableExpr("teams AS t")
	if term != "" {
		q = q.Where("search_key(t.name) LIKE search_key(?)", term)
	}
	n, err := visibleTeams(q, actor, scope).Count(ctx)
	if err != nil {
		return 0, fromDB("count teams", err)
	}
	return int(n), nil
}

// TeamsWithAccesses is Teams with a page of each team's accesses (TeamAccessesByTeamIDs with
// af), read in one statement: a page of teams and their members cost one round trip.
func (s *Store) TeamsWithAccesses(ctx context.Context, actor Actor, f TeamFilter, af AccessFilter) (List[TeamView], map[uuid.UUID]List[TeamAccessView], error) {
	if err := CheckPage(f.Page); err != nil {
		return List[TeamView]{}, nil, err
	}
	order, ok := teamOrders[f.Order]
	if !ok {
		return List[TeamView]{}, nil, invalid("orderBy", "unknown order")
	}
	term := searchTerm(f.Search)
	q := &stmt{}
	q.add("WITH v AS (SELECT t.id AS team_id, ", roleCode("va.role"), " AS viewer_role, ", teamViewColumns(f.Shape),
		", count(*) OVER () AS teams_total, row_number() OVER (ORDER BY ", order, ") AS pos FROM teams t")
	visible := visibleTeamsSQL(q, actor, listScope(f.IncludeAncestors))
	q.add(" WHERE ", visible)
	if term != "" {
		q.add(" AND search_key(t.name) LIKE search_key(", q.arg(term), ")")
	}
	q.add(" ORDER BY ", order, " LIMIT ", q.arg(f.Limit), " OFFSET ", q.arg(f.Offset), ")")
	teams := &teamRows{viaService: actor.viaService(), shape: f.Shape}
	pages, err := s.teamAccessPages(ctx, q, af, actor.accessViewer(), teams)
	if err != nil {
		return List[TeamView]{}, nil, err
	}
	l := teams.list(f.Page)
	if len(l.Items) == 0 && f.Offset > 0 {
		if l.Total, err = s.countTeams(ctx, actor, listScope(f.IncludeAncestors), term); err != nil {
			return List[TeamView]{}, nil, err
		}
	}
	return l, pages, nil
}

// TeamWithAccesses is TeamByID with a page of the team's accesses, read in one statement.
func (s *Store) TeamWithAccesses(ctx context.Context, actor Actor, id uuid.UUID, shape TeamShape, af AccessFilter) (*TeamView, List[TeamAccessView], error) {
	q := &stmt{}
	q.add("WITH v AS (SELECT t.id AS team_id, ", roleCode("va.role"), " AS viewer_role, ", teamViewColumns(shape),
		", 1::bigint AS teams_total, 1::bigint AS pos FROM teams t")
	visible := visibleTeamsSQL(q, actor, ancestorsByID)
	q.add(" WHERE ", visible, " AND t.id = ", q.arg(uuidArg(id)), ")")
	teams := &teamRows{viaService: actor.viaService(), shape: shape}
	pages, err := s.teamAccessPages(ctx, q, af, actor.accessViewer(), teams)
	switch {
	case err != nil:
		return nil, List[TeamAccessView]{}, err
	case len(teams.items) == 0:
		return nil, List[TeamAccessView]{}, notFound("team")
	}
	return &teams.items[0], pages[id], nil
}

// teamViewColumns are the columns of Team from t other than its id, for the CTE v of a
// statement that reads teams with their accesses, as shape wants them; teamRows reads them
// back from v (teamRows.columns), with the list's size and each team's position in it.
func teamViewColumns(shape TeamShape) string {
	if shape.Brief {
		return "t.name"
	}
	return "t.name, t.created_at, t.updated_at, t.organization_id, t.is_visible_all_services, t.external_id, t.parent_id, t.path, t.depth, t.numchild"
}

// teamRows collects the teams of a statement that reads teams with their accesses: a team
// comes on each row of its page of accesses, or on one row when the page is empty.
type teamRows struct {
	viaService bool
	shape      TeamShape

	row         TeamView // the row's team, scanned
	org, parent pgtype.UUID
	total, pos  int64

	items []TeamView
	poses []int64
}

// columns are the columns of v that dest receives.
func (r *teamRows) columns() string {
	if r.shape.Brief {
		return "v.name, v.teams_total, v.pos"
	}
	return "v.name, v.created_at, v.updated_at, v.organization_id, v.is_visible_all_services, v.external_id, v.parent_id, v.path, v.depth, v.numchild, v.teams_total, v.pos"
}

func (r *teamRows) dest() []any {
	t := &r.row.Team
	if r.shape.Brief {
		return []any{&t.Name, &r.total, &r.pos}
	}
	return []any{&t.Name, &t.CreatedAt, &t.UpdatedAt, &r.org, &t.IsVisibleAllServices, uuidDest(&t.ExternalID),
		&r.parent, &t.Path, &t.Depth, &t.Numchild, &r.total, &r.pos}
}

// add keeps the row's team, once.
func (r *teamRows) add(id uuid.UUID, viewer int32) {
	if n := len(r.items); n > 0 && r.items[n-1].ID == id {
		return // the usual case: a team's rows come together
	}
	for i := range r.items {
		if r.items[i].ID == id {
			return
		}
	}
	t := r.row
	t.ID, t.OrganizationID, t.ParentID, t.ViewerRole, t.viaService = id, uuidPtr(r.org), uuidPtr(r.parent), roleOf(viewer), r.viaService
	r.items, r.poses = append(r.items, t), append(r.poses, r.pos)
}

// list is the page of teams p asked for, in the list's order.
func (r *teamRows) list(p Page) List[TeamView] {
	if !slices.IsSorted(r.poses) {
		byPos := make(map[uuid.UUID]int64, len(r.items))
		for i, t := range r.items {
			byPos[t.ID] = r.poses[i]
		}
		slices.SortFunc(r.items, func(a, b TeamView) int { return cmp.Compare(byPos[a.ID], byPos[b.ID]) })
	}
	l := List[TeamView]{Items: r.items, Offset: p.Offset, Total: int(r.total)}
	if l.Items == nil {
		l.Items = []TeamView{}
	}
	l.HasNext = p.Offset+len(l.Items) < l.Total
	return l
}

// TeamByID returns a team the actor may see; any other is KindNotFound.
func (s *Store) TeamByID(ctx context.Context, actor Actor, id uuid.UUID) (*TeamView, error) {
	q := &stmt{}
	q.add("SELECT ", teamColumnsSQL, ", ", roleCode("va.role"), " FROM teams t")
	visible := visibleTeamsSQL(q, actor, ancestorsByID)
	q.add(" WHERE ", visible, " AND t.id = ", q.arg(uuidArg(id)))
	t := &TeamView{viaService: actor.viaService()}
	var (
		org, parent pgtype.UUID
		role        int32
	)
	found, err := s.preparedRow(ctx, q.String(), q.args, append(teamDest(&t.Team, &org, &parent), &role)...)
	switch {
	case err != nil:
		return nil, fromDB("select team", err)
	case !found:
		return nil, notFound("team")
	}
	t.OrganizationID, t.ParentID, t.ViewerRole = uuidPtr(org), uuidPtr(parent), roleOf(role)
	return t, nil
}

// TeamsByIDs returns the teams among ids that the actor may see, for loaders.
func (s *Store) TeamsByIDs(ctx context.Context, actor Actor, ids []uuid.UUID) ([]TeamView, error) {
	var ts []TeamView
	err := visibleTeams(s.db.NewSelect().Model(&ts).ColumnExpr("t.*, va.role AS viewer_role"), actor, withAncestors).
		Where("t.id IN (?)", bun.List(ids)).Scan(ctx)
	if err != nil {
		return nil, fromDB("select teams", err)
	}
	for i := range ts {
		ts[i].viaService = actor.viaService()
	}
	return ts, nil
}

// lockTeam takes the team's row lock and returns the actor's role in it (RoleInherited for an
// ancestor of one of the actor's teams, which allows no change). Every change to a
// team's accesses or invitations starts here, so that concurrent changes to one team run one
// after the other and each sees the accesses the previous one left: this is what makes "a team
// never loses its last owner" hold when two owners step down at the same moment.
func lockTeam(ctx context.Context, tx bun.IDB, actor Actor, teamID uuid.UUID) (Role, error) {
	var role Role
	err := visibleTeams(tx.NewSelect().TableExpr("teams AS t").ColumnExpr("va.role"), actor, ancestorsByID).
		Where("t.id = ?", teamID).For("NO KEY UPDATE OF t").Scan(ctx, &role)
	if err != nil {
		return "", notFoundOr(err, "team", "lock team")
	}
	return role, nil
}

func countOwners(ctx context.Context, tx bun.IDB, teamID uuid.UUID) (int, error) {
	n, err := tx.NewSelect().TableExpr("team_accesses").Where("team_id = ? AND role = ?", teamID, RoleOwner).Count(ctx)
	if err != nil {
		return 0, fromDB("count owners", err)
	}
	return int(n), nil
}

// NewTeam is a team to create.
type NewTeam struct {
	Name               string
	ServiceProviderIDs []uuid.UUID
	// ParentID puts the team under a team of the actor's organization, of which the actor is a
	// direct owner or administrator; nil makes a root.
	ParentID *uuid.UUID
	// IsVisibleAllServices nil takes People's default for the entry point: true in a browser
	// session (People's frontend serializer), false through a partner service's token.
	IsVisibleAllServices *bool
}

// CreateTeam creates a team in the actor's organization with the actor as its owner. Through a
// service provider's token the team is linked to that service, whatever the input says.
func (s *Store) CreateTeam(ctx context.Context, actor Actor, in NewTeam) (*TeamView, error) {
	name, err := checkName(in.Name, 100)
	if err != nil {
		return nil, err
	}
	sps := in.ServiceProviderIDs
	if actor.viaService() {
		sps = []uuid.UUID{actor.ServiceProviderID}
	}
	visibleAll := !actor.viaService()
	if in.IsVisibleAllServices != nil {
		visibleAll = *in.IsVisibleAllServices
	}
	t := &TeamView{ViewerRole: RoleOwner, viaService: actor.viaService()}
	err = s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if in.ParentID != nil {
			if err := lockTeamTree(ctx, tx, *in.ParentID); err != nil {
				return err
			}
			if err := lockParentTeam(ctx, tx, actor, *in.ParentID); err != nil {
				return err
			}
		}
		err := tx.NewRaw(`INSERT INTO teams (name, organization_id, parent_id, is_visible_all_services)
			SELECT ?, organization_id, ?, ? FROM users WHERE id = ? AND is_active
			RETURNING *`, name, in.ParentID, visibleAll, actor.UserID).Scan(ctx, &t.Team)
		if err != nil {
			return notFoundOr(err, "user", "insert team")
		}
		if !actor.viaService() {
			if err := checkOrganizationServices(ctx, tx, t.OrganizationID, sps); err != nil {
				return err
			}
		}
		var access uuid.UUID
		if err := tx.QueryRowContext(ctx, "INSERT INTO team_accesses (team_id, user_id, role) VALUES (?, ?, ?) RETURNING id",
			t.ID, actor.UserID, RoleOwner).Scan(&access); err != nil {
			return fromDB("insert owner access", err)
		}
		if err := setTeamServiceProviders(ctx, tx, t.ID, sps); err != nil {
			return err
		}
		c := changes{"name": name, "serviceProviderIds": nonNil(sps), "isVisibleAllServices": visibleAll}
		if in.ParentID != nil {
			c["parentId"] = *in.ParentID
		}
		return audit(ctx, tx, actor, "createTeam", []uuid.UUID{t.ID, access}, c)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

func setTeamServiceProviders(ctx context.Context, tx bun.IDB, teamID uuid.UUID, sps []uuid.UUID) error {
	if _, err := tx.ExecContext(ctx, "DELETE FROM team_service_providers WHERE team_id = ? AND NOT service_provider_id = ANY (?)", teamID, pgUUIDs(sps)); err != nil {
		return fromDB("unlink service providers", err)
	}
	if len(sps) == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO team_service_providers (team_id, service_provider_id)
		SELECT ?, unnest(?::uuid[]) ON CONFLICT DO NOTHING`, teamID, pgUUIDs(sps))
	if err != nil {
		return fromDB("link service providers", err)
	}
	return nil
}

// TeamUpdate holds the team fields to change; nil means unchanged.
type TeamUpdate struct {
	Name                 *string
	ServiceProviderIDs   *[]uuid.UUID
	IsVisibleAllServices *bool
}

// UpdateTeam renames a team, shares it with every service or not, or changes its service
// providers (among those of its organization); owners and administrators only. Through a
// service provider's token the services may not change: People's partners cannot either.
func (s *Store) UpdateTeam(ctx context.Context, actor Actor, id uuid.UUID, up TeamUpdate) (*TeamView, error) {
	if up.Name != nil {
		name, err := checkName(*up.Name, 100)
		if err != nil {
			return nil, err
		}
		up.Name = &name
	}
	if actor.viaService() && up.ServiceProviderIDs != nil {
		return nil, forbidden("a service provider cannot change the services of a team")
	}
	t := &TeamView{viaService: actor.viaService()}
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		role, err := lockTeam(ctx, tx, actor, id)
		if err != nil {
			return err
		}
		if !teamAbilities(role, actor.viaService()).Update {
			return forbidden("you are not allowed to update this team")
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
			if err := checkTeamOrganizationServices(ctx, tx, id, *up.ServiceProviderIDs); err != nil {
				return err
			}
			if err := setTeamServiceProviders(ctx, tx, id, *up.ServiceProviderIDs); err != nil {
				return err
			}
		}
		t.ViewerRole = role
		if err := tx.NewSelect().Model(&t.Team).Where("t.id = ?", id).Scan(ctx); err != nil {
			return fromDB("select updated team", err)
		}
		return audit(ctx, tx, actor, "updateTeam", []uuid.UUID{id}, changes{}.set("name", up.Name).
			set("isVisibleAllServices", up.IsVisibleAllServices).set("serviceProviderIds", up.ServiceProviderIDs))
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// DeleteTeam deletes a team with its accesses and invitations; owners only. A team with
// children is refused (KindConflict, with their count) unless cascade: then its whole subtree
// goes, in one statement, including teams the actor has no access to (as People's delete), and
// every removed membership is announced to its team's webhooks by the database's triggers
// (People sends none). It returns the ids of the teams deleted, the team's first.
func (s *Store) DeleteTeam(ctx context.Context, actor Actor, id uuid.UUID, cascade bool) ([]uuid.UUID, error) {
	var deleted []uuid.UUID
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := lockTeamTree(ctx, tx, id); err != nil {
			return err
		}
		role, err := lockTeam(ctx, tx, actor, id)
		if err != nil {
			return err
		}
		if !teamAbilities(role, actor.viaService()).Delete {
			if actor.viaService() {
				return forbidden("a service provider cannot delete a team")
			}
			return forbidden("only owners may delete a team")
		}
		var name string
		if deleted, name, err = deleteTeamTree(ctx, tx, id, cascade); err != nil {
			return err
		}
		c := changes{"name": name}
		if cascade {
			c["cascade"] = true
		}
		return audit(ctx, tx, actor, "deleteTeam", deleted, c)
	})
	if err != nil {
		return nil, err
	}
	return deleted, nil
}

// nonNil is ids, or an empty list for nil, so that the audit trail says [] rather than null.
func nonNil(ids []uuid.UUID) []uuid.UUID {
	if ids == nil {
		return []uuid.UUID{}
	}
	return ids
}

// pgUUIDs passes a uuid slice as a PostgreSQL uuid[] parameter.
func pgUUIDs(ids []uuid.UUID) any {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.String()
	}
	return pgdialect.Array(s)
}

// checkName trims a name and checks that it is neither blank nor longer than max characters,
// and that PostgreSQL can store it.
func checkName(name string, max int) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", invalid("name", "the name cannot be blank")
	case utf8.RuneCountInString(name) > max:
		return "", invalid("name", fmt.Sprintf("the name may have at most %d characters", max))
	case !storableText(name):
		return "", invalid("name", "the name cannot contain NUL characters")
	}
	return name, nil
}
