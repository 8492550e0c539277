package demo_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"lasuite.fr/people/migrations"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/demo"
	"lasuite.fr/people/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// checksummed are the demo's tables with the columns left out of their checksums: updated_at
// moves with every restored row, and invitations are dated at load time (see insertInvitations).
var checksummed = map[string][]string{
	"organizations":                  {"updated_at"},
	"organization_registration_ids":  {"updated_at"},
	"organization_domains":           {"updated_at"},
	"users":                          {"updated_at"},
	"user_identities":                {"updated_at"},
	"organization_accesses":          {"updated_at"},
	"service_providers":              {"updated_at"},
	"organization_service_providers": {"updated_at"},
	"teams":                          {"updated_at"},
	"team_service_providers":         {"updated_at"},
	"team_webhooks":                  {"updated_at", "secret"}, // sealed at the server's start: checked on its own
	"team_accesses":                  {"updated_at"},
	"contacts":                       {"updated_at"},
	"invitations":                    {"updated_at", "created_at"},
}

// checksums returns each demo table's row count and a digest of its rows.
func checksums(tb testing.TB, db *bun.DB) map[string]string {
	tb.Helper()
	out := make(map[string]string, len(checksummed))
	for table, skip := range checksummed {
		var sum string
		err := db.QueryRowContext(context.Background(), `
			SELECT count(*) || ' ' || coalesce(md5(string_agg((to_jsonb(t) - ?::text[])::text, ',' ORDER BY t.id)), '')
			FROM ? AS t`, pgdialect.Array(skip), bun.Ident(table)).Scan(&sum)
		if err != nil {
			tb.Fatalf("checksum %s: %v", table, err)
		}
		out[table] = sum
	}
	return out
}

