package store

import (
	"context"
	"encoding/json"

	"github.com/google/uuid"
)

// maxExportedEvents bounds the audit events of one export; the document says when there were
// more (auditEventsTotal), and adminAuditEvents pages through them all.
const maxExportedEvents = 10000

// userExportSQL builds the export in one statement, so that it is one consistent snapshot. Keys
// are the API's camelCase names. It never reads a credential: not the sessions' token hashes,
// ID tokens or sids, not the webhooks' secrets or URLs, not the invitation mails' payloads.
const userExportSQL = `
WITH u AS (SELECT * FROM users WHERE id = ?0),
ev AS (
	SELECT ae.* FROM audit_events ae WHERE ae.actor_id = ?0 OR ae.target_ids @> ARRAY[?0]::uuid[]
)
SELECT jsonb_build_object(
	'exportedAt', now(),
	'user', (SELECT jsonb_build_object('id', u.id, 'sub', u.sub, 'email', u.email, 'name', u.name,
		'language', u.language, 'timezone', u.timezone, 'isDevice', u.is_device, 'isStaff', u.is_staff,
		'isActive', u.is_active, 'organizationId', u.organization_id, 'createdAt', u.created_at,
		'updatedAt', u.updated_at, 'lastLoginAt', u.last_login_at) FROM u),
	'organization', (SELECT jsonb_build_object('id', o.id, 'name', o.name) FROM organizations o JOIN u ON u.organization_id = o.id),
	'identities', coalesce((SELECT jsonb_agg(jsonb_build_object('issuer', i.issuer, 'subject', i.subject,
		'audience', i.audience, 'createdAt', i.created_at) ORDER BY i.created_at, i.id)
		FROM user_identities i WHERE i.user_id = ?0), '[]'),
	'organizationAccesses', coalesce((SELECT jsonb_agg(jsonb_build_object('organizationId', oa.organization_id,
		'organizationName', o.name, 'role', oa.role, 'createdAt', oa.created_at) ORDER BY oa.created_at, oa.id)
		FROM organization_accesses oa JOIN organizations o ON o.id = oa.organization_id WHERE oa.user_id = ?0), '[]'),
	'teamAccesses', coalesce((SELECT jsonb_agg(jsonb_build_object('id', ta.id, 'teamId', ta.team_id, 'teamName', t.name,
		'role', ta.role, 'createdAt', ta.created_at, 'updatedAt', ta.updated_at) ORDER BY ta.created_at, ta.id)
		FROM team_accesses ta JOIN teams t ON t.id = ta.team_id WHERE ta.user_id = ?0), '[]'),
	'invitationsToTheirEmail', coalesce((SELECT jsonb_agg(jsonb_build_object('id', inv.id, 'email', inv.email,
		'teamId', inv.team_id, 'teamName', t.name, 'role', inv.role, 'issuerId', inv.issuer_id,
		'createdAt', inv.created_at, 'emailSentAt', inv.email_sent_at) ORDER BY inv.created_at, inv.id)
		FROM invitations inv JOIN teams t ON t.id = inv.team_id JOIN u ON lower(inv.email) = lower(u.email)), '[]'),
	'invitationsIssued', coalesce((SELECT jsonb_agg(jsonb_build_object('id', inv.id, 'email', inv.email,
		'teamId', inv.team_id, 'role', inv.role, 'createdAt', inv.created_at, 'emailSentAt', inv.email_sent_at)
		ORDER BY inv.created_at, inv.id) FROM invitations inv WHERE inv.issuer_id = ?0), '[]'),
	'profileContact', (SELECT jsonb_build_object('id', c.id, 'fullName', c.full_name, 'shortName', c.short_name,
		'notes', c.notes, 'data', c.data, 'createdAt', c.created_at, 'updatedAt', c.updated_at)
		FROM contacts c WHERE c.user_id = ?0),
	'contacts', coalesce((SELECT jsonb_agg(jsonb_build_object('id', c.id, 'fullName', c.full_name, 'shortName', c.short_name,
		'notes', c.notes, 'data', c.data, 'overrideId', c.override_id, 'createdAt', c.created_at, 'updatedAt', c.updated_at)
		ORDER BY c.full_name, c.id) FROM contacts c WHERE c.owner_id = ?0 AND c.user_id IS NULL), '[]'),
	'sessions', coalesce((SELECT jsonb_agg(jsonb_build_object('issuer', s.issuer, 'createdAt', s.created_at,
		'lastSeenAt', s.last_seen_at, 'expiresAt', s.expires_at) ORDER BY s.created_at, s.id)
		FROM sessions s WHERE s.user_id = ?0), '[]'),
	'webhookDeliveries', coalesce((SELECT jsonb_agg(jsonb_build_object('teamId', d.team_id, 'operation', d.operation,
		'email', d.email, 'status', d.status, 'createdAt', d.created_at, 'finishedAt', d.finished_at) ORDER BY d.seq)
		FROM team_webhook_deliveries d WHERE d.user_id = ?0), '[]'),
	'auditEventsTotal', (SELECT count(*) FROM ev),
	'auditEvents', coalesce((SELECT jsonb_agg(jsonb_build_object('id', e.id, 'createdAt', e.created_at,
		'actorId', e.actor_id, 'method', e.actor_method, 'serviceProviderId', e.service_provider_id,
		'operation', e.operation, 'targetIds', e.target_ids, 'changes', e.changes) ORDER BY e.created_at DESC, e.seq DESC)
		FROM (SELECT * FROM ev ORDER BY created_at DESC, seq DESC LIMIT ?1) e), '[]')
) FROM u`

// AdminUserExport returns everything the directory holds about one user, for a data-protection
// access request: the user, their identities at identity providers, organization, team
// accesses, the invitations to their email and those they issued, their profile contact and
// the contacts they own, their sessions (times only), the webhook deliveries about them, and
// the audit events by them or about them (the newest maxExportedEvents). One JSON object, to
// be saved as it is; staff only. None of People's anchors has it.
func (s *Store) AdminUserExport(ctx context.Context, staff StaffActor, id uuid.UUID) (json.RawMessage, error) {
	if err := staff.check(); err != nil {
		return nil, err
	}
	var doc []byte
	if err := s.db.QueryRowContext(ctx, userExportSQL, id, maxExportedEvents).Scan(&doc); err != nil {
		return nil, notFoundOr(err, "user", "export user")
	}
	return doc, nil
}
