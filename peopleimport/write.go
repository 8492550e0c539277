package peopleimport

import (
	"context"
	"encoding/json"
	"fmt"
)

// write is one target table's share of the import: statements that each answer the counts of
// rows inserted and updated. Upserts update only rows whose values differ, so that a re-run
// of an unchanged People database changes nothing (and moves no updated_at).
type write struct {
	table  string
	around [2]string // statements run before and after stmts, if any
	stmts  []string
	fn     func(ctx context.Context, im *importer) (inserted, updated int, err error) // instead of stmts
}

// counted wraps an INSERT … RETURNING (xmax = 0) AS inserted (or an UPDATE … RETURNING false)
// into a statement answering the two counts.
func counted(stmt string) string {
	return "WITH r AS (" + stmt + ") SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM r"
}

var writes = []write{
	{table: "organizations", stmts: []string{counted(`
		INSERT INTO organizations AS t (id, created_at, updated_at, name, metadata, is_active)
		SELECT id, created_at, updated_at, name, metadata, is_active FROM s_org WHERE NOT skip
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, metadata = EXCLUDED.metadata, is_active = EXCLUDED.is_active
		WHERE (t.name, t.metadata, t.is_active) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.metadata, EXCLUDED.is_active)
		RETURNING xmax = 0 AS inserted`)}},
	{table: "organization_registration_ids", stmts: []string{counted(`
		INSERT INTO organization_registration_ids (organization_id, registration_id, created_at, updated_at)
		SELECT i.organization_id, i.value, o.created_at, o.created_at FROM s_ident i JOIN s_org o ON o.id = i.organization_id
		WHERE i.kind = 'registration id' AND NOT i.skip AND NOT o.skip
		ON CONFLICT (registration_id) DO NOTHING RETURNING true AS inserted`)}},
	{table: "organization_domains", stmts: []string{counted(`
		INSERT INTO organization_domains (organization_id, domain, created_at, updated_at)
		SELECT i.organization_id, i.value, o.created_at, o.created_at FROM s_ident i JOIN s_org o ON o.id = i.organization_id
		WHERE i.kind = 'domain' AND NOT i.skip AND NOT o.skip
		ON CONFLICT (domain) DO NOTHING RETURNING true AS inserted`)}},
	// A login here after an earlier import may have recorded a later last login: the later wins.
	{table: "users", stmts: []string{counted(`
		INSERT INTO users AS t (id, created_at, updated_at, sub, email, name, language, timezone, is_device, is_staff, is_active,
			organization_id, last_login_at)
		SELECT id, created_at, updated_at, our_sub, email, name, language, timezone, is_device, staff, is_active, organization_id, last_login
		FROM s_user WHERE NOT skip
		ON CONFLICT (id) DO UPDATE SET sub = EXCLUDED.sub, email = EXCLUDED.email, name = EXCLUDED.name, language = EXCLUDED.language,
			timezone = EXCLUDED.timezone, is_device = EXCLUDED.is_device, is_staff = EXCLUDED.is_staff, is_active = EXCLUDED.is_active,
			organization_id = EXCLUDED.organization_id, last_login_at = greatest(t.last_login_at, EXCLUDED.last_login_at)
		WHERE (t.sub, t.email, t.name, t.language, t.timezone, t.is_device, t.is_staff, t.is_active, t.organization_id, t.last_login_at)
			IS DISTINCT FROM (EXCLUDED.sub, EXCLUDED.email, EXCLUDED.name, EXCLUDED.language, EXCLUDED.timezone, EXCLUDED.is_device,
				EXCLUDED.is_staff, EXCLUDED.is_active, EXCLUDED.organization_id, greatest(t.last_login_at, EXCLUDED.last_login_at))
		RETURNING xmax = 0 AS inserted`)}},
	{table: "user_identities", stmts: []string{counted(`
		INSERT INTO user_identities (user_id, issuer, subject, audience)
		SELECT id, {issuer}, sub, '' FROM s_user WHERE identity AND NOT skip
		ON CONFLICT (issuer, subject, audience) DO NOTHING RETURNING true AS inserted`)}},
	{table: "organization_accesses", stmts: []string{counted(`
		INSERT INTO organization_accesses (id, created_at, updated_at, organization_id, user_id, role)
		SELECT id, created_at, updated_at, organization_id, user_id, role FROM s_org_access WHERE NOT skip
		ON CONFLICT DO NOTHING RETURNING true AS inserted`)}},
	{table: "service_providers", stmts: []string{counted(`
		INSERT INTO service_providers AS t (id, created_at, updated_at, name, audience_id)
		SELECT id, created_at, updated_at, name, audience_id FROM s_sp WHERE NOT skip AND target_id = id
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, audience_id = EXCLUDED.audience_id
		WHERE (t.name, t.audience_id) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.audience_id)
		RETURNING xmax = 0 AS inserted`)}},
	{table: "organization_service_providers", stmts: []string{counted(`
		INSERT INTO organization_service_providers (organization_id, service_provider_id)
		SELECT s.organization_id, p.target_id FROM s_org_sp s JOIN s_sp p ON p.id = s.serviceprovider_id WHERE NOT s.skip
		ON CONFLICT DO NOTHING RETURNING true AS inserted`)}},
	{table: "teams", fn: writeTeams},
	{table: "team_service_providers", stmts: []string{counted(`
		INSERT INTO team_service_providers (team_id, service_provider_id)
		SELECT s.team_id, p.target_id FROM s_team_sp s JOIN s_sp p ON p.id = s.serviceprovider_id WHERE NOT s.skip
		ON CONFLICT DO NOTHING RETURNING true AS inserted`)}},
	// People announced these memberships when they happened: the import queues no webhook
	// delivery. The trigger is off in this transaction only (ALTER TABLE is transactional),
	// which also spares its query per row; meanwhile other writers of team_accesses wait.
	{table: "team_accesses", around: [2]string{
		"ALTER TABLE team_accesses DISABLE TRIGGER team_accesses_announce",
		"ALTER TABLE team_accesses ENABLE TRIGGER team_accesses_announce"}, stmts: []string{counted(`
		INSERT INTO team_accesses AS t (id, created_at, updated_at, team_id, user_id, role)
		SELECT id, created_at, updated_at, team_id, user_id, role FROM s_team_access WHERE NOT skip
		ON CONFLICT (id) DO UPDATE SET role = EXCLUDED.role WHERE t.role <> EXCLUDED.role
		RETURNING xmax = 0 AS inserted`)}},
	// Inserted once, with People's creation time, from which validity counts; invitations are
	// frozen afterwards, as People's. People sent their emails: they count as sent.
	{table: "invitations", stmts: []string{counted(`
		INSERT INTO invitations (id, created_at, updated_at, email, team_id, role, issuer_id, email_sent_at)
		SELECT id, created_at, updated_at, email, team_id, role, issuer_id, created_at FROM s_invitation WHERE NOT skip
		ON CONFLICT (id) DO NOTHING RETURNING true AS inserted`)}},
	// Shared contacts before the overrides that point at them.
	{table: "contacts", stmts: []string{contactUpsert("override_id IS NULL"), contactUpsert("override_id IS NOT NULL")}},
	{table: "team_webhooks", stmts: []string{counted(`
		INSERT INTO team_webhooks AS t (id, created_at, updated_at, team_id, url, secret, protocol, status)
		SELECT id, created_at, updated_at, team_id, url, sealed, protocol, status FROM s_webhook WHERE NOT skip
		ON CONFLICT (id) DO UPDATE SET team_id = EXCLUDED.team_id, url = EXCLUDED.url, secret = EXCLUDED.secret, protocol = EXCLUDED.protocol
		WHERE (t.team_id, t.url, t.secret, t.protocol) IS DISTINCT FROM (EXCLUDED.team_id, EXCLUDED.url, EXCLUDED.secret, EXCLUDED.protocol)
		RETURNING xmax = 0 AS inserted`)}},
}