func count(tb testing.TB, db *bun.DB, query string, args ...any) int {
	tb.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

func load(tb testing.TB, db *bun.DB, o demo.Options) demo.Stats {
	tb.Helper()
	st, err := demo.Load(context.Background(), db, o)
	if err != nil {
		tb.Fatalf("Load(%+v): %v", o, err)
	}
	return st
}

// TestLoad's subtests share one database and run in sequence, each on the state the previous
// one left. The database is a new clone of the template at each run, so that -count repeats it.
func TestLoad(t *testing.T) {
	s := storetest.OpenAt(t, storetest.NewDatabase(t))
	db := s.DB()
	ctx := t.Context()
	o := demo.Options{Users: 150, Teams: 25, MaxTeamSize: 10, Contacts: 60, PublicContacts: 12}

	if ok, err := demo.Loaded(ctx, db); err != nil || ok {
		t.Fatalf("Loaded() before Load = %v, %v; want false, nil", ok, err)
	}
	first := load(t, db, o)
	want := checksums(t, db)

	t.Run("stats count the rows", func(t *testing.T) {
		wantStats := demo.Stats{Organizations: 2, Users: 150 + 3 + 2, Teams: 25 + 3 + 3, Contacts: 155 + 12 + 60,
			ServiceProviders: 2, TeamAccesses: first.TeamAccesses, Invitations: first.Invitations}
		if diff := cmp.Diff(wantStats, first); diff != "" {
			t.Errorf("Load() stats (-want +got):\n%s", diff)
		}
		got := demo.Stats{
			Organizations:    count(t, db, "SELECT count(*) FROM organizations"),
			Users:            count(t, db, "SELECT count(*) FROM users"),
			Teams:            count(t, db, "SELECT count(*) FROM teams"),
			TeamAccesses:     count(t, db, "SELECT count(*) FROM team_accesses"),
			Contacts:         count(t, db, "SELECT count(*) FROM contacts"),
			Invitations:      count(t, db, "SELECT count(*) FROM invitations"),
			ServiceProviders: count(t, db, "SELECT count(*) FROM service_providers"),
		}
		if diff := cmp.Diff(first, got); diff != "" {
			t.Errorf("rows in the database (-stats +rows):\n%s", diff)
		}
		if first.TeamAccesses < 25 || first.Invitations == 0 {
			t.Errorf("Load() made %d team accesses and %d invitations for 25 teams", first.TeamAccesses, first.Invitations)
		}
	})

	t.Run("reload is identical", func(t *testing.T) {
		touched := "SELECT (SELECT max(updated_at) FROM contacts)::text || (SELECT max(updated_at) FROM team_accesses)::text"
		var before, after string
		if err := db.QueryRowContext(ctx, touched).Scan(&before); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(first, load(t, db, o)); diff != "" {
			t.Errorf("second Load() stats (-first +second):\n%s", diff)
		}
		if diff := cmp.Diff(want, checksums(t, db)); diff != "" {
			t.Errorf("tables after a second Load() (-first +second):\n%s", diff)
		}
		if err := db.QueryRowContext(ctx, touched).Scan(&after); err != nil || after != before {
			t.Errorf("a second Load() rewrote unchanged rows: updated_at %s, then %s (%v)", before, after, err)
		}
	})

	t.Run("loaded", func(t *testing.T) {
		if ok, err := demo.Loaded(ctx, db); err != nil || !ok {
			t.Errorf("Loaded() after Load = %v, %v; want true, nil", ok, err)
		}
	})

	t.Run("invariants", func(t *testing.T) {
		for _, c := range []struct{ name, query string }{
			{"teams without an owner", "SELECT count(*) FROM teams t WHERE NOT EXISTS (SELECT 1 FROM team_accesses ta WHERE ta.team_id = t.id AND ta.role = 'owner')"},
			{"users without a profile contact", `SELECT count(*) FROM users u WHERE NOT EXISTS (
				SELECT 1 FROM contacts c WHERE c.user_id = u.id AND c.owner_id = u.id
					AND c.full_name = coalesce(u.name, u.email) AND c.data = jsonb_build_object('emails', jsonb_build_array(jsonb_build_object('type', 'Work', 'value', u.email))))`},
			{"users without their identity", `SELECT count(*) FROM users u WHERE NOT EXISTS (
				SELECT 1 FROM user_identities i WHERE i.user_id = u.id AND i.issuer = 'http://localhost:8071/dev-oidc' AND i.subject = u.sub AND i.audience = '')`},
			{"users outside their organization's domain", `SELECT count(*) FROM users u WHERE NOT EXISTS (
				SELECT 1 FROM organization_domains d WHERE d.organization_id = u.organization_id AND d.domain = split_part(u.email, '@', 2))`},
			{"emails not lower-case ASCII", `SELECT count(*) FROM users WHERE email !~ '^[a-z0-9.-]+@[a-z0-9.-]+$'`},
			{"organizations without an administrator", "SELECT count(*) FROM organizations o WHERE NOT EXISTS (SELECT 1 FROM organization_accesses oa WHERE oa.organization_id = o.id)"},
			{"organizations without a SIRET", "SELECT count(*) FROM organizations o WHERE NOT EXISTS (SELECT 1 FROM organization_registration_ids r WHERE r.organization_id = o.id AND r.registration_id ~ '^[0-9]{14}$')"},
			{"members from another organization", `SELECT count(*) FROM team_accesses ta JOIN users u ON u.id = ta.user_id JOIN teams t ON t.id = ta.team_id
				WHERE u.organization_id IS DISTINCT FROM t.organization_id`},
			{"invitations not issued by an owner", `SELECT count(*) FROM invitations i WHERE NOT EXISTS (
				SELECT 1 FROM team_accesses ta WHERE ta.team_id = i.team_id AND ta.user_id = i.issuer_id AND ta.role = 'owner')`},
			{"invitations of users", "SELECT count(*) FROM invitations i JOIN users u ON lower(u.email) = lower(i.email)"},
			{"service providers not in every organization", `SELECT count(*) FROM service_providers sp, organizations o WHERE NOT EXISTS (
				SELECT 1 FROM organization_service_providers osp WHERE osp.service_provider_id = sp.id AND osp.organization_id = o.id)`},
		} {
			if n := count(t, db, c.query); n != 0 {
				t.Errorf("%s: %d", c.name, n)
			}
		}
		for _, c := range []struct{ name, query string }{
			{"users with accented names", "SELECT count(*) FROM users WHERE name ~ '[éèêëïîôöüçœÉ]'"},
			{"users without a name", "SELECT count(*) FROM users WHERE name IS NULL"},
			{"users in each language", "SELECT count(DISTINCT language) - 1 FROM users"},
			{"users outside Europe/Paris", "SELECT count(*) FROM users WHERE timezone <> 'Europe/Paris'"},
			{"public contacts", "SELECT count(*) FROM contacts WHERE owner_id IS NULL"},
			{"personal contacts with a phone", "SELECT count(*) FROM contacts WHERE user_id IS NULL AND owner_id IS NOT NULL AND data ? 'phones'"},
			{"teams linked to a service provider", "SELECT count(DISTINCT team_id) FROM team_service_providers"},
			{"teams visible to all services", "SELECT count(*) FROM teams WHERE is_visible_all_services"},
			{"administrators", "SELECT count(*) FROM team_accesses WHERE role = 'administrator'"},
		} {
			if n := count(t, db, c.query); n == 0 {
				t.Errorf("no %s", c.name)
			}
		}
	})

	t.Run("e2e users hold their roles", func(t *testing.T) {
		var rows []struct {
			Sub, Role, Domain string
		}
		err := db.NewRaw(`SELECT u.sub, ta.role, d.domain FROM team_accesses ta
			JOIN teams t ON t.id = ta.team_id JOIN users u ON u.id = ta.user_id
			JOIN organization_domains d ON d.organization_id = u.organization_id
			WHERE t.name = ? ORDER BY u.sub`, demo.E2ETeamName).Scan(ctx, &rows)
		if err != nil {
			t.Fatal(err)
		}
		want := []struct{ Sub, Role, Domain string }{
			{demo.E2EAdministratorSub, "administrator", "example.com"},
			{demo.E2EMemberSub, "member", "example.com"},
			{demo.E2EOwnerSub, "owner", "example.com"},
		}
		if diff := cmp.Diff(want, rows); diff != "" {
			t.Errorf("accesses of %q (-want +got):\n%s", demo.E2ETeamName, diff)
		}
		if n := count(t, db, `SELECT count(*) FROM team_accesses ta JOIN users u ON u.id = ta.user_id
			WHERE u.sub = ? AND ta.role = 'owner'`, demo.E2EOwnerSub); n < 3 {
			t.Errorf("the e2e owner owns %d teams, want at least 3", n)
		}
	})

	t.Run("a tree of three levels, with a member of its deepest team only", func(t *testing.T) {
		var depths []int
		if err := db.NewRaw(`SELECT depth FROM teams WHERE name IN ('Direction du numérique', 'Pôle produits', 'Équipe Annuaire')
			ORDER BY path`).Scan(ctx, &depths); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int{1, 2, 3}, depths); diff != "" {
			t.Errorf("depths (-want +got):\n%s", diff)
		}
		if n := count(t, db, `SELECT count(*) FROM team_accesses ta JOIN teams t ON t.id = ta.team_id
			WHERE t.name = 'Équipe Annuaire' AND ta.role = 'member'`); n != 1 {
			t.Errorf("%d members of the deepest team, want 1", n)
		}
	})

	t.Run("a Matrix webhook pointing nowhere, its members' deliveries waiting", func(t *testing.T) {
		var team uuid.UUID
		if err := db.QueryRowContext(ctx, `SELECT team_id FROM team_webhooks WHERE protocol = 'matrix' AND url = ?
			AND secret LIKE 'plain:%'`, demo.DemoMatrixRoom).Scan(&team); err != nil {
			t.Fatalf("the demo's Matrix webhook: %v", err)
		}
		members := count(t, db, "SELECT count(*) FROM team_accesses WHERE team_id = ?", team)
		waiting := `SELECT count(*) FROM team_webhook_deliveries WHERE team_id = ? AND protocol = 'matrix' AND operation = 'add' AND status = 'pending'`
		if n := count(t, db, waiting, team); n != members || n == 0 {
			t.Errorf("%d deliveries waiting for the %d members of its team", n, members)
		}
		// The server seals the secret at its start; a reload neither undoes that nor queues again.
		if _, _, err := s.SealWebhookSecrets(ctx); err != nil {
			t.Fatal(err)
		}
		load(t, db, o)
		if n := count(t, db, "SELECT count(*) FROM team_webhooks WHERE url = ? AND secret LIKE 'v1:%'", demo.DemoMatrixRoom); n != 1 {
			t.Errorf("after a reload, the sealed secret was replaced")
		}
		if n := count(t, db, waiting, team); n != members {
			t.Errorf("%d deliveries waiting after a reload, want %d still", n, members)
		}
	})

	t.Run("reload restores changed rows", func(t *testing.T) {
		var e2eTeam, admin, member, someone uuid.UUID
		if err := db.QueryRowContext(ctx, "SELECT id FROM teams WHERE name = ?", demo.E2ETeamName).Scan(&e2eTeam); err != nil {
			t.Fatal(err)
		}
		for sub, dst := range map[string]*uuid.UUID{demo.E2EAdministratorSub: &admin, demo.E2EMemberSub: &member} {
			if err := db.QueryRowContext(ctx, "SELECT id FROM users WHERE sub = ?", sub).Scan(dst); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.QueryRowContext(ctx, `SELECT id FROM users WHERE sub NOT LIKE 'e2e.%' AND sub NOT LIKE 'admin.%'
			ORDER BY id LIMIT 1`).Scan(&someone); err != nil {
			t.Fatal(err)
		}
		var someoneSub string
		if err := db.QueryRowContext(ctx, "SELECT sub FROM users WHERE id = ?", someone).Scan(&someoneSub); err != nil {
			t.Fatal(err)
		}
		// What people do to a demo through the API or psql: remove a member, remove one and add
		// them back (a new id for a demo (team, user) pair), rename a team, change a name, delete a
		// contact and an invitation, and replace a user by another row with the same sub.
		storetest.MustExec(t, db, "DELETE FROM team_accesses WHERE team_id = ? AND user_id = ?", e2eTeam, member)
		storetest.MustExec(t, db, "DELETE FROM team_accesses WHERE team_id = ? AND user_id = ?", e2eTeam, admin)
		storetest.MustExec(t, db, "INSERT INTO team_accesses (team_id, user_id, role) VALUES (?, ?, 'member')", e2eTeam, admin)
		storetest.MustExec(t, db, "UPDATE teams SET name = 'Renamed', is_visible_all_services = NOT is_visible_all_services WHERE id = ?", e2eTeam)
		storetest.MustExec(t, db, "UPDATE users SET name = 'Someone Else', language = 'en-us' WHERE sub = ?", demo.E2EOwnerSub)
		storetest.MustExec(t, db, "DELETE FROM contacts WHERE id = (SELECT id FROM contacts WHERE owner_id IS NULL ORDER BY id LIMIT 1)")
		storetest.MustExec(t, db, "DELETE FROM invitations WHERE id = (SELECT id FROM invitations ORDER BY id LIMIT 1)")
		storetest.MustExec(t, db, "DELETE FROM users WHERE id = ?", someone)
		storetest.MustExec(t, db, "INSERT INTO users (sub, email) VALUES (?, 'stray@example.com')", someoneSub)
		if diff := cmp.Diff(want, checksums(t, db)); diff == "" {
			t.Fatal("the edits changed no checksum")
		}

		if diff := cmp.Diff(first, load(t, db, o)); diff != "" {
			t.Errorf("Load() stats (-first +after edits):\n%s", diff)
		}
		if diff := cmp.Diff(want, checksums(t, db)); diff != "" {
			t.Errorf("tables after reloading over the edits (-first +reloaded):\n%s", diff)
		}
	})

	t.Run("another seed changes the content, not the ids", func(t *testing.T) {
		o2 := o
		o2.Seed = 2
		load(t, db, o2)
		if got := checksums(t, db); got["users"] == want["users"] || got["teams"] == want["teams"] {
			t.Error("seed 2 wrote the same users or teams as seed 1")
		}
		if n := count(t, db, "SELECT count(*) FROM users"); n != first.Users {
			t.Errorf("users after loading seed 2 over seed 1 = %d, want %d (same ids)", n, first.Users)
		}
		load(t, db, o)
		got := checksums(t, db)
		// Seed 2's team accesses and service links stay: a reload restores, it never prunes.
		for _, table := range []string{"organizations", "users", "user_identities", "teams", "contacts"} {
			if got[table] != want[table] {
				t.Errorf("%s after seed 1, 2, 1 = %s, want %s", table, got[table], want[table])
			}
		}
		if n := count(t, db, "SELECT count(*) FROM teams t WHERE NOT EXISTS (SELECT 1 FROM team_accesses ta WHERE ta.team_id = t.id AND ta.role = 'owner')"); n != 0 {
			t.Errorf("teams without an owner: %d", n)
		}
	})
}

// The same options load the same rows (ids, names, roles, dates) into two new databases.
func TestLoadIsDeterministic(t *testing.T) {
	o := demo.Options{Users: 60, Teams: 10, MaxTeamSize: 8, Contacts: 20, PublicContacts: 5}
	var sums []map[string]string
	for range 2 {
		s, err := store.Open(t.Context(), storetest.EmptyDatabase(t), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if _, err := migrations.Up(t.Context(), s.DB().DB); err != nil {
			t.Fatal(err)
		}
		load(t, s.DB(), o)
		sums = append(sums, checksums(t, s.DB()))
	}
	if diff := cmp.Diff(sums[0], sums[1]); diff != "" {
		t.Errorf("two databases loaded with the same options differ (-first +second):\n%s", diff)
	}
}
