package peopleimport

import (
	"context"

	"github.com/google/uuid"
)

// sealSecrets seals the webhooks' secrets as the store does (never in clear at rest). A
// webhook imported before whose stored secret still opens to People's keeps its stored form:
// sealing again would draw a new nonce and count as a change at every run.
func (im *importer) sealSecrets(ctx context.Context) error {
	rows, err := im.dst.Query(ctx, `SELECT s.id::text, s.secret, coalesce(t.secret, '') FROM s_webhook s LEFT JOIN team_webhooks t ON t.id = s.id
		WHERE NOT s.skip AND s.secret IS NOT NULL`)
	if err != nil {
		return err
	}
	var ids, sealed []string
	for rows.Next() {
		var id, secret, stored string
		if err := rows.Scan(&id, &secret, &stored); err != nil {
			return err
		}
		wid, err := uuid.Parse(id)
		if err != nil {
			return err
		}
		if stored == "" || !im.store.WebhookSecretIs(stored, secret, wid) {
			stored = im.store.SealWebhookSecret(secret, wid)
		}
		ids, sealed = append(ids, id), append(sealed, stored)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	_, err = im.dst.Exec(ctx, `UPDATE s_webhook s SET sealed = c.sealed FROM unnest($1::uuid[], $2::text[]) AS c (id, sealed)
		WHERE s.id = c.id`, ids, sealed)
	return err
}
