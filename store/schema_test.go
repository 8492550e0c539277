package store_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"lasuite.fr/people/store/storetest"
)

// stringTooLong is PostgreSQL's SQLSTATE for a value longer than its varchar.
const stringTooLong = "22001"

// TestSchemaLengths writes values at and just past each length limit of the data model with
// plain SQL. Limits count characters, not bytes: the values are made of 'é' (two bytes).
func TestSchemaLengths(t *testing.T) {
	s := storetest.Open(t)
	tests := []struct {
		name  string
		limit int
		write func(r rules, v string) error
	}{
		{"users.sub", 255, func(r rules, v string) error {
			tok := storetest.Unique() // unique, since the value at the limit is inserted
			return r.exec("INSERT INTO users (sub) VALUES (?)", tok+v[len(tok)*len("é"):])
		}},
		{"users.name", 100, func(r rules, v string) error {
			return r.exec("UPDATE users SET name = ? WHERE id = ?", v, r.user())
		}},
		{"organizations.name", 100, func(r rules, v string) error {
			return r.exec("UPDATE organizations SET name = ? WHERE id = ?", v, r.org())
		}},
		{"teams.name", 100, func(r rules, v string) error {
			return r.exec("UPDATE teams SET name = ? WHERE id = ?", v, r.team())
		}},
		{"contacts.full_name", 150, func(r rules, v string) error {
			return r.exec("INSERT INTO contacts (owner_id, full_name) VALUES (?, ?)", r.user(), v)
		}},
		{"contacts.short_name", 30, func(r rules, v string) error {
			return r.exec("INSERT INTO contacts (owner_id, full_name, short_name) VALUES (?, 'Jane', ?)", r.user(), v)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := rules{t, s}
			if err := tt.write(r, strings.Repeat("é", tt.limit)); err != nil {
				t.Errorf("%d characters: %v, want accepted", tt.limit, err)
			}
			err := tt.write(r, strings.Repeat("é", tt.limit+1))
			if code, _ := pgError(err); code != stringTooLong {
				t.Errorf("%d characters: SQLSTATE %q (%v), want %s", tt.limit+1, code, err, stringTooLong)
			}
		})
	}
}

// TestSchemaDefaults inserts rows with only their required columns and reads the defaults of
// the data model back.
func TestSchemaDefaults(t *testing.T) {
	s := storetest.Open(t)
	r := rules{t, s}
	user := r.id("INSERT INTO users (sub) VALUES (?) RETURNING id", "sub-"+storetest.Unique())
	org := r.org()
	team := r.id("INSERT INTO teams (name) VALUES ('Defaults') RETURNING id")
	r.mustExec("INSERT INTO team_accesses (team_id, user_id) VALUES (?, ?)", team, user)
	r.invitation(team, user, "jane-"+storetest.Unique()+"@example.test")
	contact := r.id("INSERT INTO contacts (owner_id, full_name) VALUES (?, 'Jane') RETURNING id", user)

	for _, tt := range []struct{ name, query string }{
		{"users", `SELECT language = 'en-us' AND timezone = 'UTC' AND is_active AND NOT is_staff AND NOT is_device
			AND email IS NULL AND name IS NULL AND organization_id IS NULL AND last_login_at IS NULL FROM users WHERE id = ?`},
		{"organizations", `SELECT metadata = '{}'::jsonb AND is_active FROM organizations WHERE id = ?`},
		{"teams", `SELECT NOT is_visible_all_services AND external_id IS NOT NULL AND organization_id IS NULL FROM teams WHERE id = ?`},
		{"team_accesses", `SELECT role = 'member' FROM team_accesses WHERE team_id = ?`},
		{"invitations", `SELECT role = 'member' AND email_sent_at IS NULL FROM invitations WHERE team_id = ?`},
		{"contacts", `SELECT notes = '' AND data = '{}'::jsonb AND short_name IS NULL AND override_id IS NULL AND user_id IS NULL FROM contacts WHERE id = ?`},
	} {
		id := map[string]uuid.UUID{"users": user, "organizations": org, "teams": team, "team_accesses": team, "invitations": team, "contacts": contact}[tt.name]
		var ok bool
		if err := s.DB().QueryRowContext(t.Context(), tt.query, id).Scan(&ok); err != nil || !ok {
			t.Errorf("%s: defaults not as the data model says (%v): %s", tt.name, err, tt.query)
		}
	}
}