// contactUpsert leaves out the contacts that are here as they are in People: the insert's
// CHECK (contact_data_valid) would run on them before ON CONFLICT finds them unchanged.
func contactUpsert(which string) string {
	return counted(`
		INSERT INTO contacts AS t (id, created_at, updated_at, override_id, owner_id, user_id, full_name, short_name, notes, data)
		SELECT id, created_at, updated_at, override_id, owner_id, user_id, full_name, short_name, notes, data FROM s_contact s
		WHERE NOT skip AND ` + which + `
			AND NOT EXISTS (SELECT 1 FROM contacts t WHERE t.id = s.id AND (t.override_id, t.owner_id, t.user_id, t.full_name, t.short_name, t.notes, t.data)
				IS NOT DISTINCT FROM (s.override_id, s.owner_id, s.user_id, s.full_name, s.short_name, s.notes, s.data))
		ON CONFLICT (id) DO UPDATE SET override_id = EXCLUDED.override_id, owner_id = EXCLUDED.owner_id, user_id = EXCLUDED.user_id,
			full_name = EXCLUDED.full_name, short_name = EXCLUDED.short_name, notes = EXCLUDED.notes, data = EXCLUDED.data
		WHERE (t.override_id, t.owner_id, t.user_id, t.full_name, t.short_name, t.notes, t.data)
			IS DISTINCT FROM (EXCLUDED.override_id, EXCLUDED.owner_id, EXCLUDED.user_id, EXCLUDED.full_name, EXCLUDED.short_name,
				EXCLUDED.notes, EXCLUDED.data)
		RETURNING xmax = 0 AS inserted`)
}

