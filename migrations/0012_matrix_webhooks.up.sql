-- 0012: Matrix (Tchap) rooms as team webhooks, People's second protocol. A Matrix webhook's
-- URL is a link to the room as People stores it, https://<client>/#/room/<room> (Element,
-- Tchap) or https://matrix.to/#/<room>: the room is in the fragment, which the SCIM URLs may not
-- have (HTTP never sends it). The delivery worker invites the member to the room or kicks them
-- out of it (package webhook, matrix.go); its deliveries go through the same outbox.
ALTER TABLE team_webhooks DROP CONSTRAINT team_webhooks_protocol_check;
ALTER TABLE team_webhooks ADD CONSTRAINT team_webhooks_protocol_check CHECK (protocol IN ('scim', 'matrix'));
ALTER TABLE team_webhooks DROP CONSTRAINT team_webhooks_url_check;
ALTER TABLE team_webhooks ADD CONSTRAINT team_webhooks_url_check CHECK (
	url ~ '^https?://[^/?#@[:space:]]+([/?][^#[:space:]]*)?$'
	OR (protocol = 'matrix' AND url ~ '^https://[^/?#@[:space:]]+([/?][^#[:space:]]*)?#[^[:space:]]+$'));
