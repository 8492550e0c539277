package store

import (
	"context"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// User is a person (or a device) known to the directory.
type User struct {
	bun.BaseModel `bun:"table:users,alias:u"`

	ID             uuid.UUID  `bun:"id,pk,type:uuid,default:gen_random_uuid()"`
	CreatedAt      time.Time  `bun:"created_at,nullzero,notnull,default:now()"`
	UpdatedAt      time.Time  `bun:"updated_at,nullzero,notnull,default:now()"`
	Sub            string     `bun:"sub,notnull"`
	Email          string     `bun:"email,nullzero"`
	Name           string     `bun:"name,nullzero"`
	Language       string     `bun:"language,notnull"`
	Timezone       string     `bun:"timezone,notnull"`
	IsDevice       bool       `bun:"is_device,notnull"`
	IsStaff        bool       `bun:"is_staff,notnull"`
	IsActive       bool       `bun:"is_active,notnull"`
	OrganizationID *uuid.UUID `bun:"organization_id,type:uuid"`
	LastLoginAt    *time.Time `bun:"last_login_at"`
}

type userRow struct {
	User `bun:",extend"`
	Total
}

// Languages are the user interface languages, as People's LANGUAGES setting.
var Languages = []struct{ Code, Name string }{{"en-us", "English"}, {"fr-fr", "Français"}}

// UserByID returns an active or inactive user by id.
func (s *Store) UserByID(ctx context.Context, id uuid.UUID) (*User, error) {
	u := new(User)
	err := s.db.NewSelect().Model(u).Where("u.id = ?", id).Scan(ctx)
	if err != nil {
		return nil, notFoundOr(err, "user", "select user")
	}
	return u, nil
}

// UsersByIDs returns the users with these ids, in no particular order, for loaders. Users are
// reached through objects the caller may already see (team accesses, contacts), so there is no
// further filter here.
func (s *Store) UsersByIDs(ctx context.Context, ids []uuid.UUID) ([]User, error) {
	var users []User
	if err := s.db.NewSelect().Model(&users).Where("u.id IN (?)", bun.List(ids)).Scan(ctx); err != nil {
		return nil, fromDB("select users", err)
	}
	return users, nil
}

// UserFilter narrows Users.
type UserFilter struct {
	Search    string     // accent- and case-insensitive fragment of the name or email
	NotInTeam *uuid.UUID // leave out the members of this team, if the actor is one of them (People's ?team_id=)
	Page
}

// Users lists the active users of the actor's organization, newest first as in People. An actor
// without an organization sees nobody.
func (s *Store) Users(ctx context.Context, actor uuid.UUID, f UserFilter) (List[User], error) {
	if err := CheckPage(f.Page); err != nil {
		return List[User]{}, err
	}
	q := &stmt{}
	me := q.arg(uuidArg(actor))
	q.add("SELECT ", userColumnsSQL, ", count(*) OVER () FROM users u",
		" WHERE u.is_active AND u.organization_id = (SELECT organization_id FROM users WHERE id = ", me, ")")
	if term := searchTerm(f.Search); term != "" {
		p := q.arg(term)
		if trigramUsable(f.Search) {
			q.add(" AND (search_key(u.name) LIKE search_key(", p, ") OR search_key(u.email) LIKE search_key(", p, "))")
		} else {
			// A fragment without a trigram would make the trigram indexes return every user,
			// and the prepared statement's one plan would go through them (80 ms instead of 1 on
			// the benchmark's data): written so that they cannot serve it, the organization's
			// index does.
			q.add(" AND ((search_key(u.name) || '') LIKE search_key(", p, ") OR (search_key(u.email) || '') LIKE search_key(", p, "))")
		}
	}
	if f.NotInTeam != nil {
		// Only a team the actor belongs to filters: a team's membership is private to its
		// members, and People's ?team_id= let anyone learn it by difference.
		team := q.arg(uuidArg(*f.NotInTeam))
		q.add(" AND NOT EXISTS (SELECT 1 FROM team_accesses ta WHERE ta.team_id = ", team, " AND ta.user_id = u.id",
			" AND EXISTS (SELECT 1 FROM team_accesses va WHERE va.team_id = ", team, " AND va.user_id = ", me, "))")
	}
	q.add(" ORDER BY u.created_at DESC, u.id DESC LIMIT ", q.arg(f.Limit+1), " OFFSET ", q.arg(f.Offset))
	var (
		u     userCols
		total int32
	)
	dest := append(u.dest(), &total)
	l, err := preparedPage(ctx, s, q.String(), q.args, f.Page, dest, func() (User, int) { return u.user(), int(total) })
	if err != nil {
		return List[User]{}, fromDB("select users", err)
	}
	return l, nil
}

// UserUpdate holds the fields a user may change on themselves; nil means unchanged.
type UserUpdate struct {
	Language *string
	Timezone *string
}

// UpdateMe changes the actor's own preferences. Validity (known language, IANA zone) is
// enforced by the database and reported as KindInvalid.
func (s *Store) UpdateMe(ctx context.Context, actor Actor, up UserUpdate) (*User, error) {
	// The database holds both rules; checking here as well reports the language first when both
	// are wrong, and a NUL as the client's error (PostgreSQL refuses it before any constraint).
	if up.Language != nil && !slices.ContainsFunc(Languages, func(l struct{ Code, Name string }) bool { return l.Code == *up.Language }) {
		return nil, invalid("language", "the language must be en-us or fr-fr")
	}
	if up.Timezone != nil && !storableText(*up.Timezone) {
		return nil, invalid("timezone", "the time zone must be a valid IANA name such as Europe/Paris")
	}
	if up.Language == nil && up.Timezone == nil {
		return s.UserByID(ctx, actor.UserID)
	}
	u := new(User)
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		q := tx.NewUpdate().Model(u).Where("id = ?", actor.UserID).Returning("*")
		if up.Language != nil {
			q = q.Set("language = ?", *up.Language)
		}
		if up.Timezone != nil {
			q = q.Set("timezone = ?", *up.Timezone)
		}
		res, err := q.Exec(ctx, u)
		if err != nil {
			return fromDB("update user", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("user")
		}
		return audit(ctx, tx, actor, "updateMe", []uuid.UUID{actor.UserID},
			changes{}.set("language", up.Language).set("timezone", up.Timezone))
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// searchTerm turns a client's search text into a LIKE pattern over search_key(...) columns,
// with LIKE's wildcards escaped; "" means no filter. The trigram indexes serve these patterns.
func searchTerm(s string) string {
	s = strings.TrimSpace(strings.ReplaceAll(s, "\x00", "")) // no stored text holds NUL, and PostgreSQL refuses it
	if s == "" {
		return ""
	}
	s = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
	return "%" + s + "%"
}

// trigramUsable reports whether a search fragment has three letters or digits in a row, from
// which pg_trgm takes at least one trigram to look up.
func trigramUsable(s string) bool {
	run := 0
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			run = 0
		} else if run++; run == 3 {
			return true
		}
	}
	return false
}

// storableText reports whether PostgreSQL can store s in a text column: it refuses NUL with an
// encoding error that would otherwise reach the client as INTERNAL.
func storableText(s string) bool { return strings.IndexByte(s, 0) < 0 }

// ManagesATeam reports whether the user is an owner or administrator of some team.
func (s *Store) ManagesATeam(ctx context.Context, user uuid.UUID) (bool, error) {
	ok, err := s.db.NewSelect().TableExpr("team_accesses").
		Where("user_id = ? AND role IN (?, ?)", user, RoleOwner, RoleAdministrator).Exists(ctx)
	if err != nil {
		return false, fromDB("select managed teams", err)
	}
	return ok, nil
}

// UserIsActive reports whether the user exists and is active. Cached credentials (introspected
// bearer tokens) ask it on every request that auth's credential cache does not answer; a
// deactivation or deletion is announced (migration 0007) and empties that cache of the user, so
// that it takes effect at once.
func (s *Store) UserIsActive(ctx context.Context, id uuid.UUID) (bool, error) {
	ok, err := s.preparedRow(ctx, "SELECT FROM users WHERE id = $1 AND is_active", []any{uuidArg(id)})
	if err != nil {
		return false, fromDB("select user", err)
	}
	return ok, nil
}
