// Package peopletest makes People databases for the importer's tests and its benchmark:
// People's schema as its migrations leave it (schema.sql, core migration 0017), its
// hand-written sample (sample.sql), both copied from ../shared/people-db, and generated data
// of any size. It imports no package of ours.
package peopletest

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	neturl "net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Schema is People's DDL; Sample its sample data set (load after Schema).
var (
	//go:embed schema.sql
	Schema string
	//go:embed sample.sql
	Sample string
)

// Load runs whole SQL scripts, each in the simple query protocol, on the database at url.
func Load(ctx context.Context, url string, scripts ...string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, s := range scripts {
		if _, err := conn.PgConn().Exec(ctx, s).ReadAll(); err != nil {
			return err
		}
	}
	return nil
}

// CreateDatabase creates an empty database name on the server at adminURL and returns its URL.
func CreateDatabase(ctx context.Context, adminURL, name string) (string, error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", err
	}
	u, err := neturl.Parse(adminURL)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// DropDatabase drops the database name on the server at adminURL, closing its connections.
func DropDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}

// NewDatabase creates a People database on TEST_DATABASE_URL's server with the schema and
// scripts loaded (Sample, or a test's own rows), dropped when the test ends, and returns its URL.
func NewDatabase(tb testing.TB, scripts ...string) string {
	tb.Helper()
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		tb.Fatal("TEST_DATABASE_URL is not set: point it at a server where you may CREATE DATABASE")
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "people_src_" + hex.EncodeToString(b)
	url, err := CreateDatabase(tb.Context(), base, name)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := DropDatabase(context.Background(), base, name); err != nil {
			tb.Errorf("drop People database: %v", err)
		}
	})
	if err := Load(tb.Context(), url, append([]string{Schema}, scripts...)...); err != nil {
		tb.Fatalf("load People database: %v", err)
	}
	return url
}

// Size is how much Generate writes.
type Size struct {
	Users, Teams, Accesses, Contacts int // Teams: a fifth roots with four children each; Accesses spread evenly over the teams
}

// Generate fills a People database that has the schema and no rows with generated ones, all
// valid for this server: users in organizations of 500 (one domain and SIRET each), a team
// tree, accesses, profile and private contacts, invitations, webhooks and service providers.
func Generate(ctx context.Context, url string, s Size) error {
	orgs := max(s.Users/500, 1)
	roots := max(s.Teams/5, 1)
	perTeam := max(s.Accesses/max(s.Teams, 1), 1)
	script := strings.NewReplacer("{users}", fmt.Sprint(s.Users), "{orgs}", fmt.Sprint(orgs), "{roots}", fmt.Sprint(roots),
		"{teams}", fmt.Sprint(roots*5), "{per_team}", fmt.Sprint(perTeam), "{contacts}", fmt.Sprint(s.Contacts)).Replace(generateSQL)
	return Load(ctx, url, script)
}

