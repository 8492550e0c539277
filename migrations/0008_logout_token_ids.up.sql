-- 0008: the ids (jti) of the OpenID back-channel logout tokens already accepted, per issuer,
-- kept until the token would be refused as too old anyway. A logout token replayed within its
-- lifetime is refused, whichever instance it reaches first or next: a captured token cannot end
-- the sessions someone opened after it. Rows past expires_at are deleted as new ones are
-- recorded (store.RecordLogoutToken).
CREATE TABLE logout_token_ids (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	issuer text NOT NULL CONSTRAINT logout_token_ids_issuer_check CHECK (issuer <> ''),
	jti varchar(255) NOT NULL CONSTRAINT logout_token_ids_jti_check CHECK (jti <> ''),
	expires_at timestamptz NOT NULL,
	CONSTRAINT logout_token_ids_issuer_jti_key UNIQUE (issuer, jti)
);
CREATE TRIGGER logout_token_ids_updated_at BEFORE UPDATE ON logout_token_ids FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX logout_token_ids_expires_at_idx ON logout_token_ids (expires_at);
