-- 0008: webhook secrets are stored sealed (AES-256-GCM under a key derived from SECRET_KEY),
-- and what staff read of a failed delivery is a kind of failure, not the error's text.
--
-- SQL cannot reach SECRET_KEY, so this migration makes room and tags the secrets stored so far
-- as 'plain:<secret>'; the server seals them at start-up (store.SealWebhookSecrets), in batches,
-- and seals again those under a key that is no longer the current one. A stored secret is
-- 'v1:<key id>:<base64url of nonce, ciphertext and tag>' (up to 390 characters for a 255-
-- character secret) or 'plain:<secret>': the tag keeps a secret that happens to start with
-- 'v1:' from being taken for a sealed one. An operator who inserts a webhook by hand writes
-- 'plain:<secret>'.

-- The triggers on team_webhooks name the column, which cannot change type under them: they go
-- and come back unchanged, which also keeps tagging from moving updated_at (it is no edit of the
-- configuration) and from copying values onto the deliveries, tagged on their own.
DROP TRIGGER team_webhooks_updated_at ON team_webhooks;
DROP TRIGGER team_webhooks_follow ON team_webhooks;
ALTER TABLE team_webhooks DROP CONSTRAINT team_webhooks_secret_check;
ALTER TABLE team_webhooks ALTER COLUMN secret TYPE varchar(512);
ALTER TABLE team_webhook_deliveries ALTER COLUMN secret TYPE varchar(512);
UPDATE team_webhooks SET secret = 'plain:' || secret WHERE secret IS NOT NULL;
UPDATE team_webhook_deliveries SET secret = 'plain:' || secret WHERE secret IS NOT NULL;
CREATE TRIGGER team_webhooks_updated_at BEFORE UPDATE OF team_id, url, secret, protocol ON team_webhooks
	FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER team_webhooks_follow AFTER UPDATE OF url, secret, protocol OR DELETE ON team_webhooks
	FOR EACH ROW EXECUTE FUNCTION follow_team_webhook();

ALTER TABLE team_webhooks ADD CONSTRAINT team_webhooks_secret_check
	CHECK (secret ~ '^(plain:[!-~]{1,255}|v1:[0-9a-f]{8}:[A-Za-z0-9_-]+)$');
ALTER TABLE team_webhook_deliveries ADD CONSTRAINT team_webhook_deliveries_secret_check
	CHECK (secret ~ '^(plain:[!-~]{1,255}|v1:[0-9a-f]{8}:[A-Za-z0-9_-]+)$');

-- The errors recorded so far are Go's text, which may name internal addresses; the next
-- attempt records its kind of failure.
UPDATE team_webhooks SET last_error = 'failed (details dropped by an upgrade)' WHERE last_error IS NOT NULL;
UPDATE team_webhook_deliveries SET last_error = 'failed (details dropped by an upgrade)' WHERE last_error IS NOT NULL;