const generateSQL = `
BEGIN;
CREATE FUNCTION pg_temp.step(n bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
	SELECT string_agg(substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
		((n / power(62, 4 - i)::bigint) % 62)::int + 1, 1), '' ORDER BY i) FROM generate_series(0, 4) i $$;
INSERT INTO people_organization (id, created_at, updated_at, name, registration_id_list, domain_list, metadata, is_active)
SELECT md5('org' || i)::uuid, now(), now(), 'Organisation ' || i, ARRAY[lpad(i::text, 14, '0')], ARRAY['org-' || i || '.example'], '{}', true
FROM generate_series(1, {orgs}) i;
INSERT INTO people_user (password, last_login, is_superuser, id, created_at, updated_at, sub, email, name, language, timezone,
	is_device, is_staff, is_active, organization_id)
SELECT '!generated', NULL, false, md5('user' || i)::uuid, now(), now(), 'sub-' || i, 'user-' || i || '@org-' || (i % {orgs} + 1) || '.example',
	'User ' || i, 'fr-fr', 'Europe/Paris', false, false, i % 50 <> 0, md5('org' || (i % {orgs} + 1))::uuid
FROM generate_series(1, {users}) i;
INSERT INTO people_organization_access (id, created_at, updated_at, role, organization_id, user_id)
SELECT md5('orgaccess' || i)::uuid, now(), now(), 'administrator', md5('org' || i)::uuid, md5('user' || i)::uuid
FROM generate_series(1, least({orgs}, {users})) i;
INSERT INTO people_service_provider (id, created_at, updated_at, name, audience_id)
SELECT md5('sp' || i)::uuid, now(), now(), 'Service ' || i, 'service-' || i FROM generate_series(1, 5) i;
INSERT INTO people_organization_service_providers (organization_id, serviceprovider_id)
SELECT md5('org' || i)::uuid, md5('sp' || (i % 5 + 1))::uuid FROM generate_series(1, {orgs}) i;
-- Root r is team r; its children are teams {roots} + 4(r-1) + c.
INSERT INTO people_team (id, created_at, updated_at, name, organization_id, depth, numchild, path, is_visible_all_services, external_id)
SELECT md5('team' || r)::uuid, now(), now(), 'Team ' || r, md5('org' || (r % {orgs} + 1))::uuid, 1, 4, pg_temp.step(r), false, md5('ext' || r)::uuid
FROM generate_series(1, {roots}) r;
INSERT INTO people_team (id, created_at, updated_at, name, organization_id, depth, numchild, path, is_visible_all_services, external_id)
SELECT md5('team' || ({roots} + 4 * (r - 1) + c))::uuid, now(), now(), 'Team ' || r || '.' || c, md5('org' || (r % {orgs} + 1))::uuid,
	2, 0, pg_temp.step(r) || pg_temp.step(c), c = 1, md5('ext' || ({roots} + 4 * (r - 1) + c))::uuid
FROM generate_series(1, {roots}) r, generate_series(1, 4) c;
INSERT INTO people_team_service_providers (team_id, serviceprovider_id)
SELECT md5('team' || t)::uuid, md5('sp' || (t % 5 + 1))::uuid FROM generate_series(1, {teams}, 10) t;
INSERT INTO people_team_access (id, created_at, updated_at, role, team_id, user_id)
SELECT md5('access' || t || '-' || k)::uuid, now(), now(), CASE k WHEN 0 THEN 'owner' WHEN 1 THEN 'administrator' ELSE 'member' END,
	md5('team' || t)::uuid, md5('user' || ((t * 7 + k * 6673) % {users} + 1))::uuid
FROM generate_series(1, {teams}) t, generate_series(0, {per_team} - 1) k
ON CONFLICT DO NOTHING;
INSERT INTO people_invitation (id, created_at, updated_at, email, role, issuer_id, team_id)
SELECT md5('invitation' || t)::uuid, now() - (t % 14) * interval '1 day', now() - (t % 14) * interval '1 day',
	'invitee-' || t || '@example.org', 'member', md5('user' || ((t * 7) % {users} + 1))::uuid, md5('team' || t)::uuid
FROM generate_series(1, {teams}, 4) t;
INSERT INTO people_team_webhook (id, created_at, updated_at, url, secret, status, team_id, protocol)
SELECT md5('webhook' || t)::uuid, now(), now(), 'https://scim.example.org/Groups/' || t, 'secret-' || t, 'success', md5('team' || t)::uuid, 'scim'
FROM generate_series(1, {teams}, 200) t;
INSERT INTO people_contact (id, created_at, updated_at, full_name, short_name, data, owner_id, notes, override_id, user_id)
SELECT md5('contact' || i)::uuid, now(), now(), 'User ' || i, NULL,
	jsonb_build_object('emails', jsonb_build_array(jsonb_build_object('type', 'Work', 'value', 'user-' || i || '@org-' || (i % {orgs} + 1) || '.example'))),
	md5('user' || i)::uuid, '', NULL, md5('user' || i)::uuid
FROM generate_series(1, least({users}, {contacts})) i;
INSERT INTO people_contact (id, created_at, updated_at, full_name, short_name, data, owner_id, notes, override_id, user_id)
SELECT md5('contact' || i)::uuid, now(), now(), 'Contact ' || i, 'C' || i,
	jsonb_build_object('emails', jsonb_build_array(jsonb_build_object('type', 'Home', 'value', 'contact-' || i || '@example.net')),
		'phones', jsonb_build_array(jsonb_build_object('type', 'Mobile', 'value', '+33 6 00 00 ' || i % 100))),
	md5('user' || (i % {users} + 1))::uuid, '', NULL, NULL
FROM generate_series(least({users}, {contacts}) + 1, {contacts}) i;
COMMIT;
`
