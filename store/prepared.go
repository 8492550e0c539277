package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
)

// The hot reads (the session lookup, a user's teams, a team, a page's accesses, the user search,
// the bearer path's active check) do not go through bun. bun writes every value into the SQL
// text, so no two of its statements share a text and PostgreSQL parses and plans each one
// anew. These statements are constant texts with $n parameters, run by pgx on the pool's
// connection with pgx.QueryExecModeCacheStatement: each text is prepared once per connection
// and then only executed, and pgx scans the rows into the store's types without
// database/sql's conversions. The connections' default stays the simple protocol, for bun.
// Behind a transaction pooler, a named statement would outlive the server connection it was
// prepared on (pooler.go): there pgx sends each as the unnamed statement, parsed with its
// arguments in the same round trip, from the description it cached the first time
// (QueryExecModeCacheDescribe).
// The tracer (Options.Tracer) sits on the connections, so it sees these statements as it
// sees bun's.

// prepared runs a constant statement with its arguments and calls row for each row; the
// statement is prepared on the connection the first time, then reused.
func (s *Store) prepared(ctx context.Context, sql string, args []any, row func(pgx.Rows) error) error {
	conn, err := s.db.DB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("database driver %T is not pgx", dc)
		}
		mode := pgx.QueryExecModeCacheStatement
		if s.pooled {
			mode = pgx.QueryExecModeCacheDescribe
		}
		rows, err := c.Conn().Query(ctx, sql, append([]any{mode}, args...)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := row(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	})
}

// preparedPage runs a page's statement (LIMIT p.Limit+1, the list's total in a column) and keeps
// at most p.Limit items, as newList does with bun's rows: each row is scanned into dest, then
// item turns it into the list's item and gives the list's total.
func preparedPage[T any](ctx context.Context, s *Store, sql string, args []any, p Page, dest []any, item func() (T, int)) (List[T], error) {
	l := List[T]{Offset: p.Offset, Items: make([]T, 0, p.Limit)}
	err := s.prepared(ctx, sql, args, func(r pgx.Rows) error {
		if err := r.Scan(dest...); err != nil {
			return err
		}
		if len(l.Items) == p.Limit {
			l.HasNext = true
			return nil
		}
		v, total := item()
		l.Items, l.Total = append(l.Items, v), total
		return nil
	})
	return l, err
}

// preparedRow is prepared for a statement of at most one row; it reports whether there was one.
func (s *Store) preparedRow(ctx context.Context, sql string, args []any, dest ...any) (bool, error) {
	found := false
	err := s.prepared(ctx, sql, args, func(r pgx.Rows) error {
		found = true
		return r.Scan(dest...)
	})
	return found, err
}

// Roles travel as their position in this array (array_position(roleArray, role)), so that
// scanning a row allocates no string for them.
const roleArray = "ARRAY['owner','administrator','member','inherited']::varchar[]"

var roleCodes = [...]Role{"", RoleOwner, RoleAdministrator, RoleMember, RoleInherited}

// inheritedCode is RoleInherited's code, for statements that test it.
const inheritedCode = "4"

// roleCode is the SQL expression of role's code.
func roleCode(role string) string {
	return "coalesce(array_position(" + roleArray + ", " + role + "), 0)"
}

// roleOf turns a code back into its role; 0 (no role) is "".
func roleOf(code int32) Role {
	if code < 0 || int(code) >= len(roleCodes) {
		return ""
	}
	return roleCodes[code]
}

// uuidArg passes a uuid as pgx's native [16]byte (uuid.UUID's text conversion costs allocations).
func uuidArg(id uuid.UUID) [16]byte { return id }

// uuidsArg passes ids as a uuid[] parameter.
func uuidsArg(ids []uuid.UUID) [][16]byte {
	out := make([][16]byte, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

// uuidDest scans a uuid into id without going through its text.
func uuidDest(id *uuid.UUID) *[16]byte { return (*[16]byte)(id) }

// uuidPtr is a nullable uuid column's value: nil for NULL.
func uuidPtr(v pgtype.UUID) *uuid.UUID {
	if !v.Valid {
		return nil
	}
	id := uuid.UUID(v.Bytes)
	return &id
}

// timePtr is a nullable timestamp column's value: nil for NULL.
func timePtr(v pgtype.Timestamptz) *time.Time {
	if !v.Valid {
		return nil
	}
	return &v.Time
}

// userColumnsSQL are the columns of User from the table aliased u, in userCols' order.
const userColumnsSQL = `u.id, u.created_at, u.updated_at, u.sub, u.email, u.name, u.language, u.timezone,
	u.is_device, u.is_staff, u.is_active, u.organization_id, u.last_login_at`

// briefUserColumnsSQL are the columns of a brief user (AccessShape.BriefUser), in
// userCols.briefDest's order.
const briefUserColumnsSQL = `u.id, u.email, u.name`

// userCols receives userColumnsSQL. Every field takes NULL, for the rows of an outer join:
// NULL texts become "", as bun's nullzero reads them.
type userCols struct {
	id, org                         pgtype.UUID
	createdAt, updatedAt, lastLogin pgtype.Timestamptz
	sub, email, name, lang, tz      pgtype.Text
	isDevice, isStaff, isActive     pgtype.Bool
}

func (c *userCols) dest() []any {
	return []any{&c.id, &c.createdAt, &c.updatedAt, &c.sub, &c.email, &c.name, &c.lang, &c.tz,
		&c.isDevice, &c.isStaff, &c.isActive, &c.org, &c.lastLogin}
}

// briefDest receives briefUserColumnsSQL; the other fields stay NULL.
func (c *userCols) briefDest() []any { return []any{&c.id, &c.email, &c.name} }

func (c *userCols) user() User {
	return User{ID: c.id.Bytes, CreatedAt: c.createdAt.Time, UpdatedAt: c.updatedAt.Time, Sub: c.sub.String,
		Email: c.email.String, Name: c.name.String, Language: c.lang.String, Timezone: c.tz.String,
		IsDevice: c.isDevice.Bool, IsStaff: c.isStaff.Bool, IsActive: c.isActive.Bool,
		OrganizationID: uuidPtr(c.org), LastLoginAt: timePtr(c.lastLogin)}
}

// stmt builds a statement from parts, numbering its arguments; a given variant (order,
// filters present) always gives the same text, so that it is prepared once per connection.
type stmt struct {
	strings.Builder
	args []any
}

// arg adds an argument and returns its placeholder: $1, $2…
func (q *stmt) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

// add writes parts to the text.
func (q *stmt) add(parts ...string) {
	for _, p := range parts {
		q.WriteString(p)
	}
}
