-- 0005: the audit trail. Every mutation, from any principal (a browser session, a partner
-- service's token, a login that provisions, the command line), appends one event in the
-- transaction of the change it records: the change and its record commit or roll back together.
-- People had none (the Django admin's LogEntry covered the admin only, and could be deleted).

CREATE TABLE audit_events (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	-- The order of appends within one instant; events are listed newest first by (created_at, seq).
	seq bigint GENERATED ALWAYS AS IDENTITY,
	-- The transaction's time, as every created_at of the rows it wrote.
	created_at timestamptz NOT NULL DEFAULT now(),
	-- No foreign keys: an event outlives the user, service and rows it names.
	actor_id uuid, -- NULL for the command line
	actor_method varchar(10) NOT NULL
		CONSTRAINT audit_events_actor_method_check CHECK (actor_method IN ('session', 'bearer', 'login', 'command')),
	service_provider_id uuid, -- the partner service of a bearer token
	operation varchar(64) NOT NULL CONSTRAINT audit_events_operation_check CHECK (operation ~ '^[a-zA-Z]+$'),
	target_ids uuid[] NOT NULL DEFAULT '{}',
	-- The fields the operation set, by their API names. Never a secret: a webhook's is "[set]".
	changes jsonb NOT NULL DEFAULT '{}' CONSTRAINT audit_events_changes_check CHECK (jsonb_typeof(changes) = 'object'),
	CONSTRAINT audit_events_seq_key UNIQUE (seq),
	CONSTRAINT audit_events_actor_check CHECK ((actor_id IS NULL) = (actor_method = 'command')),
	CONSTRAINT audit_events_service_check CHECK ((service_provider_id IS NOT NULL) = (actor_method = 'bearer'))
);
CREATE INDEX audit_events_created_at_idx ON audit_events (created_at DESC, seq DESC);
CREATE INDEX audit_events_actor_id_idx ON audit_events (actor_id, created_at DESC, seq DESC);
CREATE INDEX audit_events_operation_idx ON audit_events (operation, created_at DESC, seq DESC);
CREATE INDEX audit_events_target_ids_idx ON audit_events USING gin (target_ids);

-- Append-only. The application connects as the owner of its tables, and an owner's privileges
-- cannot be revoked from itself in a way that holds (it may grant them back), so the refusal is
-- a trigger: UPDATE, DELETE and TRUNCATE fail whoever runs them, the application included, and a
-- foreign key cascade cannot reach the table since it has none. Only DDL (DROP TRIGGER, DROP
-- TABLE) or a superuser's session_replication_role = replica gets past it: that is deliberate
-- work by an operator, outside anything the API can be made to run.
CREATE FUNCTION refuse_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit events are append-only: % refused', TG_OP
		USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
	FOR EACH ROW EXECUTE FUNCTION refuse_audit_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
	FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_change();
