package peopleimport

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// stage is one People table copied into a temporary table of the target: columns in the
// order of query, plus extra columns the rules fill (skip on every one).
type stage struct {
	table   string // staging table
	label   string // the target table, for the report, progress and errors
	columns string // "name type, …", the order of query's
	extra   string
	query   string // SELECT on People's database
}

var stages = []stage{
	{"s_org", "organizations",
		"id uuid, created_at timestamptz, updated_at timestamptz, name text, registration_id_list text[], domain_list text[], metadata jsonb, is_active boolean",
		"",
		"SELECT id, created_at, updated_at, name, registration_id_list, domain_list, metadata, is_active FROM people_organization"},
	// has_perms: the user holds a Django permission, of their own or through a group; with
	// is_staff, that is what let them act in People's admin (is_superuser holds them all).
	{"s_user", "users",
		"id uuid, created_at timestamptz, updated_at timestamptz, sub text, email text, name text, language text, timezone text, " +
			"is_device boolean, is_staff boolean, is_superuser boolean, has_perms boolean, is_active boolean, organization_id uuid, last_login timestamptz",
		"our_sub text, identity boolean NOT NULL DEFAULT true, staff boolean",
		`SELECT u.id, u.created_at, u.updated_at, u.sub, u.email, u.name, u.language, u.timezone, u.is_device, u.is_staff, u.is_superuser,
			EXISTS (SELECT 1 FROM people_user_user_permissions p WHERE p.user_id = u.id)
				OR EXISTS (SELECT 1 FROM people_user_groups g JOIN auth_group_permissions gp ON gp.group_id = g.group_id WHERE g.user_id = u.id),
			u.is_active, u.organization_id, u.last_login FROM people_user u`},
	{"s_org_access", "organization_accesses",
		"id uuid, created_at timestamptz, updated_at timestamptz, role text, organization_id uuid, user_id uuid", "",
		"SELECT id, created_at, updated_at, role, organization_id, user_id FROM people_organization_access"},
	{"s_sp", "service_providers",
		"id uuid, created_at timestamptz, updated_at timestamptz, name text, audience_id text", "target_id uuid",
		"SELECT id, created_at, updated_at, name, audience_id FROM people_service_provider"},
	{"s_org_sp", "organization_service_providers", "organization_id uuid, serviceprovider_id uuid", "",
		"SELECT organization_id, serviceprovider_id FROM people_organization_service_providers"},
	{"s_team_sp", "team_service_providers", "team_id uuid, serviceprovider_id uuid", "",
		"SELECT team_id, serviceprovider_id FROM people_team_service_providers"},
	{"s_team", "teams",
		"id uuid, created_at timestamptz, updated_at timestamptz, name text, organization_id uuid, depth integer, numchild integer, " +
			"path text COLLATE \"C\", is_visible_all_services boolean, external_id uuid",
		"parent_id uuid, level integer",
		"SELECT id, created_at, updated_at, name, organization_id, depth, numchild, path, is_visible_all_services, external_id FROM people_team"},
	{"s_team_access", "team_accesses",
		"id uuid, created_at timestamptz, updated_at timestamptz, role text, team_id uuid, user_id uuid", "",
		"SELECT id, created_at, updated_at, role, team_id, user_id FROM people_team_access"},
	{"s_invitation", "invitations",
		"id uuid, created_at timestamptz, updated_at timestamptz, email text, role text, issuer_id uuid, team_id uuid", "",
		"SELECT id, created_at, updated_at, email, role, issuer_id, team_id FROM people_invitation"},
	{"s_contact", "contacts",
		"id uuid, created_at timestamptz, updated_at timestamptz, full_name text, short_name text, data jsonb, owner_id uuid, notes text, override_id uuid, user_id uuid", "cleaned boolean NOT NULL DEFAULT false",
		"SELECT id, created_at, updated_at, full_name, short_name, data, owner_id, notes, override_id, user_id FROM people_contact"},
	{"s_webhook", "team_webhooks",
		"id uuid, created_at timestamptz, updated_at timestamptz, url text, secret text, status text, team_id uuid, protocol text", "sealed text",
		"SELECT id, created_at, updated_at, url, secret, status, team_id, protocol FROM people_team_webhook"},
}

