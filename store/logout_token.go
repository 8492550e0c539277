package store

import (
	"context"
	"time"

	"github.com/uptrace/bun"
)

// logoutTokenID is a back-channel logout token already accepted (migration 0008): its issuer
// and jti, never the token.
type logoutTokenID struct {
	bun.BaseModel `bun:"table:logout_token_ids,alias:lti"`

	Issuer    string    `bun:"issuer,notnull"`
	JTI       string    `bun:"jti,notnull"`
	ExpiresAt time.Time `bun:"expires_at,notnull"`
}

// MaxJTILength is the longest jti RecordLogoutToken stores (logout_token_ids.jti).
const MaxJTILength = 255

// pruneLogoutTokens bounds the expired rows one RecordLogoutToken deletes, so that a logout
// never waits on a large clean-up; at one row per accepted logout, they keep up.
const pruneLogoutTokens = 100

// RecordLogoutToken records that the back-channel logout token of issuer with id jti was
// accepted, until expiresAt, and reports whether it was the first time: false is a replay,
// whichever instance saw it first. Rows past their expiry go first, a few at a time, so that
// the table holds only the tokens that could still be accepted.
func (s *Store) RecordLogoutToken(ctx context.Context, issuer, jti string, expiresAt time.Time) (bool, error) {
	if issuer == "" || jti == "" || len(jti) > MaxJTILength {
		return false, invalid("jti", "a logout token has an issuer and a jti of at most 255 bytes")
	}
	_, err := s.db.NewDelete().Model((*logoutTokenID)(nil)).
		Where("lti.id IN (?)", s.db.NewSelect().Model((*logoutTokenID)(nil)).Column("id").
			Where("expires_at < now()").Limit(pruneLogoutTokens)).
		Exec(ctx)
	if err != nil {
		return false, fromDB("prune logout token ids", err)
	}
	res, err := s.db.NewInsert().Model(&logoutTokenID{Issuer: issuer, JTI: jti, ExpiresAt: expiresAt}).
		On("CONFLICT (issuer, jti) DO NOTHING").
		Exec(ctx)
	if err != nil {
		return false, fromDB("insert logout token id", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fromDB("insert logout token id", err)
	}
	return n == 1, nil
}

// ForgetLogoutToken deletes what RecordLogoutToken recorded, for a logout that could not be
// carried out: the provider's retry of the same token is then not taken for a replay.
func (s *Store) ForgetLogoutToken(ctx context.Context, issuer, jti string) error {
	_, err := s.db.NewDelete().Model((*logoutTokenID)(nil)).
		Where("lti.issuer = ?", issuer).Where("lti.jti = ?", jti).
		Exec(ctx)
	return fromDB("delete logout token id", err)
}
