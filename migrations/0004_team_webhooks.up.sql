-- 0004: team webhooks (People's SCIM push) and the outbox of their deliveries.
--
-- Every change of a team's membership, whatever writes it (the API, invitations accepted at
-- login, a team or a user deleted, psql), queues one delivery per webhook of the team in the
-- same transaction: a change is announced exactly when it commits. People called its webhooks
-- from TeamAccess.save() and delete() only, so cascades and bulk inserts went unannounced, and a
-- failed call was logged and forgotten; here the server's delivery worker retries it.

CREATE TABLE team_webhooks (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
	-- The store checks more (https unless WEBHOOK_ALLOW_HTTP, a host, no fragment); this is the
	-- shape every path must keep: an http(s) URL without user info, since URLs are shown to
	-- staff and written to logs while secrets never are.
	url varchar(2048) NOT NULL CONSTRAINT team_webhooks_url_check CHECK (url ~ '^https?://[^/?#@[:space:]]+([/?][^#[:space:]]*)?$'),
	-- Sent as "Authorization: Bearer <secret>", hence visible ASCII only; NULL for none.
	secret varchar(255) CONSTRAINT team_webhooks_secret_check CHECK (secret ~ '^[!-~]+$'),
	protocol varchar(20) NOT NULL DEFAULT 'scim' CONSTRAINT team_webhooks_protocol_check CHECK (protocol IN ('scim')),
	-- People's column, here the outcome of the last finished delivery ('pending' before any);
	-- the API shows 'pending' while deliveries wait. Kept up to date by the delivery worker.
	status varchar(10) NOT NULL DEFAULT 'pending' CONSTRAINT team_webhooks_status_check CHECK (status IN ('pending', 'success', 'failure')),
	last_attempt_at timestamptz,
	last_error text,
	CONSTRAINT team_webhooks_team_id_url_key UNIQUE (team_id, url)
);
-- updated_at dates the configuration: the worker's bookkeeping (status, last_*) does not move it.
CREATE TRIGGER team_webhooks_updated_at BEFORE UPDATE OF team_id, url, secret, protocol ON team_webhooks
	FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- One membership change on its way to one webhook. A delivery is self-contained: it copies the
-- webhook's URL, secret and protocol and the user's email when queued, so that it outlives the
-- webhook, the team and the user (a deleted team announces its members as removed). Hence no
-- foreign keys: webhook_id, team_id and user_id may name rows that are gone.
CREATE TABLE team_webhook_deliveries (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(), -- also the Idempotency-Key header
	seq bigint GENERATED ALWAYS AS IDENTITY,       -- queue order: one user's changes reach a webhook in order
	created_at timestamptz NOT NULL DEFAULT now(), -- the change's time, from which WEBHOOK_MAX_AGE counts
	updated_at timestamptz NOT NULL DEFAULT now(),
	webhook_id uuid NOT NULL,
	team_id uuid NOT NULL,
	url varchar(2048) NOT NULL,
	secret varchar(255),
	protocol varchar(20) NOT NULL,
	operation varchar(10) NOT NULL CONSTRAINT team_webhook_deliveries_operation_check CHECK (operation IN ('add', 'remove')),
	user_id uuid NOT NULL,
	email varchar(254),
	status varchar(10) NOT NULL DEFAULT 'pending' CONSTRAINT team_webhook_deliveries_status_check CHECK (status IN ('pending', 'success', 'failure')),
	attempts integer NOT NULL DEFAULT 0 CONSTRAINT team_webhook_deliveries_attempts_check CHECK (attempts >= 0),
	next_attempt_at timestamptz NOT NULL DEFAULT now(),
	last_attempt_at timestamptz,
	last_error text,
	finished_at timestamptz,
	CONSTRAINT team_webhook_deliveries_seq_key UNIQUE (seq),
	-- A finished delivery says when it finished and keeps no credential.
	CONSTRAINT team_webhook_deliveries_finished_check CHECK (
		(status = 'pending') = (finished_at IS NULL) AND (status = 'pending' OR secret IS NULL))
);
CREATE TRIGGER team_webhook_deliveries_updated_at BEFORE UPDATE ON team_webhook_deliveries FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX team_webhook_deliveries_due_idx ON team_webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX team_webhook_deliveries_order_idx ON team_webhook_deliveries (webhook_id, user_id, seq) WHERE status = 'pending';
CREATE INDEX team_webhook_deliveries_webhook_id_idx ON team_webhook_deliveries (webhook_id, status);
CREATE INDEX team_webhook_deliveries_finished_at_idx ON team_webhook_deliveries (finished_at) WHERE status <> 'pending';

