-- 0010: the organizations waiting for their name from the companies registry
-- (ORGANIZATION_REGISTRY_URL). A login that creates an organization from a registration id (a
-- SIRET) queues it here in its own transaction; every server instance looks the due ones up,
-- each claimed first (store.ClaimOrganizationLookups), so that a crash or a restart loses none
-- and two instances never ask twice. A row goes when the organization is named, when the
-- registry knows no such establishment, when the lookup is given up, or with its organization.
-- A table of its own rather than columns of organizations: claims and retries leave the
-- organization's row, its updated_at and its locks alone.
CREATE TABLE organization_registry_lookups (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
	due_at timestamptz NOT NULL DEFAULT now(), -- the next attempt; a claim pushes it past its lease
	attempts integer NOT NULL DEFAULT 0 CONSTRAINT organization_registry_lookups_attempts_check CHECK (attempts >= 0),
	CONSTRAINT organization_registry_lookups_organization_id_key UNIQUE (organization_id)
);
CREATE TRIGGER organization_registry_lookups_updated_at BEFORE UPDATE ON organization_registry_lookups FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE INDEX organization_registry_lookups_due_at_idx ON organization_registry_lookups (due_at);