func (im *importer) write(ctx context.Context, w write) error {
	var ins, upd int
	if w.around[0] != "" {
		if _, err := im.dst.Exec(ctx, w.around[0]); err != nil {
			return err
		}
	}
	if w.fn != nil {
		var err error
		if ins, upd, err = w.fn(ctx, im); err != nil {
			return err
		}
	}
	for _, stmt := range w.stmts {
		var i, u int
		if err := im.dst.QueryRow(ctx, replaceIssuer(stmt, im.o.Issuer)).Scan(&i, &u); err != nil {
			return err
		}
		ins, upd = ins+i, upd+u
	}
	if w.around[1] != "" {
		if _, err := im.dst.Exec(ctx, w.around[1]); err != nil {
			return err
		}
	}
	c := im.rep.count(w.table)
	c.Inserted, c.Updated = ins, upd
	im.progress("wrote %s: %d inserted, %d updated", w.table, ins, upd)
	return nil
}

// writeTeams inserts the new teams one tree level at a time, parents first, each keeping
// People's path when it is a child step of its parent's path here and no team here holds it;
// the others (made roots, or under a parent that got a new path) are numbered by the
// database as any new team. Existing teams get People's name, visibility and external id, and
// are moved when People moved them.
func writeTeams(ctx context.Context, im *importer) (inserted, updated int, err error) {
	if _, err := im.dst.Exec(ctx, `WITH RECURSIVE lv AS (
			SELECT id, 1 AS level FROM s_team WHERE parent_id IS NULL AND NOT skip
			UNION ALL SELECT c.id, lv.level + 1 FROM s_team c JOIN lv ON c.parent_id = lv.id WHERE NOT c.skip)
		UPDATE s_team s SET level = lv.level FROM lv WHERE lv.id = s.id`); err != nil {
		return 0, 0, err
	}
	var levels int
	if err := im.dst.QueryRow(ctx, "SELECT coalesce(max(level), 0) FROM s_team").Scan(&levels); err != nil {
		return 0, 0, err
	}
	for level := 1; level <= levels; level++ {
		// Kept paths first: a numbered sibling then comes after them (max + 1), and roots'
		// sequence has moved past every imported root.
		for _, kept := range []bool{true, false} {
			tag, err := im.dst.Exec(ctx, `
				WITH c AS (
					SELECT s.*, CASE
						WHEN s.path !~ '^([0-9A-Za-z]{5})+$' OR EXISTS (SELECT 1 FROM teams o WHERE o.path = s.path) THEN NULL
						WHEN s.parent_id IS NULL AND length(s.path) = 5 THEN s.path
						WHEN p.path = left(s.path, -5) THEN s.path END AS new_path
					FROM s_team s LEFT JOIN teams p ON p.id = s.parent_id
					WHERE NOT s.skip AND s.level = $1 AND NOT EXISTS (SELECT 1 FROM teams t WHERE t.id = s.id))
				INSERT INTO teams (id, created_at, updated_at, name, organization_id, is_visible_all_services, external_id, parent_id, path)
				SELECT id, created_at, updated_at, name, organization_id, is_visible_all_services, external_id, parent_id, new_path
				FROM c WHERE (new_path IS NOT NULL) = $2 ORDER BY path`, level, kept)
			if err != nil {
				return 0, 0, fmt.Errorf("level %d: %w", level, err)
			}
			inserted += int(tag.RowsAffected())
		}
	}
	// Imported earlier: what People changed since. The organization of a team in a tree
	// follows its tree (the move below), so only a lone team changes organization here.
	rows, err := im.dst.Query(ctx, `
		UPDATE teams t SET name = s.name, is_visible_all_services = s.is_visible_all_services, external_id = s.external_id,
			organization_id = CASE WHEN t.parent_id IS NULL AND t.numchild = 0 AND s.parent_id IS NULL THEN s.organization_id ELSE t.organization_id END
		FROM s_team s WHERE s.id = t.id AND NOT s.skip AND s.level IS NOT NULL
			AND (t.name, t.is_visible_all_services, t.external_id) IS DISTINCT FROM (s.name, s.is_visible_all_services, s.external_id)
			OR s.id = t.id AND NOT s.skip AND t.parent_id IS NULL AND t.numchild = 0 AND s.parent_id IS NULL
			AND t.organization_id IS DISTINCT FROM s.organization_id
		RETURNING t.id`)
	if err != nil {
		return 0, 0, err
	}
	changed := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return 0, 0, err
		}
		changed[id] = true
	}
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	// Moves are rare and each runs the tree's triggers: one statement per moved team, parents'
	// levels first, in a savepoint so that a move the tree refuses is reported, not fatal.
	rows, err = im.dst.Query(ctx, `SELECT s.id::text, s.parent_id::text FROM s_team s JOIN teams t ON t.id = s.id
		WHERE NOT s.skip AND t.parent_id IS DISTINCT FROM s.parent_id ORDER BY s.level, s.path`)
	if err != nil {
		return 0, 0, err
	}
	type move struct {
		id     string
		parent *string
	}
	var moves []move
	for rows.Next() {
		var m move
		if err := rows.Scan(&m.id, &m.parent); err != nil {
			return 0, 0, err
		}
		moves = append(moves, m)
	}
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	for _, m := range moves {
		sp, err := im.dst.Begin(ctx)
		if err != nil {
			return 0, 0, err
		}
		if _, err := sp.Exec(ctx, "UPDATE teams SET parent_id = $1 WHERE id = $2", m.parent, m.id); err != nil {
			sp.Rollback(ctx) //nolint:errcheck // the move is reported instead
			im.rep.add("teams", m.id, Skipped, "moved in People, but the move is refused here: "+err.Error())
			continue
		}
		if err := sp.Commit(ctx); err != nil {
			return 0, 0, err
		}
		changed[m.id] = true
	}
	return inserted, len(changed), nil
}

// finish records the import in the audit trail.
func (im *importer) finish(ctx context.Context) error {
	changes := map[string]any{"issuer": im.o.Issuer}
	for _, c := range im.rep.Tables {
		changes[c.Table] = map[string]int{"inserted": c.Inserted, "updated": c.Updated}
	}
	b, err := json.Marshal(changes)
	if err != nil {
		return err
	}
	if _, err := im.dst.Exec(ctx, `INSERT INTO audit_events (actor_method, operation, changes) VALUES ('command', 'importPeople', $1::jsonb)`,
		string(b)); err != nil {
		return fmt.Errorf("record the import in the audit trail: %w", err)
	}
	return nil
}
