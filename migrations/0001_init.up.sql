-- 0001: the directory's data model. Every rule PostgreSQL can hold is declared here, so that
-- rows written by any path (API, demo loader, psql) obey the same model.

CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- search_key folds case and accents. unaccent() is only STABLE (it reads a dictionary), so this
-- wrapper names the dictionary explicitly and is declared IMMUTABLE to be usable in indexes.
CREATE FUNCTION search_key(text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
RETURN lower(public.unaccent('public.unaccent'::regdictionary, $1));

-- White space below is every Unicode White_Space character spelled out. Not \s, whose meaning
-- follows the server's locale (with LC_CTYPE=C it matches no non-ASCII space; with C.UTF-8 it
-- matches the em space but not the no-break space), nor btrim's default, which strips only
-- spaces. The set is exactly Go's unicode.IsSpace, which the store's checks use.

-- not_blank says that a name has something other than white space.
CREATE FUNCTION not_blank(text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
RETURN $1 ~ '[^\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]';

-- email_like is the shape every stored email has: one @, with something on each side and no
-- white space. The application checks addresses more strictly (net/mail) where it can.
CREATE FUNCTION email_like(text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
RETURN $1 ~ '^[^@\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+@[^@\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$';

CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	NEW.updated_at := now();
	RETURN NEW;
END $$;

-- Valid IANA names, copied from the server's time zone database once: a foreign key is both
-- the cheapest check and the one that cannot drift from what PostgreSQL can convert.
CREATE TABLE timezones (
	name text PRIMARY KEY
);
INSERT INTO timezones (name)
SELECT name FROM pg_timezone_names
WHERE name !~ '^(posix|right)/' AND name NOT IN ('posixrules', 'Factory', 'localtime')
ON CONFLICT DO NOTHING;
INSERT INTO timezones (name) VALUES ('UTC') ON CONFLICT DO NOTHING;

CREATE TABLE organizations (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	name varchar(100) NOT NULL CONSTRAINT organizations_name_check CHECK (not_blank(name)),
	metadata jsonb NOT NULL DEFAULT '{}' CONSTRAINT organizations_metadata_check CHECK (jsonb_typeof(metadata) = 'object'),
	is_active boolean NOT NULL DEFAULT true
);
CREATE TRIGGER organizations_updated_at BEFORE UPDATE ON organizations FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX organizations_name_trgm ON organizations USING gin (search_key(name) gin_trgm_ops);

-- Registration ids and mail domains are rows, not arrays, so that a unique index makes two
-- organizations sharing one impossible even under concurrent first logins (People checks in Python).
-- Their format (a SIRET is 14 digits by default) is configuration, checked by the application.
CREATE TABLE organization_registration_ids (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	registration_id varchar(128) NOT NULL
		CONSTRAINT organization_registration_ids_registration_id_check CHECK (registration_id ~ '^\S+$'),
	CONSTRAINT organization_registration_ids_registration_id_key UNIQUE (registration_id)
);
CREATE INDEX organization_registration_ids_organization_id_idx ON organization_registration_ids (organization_id);
CREATE TRIGGER organization_registration_ids_updated_at BEFORE UPDATE ON organization_registration_ids FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE organization_domains (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	domain varchar(253) NOT NULL
		CONSTRAINT organization_domains_domain_check CHECK (domain = lower(domain) AND domain ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$'),
	CONSTRAINT organization_domains_domain_key UNIQUE (domain)
);
CREATE INDEX organization_domains_organization_id_idx ON organization_domains (organization_id);
CREATE TRIGGER organization_domains_updated_at BEFORE UPDATE ON organization_domains FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- An organization has at least a registration id or a domain. The check is deferred to commit,
-- so that an organization and its identifiers are inserted in one transaction in any order.
-- It locks the organization first: two transactions each removing one of its last two
-- identifiers would otherwise both see the other's row still there and both commit. The lock
-- makes the second wait, then look again (read committed: a fresh snapshot per statement).
CREATE FUNCTION check_organization_identified() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	org uuid;
BEGIN
	IF TG_TABLE_NAME = 'organizations' THEN
		org := NEW.id;
	ELSE
		org := OLD.organization_id;
	END IF;
	PERFORM FROM organizations WHERE id = org FOR NO KEY UPDATE;
	IF FOUND
		AND NOT EXISTS (SELECT 1 FROM organization_registration_ids WHERE organization_id = org)
		AND NOT EXISTS (SELECT 1 FROM organization_domains WHERE organization_id = org) THEN
		RAISE EXCEPTION 'an organization must have at least a registration id or a domain'
			USING ERRCODE = 'check_violation', CONSTRAINT = 'organizations_identified_check';
	END IF;
	RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER organizations_identified AFTER INSERT ON organizations
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_organization_identified();
CREATE CONSTRAINT TRIGGER organization_registration_ids_identified AFTER DELETE OR UPDATE OF organization_id ON organization_registration_ids
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_organization_identified();
CREATE CONSTRAINT TRIGGER organization_domains_identified AFTER DELETE OR UPDATE OF organization_id ON organization_domains
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION check_organization_identified();

CREATE TABLE users (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	-- Django's ^[\w.@+-]+\Z with Python's Unicode \w. PostgreSQL's \w follows the collation's
	-- character classes, so the ICU root collation pins it: with the database's default, a
	-- cluster made with LC_CTYPE=C would refuse 'é' and turn those logins into errors.
	sub varchar(255) NOT NULL CONSTRAINT users_sub_check CHECK ((sub COLLATE "und-x-icu") ~ '^[\w.@+-]+$'),
	-- Not unique, as in People: several accounts may share a mailbox. Django lower-cases the domain.
	email varchar(254) CONSTRAINT users_email_check CHECK (
		email_like(email) AND split_part(email, '@', 2) = lower(split_part(email, '@', 2))),
	name varchar(100),
	language varchar(10) NOT NULL DEFAULT 'en-us' CONSTRAINT users_language_check CHECK (language IN ('en-us', 'fr-fr')),
	timezone text NOT NULL DEFAULT 'UTC' CONSTRAINT users_timezone_fkey REFERENCES timezones (name),
	is_device boolean NOT NULL DEFAULT false,
	is_staff boolean NOT NULL DEFAULT false,
	is_active boolean NOT NULL DEFAULT true,
	organization_id uuid REFERENCES organizations (id) ON DELETE RESTRICT,
	last_login_at timestamptz,
	CONSTRAINT users_sub_key UNIQUE (sub)
);
CREATE TRIGGER users_updated_at BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX users_organization_id_idx ON users (organization_id, created_at DESC, id DESC) WHERE is_active;
CREATE INDEX users_email_lower_idx ON users (lower(email));
CREATE INDEX users_name_trgm ON users USING gin (search_key(name) gin_trgm_ops);
CREATE INDEX users_email_trgm ON users USING gin (search_key(email) gin_trgm_ops);

-- Every subject an identity provider has given for a user. audience = '' is a public subject
-- (browser login); a service's client id marks a pairwise subject that only that service sees.
CREATE TABLE user_identities (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	issuer text NOT NULL CONSTRAINT user_identities_issuer_check CHECK (issuer <> ''),
	subject varchar(255) NOT NULL CONSTRAINT user_identities_subject_check CHECK (subject <> ''),
	audience text NOT NULL DEFAULT '',
	CONSTRAINT user_identities_issuer_subject_audience_key UNIQUE (issuer, subject, audience)
);
CREATE INDEX user_identities_user_id_idx ON user_identities (user_id);
CREATE TRIGGER user_identities_updated_at BEFORE UPDATE ON user_identities FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE organization_accesses (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role varchar(20) NOT NULL DEFAULT 'administrator' CONSTRAINT organization_accesses_role_check CHECK (role IN ('administrator')),
	CONSTRAINT organization_accesses_user_id_organization_id_key UNIQUE (user_id, organization_id)
);
CREATE INDEX organization_accesses_organization_id_idx ON organization_accesses (organization_id);
CREATE TRIGGER organization_accesses_updated_at BEFORE UPDATE ON organization_accesses FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE service_providers (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	name varchar(256) NOT NULL CONSTRAINT service_providers_name_check CHECK (not_blank(name)),
	audience_id varchar(256) NOT NULL CONSTRAINT service_providers_audience_id_check CHECK (audience_id <> ''),
	CONSTRAINT service_providers_name_key UNIQUE (name),
	CONSTRAINT service_providers_audience_id_key UNIQUE (audience_id)
);
CREATE TRIGGER service_providers_updated_at BEFORE UPDATE ON service_providers FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX service_providers_name_trgm ON service_providers USING gin (search_key(name) gin_trgm_ops);

CREATE TABLE organization_service_providers (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	service_provider_id uuid NOT NULL REFERENCES service_providers (id) ON DELETE CASCADE,
	CONSTRAINT organization_service_providers_key UNIQUE (organization_id, service_provider_id)
);
CREATE INDEX organization_service_providers_sp_idx ON organization_service_providers (service_provider_id);
CREATE TRIGGER organization_service_providers_updated_at BEFORE UPDATE ON organization_service_providers FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE teams (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	name varchar(100) NOT NULL CONSTRAINT teams_name_check CHECK (not_blank(name)),
	organization_id uuid REFERENCES organizations (id) ON DELETE RESTRICT,
	is_visible_all_services boolean NOT NULL DEFAULT false,
	external_id uuid NOT NULL DEFAULT gen_random_uuid(),
	CONSTRAINT teams_external_id_key UNIQUE (external_id)
);
CREATE TRIGGER teams_updated_at BEFORE UPDATE ON teams FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX teams_organization_id_idx ON teams (organization_id);
CREATE INDEX teams_name_trgm ON teams USING gin (search_key(name) gin_trgm_ops);

CREATE TABLE team_service_providers (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
	service_provider_id uuid NOT NULL REFERENCES service_providers (id) ON DELETE CASCADE,
	CONSTRAINT team_service_providers_key UNIQUE (team_id, service_provider_id)
);
CREATE INDEX team_service_providers_sp_idx ON team_service_providers (service_provider_id);
CREATE TRIGGER team_service_providers_updated_at BEFORE UPDATE ON team_service_providers FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE team_accesses (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
	user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role varchar(20) NOT NULL DEFAULT 'member' CONSTRAINT team_accesses_role_check CHECK (role IN ('owner', 'administrator', 'member')),
	CONSTRAINT team_accesses_team_id_user_id_key UNIQUE (team_id, user_id)
);
CREATE INDEX team_accesses_user_id_idx ON team_accesses (user_id, team_id, role);
CREATE TRIGGER team_accesses_updated_at BEFORE UPDATE ON team_accesses FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE invitations (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	email varchar(254) NOT NULL CONSTRAINT invitations_email_check CHECK (email_like(email)),
	team_id uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
	role varchar(20) NOT NULL DEFAULT 'member' CONSTRAINT invitations_role_check CHECK (role IN ('owner', 'administrator', 'member')),
	issuer_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	email_sent_at timestamptz
);
CREATE UNIQUE INDEX invitations_email_team_id_key ON invitations (lower(email), team_id);
CREATE INDEX invitations_team_id_idx ON invitations (team_id, created_at DESC);

-- An invitation is never edited after creation (People raises PermissionDenied on save): only
-- the delivery time may be recorded.
CREATE FUNCTION freeze_invitation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF (NEW.email, NEW.team_id, NEW.role, NEW.issuer_id, NEW.created_at, NEW.id)
		IS DISTINCT FROM (OLD.email, OLD.team_id, OLD.role, OLD.issuer_id, OLD.created_at, OLD.id) THEN
		RAISE EXCEPTION 'invitations cannot be edited'
			USING ERRCODE = 'check_violation', CONSTRAINT = 'invitations_frozen_check';
	END IF;
	NEW.updated_at := now();
	RETURN NEW;
END $$;
CREATE TRIGGER invitations_frozen BEFORE UPDATE ON invitations FOR EACH ROW EXECUTE FUNCTION freeze_invitation();

-- Messages waiting to be sent (invitation emails); the sender arrives with sign-in.
CREATE TABLE mail_queue (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	template varchar(50) NOT NULL,
	recipient varchar(254) NOT NULL,
	language varchar(10) NOT NULL,
	invitation_id uuid REFERENCES invitations (id) ON DELETE CASCADE,
	payload jsonb NOT NULL DEFAULT '{}',
	attempts integer NOT NULL DEFAULT 0,
	sent_at timestamptz
);
CREATE INDEX mail_queue_pending_idx ON mail_queue (created_at) WHERE sent_at IS NULL;
CREATE TRIGGER mail_queue_updated_at BEFORE UPDATE ON mail_queue FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- contact_items_valid checks one list of People's contact JSON Schema: an array of objects with
-- only the allowed keys, string values, the required keys present and, where given, a known type.
CREATE FUNCTION contact_items_valid(items jsonb, allowed text[], required text[], types text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN jsonb_typeof(items) = 'array' AND NOT EXISTS (
	SELECT 1 FROM jsonb_array_elements(items) AS item
	WHERE jsonb_typeof(item) <> 'object'
		OR NOT (item ?& required)
		OR EXISTS (SELECT 1 FROM jsonb_each(item) AS kv WHERE NOT (kv.key = ANY (allowed)) OR jsonb_typeof(kv.value) <> 'string')
		OR (types IS NOT NULL AND item ? 'type' AND NOT ((item ->> 'type') = ANY (types))));

-- contact_data_valid is People's contact_data.json (draft-07, additionalProperties false), with
-- email values required to be email_like (People's schema says so but never enforces it).
CREATE FUNCTION contact_data_valid(d jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN jsonb_typeof(d) = 'object'
	AND NOT EXISTS (SELECT 1 FROM jsonb_object_keys(d) AS k
		WHERE k NOT IN ('emails', 'phones', 'addresses', 'links', 'customFields', 'organizations'))
	AND (NOT d ? 'emails' OR (contact_items_valid(d -> 'emails', '{type,value}', '{type,value}', '{Work,Home,Other}')
		AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(d -> 'emails') AS e WHERE NOT email_like(e ->> 'value'))))
	AND (NOT d ? 'phones' OR contact_items_valid(d -> 'phones', '{type,value}', '{type,value}',
		'{Mobile,Home,Work,Main,"Work Fax","Home Fax",Pager,Other}'))
	AND (NOT d ? 'addresses' OR contact_items_valid(d -> 'addresses', '{type,street,city,state,zip,country}', '{}', '{Home,Work,Other}'))
	AND (NOT d ? 'links' OR contact_items_valid(d -> 'links', '{type,value}', '{type,value}',
		'{Profile,Blog,Website,Twitter,Facebook,Instagram,LinkedIn,Other}'))
	AND (NOT d ? 'customFields' OR (jsonb_typeof(d -> 'customFields') = 'object'
		AND NOT EXISTS (SELECT 1 FROM jsonb_each(d -> 'customFields') AS kv WHERE jsonb_typeof(kv.value) <> 'string')))
	AND (NOT d ? 'organizations' OR contact_items_valid(d -> 'organizations', '{name,department,jobTitle}', '{name}', NULL));

-- contact_emails flattens the email values of a contact's data for searching.
CREATE FUNCTION contact_emails(d jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (SELECT string_agg(e ->> 'value', ' ') FROM jsonb_array_elements(
	CASE WHEN jsonb_typeof(d -> 'emails') = 'array' THEN d -> 'emails' ELSE '[]' END) AS e);

CREATE TABLE contacts (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	override_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
	owner_id uuid REFERENCES users (id) ON DELETE CASCADE,
	user_id uuid REFERENCES users (id) ON DELETE SET NULL,
	full_name varchar(150) NOT NULL CONSTRAINT contacts_full_name_check CHECK (not_blank(full_name)),
	short_name varchar(30),
	notes text NOT NULL DEFAULT '',
	data jsonb NOT NULL DEFAULT '{}' CONSTRAINT contacts_data_check CHECK (contact_data_valid(data)),
	CONSTRAINT contacts_user_id_key UNIQUE (user_id),
	CONSTRAINT contacts_owner_id_override_id_key UNIQUE (owner_id, override_id),
	CONSTRAINT contacts_override_owner_check CHECK (override_id IS NULL OR owner_id IS NOT NULL),
	CONSTRAINT contacts_override_not_self_check CHECK (override_id <> id),
	-- owner_id = user_id alone is NULL, so passes, for a profile contact without an owner.
	CONSTRAINT contacts_profile_owner_check CHECK (user_id IS NULL OR (owner_id IS NOT NULL AND owner_id = user_id))
);
CREATE TRIGGER contacts_updated_at BEFORE UPDATE ON contacts FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX contacts_owner_id_idx ON contacts (owner_id);
CREATE INDEX contacts_override_id_idx ON contacts (override_id);
CREATE INDEX contacts_public_idx ON contacts (full_name) WHERE owner_id IS NULL;
CREATE INDEX contacts_full_name_trgm ON contacts USING gin (search_key(full_name) gin_trgm_ops);
CREATE INDEX contacts_short_name_trgm ON contacts USING gin (search_key(short_name) gin_trgm_ops);
CREATE INDEX contacts_emails_trgm ON contacts USING gin (search_key(contact_emails(data)) gin_trgm_ops);

-- Only a public contact (no owner) can be overridden, so an override never overrides an
-- override (no chains), and a contact that others override stays public.
-- The target is locked FOR SHARE, which conflicts with the row lock an UPDATE of its owner takes:
-- whichever of "override it" and "give it an owner" comes second waits for the first to commit
-- and then sees it. A missing target is left to contacts_override_id_fkey, which says so.
CREATE FUNCTION check_contact_override() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	target_owner uuid;
BEGIN
	IF NEW.override_id IS NOT NULL THEN
		SELECT owner_id INTO target_owner FROM contacts WHERE id = NEW.override_id FOR SHARE;
	END IF;
	IF target_owner IS NOT NULL THEN
		RAISE EXCEPTION 'only a public contact can be overridden'
			USING ERRCODE = 'check_violation', CONSTRAINT = 'contacts_override_public_check';
	END IF;
	IF NEW.owner_id IS NOT NULL AND TG_OP = 'UPDATE' AND EXISTS (
		SELECT 1 FROM contacts WHERE override_id = NEW.id) THEN
		RAISE EXCEPTION 'a contact that is overridden must stay public'
			USING ERRCODE = 'check_violation', CONSTRAINT = 'contacts_override_public_check';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER contacts_override_public BEFORE INSERT OR UPDATE OF override_id, owner_id ON contacts
	FOR EACH ROW EXECUTE FUNCTION check_contact_override();
