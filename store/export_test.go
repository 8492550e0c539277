package store

import (
	"context"
	"database/sql"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"
)

// VisibleTeamIDs returns the teams among ids that actor sees, decided twice: by visibleTeams
// (the bun reads) and by visibleTeamsSQL (the prepared reads), for the test that keeps them
// one rule. ancestors adds the strict ancestors of the actor's teams.
func VisibleTeamIDs(ctx context.Context, s *Store, actor Actor, ids []uuid.UUID, ancestors bool) (viaBun, viaPrepared []uuid.UUID, err error) {
	err = visibleTeams(s.db.NewSelect().TableExpr("teams AS t").Column("t.id"), actor, listScope(ancestors)).
		Where("t.id IN (?)", bun.List(ids)).OrderExpr("t.id").Scan(ctx, &viaBun)
	if err != nil {
		return nil, nil, err
	}
	q := &stmt{}
	q.add("SELECT t.id FROM teams t")
	cond := visibleTeamsSQL(q, actor, listScope(ancestors))
	texts := make([]string, len(ids))
	for i, id := range ids {
		texts[i] = id.String()
	}
	q.add(" WHERE ", cond, " AND t.id = ANY(", q.arg(texts), "::uuid[]) ORDER BY t.id")
	err = s.prepared(ctx, q.String(), q.args, func(rows pgx.Rows) error {
		var id uuid.UUID
		if err := rows.Scan(uuidDest(&id)); err != nil {
			return err
		}
		viaPrepared = append(viaPrepared, id)
		return nil
	})
	return viaBun, viaPrepared, err
}

// VisibleTeamRoles returns the actor's role in each team among ids that the actor sees with
// the ancestors, decided by each form of the rule: by the list form (visibleTreeJoin), in one
// statement for all ids, and by the form for reads by id (visibleTreeOneJoin), in one
// statement for each id, through bun's builder and through a prepared statement. The test that
// keeps them one rule compares the three.
func VisibleTeamRoles(ctx context.Context, s *Store, actor Actor, ids []uuid.UUID) (list, oneViaBun, oneViaPrepared map[uuid.UUID]Role, err error) {
	if list, err = preparedRoles(ctx, s, actor, withAncestors, ids); err != nil {
		return nil, nil, nil, err
	}
	oneViaBun, oneViaPrepared = map[uuid.UUID]Role{}, map[uuid.UUID]Role{}
	for _, id := range ids {
		var role Role
		err := visibleTeams(s.db.NewSelect().TableExpr("teams AS t").ColumnExpr("va.role"), actor, ancestorsByID).
			Where("t.id = ?", id).Scan(ctx, &role)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, nil, nil, err
		default:
			oneViaBun[id] = role
		}
		one, err := preparedRoles(ctx, s, actor, ancestorsByID, []uuid.UUID{id})
		if err != nil {
			return nil, nil, nil, err
		}
		if role, ok := one[id]; ok {
			oneViaPrepared[id] = role
		}
	}
	return list, oneViaBun, oneViaPrepared, nil
}

// preparedRoles reads the actor's role in the teams among ids that scope covers, as the
// prepared reads do.
func preparedRoles(ctx context.Context, s *Store, actor Actor, scope teamScope, ids []uuid.UUID) (map[uuid.UUID]Role, error) {
	q := &stmt{}
	q.add("SELECT t.id, ", roleCode("va.role"), " FROM teams t")
	cond := visibleTeamsSQL(q, actor, scope)
	q.add(" WHERE ", cond, " AND t.id = ANY(", q.arg(uuidsArg(ids)), "::uuid[])")
	roles := map[uuid.UUID]Role{}
	err := s.prepared(ctx, q.String(), q.args, func(rows pgx.Rows) error {
		var (
			id   uuid.UUID
			code int32
		)
		if err := rows.Scan(uuidDest(&id), &code); err != nil {
			return err
		}
		roles[id] = roleOf(code)
		return nil
	})
	return roles, err
}

// OpenSecret opens a stored webhook secret, for tests that read the outbox's rows.
func (s *Store) OpenSecret(stored string, webhookID uuid.UUID) (string, error) {
	return s.secrets.open(stored, webhookID)
}
