package store

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Webhook protocols and statuses, as the database stores them. TeamWebhook keeps them as plain
// strings (the admin API's shape); these constants name their values.
const (
	WebhookProtocolSCIM   = "scim"   // People's SCIM PatchOp on the team's members
	WebhookProtocolMatrix = "matrix" // People's Matrix (Tchap) room: members invited and kicked

	WebhookStatusPending = "pending" // deliveries wait (or none was ever made, People's default)
	WebhookStatusSuccess = "success" // the last finished delivery was accepted
	WebhookStatusFailure = "failure" // the last finished delivery was given up after WEBHOOK_MAX_AGE
)

// TeamWebhook is a receiver of a team's membership changes, as staff see it. The secret is
// write-only: only whether there is one is ever read back.
type TeamWebhook struct {
	ID        uuid.UUID `bun:"id"`
	CreatedAt time.Time `bun:"created_at"`
	UpdatedAt time.Time `bun:"updated_at"` // of the configuration, not of the deliveries
	TeamID    uuid.UUID `bun:"team_id"`
	URL       string    `bun:"url"`
	Protocol  string    `bun:"protocol"`
	// Status is pending while deliveries wait, else the outcome of the last finished one.
	Status    string `bun:"status"`
	HasSecret bool   `bun:"has_secret"`
	Pending   int    `bun:"pending"` // deliveries not yet made, retries included
	Failed    int    `bun:"failed"`  // deliveries given up, kept for the retention period
	// Attempts are those of the delivery Status is about: the oldest one waiting while any
	// waits (how often it was retried), else the last one finished; 0 before any.
	Attempts int `bun:"attempts"`
	// LastDeliveryAt is the start of the last attempt, successful or not; nil before any.
	LastDeliveryAt *time.Time `bun:"last_delivery_at"`
	LastError      string     `bun:"last_error"` // why the last attempt failed; "" after a success
}

// NewTeamWebhook is a webhook to create. An empty Secret means none, an empty Protocol SCIM.
type NewTeamWebhook struct {
	TeamID   uuid.UUID
	URL      string
	Secret   string
	Protocol string
}

// TeamWebhookUpdate holds the fields to change; nil means unchanged, and an empty Secret
// removes the secret.
type TeamWebhookUpdate struct {
	URL, Secret, Protocol *string
}

// selectTeamWebhooks reads webhooks with their delivery summary; where filters w.
func selectTeamWebhooks(ctx context.Context, db bun.IDB, dest *[]TeamWebhook, where string, args ...any) error {
	return db.NewRaw(`
		SELECT w.id, w.created_at, w.updated_at, w.team_id, w.url, w.protocol,
			CASE WHEN d.pending > 0 THEN 'pending' ELSE w.status END AS status,
			w.secret IS NOT NULL AS has_secret, d.pending, d.failed,
			coalesce(d.waiting_attempts, d.finished_attempts, 0) AS attempts,
			w.last_attempt_at AS last_delivery_at, coalesce(w.last_error, '') AS last_error
		FROM team_webhooks w
		CROSS JOIN LATERAL (
			SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
				count(*) FILTER (WHERE status = 'failure') AS failed,
				(array_agg(attempts ORDER BY seq) FILTER (WHERE status = 'pending'))[1] AS waiting_attempts,
				(array_agg(attempts ORDER BY finished_at DESC, seq DESC) FILTER (WHERE status <> 'pending'))[1] AS finished_attempts
			FROM team_webhook_deliveries WHERE webhook_id = w.id) d
		WHERE `+where+`
		ORDER BY w.team_id, w.created_at, w.id`, args...).Scan(ctx, dest)
}

// TeamWebhooks returns the webhooks of each team, oldest first. It is for staff: there is no
// actor, and the caller checks that the principal is staff.
func (s *Store) TeamWebhooks(ctx context.Context, staff StaffActor, teamIDs []uuid.UUID) (map[uuid.UUID][]TeamWebhook, error) {
	if err := staff.check(); err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID][]TeamWebhook, len(teamIDs))
	if len(teamIDs) == 0 {
		return out, nil
	}
	var ws []TeamWebhook
	if err := selectTeamWebhooks(ctx, s.db, &ws, "w.team_id = ANY (?)", pgUUIDs(teamIDs)); err != nil {
		return nil, fromDB("select team webhooks", err)
	}
	for _, w := range ws {
		out[w.TeamID] = append(out[w.TeamID], w)
	}
	return out, nil
}