// TestEveryTableHasIDAndTimestamps checks the catalog: every table of the data model has a uuid
// primary key named id with a default, created_at and updated_at (timestamptz, NOT NULL,
// defaulting to now()), and a trigger that moves updated_at at each update (set_updated_at, or
// a table's own trigger that also does it); then checks that one does.
func TestEveryTableHasIDAndTimestamps(t *testing.T) {
	s := storetest.Open(t)
	var tables []string
	err := s.DB().NewRaw(`SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'
		AND relname NOT IN ('schema_migrations', 'timezones') ORDER BY relname`).Scan(t.Context(), &tables)
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) < 10 {
		t.Fatalf("only %d tables: %v", len(tables), tables)
	}
	for _, table := range tables {
		var idPK, idDefault, created, updated, trigger bool
		err := s.DB().QueryRowContext(t.Context(), `SELECT
			EXISTS (SELECT FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
				WHERE i.indrelid = c.oid AND i.indisprimary AND i.indnatts = 1 AND a.attname = 'id' AND a.atttypid = 'uuid'::regtype),
			EXISTS (SELECT FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
				WHERE d.adrelid = c.oid AND a.attname = 'id'),
			EXISTS (SELECT FROM pg_attribute a JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
				WHERE a.attrelid = c.oid AND a.attname = 'created_at' AND a.attnotnull AND a.atttypid = 'timestamptz'::regtype
				AND pg_get_expr(d.adbin, d.adrelid) = 'now()'),
			EXISTS (SELECT FROM pg_attribute a JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
				WHERE a.attrelid = c.oid AND a.attname = 'updated_at' AND a.attnotnull AND a.atttypid = 'timestamptz'::regtype
				AND pg_get_expr(d.adbin, d.adrelid) = 'now()'),
			EXISTS (SELECT FROM pg_trigger g JOIN pg_proc p ON p.oid = g.tgfoid
				WHERE g.tgrelid = c.oid AND p.prosrc LIKE '%NEW.updated_at := now();%')
			FROM pg_class c WHERE c.oid = ?::regclass`, table).Scan(&idPK, &idDefault, &created, &updated, &trigger)
		if err != nil {
			t.Fatal(err)
		}
		if table == "audit_events" {
			// Append-only (UPDATE is refused by trigger): a row is never updated, so it has no
			// updated_at to keep.
			updated, trigger = true, true
		}
		if !idPK || !idDefault || !created || !updated || !trigger {
			t.Errorf("%s: uuid primary key id %v (default %v), created_at %v, updated_at %v, updated_at trigger %v",
				table, idPK, idDefault, created, updated, trigger)
		}
	}

	r := rules{t, s}
	user := r.user()
	var before, after string
	if err := s.DB().QueryRowContext(t.Context(), "SELECT updated_at::text FROM users WHERE id = ?", user).Scan(&before); err != nil {
		t.Fatal(err)
	}
	r.mustExec("UPDATE users SET name = 'Moved on' WHERE id = ?", user)
	if err := s.DB().QueryRowContext(t.Context(), "SELECT updated_at::text FROM users WHERE id = ? AND updated_at > created_at", user).Scan(&after); err != nil || after == before {
		t.Errorf("updated_at %s after an update, %s before (%v)", after, before, err)
	}
}

// TestForeignKeyActions checks each reference of the data model for what deleting its target
// does, in the catalog (the deletions themselves are in TestConstraints): RESTRICT keeps an
// organization with users or teams, CASCADE takes rows with their owner, SET NULL detaches.
func TestForeignKeyActions(t *testing.T) {
	s := storetest.Open(t)
	for _, tt := range []struct {
		table, column, references string
		action                    string // pg_constraint.confdeltype: r restrict, c cascade, n set null
	}{
		{"users", "organization_id", "organizations", "r"},
		{"teams", "organization_id", "organizations", "r"},
		{"user_identities", "user_id", "users", "c"},
		{"organization_accesses", "user_id", "users", "c"},
		{"organization_accesses", "organization_id", "organizations", "c"},
		{"team_accesses", "team_id", "teams", "c"},
		{"team_accesses", "user_id", "users", "c"},
		{"invitations", "team_id", "teams", "c"},
		{"invitations", "issuer_id", "users", "c"},
		{"contacts", "override_id", "contacts", "n"},
		{"contacts", "owner_id", "users", "c"},
		{"contacts", "user_id", "users", "n"},
	} {
		var action string
		err := s.DB().QueryRowContext(t.Context(), `SELECT confdeltype::text FROM pg_constraint c
			JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
			WHERE c.contype = 'f' AND c.conrelid = ?::regclass AND c.confrelid = ?::regclass
			AND cardinality(c.conkey) = 1 AND a.attname = ?`, tt.table, tt.references, tt.column).Scan(&action)
		if err != nil || action != tt.action {
			t.Errorf("%s.%s → %s: ON DELETE %q (%v), want %q", tt.table, tt.column, tt.references, action, err, tt.action)
		}
	}
}

// TestSearchIndexes checks the catalog for what accent- and case-insensitive search stands on:
// an IMMUTABLE search_key (unaccent is only STABLE, so it cannot be indexed directly) and a
// trigram index on search_key of each searched field.
func TestSearchIndexes(t *testing.T) {
	s := storetest.Open(t)
	var volatility string
	if err := s.DB().QueryRowContext(t.Context(), "SELECT provolatile::text FROM pg_proc WHERE proname = 'search_key'").Scan(&volatility); err != nil || volatility != "i" {
		t.Errorf("search_key volatility %q (%v), want i (IMMUTABLE)", volatility, err)
	}
	for _, tt := range []struct{ table, expr string }{
		{"users", "search_key((name)::text)"},
		{"users", "search_key((email)::text)"},
		{"contacts", "search_key((full_name)::text)"},
		{"contacts", "search_key((short_name)::text)"},
		{"contacts", "search_key(contact_emails(data))"},
		{"teams", "search_key((name)::text)"},
	} {
		var n int
		err := s.DB().QueryRowContext(t.Context(), `SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND tablename = ?
			AND indexdef LIKE '%USING gin (' || ? || ' gin_trgm_ops)%'`, tt.table, tt.expr).Scan(&n)
		if err != nil || n != 1 {
			t.Errorf("%s: %d trigram indexes on %s (%v), want 1", tt.table, n, tt.expr, err)
		}
	}
}
