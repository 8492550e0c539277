package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/uptrace/bun"
)

// Session is a browser session opened by an OIDC login. The cookie's random id is known to the
// browser only: the store sees its SHA-256, computed by auth.
type Session struct {
	bun.BaseModel `bun:"table:sessions,alias:ses"`

	ID        uuid.UUID `bun:"id,pk,type:uuid,default:gen_random_uuid()"`
	CreatedAt time.Time `bun:"created_at,nullzero,notnull,default:now()"`
	UpdatedAt time.Time `bun:"updated_at,nullzero,notnull,default:now()"`
	TokenHash []byte    `bun:"token_hash,notnull"`
	UserID    uuid.UUID `bun:"user_id,type:uuid,notnull"`
	Issuer    string    `bun:"issuer,notnull"`
	Subject   string    `bun:"subject,notnull"`
	SID       string    `bun:"sid,nullzero"`
	// IDToken is a credential (the provider's signed statement of who logged in), kept only as
	// the id_token_hint of an RP-initiated logout. Never log it or return it to a client.
	IDToken    string    `bun:"id_token,notnull"`
	LastSeenAt time.Time `bun:"last_seen_at,nullzero,notnull,default:now()"`
	ExpiresAt  time.Time `bun:"expires_at,notnull"`
}

// NewSession is what a successful login knows about the session it opens.
type NewSession struct {
	UserID  uuid.UUID
	Issuer  string // the provider's issuer URL
	Subject string // the ID token's sub
	SID     string // the ID token's sid, if the provider sends one
	IDToken string // the raw ID token, for logout's id_token_hint: a credential
}

// CreateSession stores a session under tokenHash that ends lifetime from now, by the database's
// clock, which also judges expiry.
func (s *Store) CreateSession(ctx context.Context, tokenHash []byte, in NewSession, lifetime time.Duration) (*Session, error) {
	ses := &Session{TokenHash: tokenHash, UserID: in.UserID, Issuer: in.Issuer, Subject: in.Subject, SID: in.SID, IDToken: in.IDToken}
	_, err := s.db.NewInsert().Model(ses).
		Value("expires_at", "now() + ? * interval '1 microsecond'", lifetime.Microseconds()).
		Returning("*").Exec(ctx)
	if err != nil {
		return nil, fromDB("insert session", err)
	}
	return ses, nil
}

// SessionByToken returns the live session stored under tokenHash: not expired, and of an active
// user, so that deactivating a user ends their sessions at once (a cached session too: the
// deactivation is announced, migration 0007). IDToken is left empty: only
// logout needs it, and DeleteSession returns it.
func (s *Store) SessionByToken(ctx context.Context, tokenHash []byte) (*Session, error) {
	ses := new(Session)
	var sid pgtype.Text
	found, err := s.preparedRow(ctx, sessionByTokenSQL, []any{tokenHash},
		uuidDest(&ses.ID), &ses.CreatedAt, uuidDest(&ses.UserID), &ses.Issuer, &ses.Subject, &sid, &ses.LastSeenAt, &ses.ExpiresAt)
	switch {
	case err != nil:
		return nil, fromDB("select session", err)
	case !found:
		return nil, notFound("session")
	}
	ses.SID = sid.String
	return ses, nil
}

// sessionByTokenSQL runs on every request with a cookie that auth's credential cache does not
// answer: a prepared statement (prepared.go).
const sessionByTokenSQL = `SELECT ses.id, ses.created_at, ses.user_id, ses.issuer, ses.subject, ses.sid, ses.last_seen_at, ses.expires_at
	FROM sessions ses JOIN users u ON u.id = ses.user_id
	WHERE ses.token_hash = $1 AND ses.expires_at > now() AND u.is_active`

// TouchSession records that a session was used. It writes at most once a minute per session,
// so that busy clients do not turn every read into a write; it never moves expires_at.
func (s *Store) TouchSession(ctx context.Context, id uuid.UUID) error {
	_, err := s.db.NewUpdate().Model((*Session)(nil)).
		Set("last_seen_at = now()").
		Where("ses.id = ?", id).
		Where("ses.last_seen_at < now() - interval '1 minute'").
		Exec(ctx)
	return fromDB("touch session", err)
}

// DeleteSession deletes the session stored under tokenHash, expired or not, and returns it with
// its ID token for logout; KindNotFound when there is none.
func (s *Store) DeleteSession(ctx context.Context, tokenHash []byte) (*Session, error) {
	ses := new(Session)
	err := s.db.NewDelete().Model(ses).
		Where("ses.token_hash = ?", tokenHash).
		Returning("*").Scan(ctx)
	if err != nil {
		return nil, notFoundOr(err, "session", "delete session")
	}
	return ses, nil
}

// DeleteSessionsByProvider ends the sessions an OpenID back-channel logout names: those with
// this sid (and this subject, when given too), or every session of the subject when sid is
// empty. It returns the token hashes of the sessions it deleted, so that the caller can forget
// them at once; an empty sid and subject are KindInvalid.
func (s *Store) DeleteSessionsByProvider(ctx context.Context, issuer, sid, subject string) ([][]byte, error) {
	if issuer == "" || (sid == "" && subject == "") {
		return nil, invalid("sid", "a logout names an issuer and a sid or a subject")
	}
	q := s.db.NewDelete().Model((*Session)(nil)).Where("ses.issuer = ?", issuer)
	if sid != "" {
		q = q.Where("ses.sid = ?", sid)
	}
	if subject != "" {
		q = q.Where("ses.subject = ?", subject)
	}
	var hashes [][]byte
	if err := q.Returning("ses.token_hash").Scan(ctx, &hashes); err != nil {
		return nil, fromDB("delete sessions", err)
	}
	return hashes, nil
}

// PurgeSessions deletes expired sessions, and those of inactive users: SessionByToken already
// ignores them, and deleting them means that reactivating a user does not revive a session
// opened before the deactivation once a purge has run.
func (s *Store) PurgeSessions(ctx context.Context) (int, error) {
	res, err := s.db.NewDelete().Model((*Session)(nil)).
		WhereOr("ses.expires_at <= now()").
		WhereOr("ses.user_id IN (SELECT id FROM users WHERE NOT is_active)").
		Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("purge sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