func teamWebhookByID(ctx context.Context, db bun.IDB, id uuid.UUID) (*TeamWebhook, error) {
	var ws []TeamWebhook
	if err := selectTeamWebhooks(ctx, db, &ws, "w.id = ?", id); err != nil {
		return nil, fromDB("select team webhook", err)
	}
	if len(ws) == 0 {
		return nil, notFound("team webhook")
	}
	return &ws[0], nil
}

// CreateTeamWebhook adds a webhook to a team; staff only (the caller checks). It is told about
// the membership changes that commit after it.
func (s *Store) CreateTeamWebhook(ctx context.Context, in NewTeamWebhook) (*TeamWebhook, error) {
	var w *TeamWebhook
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var err error
		w, err = s.createTeamWebhook(ctx, tx, in)
		return err
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// UpdateTeamWebhook changes a webhook's URL, secret or protocol; staff only (the caller
// checks). The deliveries not yet made follow (migration 0004's follow_team_webhook): a
// corrected URL or a rotated secret applies to them.
func (s *Store) UpdateTeamWebhook(ctx context.Context, id uuid.UUID, up TeamWebhookUpdate) (*TeamWebhook, error) {
	var w *TeamWebhook
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var err error
		w, err = s.updateTeamWebhook(ctx, tx, id, up)
		return err
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// DeleteTeamWebhook deletes a webhook; staff only (the caller checks). Its deliveries not yet
// made are cancelled with it (migration 0004's follow_team_webhook); those made stay as history
// until the retention period ends.
func (s *Store) DeleteTeamWebhook(ctx context.Context, id uuid.UUID) error {
	_, err := deleteTeamWebhook(ctx, s.db, id)
	return err
}

// createTeamWebhook, updateTeamWebhook and deleteTeamWebhook are the staff operations inside
// the caller's transaction, for a caller that writes more in it (the audit trail).

func (s *Store) createTeamWebhook(ctx context.Context, tx bun.IDB, in NewTeamWebhook) (*TeamWebhook, error) {
	protocol := in.Protocol
	if protocol == "" {
		protocol = WebhookProtocolSCIM
	}
	if err := checkWebhookProtocol(protocol); err != nil {
		return nil, err
	}
	u, err := s.checkWebhookURL(in.URL, protocol)
	if err != nil {
		return nil, err
	}
	secret, err := checkWebhookSecret(in.Secret)
	if err != nil {
		return nil, err
	}
	id := uuid.New() // before the insert: the sealed secret is bound to it
	_, err = tx.ExecContext(ctx, `INSERT INTO team_webhooks (id, team_id, url, secret, protocol)
		VALUES (?, ?, ?, ?, ?)`, id, in.TeamID, u, nullable(s.secrets.seal(secret, id)), protocol)
	if err != nil {
		return nil, fromDB("insert team webhook", err)
	}
	return teamWebhookByID(ctx, tx, id)
}

func (s *Store) updateTeamWebhook(ctx context.Context, tx bun.IDB, id uuid.UUID, up TeamWebhookUpdate) (*TeamWebhook, error) {
	var u, secret, protocol *string
	if up.Protocol != nil {
		if err := checkWebhookProtocol(*up.Protocol); err != nil {
			return nil, err
		}
		protocol = up.Protocol
	}
	if up.URL != nil || up.Protocol != nil {
		// The URL's rules depend on the protocol: the pair is checked as it will be, the row
		// locked so that a concurrent edit of the other half cannot make a pair no one checked.
		var cur struct {
			URL      string `bun:"url"`
			Protocol string `bun:"protocol"`
		}
		if err := tx.NewRaw("SELECT url, protocol FROM team_webhooks WHERE id = ? FOR UPDATE", id).Scan(ctx, &cur); err != nil {
			return nil, notFoundOr(err, "team webhook", "select team webhook")
		}
		raw, p := cur.URL, cur.Protocol
		if up.URL != nil {
			raw = *up.URL
		}
		if protocol != nil {
			p = *protocol
		}
		v, err := s.checkWebhookURL(raw, p)
		if err != nil {
			return nil, err
		}
		u = &v
	}
	if up.Secret != nil {
		v, err := checkWebhookSecret(*up.Secret)
		if err != nil {
			return nil, err
		}
		v = s.secrets.seal(v, id)
		secret = &v
	}
	if u != nil || secret != nil || protocol != nil {
		res, err := tx.ExecContext(ctx, `UPDATE team_webhooks SET url = coalesce(?0, url),
			secret = CASE WHEN ?1 THEN ?2 ELSE secret END, protocol = coalesce(?3, protocol)
			WHERE id = ?4`, u, secret != nil, nullable(deref(secret)), protocol, id)
		if err != nil {
			return nil, fromDB("update team webhook", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil, notFound("team webhook")
		}
	}
	return teamWebhookByID(ctx, tx, id)
}

// deleteTeamWebhook returns the deleted webhook's team.
func deleteTeamWebhook(ctx context.Context, tx bun.IDB, id uuid.UUID) (uuid.UUID, error) {
	var team uuid.UUID
	err := tx.QueryRowContext(ctx, "DELETE FROM team_webhooks WHERE id = ? RETURNING team_id", id).Scan(&team)
	if err != nil {
		return uuid.Nil, notFoundOr(err, "team webhook", "delete team webhook")
	}
	return team, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// checkWebhookURL accepts an absolute https URL with a host (http too when the deployment allows
// it: development and tests), without user info, whose credential belongs in the secret since
// URLs are shown to staff and logged, nor fragment, which HTTP never sends. It returns the URL
// as Go writes it, which is what the worker requests. A Matrix webhook's URL is a link to its
// room instead (checkMatrixRoomURL).
func (s *Store) checkWebhookURL(raw, protocol string) (string, error) {
	if protocol == WebhookProtocolMatrix {
		return checkMatrixRoomURL(raw)
	}
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return "", invalid("url", "enter a URL")
	case err != nil || u.Opaque != "" || u.Hostname() == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return "", invalid("url", "enter an absolute URL such as https://service.example.org/scim/v2/Groups/42")
	case u.Scheme == "http" && !s.webhookAllowHTTP:
		return "", invalid("url", "the URL must use https")
	case u.User != nil:
		return "", invalid("url", "the URL cannot hold a user name or password: use the secret")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "", invalid("url", "the URL cannot have a fragment")
	}
	out := u.String()
	switch {
	case !utf8.ValidString(out):
		return "", invalid("url", "enter an absolute URL such as https://service.example.org/scim/v2/Groups/42")
	case len(out) > 2048:
		return "", invalid("url", "the URL may have at most 2048 characters")
	}
	return out, nil
}

// secretPattern is team_webhooks_secret_check: visible ASCII, as an HTTP header value allows.
var secretPattern = regexp.MustCompile(`^[!-~]+$`)

func checkWebhookSecret(secret string) (string, error) {
	switch {
	case secret == "":
		return "", nil
	case len(secret) > 255:
		return "", invalid("secret", "the secret may have at most 255 characters")
	case !secretPattern.MatchString(secret):
		return "", invalid("secret", "the secret may only contain visible ASCII characters, without spaces")
	}
	return secret, nil
}

func checkWebhookProtocol(p string) error {
	if p != WebhookProtocolSCIM && p != WebhookProtocolMatrix {
		return invalid("protocol", "unknown protocol")
	}
	return nil
}

// WebhookDelivery is one membership change on its way to one webhook. Secret is a credential,
// opened from its sealed form: it is sent as a bearer token and never logged.
type WebhookDelivery struct {
	ID        uuid.UUID `bun:"id"` // the Idempotency-Key
	CreatedAt time.Time `bun:"created_at"`
	WebhookID uuid.UUID `bun:"webhook_id"` // may name a webhook deleted with its team
	TeamID    uuid.UUID `bun:"team_id"`
	URL       string    `bun:"url"`
	Secret    string    `bun:"secret,nullzero"`
	Protocol  string    `bun:"protocol"`
	Operation string    `bun:"operation"` // "add" or "remove"
	UserID    uuid.UUID `bun:"user_id"`
	Email     string    `bun:"email,nullzero"` // the user's email when the change was made; "" for none
	Attempts  int       `bun:"attempts"`       // this one included
	// TeamName is the team's name when the delivery is claimed, for a Matrix invitation's
	// reason; "" once the team is deleted.
	TeamName string `bun:"team_name"`
	// SecretUnreadable is set when the stored secret opens with none of the keys (SECRET_KEY
	// replaced without the old one in SECRET_KEY_FALLBACKS): Secret is then "", and the
	// delivery must not be sent without it.
	SecretUnreadable bool `bun:"-"`
}

// ClaimWebhookDeliveries takes up to limit deliveries due now, counts the attempt and pushes
// their next attempt lease into the future, in one statement: several server instances never
// send one delivery at the same time (FOR UPDATE SKIP LOCKED), and a delivery whose sender dies
// is retried once the lease is over. A delivery waits while an earlier one for the same webhook
// and user is not finished, so that a receiver never sees a removal before the addition it
// undoes.
func (s *Store) ClaimWebhookDeliveries(ctx context.Context, limit int, lease time.Duration) ([]WebhookDelivery, error) {
	var ds []WebhookDelivery
	err := s.db.NewRaw(`
		UPDATE team_webhook_deliveries d SET attempts = d.attempts + 1, last_attempt_at = now(),
			next_attempt_at = now() + ? * interval '1 microsecond'
		WHERE d.id IN (
			SELECT c.id FROM team_webhook_deliveries c
			WHERE c.status = 'pending' AND c.next_attempt_at <= now()
				AND NOT EXISTS (SELECT 1 FROM team_webhook_deliveries e
					WHERE e.webhook_id = c.webhook_id AND e.user_id = c.user_id AND e.status = 'pending' AND e.seq < c.seq)
			ORDER BY c.next_attempt_at, c.seq LIMIT ? FOR UPDATE SKIP LOCKED)
		RETURNING d.id, d.created_at, d.webhook_id, d.team_id, d.url, d.secret, d.protocol, d.operation,
			d.user_id, d.email, d.attempts, coalesce((SELECT t.name FROM teams t WHERE t.id = d.team_id), '') AS team_name`,
		lease.Microseconds(), limit).Scan(ctx, &ds)
	if err != nil {
		return nil, fromDB("claim webhook deliveries", err)
	}
	for i := range ds {
		if ds[i].Secret, err = s.secrets.open(ds[i].Secret, ds[i].WebhookID); err != nil {
			ds[i].SecretUnreadable = true
		}
	}
	return ds, nil
}

// sealBatch is how many secrets SealWebhookSecrets reads at a time.
const sealBatch = 100

// SealWebhookSecrets seals under the current key every webhook secret stored otherwise: in
// clear (migration 0009 tagged the existing ones "plain:", since SQL cannot reach the key) or
// under a previous key. The server runs it at start-up; it is idempotent, and safe beside other
// instances and edits: a value changed meanwhile is left to its writer. It returns how many
// values it sealed and how many opened with none of the keys (left as they are).
func (s *Store) SealWebhookSecrets(ctx context.Context) (sealed, unreadable int, err error) {
	// The webhooks first: follow_team_webhook copies a webhook's new value onto its waiting
	// deliveries, which leaves the deliveries of deleted webhooks for the second pass.
	for _, table := range []struct{ name, webhookID, where string }{
		{"team_webhooks", "id", "true"},
		{"team_webhook_deliveries", "webhook_id", "status = 'pending'"},
	} {
		var after uuid.UUID
		for {
			var rows []struct {
				ID        uuid.UUID `bun:"id"`
				WebhookID uuid.UUID `bun:"webhook_id"`
				Secret    string    `bun:"secret"`
			}
			err := s.db.NewRaw(`SELECT id, ? AS webhook_id, secret FROM ? WHERE ? AND secret IS NOT NULL
				AND secret NOT LIKE ? AND id > ? ORDER BY id LIMIT ?`,
				bun.Ident(table.webhookID), bun.Ident(table.name), bun.Safe(table.where), s.secrets.currentPrefix()+"%",
				after, sealBatch).Scan(ctx, &rows)
			if err != nil {
				return sealed, unreadable, fromDB("select webhook secrets to seal", err)
			}
			for _, r := range rows {
				plain, err := s.secrets.open(r.Secret, r.WebhookID)
				if err != nil {
					unreadable++
					continue
				}
				res, err := s.db.ExecContext(ctx, "UPDATE ? SET secret = ? WHERE id = ? AND secret = ?",
					bun.Ident(table.name), s.secrets.seal(plain, r.WebhookID), r.ID, r.Secret)
				if err != nil {
					return sealed, unreadable, fromDB("seal webhook secret", err)
				}
				n, _ := res.RowsAffected()
				sealed += int(n)
			}
			if len(rows) < sealBatch {
				break
			}
			after = rows[len(rows)-1].ID
		}
	}
	return sealed, unreadable, nil
}

// lockDeliveryWebhook takes the row lock of the delivery's webhook, if it still exists, before
// the delivery's: the order in which an edit of the webhook locks them too (follow_team_webhook),
// so that recording an outcome and editing its webhook at the same moment cannot deadlock.
func lockDeliveryWebhook(ctx context.Context, tx bun.Tx, id uuid.UUID) error {
	_, err := tx.ExecContext(ctx, `SELECT FROM team_webhooks
		WHERE id = (SELECT webhook_id FROM team_webhook_deliveries WHERE id = ?) FOR NO KEY UPDATE`, id)
	return fromDB("lock delivery webhook", err)
}

// WebhookDelivered records an accepted delivery, forgets its secret, and on its webhook the
// success. A delivery cancelled meanwhile (its webhook deleted) is left alone.
func (s *Store) WebhookDelivered(ctx context.Context, id uuid.UUID) error {
	return s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := lockDeliveryWebhook(ctx, tx, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `
			WITH d AS (
				UPDATE team_webhook_deliveries SET status = 'success', secret = NULL, finished_at = now(), last_error = NULL
				WHERE id = ? AND status = 'pending' RETURNING webhook_id, last_attempt_at)
			UPDATE team_webhooks w SET status = 'success', last_attempt_at = d.last_attempt_at, last_error = NULL
			FROM d WHERE w.id = d.webhook_id AND (w.last_attempt_at IS NULL OR w.last_attempt_at <= d.last_attempt_at)`, id)
		return fromDB("record webhook delivery", err)
	})
}

// WebhookAttemptFailed records why an attempt failed. The delivery is retried after retryIn,
// but never later than maxAge after the change, where it gets a last attempt; an attempt that
// fails once maxAge has passed gives the delivery up (status failure, secret forgotten). It
// returns the delivery's status: pending (to be retried), failure (given up), or "" when the
// delivery is gone (cancelled with its webhook). reason is what staff read (lastError): a kind
// of failure, with no credential, address or receiver's text (the sender's deliveryFailure).
func (s *Store) WebhookAttemptFailed(ctx context.Context, id uuid.UUID, reason string, retryIn, maxAge time.Duration) (string, error) {
	if len(reason) > 500 {
		reason = strings.ToValidUTF8(reason[:500], "")
	}
	var status string
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := lockDeliveryWebhook(ctx, tx, id); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `
			WITH d AS (
				UPDATE team_webhook_deliveries SET last_error = ?0,
					status = CASE WHEN created_at + ?2 * interval '1 microsecond' <= now() THEN 'failure' ELSE 'pending' END,
					finished_at = CASE WHEN created_at + ?2 * interval '1 microsecond' <= now() THEN now() END,
					secret = CASE WHEN created_at + ?2 * interval '1 microsecond' <= now() THEN NULL ELSE secret END,
					next_attempt_at = least(now() + ?1 * interval '1 microsecond', created_at + ?2 * interval '1 microsecond')
				WHERE id = ?3 AND status = 'pending' RETURNING webhook_id, last_attempt_at, status),
			w AS (
				UPDATE team_webhooks w SET last_attempt_at = d.last_attempt_at, last_error = ?0,
					status = CASE WHEN d.status = 'failure' THEN 'failure' ELSE w.status END
				FROM d WHERE w.id = d.webhook_id AND (w.last_attempt_at IS NULL OR w.last_attempt_at <= d.last_attempt_at))
			SELECT status FROM d`, reason, retryIn.Microseconds(), maxAge.Microseconds(), id).Scan(&status)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		return fromDB("record webhook attempt", err)
	})
	return status, err
}

// PurgeWebhookDeliveries deletes the deliveries finished more than retention ago and returns
// how many went.
func (s *Store) PurgeWebhookDeliveries(ctx context.Context, retention time.Duration) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM team_webhook_deliveries
		WHERE status <> 'pending' AND finished_at < now() - ? * interval '1 microsecond'`, retention.Microseconds())
	if err != nil {
		return 0, fromDB("purge webhook deliveries", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
