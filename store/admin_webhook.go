package store

import (
	"context"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// The staff operations on team webhooks are the webhook store's (webhook.go), run in a
// transaction that also checks the actor and appends the audit event.

// webhookChanges are a webhook operation's fields for the audit trail: the secret only as
// Redacted, or "" when it was removed.
func webhookChanges(url, secret, protocol *string) changes {
	c := changes{}.set("url", url).set("protocol", protocol)
	if secret != nil {
		c["secret"] = ""
		if *secret != "" {
			c["secret"] = Redacted
		}
	}
	return c
}

// AdminCreateTeamWebhook adds a webhook to a team; staff only (CreateTeamWebhook's rules).
func (s *Store) AdminCreateTeamWebhook(ctx context.Context, actor Actor, in NewTeamWebhook) (*TeamWebhook, error) {
	var w *TeamWebhook
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := requireStaff(ctx, tx, actor); err != nil {
			return err
		}
		var err error
		if w, err = s.createTeamWebhook(ctx, tx, in); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "adminCreateTeamWebhook", []uuid.UUID{w.ID, w.TeamID},
			webhookChanges(&w.URL, &in.Secret, &w.Protocol))
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// AdminUpdateTeamWebhook changes a webhook; staff only (UpdateTeamWebhook's rules).
func (s *Store) AdminUpdateTeamWebhook(ctx context.Context, actor Actor, id uuid.UUID, up TeamWebhookUpdate) (*TeamWebhook, error) {
	var w *TeamWebhook
	err := s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := requireStaff(ctx, tx, actor); err != nil {
			return err
		}
		var err error
		if w, err = s.updateTeamWebhook(ctx, tx, id, up); err != nil {
			return err
		}
		return audit(ctx, tx, actor, "adminUpdateTeamWebhook", []uuid.UUID{w.ID, w.TeamID},
			webhookChanges(up.URL, up.Secret, up.Protocol))
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// AdminDeleteTeamWebhook deletes a webhook; staff only (DeleteTeamWebhook's rules).
func (s *Store) AdminDeleteTeamWebhook(ctx context.Context, actor Actor, id uuid.UUID) error {
	return s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if err := requireStaff(ctx, tx, actor); err != nil {
			return err
		}
		team, err := deleteTeamWebhook(ctx, tx, id)
		if err != nil {
			return err
		}
		return audit(ctx, tx, actor, "adminDeleteTeamWebhook", []uuid.UUID{id, team}, nil)
	})
}
