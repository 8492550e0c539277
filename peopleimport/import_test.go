package peopleimport_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"lasuite.fr/people/peopleimport"
	"lasuite.fr/people/peopleimport/peopletest"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

const issuer = "https://idp.test"

// target is a migrated database of the test's own: imports keep People's fixed ids and paths.
func target(t *testing.T) *store.Store {
	t.Helper()
	return storetest.OpenAt(t, storetest.NewDatabase(t))
}

func importPeople(t *testing.T, s *store.Store, from string, dryRun bool) *peopleimport.Report {
	t.Helper()
	rep, err := peopleimport.Run(t.Context(), s, peopleimport.Options{From: from, Issuer: issuer, DryRun: dryRun})
	if err != nil {
		t.Fatalf("Run() = %v", err)
	}
	return rep
}

// entryKeys are a report's entries as "table id action", sorted.
func entryKeys(rep *peopleimport.Report) []string {
	var keys []string
	for _, e := range rep.Entries {
		keys = append(keys, e.Table+" "+e.ID+" "+e.Action)
	}
	slices.Sort(keys)
	return keys
}

// rows runs a query and returns its rows as strings, one per row, columns joined by |.
func rows(t *testing.T, s *store.Store, query string, args ...any) []string {
	t.Helper()
	r, err := s.DB().DB.QueryContext(t.Context(), query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer r.Close()
	cols, _ := r.Columns()
	var out []string
	for r.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := r.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			switch v := v.(type) {
			case nil:
				parts[i] = "NULL"
			case []byte:
				parts[i] = string(v)
			default:
				parts[i] = fmt.Sprint(v)
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func id(table, n int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012d", table, n) }

// sampleEntries is what the import reports of sample.sql, watch item by watch item.
var sampleEntries = []string{
	"contacts " + id(6, 3) + " changed",      // {"value": null}: the item goes
	"contacts " + id(6, 6) + " changed",      // overrides a profile contact: a plain private contact
	"contacts " + id(6, 7) + " changed",      // extra key nickname: into customFields
	"contacts " + id(6, 8) + " changed",      // type Personal: Other
	"organizations " + id(1, 3) + " changed", // agence.fr twice
	"organizations " + id(1, 3) + " changed", // exemple.gouv.fr is organization 1's
	"teams " + id(4, 5) + " noted",           // no owner
	"teams " + id(4, 6) + " noted",           // no access at all
	"users " + id(3, 1) + " noted",           // same email as user 2 up to case
	"users " + id(3, 2) + " changed",         // domain lower-cased
	"users " + id(3, 2) + " noted",
	"users " + id(3, 6) + " changed", // empty sub
}

func TestImportSample(t *testing.T) {
	t.Parallel()
	src := peopletest.NewDatabase(t, peopletest.Sample)
	s := target(t)
	rep := importPeople(t, s, src, false)
	if diff := cmp.Diff(sampleEntries, entryKeys(rep)); diff != "" {
		t.Errorf("report entries (-want +got):\n%s", diff)
	}
	if rep.Skipped() != 0 {
		t.Errorf("Skipped() = %d, want 0", rep.Skipped())
	}

	for _, c := range []struct {
		name, query string
		want        []string
	}{
		{"organizations", "SELECT id, name, is_active FROM organizations ORDER BY id", []string{
			id(1, 1) + "|Ministère de l'Exemple|true", id(1, 2) + "|Commune de Saint-Éloi|true", id(1, 3) + "|Agence Partagée|false"}},
		{"registration ids", "SELECT organization_id, registration_id FROM organization_registration_ids ORDER BY 2", []string{
			id(1, 1) + "|13002526500013", id(1, 2) + "|21380185500015"}},
		{"domains", "SELECT organization_id, domain FROM organization_domains ORDER BY 2", []string{
			id(1, 3) + "|agence.fr", id(1, 1) + "|exemple.gouv.fr"}},
		// Staff: only user 1 (is_staff and is_superuser) could act in People's admin.
		{"users", "SELECT id, sub = id::text, email, is_staff, is_active, is_device, language, timezone, organization_id FROM users ORDER BY id", []string{
			id(3, 1) + "|false|alice.martin@exemple.gouv.fr|true|true|false|fr-fr|Europe/Paris|" + id(1, 1),
			id(3, 2) + "|false|Alice.Martin@exemple.gouv.fr|false|true|false|fr-fr|Europe/Paris|" + id(1, 1),
			id(3, 3) + "|false|bob.durand@exemple.gouv.fr|false|true|false|en-us|UTC|" + id(1, 1),
			id(3, 4) + "|false|chloe.petit@saint-eloi.fr|false|true|false|fr-fr|Europe/Paris|" + id(1, 2),
			id(3, 5) + "|false|NULL|false|true|false|fr-fr|Europe/Paris|" + id(1, 2),
			id(3, 6) + "|true|ancien.compte@agence.fr|false|true|false|fr-fr|UTC|" + id(1, 3),
			id(3, 7) + "|false|emma.leroy@agence.fr|false|false|false|fr-fr|Europe/Paris|" + id(1, 3),
			id(3, 8) + "|false|scanner-01@exemple.gouv.fr|false|true|true|en-us|UTC|" + id(1, 1),
			id(3, 9) + "|false|felix.moreau@gmail.com|false|true|false|en-us|America/Cayenne|NULL",
			id(3, 10) + "|false|gaelle.roux@saint-eloi.fr|false|true|false|fr-fr|Pacific/Noumea|" + id(1, 2)}},
		{"identities", "SELECT count(*), count(DISTINCT user_id) FROM user_identities WHERE issuer = $1 AND audience = ''", []string{"9|9"}},
		{"organization accesses", "SELECT id, organization_id, user_id FROM organization_accesses ORDER BY id", []string{
			id(9, 1) + "|" + id(1, 1) + "|" + id(3, 1), id(9, 2) + "|" + id(1, 2) + "|" + id(3, 4), id(9, 3) + "|" + id(1, 3) + "|" + id(3, 7)}},
		{"service providers", "SELECT id, name, audience_id FROM service_providers ORDER BY id", []string{
			id(2, 1) + "|Messagerie|messagerie-client", id(2, 2) + "|Visioconférence|visio-client"}},
		{"organization links", "SELECT organization_id, service_provider_id FROM organization_service_providers ORDER BY 1, 2", []string{
			id(1, 1) + "|" + id(2, 1), id(1, 1) + "|" + id(2, 2), id(1, 2) + "|" + id(2, 1)}},
		{"team links", "SELECT team_id, service_provider_id FROM team_service_providers ORDER BY 1", []string{
			id(4, 1) + "|" + id(2, 1), id(4, 4) + "|" + id(2, 2)}},
		{"teams", "SELECT id, path, depth, numchild, coalesce(parent_id::text, '-'), external_id, is_visible_all_services FROM teams ORDER BY path", []string{
			id(4, 1) + "|00001|1|2|-|" + id(16, 1) + "|false",
			id(4, 2) + "|0000100001|2|1|" + id(4, 1) + "|" + id(16, 2) + "|false",
			id(4, 3) + "|000010000100001|3|0|" + id(4, 2) + "|" + id(16, 3) + "|false",
			id(4, 4) + "|0000100002|2|0|" + id(4, 1) + "|" + id(16, 4) + "|true",
			id(4, 5) + "|00002|1|0|-|" + id(16, 5) + "|false",
			id(4, 6) + "|00003|1|0|-|" + id(16, 6) + "|false"}},
		{"team accesses", "SELECT role, count(*) FROM team_accesses GROUP BY 1 ORDER BY 1", []string{"administrator|3", "member|7", "owner|5"}},
		{"invitations", "SELECT id, email, role, email_sent_at = created_at, now() - created_at > interval '7 days' FROM invitations ORDER BY id", []string{
			id(7, 1) + "|nouvelle.recrue@exemple.gouv.fr|member|true|false",
			id(7, 2) + "|Elu.Adjoint@Saint-Eloi.fr|administrator|true|false",
			id(7, 3) + "|ancien.stagiaire@exemple.gouv.fr|owner|true|true"}},
		{"contacts", "SELECT id, coalesce(owner_id::text, '-'), coalesce(user_id::text, '-'), coalesce(override_id::text, '-'), data FROM contacts WHERE id = ANY($1::uuid[]) ORDER BY id", []string{
			id(6, 3) + "|" + id(3, 5) + "|" + id(3, 5) + `|-|{"emails": []}`,
			id(6, 5) + "|" + id(3, 1) + "|-|" + id(6, 4) + `|{"phones": [{"type": "Main", "value": "+33 4 76 00 00 01"}], "customFields": {"horaires": "8h-12h"}}`,
			id(6, 6) + "|" + id(3, 4) + "|-|-" + `|{"emails": [{"type": "Home", "value": "bob.perso@example.org"}]}`,
			id(6, 7) + "|" + id(3, 4) + "|-|-" + `|{"emails": [{"type": "Work", "value": "jordan.lefevre@saint-eloi.fr"}], "customFields": {"nickname": "Jo"}}`,
			id(6, 8) + "|" + id(3, 4) + "|-|-" + `|{"emails": [{"type": "Other", "value": "ines@example.org"}], "customFields": {"bureau": "B12"}}`}},
		{"contact count", "SELECT count(*) FROM contacts", []string{"10"}},
		{"audit", "SELECT actor_method, (changes -> 'users' ->> 'inserted') FROM audit_events WHERE operation = 'importPeople'", []string{"command|10"}},
		// People announced these memberships: the import queues no delivery.
		{"deliveries", "SELECT count(*) FROM team_webhook_deliveries", []string{"0"}},
	} {
		args := map[string][]any{"identities": {issuer}, "contacts": {[]string{id(6, 3), id(6, 5), id(6, 6), id(6, 7), id(6, 8)}}}[c.name]
		got := rows(t, s, c.query, args...)
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
	// Users keep their subjects as identities of the issuer, user 6 (empty sub) none.
	if got := rows(t, s, "SELECT user_id FROM user_identities WHERE issuer = $1 AND subject = 'agentconnect-0b0b0b03'", issuer); !slices.Equal(got, []string{id(3, 3)}) {
		t.Errorf("identity of agentconnect-0b0b0b03 = %v, want user 3", got)
	}
	// The invitations keep their creation time, from which validity counts.
	var srcTimes []string
	srcConn, err := pgx.Connect(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	defer srcConn.Close(context.Background())
	r, _ := srcConn.Query(t.Context(), "SELECT created_at FROM people_invitation ORDER BY id")
	for r.Next() {
		var at time.Time
		r.Scan(&at)
		srcTimes = append(srcTimes, at.UTC().Format(time.RFC3339))
	}
	var gotTimes []string
	for _, v := range rows(t, s, "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM invitations ORDER BY id") {
		gotTimes = append(gotTimes, v)
	}
	if diff := cmp.Diff(srcTimes, gotTimes); diff != "" {
		t.Errorf("invitations' created_at (-People +here):\n%s", diff)
	}
	// The webhook's secret is sealed as the store seals it, never in clear.
	var stored string
	if err := s.DB().DB.QueryRowContext(t.Context(), "SELECT secret FROM team_webhooks WHERE id = $1", id(8, 1)).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "v1:") || !s.WebhookSecretIs(stored, "whsec-sample-0001", uuid.MustParse(id(8, 1))) {
		t.Errorf("webhook secret stored as %q, want whsec-sample-0001 sealed", stored)
	}
}

func TestImportTwiceChangesNothing(t *testing.T) {
	t.Parallel()
	src := peopletest.NewDatabase(t, peopletest.Sample)
	s := target(t)
	importPeople(t, s, src, false)
	snapshot := dump(t, s)
	rep := importPeople(t, s, src, false)
	for _, c := range rep.Tables {
		if c.Inserted != 0 || c.Updated != 0 {
			t.Errorf("re-run: %s inserted %d, updated %d; want none", c.Table, c.Inserted, c.Updated)
		}
	}
	if diff := cmp.Diff(sampleEntries, entryKeys(rep)); diff != "" {
		t.Errorf("re-run's report entries (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(snapshot, dump(t, s)); diff != "" {
		t.Errorf("re-run changed the database (-before +after):\n%s", diff)
	}
}

func TestImportRerunFollowsPeople(t *testing.T) {
	t.Parallel()
	src := peopletest.NewDatabase(t, peopletest.Sample)
	s := target(t)
	importPeople(t, s, src, false)
	// What happens in People between the rehearsal and the move.
	if err := peopletest.Load(t.Context(), src, `
		UPDATE people_team SET name = 'Direction du numérique' WHERE id = '`+id(4, 1)+`';
		UPDATE people_user SET email = 'bob.durand@nouveau.gouv.fr', is_active = false WHERE id = '`+id(3, 3)+`';
		UPDATE people_team_access SET role = 'owner' WHERE id = '`+id(5, 13)+`';
		INSERT INTO people_team_access (id, created_at, updated_at, role, team_id, user_id)
			VALUES ('`+id(5, 99)+`', now(), now(), 'member', '`+id(4, 6)+`', '`+id(3, 9)+`');
		UPDATE people_contact SET data = '{"emails": [{"type": "Work", "value": "accueil@saint-eloi.fr"}]}' WHERE id = '`+id(6, 4)+`';
		UPDATE people_team_webhook SET secret = 'whsec-rotated' WHERE id = '`+id(8, 1)+`';
		-- team 4 moves under team 2
		UPDATE people_team SET path = '0000100001' || '00002', depth = 3 WHERE id = '`+id(4, 4)+`';
		UPDATE people_team SET numchild = 2 WHERE id = '`+id(4, 2)+`';`); err != nil {
		t.Fatal(err)
	}
	rep := importPeople(t, s, src, false)
	updated := map[string][2]int{}
	for _, c := range rep.Tables {
		if c.Inserted != 0 || c.Updated != 0 {
			updated[c.Table] = [2]int{c.Inserted, c.Updated}
		}
	}
	want := map[string][2]int{"teams": {0, 2}, "users": {0, 1}, "team_accesses": {1, 1}, "contacts": {0, 1}, "team_webhooks": {0, 1}}
	if diff := cmp.Diff(want, updated); diff != "" {
		t.Errorf("re-run's inserted/updated per table (-want +got):\n%s", diff)
	}
	for _, c := range []struct{ query, want string }{
		{"SELECT name FROM teams WHERE id = '" + id(4, 1) + "'", "Direction du numérique"},
		{"SELECT email || ' ' || is_active FROM users WHERE id = '" + id(3, 3) + "'", "bob.durand@nouveau.gouv.fr false"},
		{"SELECT role FROM team_accesses WHERE id = '" + id(5, 13) + "'", "owner"},
		{"SELECT count(*) FROM team_accesses WHERE team_id = '" + id(4, 6) + "'", "1"},
		{"SELECT data ->> 'phones' IS NULL FROM contacts WHERE id = '" + id(6, 4) + "'", "true"},
		{"SELECT parent_id::text || ' ' || depth FROM teams WHERE id = '" + id(4, 4) + "'", id(4, 2) + " 3"},
		{"SELECT numchild FROM teams WHERE id = '" + id(4, 1) + "'", "1"},
	} {
		if got := rows(t, s, c.query); !slices.Equal(got, []string{c.want}) {
			t.Errorf("%s = %v, want %s", c.query, got, c.want)
		}
	}
	var stored string
	if err := s.DB().DB.QueryRowContext(t.Context(), "SELECT secret FROM team_webhooks WHERE id = $1", id(8, 1)).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !s.WebhookSecretIs(stored, "whsec-rotated", uuid.MustParse(id(8, 1))) {
		t.Error("the rotated webhook secret was not imported")
	}
}

func TestImportDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	src := peopletest.NewDatabase(t, peopletest.Sample)
	s := target(t)
	before := dump(t, s)
	rep := importPeople(t, s, src, true)
	if diff := cmp.Diff(sampleEntries, entryKeys(rep)); diff != "" {
		t.Errorf("dry run's report entries (-want +got):\n%s", diff)
	}
	if c := rep.Tables[1]; c.Table != "users" || c.Inserted != 10 {
		t.Errorf("dry run's users: %+v, want 10 inserted", c)
	}
	if diff := cmp.Diff(before, dump(t, s)); diff != "" {
		t.Errorf("dry run wrote (-before +after):\n%s", diff)
	}
	var b strings.Builder
	rep.WriteSummary(&b)
	if !strings.HasPrefix(b.String(), "dry run: nothing was written\n") {
		t.Errorf("summary = %q, want it to start with the dry run's line", b.String())
	}
}

// TestImportRefusedRows covers the rows this server refuses, in data People's database holds
// but People's own code would not have written.
func TestImportRefusedRows(t *testing.T) {
	t.Parallel()
	src := peopletest.NewDatabase(t, peopletest.Sample, `
		-- an organization whose only domain is organization 1's: skipped, its user loses it
		INSERT INTO people_organization VALUES ('`+id(1, 4)+`', '2026-01-01', '2026-01-01', 'Doublon', '{}', '{" Exemple.GOUV.fr "}', '{}', true);
		INSERT INTO people_user (password, is_superuser, id, created_at, updated_at, sub, email, name, language, timezone, is_device, is_staff, is_active, organization_id)
			VALUES ('!x', false, '`+id(3, 11)+`', now(), now(), 'sub with space', 'x@EXAMPLE.org', 'X', 'de-de', 'Mars/Olympus', false, true, true, '`+id(1, 4)+`');
		-- a staff user with a permission through a group acted in the admin
		INSERT INTO people_user (password, is_superuser, id, created_at, updated_at, sub, email, name, language, timezone, is_device, is_staff, is_active)
			VALUES ('!x', false, '`+id(3, 12)+`', now(), now(), 'staff-12', 'staff@example.org', 'S', 'en-us', 'UTC', false, true, true);
		INSERT INTO auth_group (id, name) VALUES (1, 'editors');
		INSERT INTO django_content_type (id, app_label, model) VALUES (1, 'core', 'team');
		INSERT INTO auth_permission (id, name, content_type_id, codename) VALUES (1, 'Can change team', 1, 'change_team');
		INSERT INTO auth_group_permissions (group_id, permission_id) VALUES (1, 1);
		INSERT INTO people_user_groups (user_id, group_id) VALUES ('`+id(3, 12)+`', 1);
		INSERT INTO people_team_access VALUES ('`+id(5, 20)+`', now(), now(), 'viewer', '`+id(4, 6)+`', '`+id(3, 9)+`');
		INSERT INTO people_invitation VALUES ('`+id(7, 4)+`', now(), now(), 'NOUVELLE.RECRUE@exemple.gouv.fr', 'member', '`+id(3, 1)+`', '`+id(4, 1)+`');
		INSERT INTO people_invitation VALUES ('`+id(7, 5)+`', now(), now(), 'not an address', 'member', '`+id(3, 1)+`', '`+id(4, 1)+`');
		INSERT INTO people_team_webhook VALUES ('`+id(8, 2)+`', now(), now(), 'https://matrix.example.org/room/!a:example.org', NULL, 'pending', '`+id(4, 1)+`', 'matrix');
		INSERT INTO people_team_webhook VALUES ('`+id(8, 3)+`', now(), now(), 'https://www.tchap.gouv.fr/#/room/!b:agent.tchap.gouv.fr', NULL, 'pending', '`+id(4, 1)+`', 'matrix');
		INSERT INTO people_contact VALUES ('`+id(6, 11)+`', now(), now(), 'Chaîne', NULL, '"just a string"', '`+id(3, 4)+`', '', NULL, NULL);
		INSERT INTO people_contact VALUES ('`+id(6, 12)+`', now(), now(), '  ', NULL, '{}', '`+id(3, 4)+`', '', NULL, NULL);
		INSERT INTO people_team VALUES ('`+id(4, 7)+`', now(), now(), 'Orphan', '`+id(1, 1)+`', 2, 0, '0000Z00001', false, '`+id(16, 7)+`');`)
	s := target(t)
	rep := importPeople(t, s, src, false)
	got := map[string]string{}
	for _, e := range rep.Entries {
		if !slices.Contains(sampleEntries, e.Table+" "+e.ID+" "+e.Action) || e.Table == "users" && e.ID == id(3, 11) {
			got[e.Table+" "+e.ID+" "+e.Action] += e.Reason + "\n"
		}
	}
	for _, w := range []struct{ key, reason string }{
		{"organizations " + id(1, 4) + " changed", "domain ' Exemple.GOUV.fr ' stored as 'exemple.gouv.fr'"},
		{"organizations " + id(1, 4) + " changed", "dropped: organization " + id(1, 1)},
		{"organizations " + id(1, 4) + " skipped", "no registration id or domain"},
		{"users " + id(3, 11) + " changed", "does not match"},
		{"users " + id(3, 11) + " changed", "domain lower-cased"},
		{"users " + id(3, 11) + " changed", "language 'de-de'"},
		{"users " + id(3, 11) + " changed", "time zone 'Mars/Olympus'"},
		{"users " + id(3, 11) + " changed", "not staff here"},
		{"users " + id(3, 11) + " changed", "organization " + id(1, 4) + " skipped"},
		{"team_accesses " + id(5, 20) + " skipped", "role 'viewer' unknown"},
		{"invitations " + id(7, 4) + " skipped", "same email up to case"},
		{"invitations " + id(7, 5) + " skipped", "not an address"},
		{"team_webhooks " + id(8, 2) + " skipped", "not an https link to a Matrix room"},
		{"contacts " + id(6, 11) + " changed", "is not a JSON object: emptied"},
		{"contacts " + id(6, 12) + " skipped", "blank name"},
		{"teams " + id(4, 7) + " changed", "no team has the parent path '0000Z'"},
	} {
		if !strings.Contains(got[w.key], w.reason) {
			t.Errorf("report on %s: %q, want a line with %q", w.key, got[w.key], w.reason)
		}
	}
	if _, ok := got["users "+id(3, 12)+" changed"]; ok {
		t.Errorf("staff user 12 with a group permission reported: %q", got["users "+id(3, 12)+" changed"])
	}
	if rep.Skipped() != 6 {
		t.Errorf("Skipped() = %d, want 6", rep.Skipped())
	}
	for _, c := range []struct{ query, want string }{
		{"SELECT sub = id::text AND organization_id IS NULL AND email = 'x@example.org' AND language = 'en-us' AND timezone = 'UTC' AND NOT is_staff FROM users WHERE id = '" + id(3, 11) + "'", "true"},
		{"SELECT subject FROM user_identities WHERE user_id = '" + id(3, 11) + "'", "sub with space"},
		{"SELECT is_staff FROM users WHERE id = '" + id(3, 12) + "'", "true"},
		{"SELECT count(*) FROM organizations WHERE id = '" + id(1, 4) + "'", "0"},
		{"SELECT data::text FROM contacts WHERE id = '" + id(6, 11) + "'", "{}"},
		{"SELECT parent_id IS NULL AND depth = 1 AND path ~ '^.{5}$' FROM teams WHERE id = '" + id(4, 7) + "'", "true"},
		{"SELECT count(*) FROM invitations", "3"},
		{"SELECT protocol || ' ' || url FROM team_webhooks WHERE id = '" + id(8, 3) + "'", "matrix https://www.tchap.gouv.fr/#/room/!b:agent.tchap.gouv.fr"},
	} {
		if got := rows(t, s, c.query); !slices.Equal(got, []string{c.want}) {
			t.Errorf("%s = %v, want %s", c.query, got, c.want)
		}
	}
}

// TestValidDataIsTheDatabases checks that the importer's Go check of contact data answers as
// the database's contact_data_valid (migration 0013) and as its first SQL version (0001) do:
// a contact the importer lets through must pass the insert's CHECK.
func TestValidDataIsTheDatabases(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	corpus := []string{
		`{}`, `[]`, `"x"`, `null`, `1`, `{"nickname": "Jo"}`,
		`{"emails": [{"type": "Work", "value": "a@b.c"}]}`,
		`{"emails": [{"type": "Work", "value": "a b@c"}]}`,
		`{"emails": [{"type": "Work", "value": "a@b@c"}]}`,
		`{"emails": [{"type": "Work", "value": "a@b\u00a0c"}]}`,
		`{"emails": [{"type": "Work", "value": null}]}`,
		`{"emails": [{"type": "Personal", "value": "a@b.c"}]}`,
		`{"emails": [{"value": "a@b.c"}]}`,
		`{"emails": [{"type": "Work", "value": "a@b.c", "primary": "yes"}]}`,
		`{"emails": {"type": "Work", "value": "a@b.c"}}`,
		`{"emails": ["a@b.c"]}`,
		`{"phones": [{"type": "Work Fax", "value": "1"}]}`,
		`{"phones": [{"type": "Fax", "value": "1"}]}`,
		`{"phones": [{"type": "Mobile", "value": 1}]}`,
		`{"addresses": [{}]}`, `{"addresses": [{"city": "Paris"}]}`, `{"addresses": [{"type": "Office"}]}`,
		`{"addresses": [{"city": "Paris", "floor": "2"}]}`,
		`{"links": [{"type": "LinkedIn", "value": "x"}]}`, `{"links": [{"type": "Mastodon", "value": "x"}]}`,
		`{"customFields": {"a": "b"}}`, `{"customFields": {"a": 1}}`, `{"customFields": []}`,
		`{"organizations": [{"name": "A", "jobTitle": "B"}]}`, `{"organizations": [{"jobTitle": "B"}]}`,
		`{"organizations": [{"name": "A", "role": "B"}]}`,
	}
	// The 0001 definition, under another name in this session's temporary schema.
	oldDef := `CREATE FUNCTION pg_temp.old_contact_data_valid(d jsonb) RETURNS boolean LANGUAGE sql IMMUTABLE
		RETURN jsonb_typeof(d) = 'object'
		AND NOT EXISTS (SELECT 1 FROM jsonb_object_keys(d) AS k WHERE k NOT IN ('emails', 'phones', 'addresses', 'links', 'customFields', 'organizations'))
		AND (NOT d ? 'emails' OR (contact_items_valid(d -> 'emails', '{type,value}', '{type,value}', '{Work,Home,Other}')
			AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(d -> 'emails') AS e WHERE NOT email_like(e ->> 'value'))))
		AND (NOT d ? 'phones' OR contact_items_valid(d -> 'phones', '{type,value}', '{type,value}', '{Mobile,Home,Work,Main,"Work Fax","Home Fax",Pager,Other}'))
		AND (NOT d ? 'addresses' OR contact_items_valid(d -> 'addresses', '{type,street,city,state,zip,country}', '{}', '{Home,Work,Other}'))
		AND (NOT d ? 'links' OR contact_items_valid(d -> 'links', '{type,value}', '{type,value}', '{Profile,Blog,Website,Twitter,Facebook,Instagram,LinkedIn,Other}'))
		AND (NOT d ? 'customFields' OR (jsonb_typeof(d -> 'customFields') = 'object'
			AND NOT EXISTS (SELECT 1 FROM jsonb_each(d -> 'customFields') AS kv WHERE jsonb_typeof(kv.value) <> 'string')))
		AND (NOT d ? 'organizations' OR contact_items_valid(d -> 'organizations', '{name,department,jobTitle}', '{name}', NULL))`
	conn, err := s.DB().DB.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), oldDef); err != nil {
		t.Fatal(err)
	}
	for _, doc := range corpus {
		var now, old bool
		if err := conn.QueryRowContext(t.Context(), "SELECT contact_data_valid($1::jsonb), coalesce(pg_temp.old_contact_data_valid($1::jsonb), false)", doc).Scan(&now, &old); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if goValid := peopleimport.ValidData([]byte(doc)); goValid != now || now != old {
			t.Errorf("%s: Go %v, contact_data_valid %v, 0001's %v; want all equal", doc, goValid, now, old)
		}
		clean, _ := peopleimport.CleanData([]byte(doc))
		var cleanValid bool
		if err := conn.QueryRowContext(t.Context(), "SELECT contact_data_valid($1::jsonb)", string(clean)).Scan(&cleanValid); err != nil {
			t.Fatal(err)
		}
		if !cleanValid {
			t.Errorf("CleanData(%s) = %s, which the database refuses", doc, clean)
		}
	}
}

// dump is every imported table's content but the times this server sets, for comparisons.
func dump(t *testing.T, s *store.Store) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for table, cols := range map[string]string{
		"organizations":                  "id, name, metadata, is_active, created_at, updated_at",
		"organization_registration_ids":  "organization_id, registration_id",
		"organization_domains":           "organization_id, domain",
		"users":                          "id, sub, email, name, language, timezone, is_device, is_staff, is_active, organization_id, last_login_at, updated_at",
		"user_identities":                "user_id, issuer, subject, audience",
		"organization_accesses":          "id, organization_id, user_id, role",
		"service_providers":              "id, name, audience_id",
		"organization_service_providers": "organization_id, service_provider_id",
		"team_service_providers":         "team_id, service_provider_id",
		"teams":                          "id, name, organization_id, parent_id, path, depth, numchild, external_id, is_visible_all_services, updated_at",
		"team_accesses":                  "id, team_id, user_id, role, updated_at",
		"invitations":                    "id, email, team_id, role, issuer_id, created_at",
		"contacts":                       "id, owner_id, user_id, override_id, full_name, short_name, notes, data, updated_at",
		"team_webhooks":                  "id, team_id, url, secret, protocol, status, updated_at",
	} {
		out[table] = rows(t, s, "SELECT "+cols+" FROM "+table+" ORDER BY 1, 2")
	}
	return out
}

// TestImportKilledHalfWay kills the real binary (SIGKILL) once it has written the teams, and
// checks that the database is as it was, and that the next run completes it to exactly what
// an uninterrupted import gives.
func TestImportKilledHalfWay(t *testing.T) {
	t.Parallel()
	src := peopletest.NewDatabase(t)
	if err := peopletest.Generate(t.Context(), src, peopletest.Size{Users: 3000, Teams: 500, Accesses: 6000, Contacts: 30000}); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "people")
	if out, err := exec.Command("go", "build", "-o", bin, "lasuite.fr/people").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dst := storetest.NewDatabase(t)
	s := storetest.OpenAt(t, dst)
	cmd := exec.Command(bin, "import-people", "--from", src, "--issuer", issuer)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dst, "ENVIRONMENT=development")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var progress []string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		progress = append(progress, sc.Text())
		if strings.Contains(sc.Text(), "wrote teams:") {
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, stderr)
	cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("the import ended before it was killed (%v); progress:\n%s", cmd.ProcessState, strings.Join(progress, "\n"))
	}
	if !strings.Contains(strings.Join(progress, "\n"), "read contacts: 30000 rows") {
		t.Errorf("progress on stderr:\n%s\nwant rows per table", strings.Join(progress, "\n"))
	}
	if got := rows(t, s, "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM teams) + (SELECT count(*) FROM organizations)"); !slices.Equal(got, []string{"0"}) {
		t.Errorf("after the kill: %v users, teams and organizations, want the previous state (none)", got)
	}

	importPeople(t, s, src, false) // waits for the killed run's backend to roll back
	whole := target(t)
	importPeople(t, whole, src, false)
	got, want := dump(t, s), dump(t, whole)
	for _, m := range []map[string][]string{got, want} { // as each database wrote it
		delete(m, "team_webhooks")
		for k, v := range m {
			m[k] = withoutTimes(v)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("killed then re-run (-uninterrupted +got):\n%s", diff)
	}
}

// withoutTimes drops the last column (updated_at, set by this server on updates) of rows
// that have one, for comparing two imports made at different times.
func withoutTimes(rows []string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		if j := strings.LastIndex(r, "|"); j > 0 && strings.Contains(r[j:], ":") {
			r = r[:j]
		}
		out[i] = r
	}
	return out
}
