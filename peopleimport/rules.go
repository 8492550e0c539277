package peopleimport

import (
	"context"
	"fmt"
	"strings"
)

// Report actions: what happened to a row (or, for an organization, to one of its identifiers).
const (
	Skipped = "skipped" // not imported
	Changed = "changed" // imported, normalised as the reason says
	Noted   = "noted"   // imported unchanged, but worth an operator's look
)

// rule is one documented normalisation: the staging rows of stage matching where (alias s,
// skipped rows excluded) are reported under table with action and reason (an SQL expression),
// then changed by set (a SET list; "skip = true" for Skipped; empty for a note).
type rule struct {
	table, stage, action string
	where, reason, set   string
	id                   string // the reported id, an SQL expression; "" is s.id
}

// issuerParam stands for the issuer in a rule's SQL; apply replaces it with a literal.
const issuerParam = "{issuer}"

// rules run in this order: a later rule sees what earlier ones skipped or changed. They are
// the README's "Moving from People" list of import rules, one to one.
var rules = []rule{
	// Organizations' identifiers: People's arrays become rows of unique side tables.
	{table: "organizations", stage: "s_ident", action: Changed, id: "s.organization_id::text",
		where:  "s.value <> s.raw AND s.value <> ''",
		reason: "format('%s %L stored as %L', s.kind, s.raw, s.value)"},
	{table: "organizations", stage: "s_ident", action: Changed, id: "s.organization_id::text", set: "skip = true",
		where: `s.value IS NULL OR CASE s.kind WHEN 'domain' THEN s.value !~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$' OR length(s.value) > 253
			ELSE s.value !~ '^\S+$' END`,
		reason: "format('%s %L dropped: not a valid %s', s.kind, s.raw, s.kind)"},
	{table: "organizations", stage: "s_ident", action: Changed, id: "s.organization_id::text", set: "skip = true",
		where: `EXISTS (SELECT 1 FROM s_ident o WHERE o.organization_id = s.organization_id AND o.kind = s.kind
			AND o.value = s.value AND o.ord < s.ord AND NOT o.skip)`,
		reason: "format('%s %L repeated: kept once', s.kind, s.value)"},
	{table: "organizations", stage: "s_ident", action: Changed, id: "s.organization_id::text", set: "skip = true",
		where: `CASE s.kind WHEN 'domain' THEN EXISTS (SELECT 1 FROM organization_domains d WHERE d.domain = s.value AND d.organization_id <> s.organization_id)
			ELSE EXISTS (SELECT 1 FROM organization_registration_ids r WHERE r.registration_id = s.value AND r.organization_id <> s.organization_id) END`,
		reason: "format('%s %L dropped: another organization holds it here', s.kind, s.value)"},
	// One owner per value: the active organization first, then the oldest.
	{table: "organizations", stage: "s_ident", action: Changed, id: "s.organization_id::text", set: "skip = true",
		where: `EXISTS (SELECT 1 FROM s_ident o WHERE o.kind = s.kind AND o.value = s.value AND o.organization_id <> s.organization_id
			AND NOT o.skip AND (NOT o.is_active, o.created_at, o.organization_id) < (NOT s.is_active, s.created_at, s.organization_id))`,
		reason: `format('%s %L dropped: organization %s holds it too (the active one first, then the oldest, keeps it)', s.kind, s.value,
			(SELECT o.organization_id FROM s_ident o WHERE o.kind = s.kind AND o.value = s.value AND NOT o.skip
				ORDER BY NOT o.is_active, o.created_at, o.organization_id LIMIT 1))`},
	{table: "organizations", stage: "s_org", action: Skipped, set: "skip = true",
		where:  "NOT EXISTS (SELECT 1 FROM s_ident i WHERE i.organization_id = s.id AND NOT i.skip)",
		reason: "'no registration id or domain of its own is left: its users and teams lose their organization'"},
	{table: "organizations", stage: "s_org", action: Changed, where: "NOT not_blank(s.name)",
		set:    `name = (SELECT i.value FROM s_ident i WHERE i.organization_id = s.id AND NOT i.skip ORDER BY i.kind DESC, i.ord LIMIT 1)`,
		reason: "'blank name: named after its registration id or domain'"},
	{table: "organizations", stage: "s_org", action: Changed, where: "jsonb_typeof(s.metadata) <> 'object'", set: "metadata = '{}'",
		reason: "format('metadata %s is not a JSON object: emptied', s.metadata)"},

	// Users.
	{table: "users", stage: "s_user", action: Changed, where: "s.sub = ''", set: "our_sub = s.id::text, identity = false",
		reason: "'empty sub: no identity is linked; the user can log in only through the email fallback'"},
	{table: "users", stage: "s_user", action: Changed, where: `s.sub <> '' AND NOT ((s.sub COLLATE "und-x-icu") ~ '^[\w.@+-]+$')`,
		set:    "our_sub = s.id::text",
		reason: `format('sub %L does not match ^[\w.@+-]+$: users.sub is the user''s id, the identity keeps the sub', s.sub)`},
	{table: "users", stage: "s_user", action: Changed, where: "EXISTS (SELECT 1 FROM users t WHERE t.sub = s.our_sub AND t.id <> s.id)",
		set:    "our_sub = s.id::text",
		reason: "format('sub held here by user %s: users.sub is the user''s id', (SELECT t.id FROM users t WHERE t.sub = s.our_sub))"},
	{table: "users", stage: "s_user", action: Changed, set: "identity = false",
		where: `s.identity AND EXISTS (SELECT 1 FROM user_identities i WHERE i.issuer = {issuer} AND i.subject = s.sub AND i.audience = ''
			AND i.user_id <> s.id)`,
		reason: `format('the identity %L is linked here to user %s: not linked to this one', s.sub,
			(SELECT i.user_id FROM user_identities i WHERE i.issuer = {issuer} AND i.subject = s.sub AND i.audience = ''))`},
	{table: "users", stage: "s_user", action: Changed, where: "s.email IS NOT NULL AND NOT coalesce(email_like(s.email), false)",
		set: "email = NULL", reason: "format('email %L is not an address: dropped', s.email)"},
	{table: "users", stage: "s_user", action: Changed, where: "split_part(s.email, '@', 2) <> lower(split_part(s.email, '@', 2))",
		set:    "email = split_part(s.email, '@', 1) || '@' || lower(split_part(s.email, '@', 2))",
		reason: "format('email %L: domain lower-cased', s.email)"},
	{table: "users", stage: "s_user", action: Changed, where: "s.language NOT IN ('en-us', 'fr-fr')",
		set:    "language = CASE WHEN s.language ILIKE 'fr%' THEN 'fr-fr' ELSE 'en-us' END",
		reason: "format('language %L is not en-us or fr-fr: %s', s.language, CASE WHEN s.language ILIKE 'fr%' THEN 'fr-fr' ELSE 'en-us' END)"},
	{table: "users", stage: "s_user", action: Changed, where: "NOT EXISTS (SELECT 1 FROM timezones z WHERE z.name = s.timezone)",
		set: "timezone = 'UTC'", reason: "format('time zone %L unknown: UTC', s.timezone)"},
	{table: "users", stage: "s_user", action: Changed, where: "s.is_staff AND NOT s.staff",
		reason: "'is_staff without is_superuser or any admin permission (People''s admin let them do nothing): not staff here'"},
	{table: "users", stage: "s_user", action: Changed, where: "s.is_superuser AND NOT s.is_staff",
		reason: "'is_superuser without is_staff (People''s admin refused them): not staff here'"},
	{table: "users", stage: "s_user", action: Changed, where: "s.organization_id IN (SELECT o.id FROM s_org o WHERE o.skip)",
		set: "organization_id = NULL", reason: "format('organization %s skipped: no organization', s.organization_id)"},
	{table: "users", stage: "s_user", action: Noted,
		where: "s.email IS NOT NULL AND EXISTS (SELECT 1 FROM s_user o WHERE lower(o.email) = lower(s.email) AND o.id <> s.id)",
		reason: `format('email %L shared up to case with user(s) %s: kept as separate users, so a login by email (the fallback) links neither', s.email,
			(SELECT string_agg(o.id::text, ', ' ORDER BY o.id) FROM s_user o WHERE lower(o.email) = lower(s.email) AND o.id <> s.id))`},

	// Organization accesses.
	{table: "organization_accesses", stage: "s_org_access", action: Skipped, set: "skip = true",
		where: "s.role <> 'administrator'", reason: "format('role %L unknown', s.role)"},
	{table: "organization_accesses", stage: "s_org_access", action: Skipped, set: "skip = true",
		where: "s.organization_id IN (SELECT o.id FROM s_org o WHERE o.skip)", reason: "'organization skipped'"},
	{table: "organization_accesses", stage: "s_org_access", action: Skipped, set: "skip = true",
		where: `EXISTS (SELECT 1 FROM organization_accesses t WHERE t.user_id = s.user_id AND t.organization_id = s.organization_id
			AND t.id <> s.id)`,
		reason: "'this user administers this organization here already'"},

	// Service providers and their links.
	{table: "service_providers", stage: "s_sp", action: Skipped, set: "skip = true", where: "btrim(s.audience_id) = ''",
		reason: "'empty audience id'"},
	{table: "service_providers", stage: "s_sp", action: Changed,
		where:  "EXISTS (SELECT 1 FROM service_providers t WHERE t.audience_id = s.audience_id AND t.id <> s.id)",
		set:    "target_id = (SELECT t.id FROM service_providers t WHERE t.audience_id = s.audience_id)",
		reason: "format('audience %L is service provider %s''s here: its links go to that one', s.audience_id, (SELECT t.id FROM service_providers t WHERE t.audience_id = s.audience_id))"},
	{table: "service_providers", stage: "s_sp", action: Changed, where: "NOT not_blank(s.name)", set: "name = s.audience_id",
		reason: "'blank name: named after its audience id, as People does'"},
	{table: "service_providers", stage: "s_sp", action: Changed,
		where:  "s.target_id = s.id AND EXISTS (SELECT 1 FROM service_providers t WHERE t.name = s.name AND t.id <> s.id)",
		set:    "name = left(s.name || ' (' || s.audience_id || ')', 256)",
		reason: "format('name %L is another service provider''s here: audience id appended', s.name)"},
	{table: "organization_service_providers", stage: "s_org_sp", action: Skipped, set: "skip = true",
		id:     "s.organization_id || ' ' || s.serviceprovider_id",
		where:  "s.organization_id IN (SELECT o.id FROM s_org o WHERE o.skip) OR s.serviceprovider_id IN (SELECT p.id FROM s_sp p WHERE p.skip)",
		reason: "'organization or service provider skipped'"},

	// Teams.
	{table: "teams", stage: "s_team", action: Changed, where: "NOT not_blank(s.name)", set: "name = 'Team ' || left(s.id::text, 8)",
		reason: "'blank name: named Team and the start of its id'"},
	{table: "teams", stage: "s_team", action: Skipped, set: "skip = true",
		where:  "EXISTS (SELECT 1 FROM teams t WHERE t.external_id = s.external_id AND t.id <> s.id)",
		reason: "format('external id %s is team %s''s here', s.external_id, (SELECT t.id FROM teams t WHERE t.external_id = s.external_id))"},
	{table: "teams", stage: "s_team", action: Changed, where: "s.organization_id IN (SELECT o.id FROM s_org o WHERE o.skip)",
		set: "organization_id = NULL", reason: "format('organization %s skipped: no organization', s.organization_id)"},
	{table: "teams", stage: "s_team", action: Changed, where: "s.path !~ '^([0-9A-Za-z]{5})+$' OR length(s.path) > 400",
		set: "parent_id = NULL", reason: "format('path %L is not a treebeard path: made a root', s.path)"},
	{table: "teams", stage: "s_team", action: Changed, where: "length(s.path) > 5 AND s.parent_id IS NULL",
		reason: "format('no team has the parent path %L: made a root', left(s.path, -5))"},
	{table: "teams", stage: "s_team", action: Changed, set: "parent_id = NULL",
		where:  "s.parent_id IS NOT NULL AND EXISTS (SELECT 1 FROM s_team p WHERE p.id = s.parent_id AND (p.skip OR p.organization_id IS DISTINCT FROM s.organization_id))",
		reason: "format('parent team %s is skipped or of another organization: made a root', s.parent_id)"},
	{table: "teams", stage: "s_team", action: Noted,
		where:  "s.depth <> length(s.path) / 5 OR s.numchild <> (SELECT count(*) FROM s_team c WHERE c.parent_id = s.id)",
		reason: "format('depth %s and numchild %s out of step with the path: recomputed', s.depth, s.numchild)"},
	{table: "teams", stage: "s_team", action: Noted,
		where:  "NOT EXISTS (SELECT 1 FROM s_team_access a WHERE a.team_id = s.id AND a.role = 'owner')",
		reason: "'no owner: imported as it is; staff can name one'"},
	{table: "teams", stage: "s_team", action: Noted,
		where: `EXISTS (SELECT 1 FROM s_team_access a WHERE a.team_id = s.id AND a.role = 'owner')
			AND NOT EXISTS (SELECT 1 FROM s_team_access a JOIN s_user u ON u.id = a.user_id WHERE a.team_id = s.id AND a.role = 'owner' AND u.is_active)`,
		reason: "'only inactive owners: imported as it is; staff can name one'"},
	{table: "team_service_providers", stage: "s_team_sp", action: Skipped, set: "skip = true",
		id:     "s.team_id || ' ' || s.serviceprovider_id",
		where:  "s.team_id IN (SELECT t.id FROM s_team t WHERE t.skip) OR s.serviceprovider_id IN (SELECT p.id FROM s_sp p WHERE p.skip)",
		reason: "'team or service provider skipped'"},

	// Team accesses.
	{table: "team_accesses", stage: "s_team_access", action: Skipped, set: "skip = true",
		where: "s.role NOT IN ('owner', 'administrator', 'member')", reason: "format('role %L unknown', s.role)"},
	{table: "team_accesses", stage: "s_team_access", action: Skipped, set: "skip = true",
		where: "s.team_id IN (SELECT t.id FROM s_team t WHERE t.skip)", reason: "'team skipped'"},
	{table: "team_accesses", stage: "s_team_access", action: Skipped, set: "skip = true",
		where:  "EXISTS (SELECT 1 FROM team_accesses t WHERE t.team_id = s.team_id AND t.user_id = s.user_id AND t.id <> s.id)",
		reason: "'this user is in this team here already'"},

	// Invitations.
	{table: "invitations", stage: "s_invitation", action: Skipped, set: "skip = true",
		where: "s.team_id IN (SELECT t.id FROM s_team t WHERE t.skip)", reason: "'team skipped'"},
	{table: "invitations", stage: "s_invitation", action: Skipped, set: "skip = true",
		where: "s.role NOT IN ('owner', 'administrator', 'member')", reason: "format('role %L unknown', s.role)"},
	{table: "invitations", stage: "s_invitation", action: Skipped, set: "skip = true",
		where: "NOT coalesce(email_like(s.email), false)", reason: "format('email %L is not an address', s.email)"},
	{table: "invitations", stage: "s_invitation", action: Skipped, set: "skip = true",
		where: `EXISTS (SELECT 1 FROM s_invitation o WHERE lower(o.email) = lower(s.email) AND o.team_id = s.team_id AND NOT o.skip
			AND (o.created_at, o.id) < (s.created_at, s.id))`,
		reason: "'another invitation to this team has the same email up to case: the older is kept'"},
	{table: "invitations", stage: "s_invitation", action: Skipped, set: "skip = true",
		where:  "EXISTS (SELECT 1 FROM invitations t WHERE lower(t.email) = lower(s.email) AND t.team_id = s.team_id AND t.id <> s.id)",
		reason: "'this email is invited to this team here already'"},
	{table: "invitations", stage: "s_invitation", action: Noted,
		where:  "EXISTS (SELECT 1 FROM s_user u WHERE lower(u.email) = lower(s.email))",
		reason: "'addressed to an existing user''s email (up to case): imported; it turns into an access at their next login if still valid'"},

	// Contacts (their data was cleaned before the rules: cleanContactData).
	{table: "contacts", stage: "s_contact", action: Skipped, set: "skip = true", where: "s.cleaned AND NOT contact_data_valid(s.data)",
		reason: "'data outside the contact schema, even cleaned'"},
	{table: "contacts", stage: "s_contact", action: Skipped, set: "skip = true",
		where: "NOT not_blank(s.full_name) AND coalesce(not_blank(s.short_name), false) = false", reason: "'blank name and no short name'"},
	{table: "contacts", stage: "s_contact", action: Changed, where: "NOT not_blank(s.full_name)", set: "full_name = s.short_name",
		reason: "'blank name: named by its short name'"},
	{table: "contacts", stage: "s_contact", action: Changed, set: "override_id = NULL",
		where:  "s.override_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM s_contact b WHERE b.id = s.override_id AND NOT b.skip AND b.owner_id IS NULL)",
		reason: "format('overrides contact %s, which is not a shared contact here (or skipped): kept as a private contact', s.override_id)"},
	{table: "contacts", stage: "s_contact", action: Changed, set: "user_id = NULL",
		where:  "s.user_id IS NOT NULL AND EXISTS (SELECT 1 FROM contacts t WHERE t.user_id = s.user_id AND t.id <> s.id)",
		reason: "'the user has another profile contact here: kept as a private contact'"},

	// Team webhooks.
	{table: "team_webhooks", stage: "s_webhook", action: Skipped, set: "skip = true",
		where: "s.team_id IN (SELECT t.id FROM s_team t WHERE t.skip)", reason: "'team skipped'"},
	{table: "team_webhooks", stage: "s_webhook", action: Skipped, set: "skip = true", where: "s.protocol NOT IN ('scim', 'matrix')",
		reason: "format('protocol %L is not supported here (SCIM and Matrix only)', s.protocol)"},
	{table: "team_webhooks", stage: "s_webhook", action: Skipped, set: "skip = true",
		where:  "s.protocol = 'scim' AND s.url !~ '^https?://[^/?#@[:space:]]+([/?][^#[:space:]]*)?$'",
		reason: "format('URL %L is not an http(s) URL without user info', s.url)"},
	// A Matrix webhook names its room in the URL's fragment, as People's Element and matrix.to
	// links do (migration 0012): the sender reads it there.
	{table: "team_webhooks", stage: "s_webhook", action: Skipped, set: "skip = true",
		where:  "s.protocol = 'matrix' AND s.url !~ '^https://[^/?#@[:space:]]+([/?][^#[:space:]]*)?#[^[:space:]]+$'",
		reason: "format('URL %L is not an https link to a Matrix room (https://<client>/#/room/<room>)', s.url)"},
	{table: "team_webhooks", stage: "s_webhook", action: Changed, where: "s.secret = ''", set: "secret = NULL",
		reason: "'empty secret: none'"},
	{table: "team_webhooks", stage: "s_webhook", action: Skipped, set: "skip = true", where: "s.secret !~ '^[!-~]{1,255}$'",
		reason: "'the secret has characters a Bearer header cannot carry'"},
	{table: "team_webhooks", stage: "s_webhook", action: Changed, where: "s.status NOT IN ('pending', 'success', 'failure')",
		set: "status = 'pending'", reason: "format('status %L unknown: pending', s.status)"},
	{table: "team_webhooks", stage: "s_webhook", action: Skipped, set: "skip = true",
		where:  "EXISTS (SELECT 1 FROM s_webhook o WHERE o.team_id = s.team_id AND o.url = s.url AND NOT o.skip AND (o.created_at, o.id) < (s.created_at, s.id))",
		reason: "'another webhook of this team has this URL: the older is kept'"},
	{table: "team_webhooks", stage: "s_webhook", action: Skipped, set: "skip = true",
		where:  "EXISTS (SELECT 1 FROM team_webhooks t WHERE t.team_id = s.team_id AND t.url = s.url AND t.id <> s.id)",
		reason: "'this team has a webhook with this URL here already'"},
}

// apply runs one rule: the report lines first, from the rows as they are, then the change.
func (im *importer) apply(ctx context.Context, r rule) error {
	where := strings.ReplaceAll(r.where, issuerParam, quote(im.o.Issuer))
	reason := strings.ReplaceAll(r.reason, issuerParam, quote(im.o.Issuer))
	id := r.id
	if id == "" {
		id = "s.id::text"
	}
	tag, err := im.dst.Exec(ctx, fmt.Sprintf(`INSERT INTO import_report (tbl, id, action, reason)
		SELECT %s, %s, %s, %s FROM %s s WHERE NOT s.skip AND (%s) ORDER BY 2`,
		quote(r.table), id, quote(r.action), reason, r.stage, where))
	if err != nil || tag.RowsAffected() == 0 || r.set == "" {
		return err
	}
	_, err = im.dst.Exec(ctx, fmt.Sprintf("UPDATE %s s SET %s WHERE NOT s.skip AND (%s)", r.stage, r.set, where))
	return err
}

// quote is s as an SQL string literal (standard_conforming_strings is on since PostgreSQL 9.1).
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
