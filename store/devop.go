package store

import (
	"context"

	"github.com/google/uuid"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// DevUser is a user as the development OpenID provider (auth/devop) signs them in: the claims
// it sends about them, and what its login page shows.
type DevUser struct {
	ID             uuid.UUID `bun:"id"`
	Sub            string    `bun:"sub"`
	Email          string    `bun:"email"`
	Name           string    `bun:"name"`            // "" when the identity provider gave none
	Organization   string    `bun:"organization"`    // the organization's name, "" without one
	RegistrationID string    `bun:"registration_id"` // the organization's first registration id (SIRET), "" when it has none
}

// DevUserFilter narrows DevUsers.
type DevUserFilter struct {
	Sub   string   // only the user with this sub
	Email string   // only the users with this email, compared case-insensitively
	First []string // subs to list first, in this order (the demo's e2e users)
	Limit int      // at most this many users; 0 or more than MaxDevUsers means MaxDevUsers
}

// MaxDevUsers caps DevUsers: a login page, not a directory.
const MaxDevUsers = 100

// DevUsers lists active people (not devices) with an email, for the development provider:
// those whose subs are in First, in that order, then the oldest others, which in the demo data
// are its fixed users. It reads no actor: it serves a provider that must never run in
// production (see auth/devop), and the claims it returns are what an identity provider knows.
func (s *Store) DevUsers(ctx context.Context, f DevUserFilter) ([]DevUser, error) {
	if f.Limit <= 0 || f.Limit > MaxDevUsers {
		f.Limit = MaxDevUsers
	}
	if !storableText(f.Sub) || !storableText(f.Email) {
		return nil, nil // no stored sub or email holds NUL
	}
	first := f.First
	if first == nil {
		first = []string{}
	}
	var users []DevUser
	q := s.db.NewSelect().TableExpr("users AS u").
		ColumnExpr("u.id, u.sub, u.email, coalesce(u.name, '') AS name, coalesce(o.name, '') AS organization").
		ColumnExpr(`coalesce((SELECT r.registration_id FROM organization_registration_ids r
			WHERE r.organization_id = u.organization_id ORDER BY r.created_at, r.id LIMIT 1), '') AS registration_id`).
		Join("LEFT JOIN organizations AS o ON o.id = u.organization_id").
		Where("u.is_active AND NOT u.is_device AND u.email IS NOT NULL")
	if f.Sub != "" {
		q = q.Where("u.sub = ?", f.Sub)
	}
	if f.Email != "" {
		q = q.Where("lower(u.email) = lower(?)", f.Email)
	}
	err := q.OrderExpr("array_position(?::text[], u.sub::text) NULLS LAST, u.created_at, u.id", pgdialect.Array(first)).
		Limit(int64(f.Limit)).Scan(ctx, &users)
	if err != nil {
		return nil, fromDB("select dev users", err)
	}
	return users, nil
}
