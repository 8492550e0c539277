-- 0002: server-side browser sessions, opened by an OIDC login. The cookie holds a random id;
-- this table holds only its SHA-256, so whoever reads the table (a backup, a replica, an
-- injected query) learns no cookie that would let them act as a user.
CREATE TABLE sessions (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	token_hash bytea NOT NULL CONSTRAINT sessions_token_hash_check CHECK (length(token_hash) = 32),
	user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	-- The provider's issuer and the ID token's sub and sid: what a back-channel logout names.
	issuer text NOT NULL CONSTRAINT sessions_issuer_check CHECK (issuer <> ''),
	subject varchar(255) NOT NULL CONSTRAINT sessions_subject_check CHECK (subject <> ''),
	sid text CONSTRAINT sessions_sid_check CHECK (sid <> ''),
	-- The ID token is a credential, kept only as the id_token_hint of an RP-initiated logout: it
	-- is never logged, never returned by the API, and leaves with its row at logout or expiry.
	id_token text NOT NULL,
	last_seen_at timestamptz NOT NULL DEFAULT now(),
	-- Absolute: a session is never extended, whatever its use (SESSION_COOKIE_AGE).
	expires_at timestamptz NOT NULL,
	CONSTRAINT sessions_token_hash_key UNIQUE (token_hash),
	CONSTRAINT sessions_expires_at_check CHECK (expires_at > created_at)
);
CREATE TRIGGER sessions_updated_at BEFORE UPDATE ON sessions FOR EACH ROW EXECUTE FUNCTION set_updated_at();
-- Back-channel logout ends sessions by (issuer, sid), or by (issuer, subject) when the logout
-- token has no sid.
CREATE INDEX sessions_issuer_sid_idx ON sessions (issuer, sid) WHERE sid IS NOT NULL;
CREATE INDEX sessions_issuer_subject_idx ON sessions (issuer, subject);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
-- For the cascade when a user is deleted.
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
