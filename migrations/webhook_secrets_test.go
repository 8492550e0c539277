package migrations_test

import (
	"io/fs"
	"testing"
	"testing/fstest"
	"time"

	"lasuite.fr/people/migrations"
)

// TestWebhookSecretsTagged: the migration that seals webhook secrets tags those stored before
// it as plain (the server seals them at start-up: store.SealWebhookSecrets), on the webhooks and
// their waiting deliveries, without moving the webhooks' updated_at, and drops the recorded
// error texts.
func TestWebhookSecretsTagged(t *testing.T) {
	db := open(t)
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	before := fstest.MapFS{}
	for _, m := range all {
		if m.Name == "webhook_secrets_sealed" {
			break
		}
		name, _ := fs.Glob(migrations.FS, "*_"+m.Name+".up.sql")
		before[name[0]] = &fstest.MapFile{Data: []byte(m.SQL)}
	}
	if _, err := migrations.UpFrom(t.Context(), db, before); err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(t.Context(), q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO teams (id, name) VALUES ('00000000-0000-0000-0000-00000000000a', 'Team')`)
	exec(`INSERT INTO users (id, sub, email) VALUES ('00000000-0000-0000-0000-00000000000b', 'sub-b', 'b@example.test')`)
	exec(`INSERT INTO team_webhooks (id, team_id, url, secret, last_error, updated_at) VALUES
		('00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-00000000000a', 'https://a.example.test/', 'v1:looks-sealed', 'request failed: dial tcp 10.0.0.5:443: connection refused', '2024-01-01T00:00:00Z'),
		('00000000-0000-0000-0000-0000000000c2', '00000000-0000-0000-0000-00000000000a', 'https://b.example.test/', NULL, NULL, '2024-01-01T00:00:00Z')`)
	exec(`INSERT INTO team_accesses (team_id, user_id, role) VALUES ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-00000000000b', 'member')`)

	if _, err := migrations.Up(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(t.Context(), `SELECT coalesce(secret, ''), coalesce(last_error, ''), updated_at FROM team_webhooks ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var secret, lastError string
		var updated time.Time
		if err := rows.Scan(&secret, &lastError, &updated); err != nil {
			t.Fatal(err)
		}
		if !updated.Equal(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("updated_at moved to %v", updated)
		}
		got = append(got, secret+"|"+lastError)
	}
	want := []string{"plain:v1:looks-sealed|failed (details dropped by an upgrade)", "|"}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("webhooks (secret|last error) = %q, want %q", got, want)
	}
	var deliveries []string
	drows, err := db.QueryContext(t.Context(), `SELECT coalesce(secret, '') FROM team_webhook_deliveries ORDER BY url`)
	if err != nil {
		t.Fatal(err)
	}
	defer drows.Close()
	for drows.Next() {
		var s string
		if err := drows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		deliveries = append(deliveries, s)
	}
	if len(deliveries) != 2 || deliveries[0] != "plain:v1:looks-sealed" || deliveries[1] != "" {
		t.Errorf("deliveries' secrets = %q, want the first tagged once", deliveries)
	}
	// A secret in clear must be tagged from now on.
	if _, err := db.ExecContext(t.Context(), `UPDATE team_webhooks SET secret = 'bare' WHERE secret IS NULL`); err == nil {
		t.Error("an untagged secret was accepted")
	}
}
