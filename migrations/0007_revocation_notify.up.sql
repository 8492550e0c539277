-- 0007: revocations are announced on the channel people_revocations, so that every instance
-- can keep credential checks in memory (auth.CredentialCache) and still drop a session or a
-- user the moment the database stops accepting it, whoever changed the rows: the API, the
-- command line, a purge, an ON DELETE CASCADE or an operator's SQL. A notification is sent when
-- the transaction commits, and not at all when it rolls back.
--
-- Payloads: 's:' and the hex of a session's token_hash (the SHA-256 of the cookie, never the
-- cookie), 'u:' and a user's id, or 'all' when a statement touched more than 100 rows (so that
-- a bulk change sends one small message rather than thousands) or when TRUNCATE ran. The
-- triggers are per statement with transition tables, which PostgreSQL does not allow together
-- with a column list (UPDATE OF …), so the UPDATE triggers run for every UPDATE of their table
-- and find the rows that matter themselves; those are rare statements (a session's last_seen_at
-- once a minute, a user's last_login_at at login) that touch one row.

CREATE FUNCTION notify_revocations(payloads text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	p text;
BEGIN
	IF cardinality(payloads) > 100 THEN
		PERFORM pg_notify('people_revocations', 'all');
		RETURN;
	END IF;
	FOREACH p IN ARRAY payloads LOOP
		PERFORM pg_notify('people_revocations', p);
	END LOOP;
END $$;

-- Every deleted session: logout, back-channel logout, a new login replacing the carried one,
-- the purge, a user's deletion (cascade).
CREATE FUNCTION sessions_notify_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM notify_revocations(ARRAY(SELECT 's:' || encode(token_hash, 'hex') FROM old_rows LIMIT 101));
	RETURN NULL;
END $$;
CREATE TRIGGER sessions_notify_delete AFTER DELETE ON sessions
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION sessions_notify_delete();

-- A session whose hash, user or expiry changed (the application never does it; an operator
-- may): the old hash is announced, and an instance that cached it reads the row again.
CREATE FUNCTION sessions_notify_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM notify_revocations(ARRAY(
		SELECT 's:' || encode(o.token_hash, 'hex') FROM old_rows o
		WHERE NOT EXISTS (SELECT FROM new_rows n WHERE n.id = o.id AND n.token_hash = o.token_hash
			AND n.user_id = o.user_id AND n.expires_at = o.expires_at)
		LIMIT 101));
	RETURN NULL;
END $$;
CREATE TRIGGER sessions_notify_update AFTER UPDATE ON sessions
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sessions_notify_update();

-- A user who was active and no longer is (deactivated, or their id changed).
CREATE FUNCTION users_notify_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM notify_revocations(ARRAY(
		SELECT 'u:' || o.id FROM old_rows o
		WHERE o.is_active AND NOT EXISTS (SELECT FROM new_rows n WHERE n.id = o.id AND n.is_active)
		LIMIT 101));
	RETURN NULL;
END $$;
CREATE TRIGGER users_notify_update AFTER UPDATE ON users
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION users_notify_update();

CREATE FUNCTION users_notify_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM notify_revocations(ARRAY(SELECT 'u:' || id FROM old_rows LIMIT 101));
	RETURN NULL;
END $$;
CREATE TRIGGER users_notify_delete AFTER DELETE ON users
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION users_notify_delete();

-- TRUNCATE skips the DELETE triggers.
CREATE FUNCTION notify_revoke_all() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('people_revocations', 'all');
	RETURN NULL;
END $$;
CREATE TRIGGER sessions_notify_truncate AFTER TRUNCATE ON sessions FOR EACH STATEMENT EXECUTE FUNCTION notify_revoke_all();
CREATE TRIGGER users_notify_truncate AFTER TRUNCATE ON users FOR EACH STATEMENT EXECUTE FUNCTION notify_revoke_all();
