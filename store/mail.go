package store

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Mail is a message waiting in mail_queue. Payload holds the template's values.
type Mail struct {
	bun.BaseModel `bun:"table:mail_queue,alias:m"`

	ID           uuid.UUID      `bun:"id,pk,type:uuid"`
	CreatedAt    time.Time      `bun:"created_at"`
	Template     string         `bun:"template"`
	Recipient    string         `bun:"recipient"`
	Language     string         `bun:"language"`
	InvitationID *uuid.UUID     `bun:"invitation_id,type:uuid"`
	Payload      map[string]any `bun:"payload,type:jsonb"`
	Attempts     int            `bun:"attempts"`
}

// MaxMailAttempts is how many times a message is tried before it is left failed.
const MaxMailAttempts = 5

// ClaimMail takes up to limit messages due for sending and pushes their next attempt into the
// future (exponential backoff), so that a crash while sending retries later and several
// server instances never send the same message at the same time (FOR UPDATE SKIP LOCKED).
func (s *Store) ClaimMail(ctx context.Context, limit int) ([]Mail, error) {
	var ms []Mail
	err := s.db.NewRaw(`
		UPDATE mail_queue m SET attempts = m.attempts + 1,
			next_attempt_at = now() + make_interval(secs => 30 * power(2, m.attempts))
		WHERE m.id IN (
			SELECT id FROM mail_queue
			WHERE sent_at IS NULL AND attempts < ? AND next_attempt_at <= now()
			ORDER BY next_attempt_at LIMIT ? FOR UPDATE SKIP LOCKED)
		RETURNING m.id, m.created_at, m.template, m.recipient, m.language, m.invitation_id, m.payload, m.attempts`,
		MaxMailAttempts, limit).Scan(ctx, &ms)
	if err != nil {
		return nil, fromDB("claim mail", err)
	}
	return ms, nil
}

// MailSent records a delivered message, and on its invitation the time the email went out.
func (s *Store) MailSent(ctx context.Context, id uuid.UUID) error {
	return s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var inv *uuid.UUID
		err := tx.NewRaw("UPDATE mail_queue SET sent_at = now(), last_error = NULL WHERE id = ? RETURNING invitation_id", id).Scan(ctx, &inv)
		if err != nil {
			return fromDB("mark mail sent", err)
		}
		if inv != nil {
			_, err = tx.ExecContext(ctx, "UPDATE invitations SET email_sent_at = now() WHERE id = ?", *inv)
		}
		return fromDB("mark invitation sent", err)
	})
}

// MailFailed records why a message could not be sent; it is retried while attempts remain.
// reason must not contain the message or credentials: a short, operator-facing cause.
func (s *Store) MailFailed(ctx context.Context, id uuid.UUID, reason string) error {
	if len(reason) > 500 {
		reason = reason[:500]
	}
	_, err := s.db.ExecContext(ctx, "UPDATE mail_queue SET last_error = ? WHERE id = ?", reason, id)
	return fromDB("mark mail failed", err)
}