-- announce_team_membership queues the deliveries of a membership change: 'add' for a new
-- access, 'remove' for a deleted one, and both for an access moved to another team or user
-- (no path of ours does that, psql might). A role change is not a membership change: the
-- SCIM message has no role, and People sends nothing either.
-- The webhooks are read FOR SHARE: an edit or a deletion of one of them waits for this
-- transaction, so that follow_team_webhook then sees the deliveries queued here and re-targets
-- or cancels them too, instead of leaving one with a stale URL or to a deleted webhook.
CREATE FUNCTION announce_team_membership() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP IN ('DELETE', 'UPDATE') THEN
		INSERT INTO team_webhook_deliveries (webhook_id, team_id, url, secret, protocol, operation, user_id, email)
		SELECT w.id, w.team_id, w.url, w.secret, w.protocol, 'remove', OLD.user_id, (SELECT u.email FROM users u WHERE u.id = OLD.user_id)
		FROM team_webhooks w WHERE w.team_id = OLD.team_id ORDER BY w.id FOR SHARE OF w;
	END IF;
	IF TG_OP IN ('INSERT', 'UPDATE') THEN
		INSERT INTO team_webhook_deliveries (webhook_id, team_id, url, secret, protocol, operation, user_id, email)
		SELECT w.id, w.team_id, w.url, w.secret, w.protocol, 'add', NEW.user_id, (SELECT u.email FROM users u WHERE u.id = NEW.user_id)
		FROM team_webhooks w WHERE w.team_id = NEW.team_id ORDER BY w.id FOR SHARE OF w;
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER team_accesses_announce AFTER INSERT OR DELETE ON team_accesses
	FOR EACH ROW EXECUTE FUNCTION announce_team_membership();
CREATE TRIGGER team_accesses_announce_move AFTER UPDATE OF team_id, user_id ON team_accesses
	FOR EACH ROW WHEN (OLD.team_id IS DISTINCT FROM NEW.team_id OR OLD.user_id IS DISTINCT FROM NEW.user_id)
	EXECUTE FUNCTION announce_team_membership();

-- A team's or a user's accesses are deleted before the row itself rather than by the foreign
-- keys' cascade, which runs once the row is gone: the removals could then not name the user's
-- email, and for a team PostgreSQL does not promise whether its accesses or its webhooks go
-- first. Deleted here, they are announced while the team, its webhooks and the user still exist.
CREATE FUNCTION delete_team_accesses_first() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_TABLE_NAME = 'teams' THEN
		DELETE FROM team_accesses WHERE team_id = OLD.id;
	ELSE
		DELETE FROM team_accesses WHERE user_id = OLD.id;
	END IF;
	RETURN OLD;
END $$;
CREATE TRIGGER teams_delete_accesses_first BEFORE DELETE ON teams
	FOR EACH ROW EXECUTE FUNCTION delete_team_accesses_first();
CREATE TRIGGER users_delete_accesses_first BEFORE DELETE ON users
	FOR EACH ROW EXECUTE FUNCTION delete_team_accesses_first();

-- Deliveries not yet made follow their webhook: a corrected URL or a rotated secret applies to
-- them, and a webhook deleted on its own cancels them. A webhook deleted with its team (its
-- team row is already gone when the cascade reaches it) leaves them to announce the removals.
CREATE FUNCTION follow_team_webhook() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'UPDATE' THEN
		UPDATE team_webhook_deliveries SET url = NEW.url, secret = NEW.secret, protocol = NEW.protocol
		WHERE webhook_id = NEW.id AND status = 'pending';
	ELSIF EXISTS (SELECT 1 FROM teams WHERE id = OLD.team_id) THEN
		DELETE FROM team_webhook_deliveries WHERE webhook_id = OLD.id AND status = 'pending';
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER team_webhooks_follow AFTER UPDATE OF url, secret, protocol OR DELETE ON team_webhooks
	FOR EACH ROW EXECUTE FUNCTION follow_team_webhook();
