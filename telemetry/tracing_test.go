package telemetry

import "testing"

// A SQL span's name comes from the statement's keywords and identifiers, never from a literal,
// since bun writes values into the text.
func TestStatementName(t *testing.T) {
	for _, tt := range []struct{ sql, op, table string }{
		{`SELECT "u"."id" FROM "users" AS "u" WHERE (u.id = 'a1')`, "SELECT", "users"},
		{`SELECT 'x FROM secret', id FROM users`, "SELECT", "users"},
		{`SELECT E'it\'s FROM secret' FROM teams`, "SELECT", "teams"},
		{`INSERT INTO teams (name) SELECT 'FROM secret' RETURNING *`, "INSERT", "teams"},
		{`UPDATE ONLY sessions SET last_seen_at = now()`, "UPDATE", "sessions"},
		{`DELETE FROM "sessions" AS "ses" WHERE ses.token_hash = '\x00'`, "DELETE", "sessions"},
		{"WITH viewer AS (SELECT t.id FROM teams t), o AS (SELECT 1 FROM x)\n\tSELECT * FROM viewer v JOIN team_accesses ta ON true", "SELECT", ""},
		{`WITH me AS (SELECT 1) SELECT * FROM team_accesses ta, me`, "SELECT", "team_accesses"},
		{`SELECT * FROM (SELECT 1 FROM users) w`, "SELECT", ""},
		{`SELECT * FROM unnest($1::uuid[])`, "SELECT", ""},
		{`-- a comment FROM secret` + "\nSELECT 1 FROM public.teams", "SELECT", "teams"},
		{`begin isolation level read committed`, "BEGIN", ""},
		{`commit`, "COMMIT", ""},
		{`SELECT 1`, "SELECT", ""},
	} {
		if op, table := statementName(tt.sql); op != tt.op || table != tt.table {
			t.Errorf("statementName(%q) = %q, %q; want %q, %q", tt.sql, op, table, tt.op, tt.table)
		}
	}
}
