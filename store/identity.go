package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/uptrace/bun"
)

// Identity is a subject as an identity provider gave it. Audience is empty for a public subject
// (the one a browser login sees); for a pairwise subject it is the client id of the service the
// provider computed it for, since the same person has another subject at every service.
type Identity struct {
	Issuer, Subject, Audience string
}

// UserByIdentity returns the active user known by id: first by the pairwise subject (issuer,
// subject, audience), then by the public one (issuer, subject, empty audience). When neither is
// known and email is not empty, the one active user with that email (compared
// case-insensitively) is linked to (issuer, subject, audience) and returned, so the next lookup
// finds them directly. It never creates a user: an unknown subject is KindNotFound, an inactive
// user KindForbidden, and an email that several active users share KindConflict (linking could
// pick the wrong one).
func (s *Store) UserByIdentity(ctx context.Context, id Identity, email string) (*User, error) {
	if id.Issuer == "" || id.Subject == "" || !storableText(id.Issuer+id.Subject+id.Audience) {
		return nil, notFound("user")
	}
	u, err := userByIdentity(ctx, s.db, id)
	if KindOf(err) == KindNotFound && email != "" && storableText(email) && utf8.RuneCountInString(id.Subject) <= 255 {
		u, err = s.linkIdentityByEmail(ctx, id, email)
	}
	if err != nil {
		return nil, err
	}
	if !u.IsActive {
		return nil, forbidden("this user is not active")
	}
	return u, nil
}

// userByIdentity prefers the pairwise subject: audience sorts after ” in descending order.
func userByIdentity(ctx context.Context, db bun.IDB, id Identity) (*User, error) {
	u := new(User)
	err := db.NewSelect().Model(u).
		Join("JOIN user_identities AS ui ON ui.user_id = u.id").
		Where("ui.issuer = ? AND ui.subject = ? AND ui.audience IN (?, '')", id.Issuer, id.Subject, id.Audience).
		OrderExpr("ui.audience DESC").Limit(1).Scan(ctx)
	if err != nil {
		return nil, notFoundOr(err, "user", "select user by identity")
	}
	return u, nil
}

// linkIdentityByEmail links id to the one active user with email. Two requests may link the same
// subject at once: ON CONFLICT keeps the first row, and both then read the user it names.
func (s *Store) linkIdentityByEmail(ctx context.Context, id Identity, email string) (*User, error) {
	var users []User
	err := s.db.NewSelect().Model(&users).Column("u.id").
		Where("lower(u.email) = lower(?)", email).Where("u.is_active").
		OrderExpr("u.id").Limit(2).Scan(ctx)
	if err != nil {
		return nil, fromDB("select users by email", err)
	}
	switch len(users) {
	case 0:
		return nil, notFound("user")
	case 2:
		return nil, conflict("email", "several users have this email")
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO user_identities (user_id, issuer, subject, audience) VALUES (?, ?, ?, ?)
		ON CONFLICT (issuer, subject, audience) DO NOTHING`, users[0].ID, id.Issuer, id.Subject, id.Audience)
	if err != nil {
		return nil, fromDB("insert user identity", err)
	}
	return userByIdentity(ctx, s.db, id)
}

// ServiceProviderByAudience returns the service provider whose audience id (OAuth client id) is
// audience, creating it on first sight as People does, with the audience as its name. Names are
// unique too: when another provider already holds that name, the new one gets a suffix.
func (s *Store) ServiceProviderByAudience(ctx context.Context, audience string) (*ServiceProvider, error) {
	if strings.TrimSpace(audience) == "" || utf8.RuneCountInString(audience) > 256 || !storableText(audience) {
		return nil, invalid("audienceId", "the audience must be 1 to 256 characters")
	}
	sp, err := s.serviceProviderByAudience(ctx, audience)
	for attempt := 0; err != nil && errors.Is(err, sql.ErrNoRows) && attempt < 3; attempt++ {
		// ON CONFLICT without a target covers both unique keys: a concurrent insert of the same
		// audience (found by the SELECT that follows), and a name taken by another provider
		// (nothing found: try again with a suffix).
		_, err = s.db.ExecContext(ctx, `INSERT INTO service_providers (name, audience_id) VALUES (?, ?) ON CONFLICT DO NOTHING`,
			providerName(audience, attempt), audience)
		if err != nil {
			return nil, fromDB("insert service provider", err)
		}
		sp, err = s.serviceProviderByAudience(ctx, audience)
	}
	if err != nil {
		return nil, fromDB("select service provider", err)
	}
	return sp, nil
}

func (s *Store) serviceProviderByAudience(ctx context.Context, audience string) (*ServiceProvider, error) {
	sp := new(ServiceProvider)
	if err := s.db.NewSelect().Model(sp).Where("sp.audience_id = ?", audience).Scan(ctx); err != nil {
		return nil, err
	}
	return sp, nil
}

// providerName is the audience itself at first, then the audience (cut to fit the 256
// characters of the column) with a random suffix.
func providerName(audience string, attempt int) string {
	if attempt == 0 {
		return audience
	}
	b := make([]byte, 4)
	rand.Read(b)
	suffix := fmt.Sprintf(" (%s)", hex.EncodeToString(b))
	if r := []rune(audience); len(r) > 256-len(suffix) {
		audience = string(r[:256-len(suffix)])
	}
	return audience + suffix
}