// stage copies one table: People's COPY TO streams into the target's COPY FROM, in PostgreSQL's
// text format, without decoding a value in between.
func (im *importer) stage(ctx context.Context, st stage) error {
	names := make([]string, 0, 16)
	for _, c := range strings.Split(st.columns, ", ") {
		names = append(names, strings.Fields(c)[0])
	}
	ddl := fmt.Sprintf("CREATE TEMP TABLE %s (%s, skip boolean NOT NULL DEFAULT false", st.table, st.columns)
	if st.extra != "" {
		ddl += ", " + st.extra
	}
	if _, err := im.dst.Exec(ctx, ddl+") ON COMMIT DROP"); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	srcErr := make(chan error, 1)
	go func() {
		_, err := im.src.Conn().PgConn().CopyTo(ctx, pw, "COPY ("+st.query+") TO STDOUT")
		pw.CloseWithError(err)
		srcErr <- err
	}()
	tag, err := im.dst.Conn().PgConn().CopyFrom(ctx, pr, fmt.Sprintf("COPY %s (%s) FROM STDIN", st.table, strings.Join(names, ", ")))
	pr.CloseWithError(io.ErrClosedPipe) // lets a source still writing stop
	if e := <-srcErr; e != nil {
		return e
	}
	if err != nil {
		return err
	}
	im.rep.count(st.label).Read = int(tag.RowsAffected())
	im.progress("read %s: %d rows", st.label, tag.RowsAffected())
	return nil
}

// prepare indexes the staging tables, derives what the rules read (the organizations'
// identifiers as rows, the teams' parents and tree levels) and gives the planner statistics:
// autovacuum never analyzes temporary tables.
func (im *importer) prepare(ctx context.Context) error {
	for _, q := range []string{
		"ALTER TABLE s_org ADD PRIMARY KEY (id)",
		"ALTER TABLE s_user ADD PRIMARY KEY (id)",
		"CREATE INDEX ON s_user (lower(email))",
		"ALTER TABLE s_sp ADD PRIMARY KEY (id)",
		"ALTER TABLE s_team ADD PRIMARY KEY (id)",
		"CREATE UNIQUE INDEX ON s_team (path)",
		"CREATE INDEX ON s_team (parent_id)",
		"ALTER TABLE s_team_access ADD PRIMARY KEY (id)",
		"CREATE INDEX ON s_team_access (team_id, role)",
		"ALTER TABLE s_invitation ADD PRIMARY KEY (id)",
		"CREATE INDEX ON s_invitation (lower(email), team_id)",
		"ALTER TABLE s_contact ADD PRIMARY KEY (id)",
		"ALTER TABLE s_webhook ADD PRIMARY KEY (id)",
		`CREATE TEMP TABLE s_ident ON COMMIT DROP AS
			SELECT o.id AS organization_id, 'registration id'::text AS kind, r.v AS raw, btrim(r.v) AS value, r.n AS ord,
				false AS skip, o.is_active, o.created_at
			FROM s_org o, unnest(o.registration_id_list) WITH ORDINALITY AS r (v, n)
			UNION ALL
			SELECT o.id, 'domain', d.v, lower(btrim(d.v)), d.n, false, o.is_active, o.created_at
			FROM s_org o, unnest(o.domain_list) WITH ORDINALITY AS d (v, n)`,
		"CREATE INDEX ON s_ident (kind, value)",
		"UPDATE s_user SET our_sub = sub, staff = is_staff AND (is_superuser OR has_perms)",
		"UPDATE s_sp SET target_id = id",
		// People's parent is the team whose path is this one's minus its last step.
		`UPDATE s_team s SET parent_id = p.id FROM s_team p WHERE length(s.path) > 5 AND p.path = left(s.path, -5)`,
		"ANALYZE s_org, s_user, s_org_access, s_sp, s_org_sp, s_team_sp, s_team, s_team_access, s_invitation, s_contact, s_webhook, s_ident",
	} {
		if _, err := im.dst.Exec(ctx, q); err != nil {
			return fmt.Errorf("prepare: %s: %w", strings.Fields(q)[0], err)
		}
	}
	return nil
}
