package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"

	"lasuite.fr/people/migrations"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// SQLSTATEs of the integrity rules (PostgreSQL appendix A, class 23).
const (
	uniqueViolation = "23505"
	checkViolation  = "23514"
	fkViolation     = "23503"
)

// rules writes rows with plain SQL for the tests of the schema's rules; they go around the
// store on purpose, since the database must hold these rules whatever path writes.
type rules struct {
	t testing.TB
	s *store.Store
}

func (r rules) exec(query string, args ...any) error {
	_, err := r.s.DB().ExecContext(context.Background(), query, args...)
	return err
}

func (r rules) mustExec(query string, args ...any) {
	r.t.Helper()
	storetest.MustExec(r.t, r.s.DB(), query, args...)
}

// id runs an INSERT … RETURNING id.
func (r rules) id(query string, args ...any) uuid.UUID {
	r.t.Helper()
	var id uuid.UUID
	if err := r.s.DB().QueryRowContext(context.Background(), query, args...).Scan(&id); err != nil {
		r.t.Fatalf("%s: %v", query, err)
	}
	return id
}

func (r rules) count(query string, args ...any) int {
	r.t.Helper()
	var n int
	if err := r.s.DB().QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		r.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// inTx runs fn in a transaction and returns fn's error or, for the deferred rules, COMMIT's.
func (r rules) inTx(fn func(tx bun.Tx) error) error {
	return r.s.DB().RunInTx(context.Background(), nil, func(_ context.Context, tx bun.Tx) error { return fn(tx) })
}

func (r rules) user() uuid.UUID { return storetest.User(r.t, r.s, uuid.Nil).ID }

// org creates an organization identified by one fresh domain.
func (r rules) org() uuid.UUID { return storetest.Organization(r.t, r.s) }

// orgWith creates an organization with these registration ids and domains.
func (r rules) orgWith(regIDs, domains []string) uuid.UUID {
	r.t.Helper()
	var id uuid.UUID
	err := r.inTx(func(tx bun.Tx) error {
		if err := tx.QueryRowContext(context.Background(), "INSERT INTO organizations (name) VALUES (?) RETURNING id", "Org "+storetest.Unique()).Scan(&id); err != nil {
			return err
		}
		for _, reg := range regIDs {
			if _, err := tx.ExecContext(context.Background(), "INSERT INTO organization_registration_ids (organization_id, registration_id) VALUES (?, ?)", id, reg); err != nil {
				return err
			}
		}
		for _, d := range domains {
			if _, err := tx.ExecContext(context.Background(), "INSERT INTO organization_domains (organization_id, domain) VALUES (?, ?)", id, d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		r.t.Fatalf("create organization: %v", err)
	}
	return id
}

func (r rules) team() uuid.UUID {
	return storetest.Team(r.t, r.s, uuid.Nil, "Team "+storetest.Unique())
}

func (r rules) serviceProvider() uuid.UUID {
	r.t.Helper()
	tok := storetest.Unique()
	return r.id("INSERT INTO service_providers (name, audience_id) VALUES (?, ?) RETURNING id", "SP "+tok, "aud-"+tok)
}

// contact creates a contact; nil owner makes it public, non-nil override makes it an override.
func (r rules) contact(owner, override *uuid.UUID) uuid.UUID {
	r.t.Helper()
	return r.id("INSERT INTO contacts (owner_id, override_id, full_name) VALUES (?, ?, ?) RETURNING id", owner, override, "Contact "+storetest.Unique())
}

func (r rules) invitation(team, issuer uuid.UUID, email string) uuid.UUID {
	r.t.Helper()
	return r.id("INSERT INTO invitations (email, team_id, issuer_id) VALUES (?, ?, ?) RETURNING id", email, team, issuer)
}

func ptr[T any](v T) *T { return &v }

// pgError returns the SQLSTATE and constraint name of a PostgreSQL error; "" for nil.
func pgError(err error) (code, constraint string) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code, pgErr.ConstraintName
	}
	if err != nil {
		return "not a PostgreSQL error", err.Error()
	}
	return "", ""
}

// TestConstraints breaks each rule of migrations/0001_init.up.sql with plain SQL and checks
// the database's answer: the SQLSTATE and the name of the constraint, which is what fromDB
// keys its client errors on. Cases with no code must succeed; they check the rules' edges and
// the ON DELETE actions, and assert the resulting rows themselves.
func TestConstraints(t *testing.T) {
	s := storetest.Open(t)
	tests := []struct {
		name             string
		code, constraint string
		run              func(r rules) error // returns the error of the statement (or COMMIT) under test
	}{
		// users
		{"users: sub already taken", uniqueViolation, "users_sub_key", func(r rules) error {
			u := storetest.User(r.t, r.s, uuid.Nil)
			return r.exec("INSERT INTO users (sub) VALUES (?)", u.Sub)
		}},
		{"users: sub with a space", checkViolation, "users_sub_check", func(r rules) error {
			return r.exec("INSERT INTO users (sub) VALUES (?)", "sub "+storetest.Unique())
		}},
		{"users: sub with a slash", checkViolation, "users_sub_check", func(r rules) error {
			return r.exec("INSERT INTO users (sub) VALUES (?)", "sub/"+storetest.Unique())
		}},
		{"users: sub ending with a line feed", checkViolation, "users_sub_check", func(r rules) error {
			// Django anchors with \Z for this reason; PostgreSQL's $ is the end of the string.
			return r.exec("INSERT INTO users (sub) VALUES (?)", "sub-"+storetest.Unique()+"\n")
		}},
		{"users: empty sub", checkViolation, "users_sub_check", func(r rules) error {
			return r.exec("INSERT INTO users (sub) VALUES ('')")
		}},
		{"users: sub with letters of any script, digits and @.+-_", "", "", func(r rules) error {
			// Python's \w is Unicode; the check is pinned to ICU so that it is too on any cluster.
			return r.exec("INSERT INTO users (sub) VALUES (?)", "Élodie.ß_日本@idp+x-9"+storetest.Unique())
		}},
		{"users: email without @", checkViolation, "users_email_check", func(r rules) error {
			return r.exec("INSERT INTO users (sub, email) VALUES (?, ?)", "sub-"+storetest.Unique(), "jane.example.test")
		}},
		{"users: email with a space", checkViolation, "users_email_check", func(r rules) error {
			return r.exec("INSERT INTO users (sub, email) VALUES (?, ?)", "sub-"+storetest.Unique(), "jane doe@example.test")
		}},
		{"users: email with two @", checkViolation, "users_email_check", func(r rules) error {
			return r.exec("INSERT INTO users (sub, email) VALUES (?, ?)", "sub-"+storetest.Unique(), "jane@doe@example.test")
		}},
		{"users: email domain not lower-case", checkViolation, "users_email_check", func(r rules) error {
			return r.exec("INSERT INTO users (sub, email) VALUES (?, ?)", "sub-"+storetest.Unique(), "jane@Example.TEST")
		}},
		{"users: upper-case local part and no email are allowed", "", "", func(r rules) error {
			if err := r.exec("INSERT INTO users (sub, email) VALUES (?, ?)", "sub-"+storetest.Unique(), "Jane.Doe@example.test"); err != nil {
				return err
			}
			return r.exec("INSERT INTO users (sub, email) VALUES (?, NULL)", "sub-"+storetest.Unique())
		}},
		{"users: unknown language", checkViolation, "users_language_check", func(r rules) error {
			return r.exec("INSERT INTO users (sub, language) VALUES (?, 'de-de')", "sub-"+storetest.Unique())
		}},
		{"users: unknown time zone", fkViolation, "users_timezone_fkey", func(r rules) error {
			return r.exec("UPDATE users SET timezone = 'Europe/Lutetia' WHERE id = ?", r.user())
		}},
		{"users: IANA time zone", "", "", func(r rules) error {
			return r.exec("UPDATE users SET timezone = 'America/Argentina/Buenos_Aires' WHERE id = ?", r.user())
		}},
		{"users: organization with users cannot be deleted", fkViolation, "users_organization_id_fkey", func(r rules) error {
			org := r.org()
			storetest.User(r.t, r.s, org)
			return r.exec("DELETE FROM organizations WHERE id = ?", org)
		}},
		{"users: deleted with their identities, organization accesses and invitations", "", "", func(r rules) error {
			user := r.user()
			r.mustExec("INSERT INTO user_identities (user_id, issuer, subject) VALUES (?, 'https://idp.test', ?)", user, "s-"+storetest.Unique())
			r.mustExec("INSERT INTO organization_accesses (organization_id, user_id) VALUES (?, ?)", r.org(), user)
			r.invitation(r.team(), user, "x-"+storetest.Unique()+"@example.test")
			if err := r.exec("DELETE FROM users WHERE id = ?", user); err != nil {
				return err
			}
			if n := r.count(`SELECT (SELECT count(*) FROM user_identities WHERE user_id = ?0)
				+ (SELECT count(*) FROM organization_accesses WHERE user_id = ?0)
				+ (SELECT count(*) FROM invitations WHERE issuer_id = ?0)`, user); n != 0 {
				r.t.Errorf("%d rows left after deleting their user", n)
			}
			return nil
		}},

		// user_identities
		{"user_identities: same issuer, subject and audience", uniqueViolation, "user_identities_issuer_subject_audience_key", func(r rules) error {
			sub := "pairwise-" + storetest.Unique()
			r.mustExec("INSERT INTO user_identities (user_id, issuer, subject, audience) VALUES (?, 'https://idp.test', ?, 'svc')", r.user(), sub)
			return r.exec("INSERT INTO user_identities (user_id, issuer, subject, audience) VALUES (?, 'https://idp.test', ?, 'svc')", r.user(), sub)
		}},
		{"user_identities: same subject for another audience or issuer", "", "", func(r rules) error {
			sub := "pairwise-" + storetest.Unique()
			r.mustExec("INSERT INTO user_identities (user_id, issuer, subject) VALUES (?, 'https://idp.test', ?)", r.user(), sub)
			if err := r.exec("INSERT INTO user_identities (user_id, issuer, subject, audience) VALUES (?, 'https://idp.test', ?, 'svc')", r.user(), sub); err != nil {
				return err
			}
			return r.exec("INSERT INTO user_identities (user_id, issuer, subject) VALUES (?, 'https://other-idp.test', ?)", r.user(), sub)
		}},
		{"user_identities: empty issuer", checkViolation, "user_identities_issuer_check", func(r rules) error {
			return r.exec("INSERT INTO user_identities (user_id, issuer, subject) VALUES (?, '', 'x')", r.user())
		}},
		{"user_identities: empty subject", checkViolation, "user_identities_subject_check", func(r rules) error {
			return r.exec("INSERT INTO user_identities (user_id, issuer, subject) VALUES (?, 'https://idp.test', '')", r.user())
		}},

		// organizations and their identifiers
		{"organizations: blank name", checkViolation, "organizations_name_check", func(r rules) error {
			return r.exec("UPDATE organizations SET name = ' \t' WHERE id = ?", r.org())
		}},
		{"organizations: metadata not an object", checkViolation, "organizations_metadata_check", func(r rules) error {
			return r.exec(`UPDATE organizations SET metadata = '["a"]' WHERE id = ?`, r.org())
		}},
		{"organizations: created without identifiers", checkViolation, "organizations_identified_check", func(r rules) error {
			return r.inTx(func(tx bun.Tx) error {
				if _, err := tx.ExecContext(context.Background(), "INSERT INTO organizations (name) VALUES ('Nameless')"); err != nil {
					return fmt.Errorf("the rule must wait for COMMIT: %v", err) // %v: not to be taken for the expected error
				}
				return nil
			})
		}},
		{"organizations: identifiers inserted after the organization", "", "", func(r rules) error {
			r.orgWith([]string{"reg-" + storetest.Unique()}, nil)
			return nil
		}},
		{"organizations: last domain deleted", checkViolation, "organizations_identified_check", func(r rules) error {
			org := r.org()
			return r.inTx(func(tx bun.Tx) error {
				if _, err := tx.ExecContext(context.Background(), "DELETE FROM organization_domains WHERE organization_id = ?", org); err != nil {
					return fmt.Errorf("the rule must wait for COMMIT: %v", err) // %v: not to be taken for the expected error
				}
				return nil
			})
		}},
		{"organizations: last registration id deleted", checkViolation, "organizations_identified_check", func(r rules) error {
			org := r.orgWith([]string{"reg-" + storetest.Unique()}, nil)
			return r.exec("DELETE FROM organization_registration_ids WHERE organization_id = ?", org)
		}},
		{"organizations: only domain moved to another organization", checkViolation, "organizations_identified_check", func(r rules) error {
			from, to := r.org(), r.org()
			return r.exec("UPDATE organization_domains SET organization_id = ? WHERE organization_id = ?", to, from)
		}},
		{"organizations: last domain replaced in one transaction", "", "", func(r rules) error {
			org := r.org()
			return r.inTx(func(tx bun.Tx) error {
				if _, err := tx.ExecContext(context.Background(), "DELETE FROM organization_domains WHERE organization_id = ?", org); err != nil {
					return err
				}
				_, err := tx.ExecContext(context.Background(), "INSERT INTO organization_domains (organization_id, domain) VALUES (?, ?)", org, "new-"+storetest.Unique()+".test")
				return err
			})
		}},
		{"organizations: one of two identifiers deleted", "", "", func(r rules) error {
			org := r.orgWith([]string{"reg-" + storetest.Unique()}, []string{"d-" + storetest.Unique() + ".test"})
			return r.exec("DELETE FROM organization_domains WHERE organization_id = ?", org)
		}},
		{"organizations: deleted with their identifiers", "", "", func(r rules) error {
			org := r.orgWith([]string{"reg-" + storetest.Unique()}, []string{"d-" + storetest.Unique() + ".test"})
			if err := r.exec("DELETE FROM organizations WHERE id = ?", org); err != nil {
				return err
			}
			if n := r.count(`SELECT (SELECT count(*) FROM organization_registration_ids WHERE organization_id = ?0)
				+ (SELECT count(*) FROM organization_domains WHERE organization_id = ?0)`, org); n != 0 {
				r.t.Errorf("%d identifiers left after deleting their organization", n)
			}
			return nil
		}},
		{"organization_registration_ids: taken by another organization", uniqueViolation, "organization_registration_ids_registration_id_key", func(r rules) error {
			reg := "reg-" + storetest.Unique()
			r.orgWith([]string{reg}, nil)
			return r.exec("INSERT INTO organization_registration_ids (organization_id, registration_id) VALUES (?, ?)", r.org(), reg)
		}},
		{"organization_registration_ids: with a space", checkViolation, "organization_registration_ids_registration_id_check", func(r rules) error {
			return r.exec("INSERT INTO organization_registration_ids (organization_id, registration_id) VALUES (?, '130 025 265 00013')", r.org())
		}},
		{"organization_registration_ids: empty", checkViolation, "organization_registration_ids_registration_id_check", func(r rules) error {
			return r.exec("INSERT INTO organization_registration_ids (organization_id, registration_id) VALUES (?, '')", r.org())
		}},
		{"organization_domains: taken by another organization", uniqueViolation, "organization_domains_domain_key", func(r rules) error {
			domain := "d-" + storetest.Unique() + ".test"
			r.orgWith(nil, []string{domain})
			return r.exec("INSERT INTO organization_domains (organization_id, domain) VALUES (?, ?)", r.org(), domain)
		}},
		{"organization_domains: not lower-case", checkViolation, "organization_domains_domain_check", func(r rules) error {
			return r.exec("INSERT INTO organization_domains (organization_id, domain) VALUES (?, ?)", r.org(), "D-"+storetest.Unique()+".test")
		}},
		{"organization_domains: label starting with a hyphen", checkViolation, "organization_domains_domain_check", func(r rules) error {
			return r.exec("INSERT INTO organization_domains (organization_id, domain) VALUES (?, ?)", r.org(), "-d"+storetest.Unique()+".test")
		}},
		{"organization_domains: a URL", checkViolation, "organization_domains_domain_check", func(r rules) error {
			return r.exec("INSERT INTO organization_domains (organization_id, domain) VALUES (?, ?)", r.org(), "https://d"+storetest.Unique()+".test/")
		}},

		// organization_accesses
		{"organization_accesses: same user twice", uniqueViolation, "organization_accesses_user_id_organization_id_key", func(r rules) error {
			org, user := r.org(), r.user()
			r.mustExec("INSERT INTO organization_accesses (organization_id, user_id) VALUES (?, ?)", org, user)
			return r.exec("INSERT INTO organization_accesses (organization_id, user_id) VALUES (?, ?)", org, user)
		}},
		{"organization_accesses: unknown role", checkViolation, "organization_accesses_role_check", func(r rules) error {
			return r.exec("INSERT INTO organization_accesses (organization_id, user_id, role) VALUES (?, ?, 'owner')", r.org(), r.user())
		}},

		// service providers and their links
		{"service_providers: name taken", uniqueViolation, "service_providers_name_key", func(r rules) error {
			name := "SP " + storetest.Unique()
			r.mustExec("INSERT INTO service_providers (name, audience_id) VALUES (?, ?)", name, "aud-"+storetest.Unique())
			return r.exec("INSERT INTO service_providers (name, audience_id) VALUES (?, ?)", name, "aud-"+storetest.Unique())
		}},
		{"service_providers: audience taken", uniqueViolation, "service_providers_audience_id_key", func(r rules) error {
			aud := "aud-" + storetest.Unique()
			r.mustExec("INSERT INTO service_providers (name, audience_id) VALUES (?, ?)", "SP "+storetest.Unique(), aud)
			return r.exec("INSERT INTO service_providers (name, audience_id) VALUES (?, ?)", "SP "+storetest.Unique(), aud)
		}},
		{"service_providers: blank name", checkViolation, "service_providers_name_check", func(r rules) error {
			return r.exec("INSERT INTO service_providers (name, audience_id) VALUES ('  ', ?)", "aud-"+storetest.Unique())
		}},
		{"service_providers: empty audience", checkViolation, "service_providers_audience_id_check", func(r rules) error {
			return r.exec("INSERT INTO service_providers (name, audience_id) VALUES (?, '')", "SP "+storetest.Unique())
		}},
		{"organization_service_providers: linked twice", uniqueViolation, "organization_service_providers_key", func(r rules) error {
			org, sp := r.org(), r.serviceProvider()
			r.mustExec("INSERT INTO organization_service_providers (organization_id, service_provider_id) VALUES (?, ?)", org, sp)
			return r.exec("INSERT INTO organization_service_providers (organization_id, service_provider_id) VALUES (?, ?)", org, sp)
		}},
		{"team_service_providers: linked twice", uniqueViolation, "team_service_providers_key", func(r rules) error {
			team, sp := r.team(), r.serviceProvider()
			r.mustExec("INSERT INTO team_service_providers (team_id, service_provider_id) VALUES (?, ?)", team, sp)
			return r.exec("INSERT INTO team_service_providers (team_id, service_provider_id) VALUES (?, ?)", team, sp)
		}},
		{"team_service_providers: unknown service provider", fkViolation, "team_service_providers_service_provider_id_fkey", func(r rules) error {
			return r.exec("INSERT INTO team_service_providers (team_id, service_provider_id) VALUES (?, ?)", r.team(), uuid.New())
		}},
		{"service_providers: deleted with their links", "", "", func(r rules) error {
			sp := r.serviceProvider()
			r.mustExec("INSERT INTO organization_service_providers (organization_id, service_provider_id) VALUES (?, ?)", r.org(), sp)
			r.mustExec("INSERT INTO team_service_providers (team_id, service_provider_id) VALUES (?, ?)", r.team(), sp)
			if err := r.exec("DELETE FROM service_providers WHERE id = ?", sp); err != nil {
				return err
			}
			if n := r.count(`SELECT (SELECT count(*) FROM organization_service_providers WHERE service_provider_id = ?0)
				+ (SELECT count(*) FROM team_service_providers WHERE service_provider_id = ?0)`, sp); n != 0 {
				r.t.Errorf("%d links left after deleting their service provider", n)
			}
			return nil
		}},

		// teams
		{"teams: blank name", checkViolation, "teams_name_check", func(r rules) error {
			return r.exec("INSERT INTO teams (name) VALUES ('')")
		}},
		{"teams: name of no-break and em spaces", checkViolation, "teams_name_check", func(r rules) error {
			return r.exec("UPDATE teams SET name = ? WHERE id = ?", "\u00a0\u2003", r.team())
		}},
		{"teams: external id taken", uniqueViolation, "teams_external_id_key", func(r rules) error {
			team := r.team()
			return r.exec("INSERT INTO teams (name, external_id) SELECT 'Copy', external_id FROM teams WHERE id = ?", team)
		}},
		{"teams: organization with teams cannot be deleted", fkViolation, "teams_organization_id_fkey", func(r rules) error {
			org := r.org()
			storetest.Team(r.t, r.s, org, "Team "+storetest.Unique())
			return r.exec("DELETE FROM organizations WHERE id = ?", org)
		}},

		// team_accesses
		{"team_accesses: unknown role", checkViolation, "team_accesses_role_check", func(r rules) error {
			return r.exec("INSERT INTO team_accesses (team_id, user_id, role) VALUES (?, ?, 'superuser')", r.team(), r.user())
		}},
		{"team_accesses: same user twice", uniqueViolation, "team_accesses_team_id_user_id_key", func(r rules) error {
			team, user := r.team(), r.user()
			storetest.Access(r.t, r.s, team, user, store.RoleMember)
			return r.exec("INSERT INTO team_accesses (team_id, user_id, role) VALUES (?, ?, 'owner')", team, user)
		}},
		{"team_accesses: unknown user", fkViolation, "team_accesses_user_id_fkey", func(r rules) error {
			return r.exec("INSERT INTO team_accesses (team_id, user_id) VALUES (?, ?)", r.team(), uuid.New())
		}},
		{"team_accesses: deleted with their team", "", "", func(r rules) error {
			team, user := r.team(), r.user()
			storetest.Access(r.t, r.s, team, user, store.RoleOwner)
			r.invitation(team, user, "x-"+storetest.Unique()+"@example.test")
			if err := r.exec("DELETE FROM teams WHERE id = ?", team); err != nil {
				return err
			}
			if n := r.count(`SELECT (SELECT count(*) FROM team_accesses WHERE team_id = ?0)
				+ (SELECT count(*) FROM invitations WHERE team_id = ?0)`, team); n != 0 {
				r.t.Errorf("%d accesses and invitations left after deleting their team", n)
			}
			return nil
		}},
		{"team_accesses: deleted with their user", "", "", func(r rules) error {
			team, user := r.team(), r.user()
			storetest.Access(r.t, r.s, team, user, store.RoleOwner)
			if err := r.exec("DELETE FROM users WHERE id = ?", user); err != nil {
				return err
			}
			if n := r.count("SELECT count(*) FROM team_accesses WHERE team_id = ?", team); n != 0 {
				r.t.Errorf("%d accesses left after deleting their user", n)
			}
			return nil
		}},

		// invitations
		{"invitations: invalid email", checkViolation, "invitations_email_check", func(r rules) error {
			return r.exec("INSERT INTO invitations (email, team_id, issuer_id) VALUES ('jane', ?, ?)", r.team(), r.user())
		}},
		{"invitations: email with a no-break space", checkViolation, "invitations_email_check", func(r rules) error {
			return r.exec("INSERT INTO invitations (email, team_id, issuer_id) VALUES (?, ?, ?)", "jane\u00a0doe@example.test", r.team(), r.user())
		}},
		{"invitations: unknown role", checkViolation, "invitations_role_check", func(r rules) error {
			return r.exec("INSERT INTO invitations (email, team_id, role, issuer_id) VALUES ('jane@example.test', ?, 'guest', ?)", r.team(), r.user())
		}},
		{"invitations: same email in another case", uniqueViolation, "invitations_email_team_id_key", func(r rules) error {
			team, issuer, tok := r.team(), r.user(), storetest.Unique()
			r.invitation(team, issuer, "jane-"+tok+"@example.test")
			return r.exec("INSERT INTO invitations (email, team_id, issuer_id) VALUES (?, ?, ?)", "Jane-"+tok+"@Example.test", team, issuer)
		}},
		{"invitations: same email to another team", "", "", func(r rules) error {
			issuer, email := r.user(), "jane-"+storetest.Unique()+"@example.test"
			r.invitation(r.team(), issuer, email)
			return r.exec("INSERT INTO invitations (email, team_id, issuer_id) VALUES (?, ?, ?)", email, r.team(), issuer)
		}},
		{"invitations: email edited", checkViolation, "invitations_frozen_check", func(r rules) error {
			inv := r.invitation(r.team(), r.user(), "jane-"+storetest.Unique()+"@example.test")
			return r.exec("UPDATE invitations SET email = 'other@example.test' WHERE id = ?", inv)
		}},
		{"invitations: role edited", checkViolation, "invitations_frozen_check", func(r rules) error {
			inv := r.invitation(r.team(), r.user(), "jane-"+storetest.Unique()+"@example.test")
			return r.exec("UPDATE invitations SET role = 'owner' WHERE id = ?", inv)
		}},
		{"invitations: moved to another team", checkViolation, "invitations_frozen_check", func(r rules) error {
			inv := r.invitation(r.team(), r.user(), "jane-"+storetest.Unique()+"@example.test")
			return r.exec("UPDATE invitations SET team_id = ? WHERE id = ?", r.team(), inv)
		}},
		{"invitations: delivery time recorded", "", "", func(r rules) error {
			inv := r.invitation(r.team(), r.user(), "jane-"+storetest.Unique()+"@example.test")
			if err := r.exec("UPDATE invitations SET email_sent_at = now() WHERE id = ?", inv); err != nil {
				return err
			}
			if n := r.count("SELECT count(*) FROM invitations WHERE id = ? AND email_sent_at IS NOT NULL", inv); n != 1 {
				r.t.Error("email_sent_at not recorded")
			}
			return nil
		}},
		{"mail_queue: deleted with its invitation", "", "", func(r rules) error {
			inv := r.invitation(r.team(), r.user(), "jane-"+storetest.Unique()+"@example.test")
			r.mustExec("INSERT INTO mail_queue (template, recipient, language, invitation_id) VALUES ('invitation', 'jane@example.test', 'fr-fr', ?)", inv)
			if err := r.exec("DELETE FROM invitations WHERE id = ?", inv); err != nil {
				return err
			}
			if n := r.count("SELECT count(*) FROM mail_queue WHERE invitation_id = ?", inv); n != 0 {
				r.t.Errorf("%d messages left after deleting their invitation", n)
			}
			return nil
		}},

		// contacts
		{"contacts: blank full name", checkViolation, "contacts_full_name_check", func(r rules) error {
			return r.exec("INSERT INTO contacts (owner_id, full_name) VALUES (?, ' ')", r.user())
		}},
		{"contacts: full name of tabs and line feeds", checkViolation, "contacts_full_name_check", func(r rules) error {
			return r.exec("INSERT INTO contacts (owner_id, full_name) VALUES (?, ?)", r.user(), "\t\n\t")
		}},
		{"contacts: data outside the schema", checkViolation, "contacts_data_check", func(r rules) error {
			return r.exec(`INSERT INTO contacts (owner_id, full_name, data) VALUES (?, 'Jane', '{"emails": [{"type": "Work", "value": "jane"}]}')`, r.user())
		}},
		{"contacts: same public contact overridden twice by one user", uniqueViolation, "contacts_owner_id_override_id_key", func(r rules) error {
			public, owner := r.contact(nil, nil), r.user()
			r.contact(&owner, &public)
			return r.exec("INSERT INTO contacts (owner_id, override_id, full_name) VALUES (?, ?, 'Again')", owner, public)
		}},
		{"contacts: same public contact overridden by two users", "", "", func(r rules) error {
			public := r.contact(nil, nil)
			r.contact(ptr(r.user()), &public)
			return r.exec("INSERT INTO contacts (owner_id, override_id, full_name) VALUES (?, ?, 'Mine')", r.user(), public)
		}},
		{"contacts: override without owner", checkViolation, "contacts_override_owner_check", func(r rules) error {
			return r.exec("INSERT INTO contacts (override_id, full_name) VALUES (?, 'Nobody''s')", r.contact(nil, nil))
		}},
		{"contacts: override of itself", checkViolation, "contacts_override_not_self_check", func(r rules) error {
			// Made owned and self-overriding at once, so that the public-target trigger, which
			// sees the row as it was, lets the statement reach the check.
			return r.exec("UPDATE contacts SET owner_id = ?, override_id = id WHERE id = ?", r.user(), r.contact(nil, nil))
		}},
		{"contacts: profile owned by someone else", checkViolation, "contacts_profile_owner_check", func(r rules) error {
			return r.exec("INSERT INTO contacts (owner_id, user_id, full_name) VALUES (?, ?, 'Profile')", r.user(), r.user())
		}},
		{"contacts: profile without owner", checkViolation, "contacts_profile_owner_check", func(r rules) error {
			return r.exec("INSERT INTO contacts (user_id, full_name) VALUES (?, 'Profile')", r.user())
		}},
		{"contacts: second profile of a user", uniqueViolation, "contacts_user_id_key", func(r rules) error {
			user := r.user()
			r.mustExec("INSERT INTO contacts (owner_id, user_id, full_name) VALUES (?0, ?0, 'Profile')", user)
			return r.exec("INSERT INTO contacts (owner_id, user_id, full_name) VALUES (?0, ?0, 'Profile')", user)
		}},
		{"contacts: override of a private contact", checkViolation, "contacts_override_public_check", func(r rules) error {
			private := r.contact(ptr(r.user()), nil)
			return r.exec("INSERT INTO contacts (owner_id, override_id, full_name) VALUES (?, ?, 'Mine')", r.user(), private)
		}},
		{"contacts: override of a missing contact", fkViolation, "contacts_override_id_fkey", func(r rules) error {
			return r.exec("INSERT INTO contacts (owner_id, override_id, full_name) VALUES (?, ?, 'Mine')", r.user(), uuid.New())
		}},
		{"contacts: override of an override", checkViolation, "contacts_override_public_check", func(r rules) error {
			public := r.contact(nil, nil)
			override := r.contact(ptr(r.user()), &public)
			return r.exec("INSERT INTO contacts (owner_id, override_id, full_name) VALUES (?, ?, 'Chained')", r.user(), override)
		}},
		{"contacts: existing contact pointed at an override", checkViolation, "contacts_override_public_check", func(r rules) error {
			public, owner := r.contact(nil, nil), r.user()
			override := r.contact(ptr(r.user()), &public)
			return r.exec("UPDATE contacts SET override_id = ? WHERE id = ?", override, r.contact(&owner, nil))
		}},
		{"contacts: overridden contact given an owner", checkViolation, "contacts_override_public_check", func(r rules) error {
			public := r.contact(nil, nil)
			r.contact(ptr(r.user()), &public)
			return r.exec("UPDATE contacts SET owner_id = ? WHERE id = ?", r.user(), public)
		}},
		{"contacts: public contact nobody overrides given an owner", "", "", func(r rules) error {
			return r.exec("UPDATE contacts SET owner_id = ? WHERE id = ?", r.user(), r.contact(nil, nil))
		}},
		{"contacts: deleting a public contact detaches its overrides", "", "", func(r rules) error {
			public := r.contact(nil, nil)
			override := r.contact(ptr(r.user()), &public)
			if err := r.exec("DELETE FROM contacts WHERE id = ?", public); err != nil {
				return err
			}
			if n := r.count("SELECT count(*) FROM contacts WHERE id = ? AND override_id IS NULL", override); n != 1 {
				r.t.Error("the override was not kept with override_id set to NULL")
			}
			return nil
		}},
		{"contacts: deleted with their owner", "", "", func(r rules) error {
			user, public := r.user(), r.contact(nil, nil)
			r.mustExec("INSERT INTO contacts (owner_id, user_id, full_name) VALUES (?0, ?0, 'Profile')", user)
			r.contact(&user, nil)
			r.contact(&user, &public)
			if err := r.exec("DELETE FROM users WHERE id = ?", user); err != nil {
				return err
			}
			if n := r.count("SELECT count(*) FROM contacts WHERE owner_id = ?0 OR user_id = ?0", user); n != 0 {
				r.t.Errorf("%d contacts left after deleting their owner", n)
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.run(rules{t, s})
			if code, constraint := pgError(err); code != tt.code || constraint != tt.constraint {
				t.Errorf("got SQLSTATE %q on %q, want %q on %q (err: %v)", code, constraint, tt.code, tt.constraint, err)
			}
		})
	}
}

// Two first logins from the same organization at once each create it with its SIRET (or mail
// domain), in transactions that both start before either commits. People checks uniqueness in
// Python and lets both through; here the second insert waits on the unique index and fails.
func TestConcurrentOrganizationIdentifiers(t *testing.T) {
	s := storetest.Open(t)
	tests := []struct {
		name, table, column, constraint string
		value                           func() string
	}{
		{"registration id", "organization_registration_ids", "registration_id", "organization_registration_ids_registration_id_key",
			func() string { return fmt.Sprintf("%014d", rand.Int64N(1e14)) }},
		{"domain", "organization_domains", "domain", "organization_domains_domain_key",
			func() string { return "race-" + storetest.Unique() + ".test" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for range 10 {
				value := tt.value()
				var started sync.WaitGroup // a barrier: both organizations inserted, neither committed
				started.Add(2)
				orgs := make([]uuid.UUID, 2)
				errs := make([]error, 2)
				var done sync.WaitGroup
				for i := range 2 {
					done.Go(func() {
						errs[i] = s.DB().RunInTx(t.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
							err := tx.QueryRowContext(ctx, "INSERT INTO organizations (name) VALUES (?) RETURNING id", "Race "+value).Scan(&orgs[i])
							started.Done()
							if err != nil {
								return err
							}
							started.Wait()
							_, err = tx.ExecContext(ctx, "INSERT INTO "+tt.table+" (organization_id, "+tt.column+") VALUES (?, ?)", orgs[i], value)
							return err
						})
					})
				}
				done.Wait()
				failed := slices.IndexFunc(errs, func(err error) bool { return err != nil })
				if failed < 0 || errs[1-failed] != nil {
					t.Fatalf("errors = %v, want exactly one", errs)
				}
				if code, constraint := pgError(errs[failed]); code != uniqueViolation || constraint != tt.constraint {
					t.Fatalf("got SQLSTATE %q on %q, want %q on %q (err: %v)", code, constraint, uniqueViolation, tt.constraint, errs[failed])
				}
				var holders []uuid.UUID
				err := s.DB().NewSelect().TableExpr(tt.table).Column("organization_id").Where("? = ?", bun.Ident(tt.column), value).Scan(t.Context(), &holders)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(holders, []uuid.UUID{orgs[1-failed]}) {
					t.Fatalf("%s %s held by %v, want only the committed organization %v", tt.column, value, holders, orgs[1-failed])
				}
				r := rules{t, s}
				if n := r.count("SELECT count(*) FROM organizations WHERE name = ?", "Race "+value); n != 1 {
					t.Fatalf("%d organizations created, want 1", n)
				}
			}
		})
	}
}

// waitBlocked returns once the backend pid waits for a lock another transaction holds.
func waitBlocked(t *testing.T, s *store.Store, pid int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		var blocked bool
		if err := s.DB().QueryRowContext(t.Context(), "SELECT cardinality(pg_blocking_pids(?)) > 0", pid).Scan(&blocked); err != nil {
			t.Fatal(err)
		}
		if blocked {
			return
		}
	}
	t.Fatalf("backend %d never waited for a lock", pid)
}

// begin opens a transaction and returns it with its backend's pid; it is rolled back at the
// end of the test unless committed.
func begin(t *testing.T, s *store.Store) (bun.Tx, int) {
	t.Helper()
	tx, err := s.DB().BeginTx(t.Context(), &sql.TxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	var pid int
	if err := tx.QueryRowContext(t.Context(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return tx, pid
}

// Two transactions each delete one of an organization's two domains. Each alone leaves one,
// but together they leave none. SET CONSTRAINTS … IMMEDIATE runs the deferred check before
// COMMIT, holding open the window in which, without the organization lock the check takes,
// each would see the other's domain still there.
func TestOrganizationLastIdentifierRace(t *testing.T) {
	s := storetest.Open(t)
	r := rules{t, s}
	d1, d2 := "a-"+storetest.Unique()+".test", "b-"+storetest.Unique()+".test"
	org := r.orgWith(nil, []string{d1, d2})

	tx1, _ := begin(t, s)
	storetest.MustExec(t, tx1, "DELETE FROM organization_domains WHERE domain = ?", d1)
	storetest.MustExec(t, tx1, "SET CONSTRAINTS ALL IMMEDIATE")

	tx2, pid2 := begin(t, s)
	storetest.MustExec(t, tx2, "DELETE FROM organization_domains WHERE domain = ?", d2)
	checked := make(chan error, 1)
	go func() {
		_, err := tx2.ExecContext(context.Background(), "SET CONSTRAINTS ALL IMMEDIATE")
		checked <- err
	}()
	waitBlocked(t, s, pid2)
	if err := tx1.Commit(); err != nil {
		t.Fatalf("first deletion: %v", err)
	}
	err := <-checked
	if code, constraint := pgError(err); code != checkViolation || constraint != "organizations_identified_check" {
		t.Fatalf("second deletion: got SQLSTATE %q on %q, want %q on organizations_identified_check (err: %v)", code, constraint, checkViolation, err)
	}
	_ = tx2.Rollback()
	if n := r.count("SELECT count(*) FROM organization_domains WHERE organization_id = ?", org); n != 1 {
		t.Fatalf("organization has %d domains, want 1", n)
	}
}

// Overriding a public contact and giving it an owner exclude each other, whichever comes first:
// the second waits for the first to commit, then fails.
func TestContactOverrideRace(t *testing.T) {
	s := storetest.Open(t)
	const override = "INSERT INTO contacts (owner_id, override_id, full_name) VALUES (?, ?, 'Mine')"
	const own = "UPDATE contacts SET owner_id = ? WHERE id = ?"
	tests := []struct {
		name          string
		first, second string
	}{
		{"override first", override, own},
		{"owner first", own, override},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := rules{t, s}
			public, user := r.contact(nil, nil), r.user()
			tx1, _ := begin(t, s)
			storetest.MustExec(t, tx1, tt.first, user, public)
			tx2, pid2 := begin(t, s)
			second := make(chan error, 1)
			go func() {
				_, err := tx2.ExecContext(context.Background(), tt.second, user, public)
				second <- err
			}()
			waitBlocked(t, s, pid2)
			if err := tx1.Commit(); err != nil {
				t.Fatal(err)
			}
			err := <-second
			if code, constraint := pgError(err); code != checkViolation || constraint != "contacts_override_public_check" {
				t.Fatalf("got SQLSTATE %q on %q, want %q on contacts_override_public_check (err: %v)", code, constraint, checkViolation, err)
			}
		})
	}
}

// TestConstraintMessages checks that every constraint name fromDB knows is one the migrations
// declare, so that a renamed constraint fails here instead of reaching clients as INTERNAL, and
// that real violations reach clients with the declared kind and field through the store.
func TestConstraintMessages(t *testing.T) {
	s := storetest.Open(t)
	var declared []string
	err := s.DB().NewRaw(`SELECT conname FROM pg_constraint WHERE connamespace = 'public'::regnamespace
		UNION SELECT indexname FROM pg_indexes WHERE schemaname = 'public'`).Scan(t.Context(), &declared)
	if err != nil {
		t.Fatal(err)
	}
	// Triggers name the rule they enforce in RAISE … USING CONSTRAINT = '…'.
	raised := regexp.MustCompile(`CONSTRAINT\s*=\s*'([a-z0-9_]+)'`)
	err = fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, path)
		for _, m := range raised.FindAllSubmatch(b, -1) {
			declared = append(declared, string(m[1]))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range store.ConstraintNames() {
		if !slices.Contains(declared, name) {
			t.Errorf("constraintErrors names %q, which no constraint, unique index or trigger declares", name)
		}
	}

	t.Run("violations through the store", func(t *testing.T) {
		ctx := t.Context()
		r := rules{t, s}
		team := storetest.TeamWithEveryRole(t, s)
		owner := store.UserActor(team.Owner)
		member := store.UserActor(team.Member)
		public := r.contact(nil, nil)
		private := r.contact(ptr(r.user()), nil)
		sp := r.serviceProvider()
		email := "guest-" + storetest.Unique() + "@example.test"
		if _, err := s.CreateInvitation(ctx, owner, store.NewInvitation{TeamID: team.ID, Email: email, Role: store.RoleMember}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateContact(ctx, member, store.NewContact{FullName: "Mine", OverrideID: &public}); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name  string
			call  func() error
			kind  store.Kind
			field string
		}{
			{"unknown time zone", func() error {
				_, err := s.UpdateMe(ctx, member, store.UserUpdate{Timezone: ptr("Europe/Lutetia")})
				return err
			}, store.KindInvalid, "timezone"},
			{"unknown language", func() error {
				_, err := s.UpdateMe(ctx, member, store.UserUpdate{Language: ptr("xx-xx")})
				return err
			}, store.KindInvalid, "language"},
			{"user already in the team", func() error {
				_, err := s.CreateTeamAccess(ctx, owner, team.ID, team.Member, store.RoleMember)
				return err
			}, store.KindConflict, "userId"},
			{"unknown service provider", func() error {
				_, err := s.CreateTeam(ctx, owner, store.NewTeam{Name: "Linked", ServiceProviderIDs: []uuid.UUID{sp, uuid.New()}})
				return err
			}, store.KindInvalid, "serviceProviderIds"},
			{"email already invited, in another case", func() error {
				_, err := s.CreateInvitation(ctx, owner, store.NewInvitation{TeamID: team.ID, Email: "GUEST" + email[5:], Role: store.RoleMember})
				return err
			}, store.KindConflict, "email"},
			{"public contact overridden twice", func() error {
				_, err := s.CreateContact(ctx, member, store.NewContact{FullName: "Again", OverrideID: &public})
				return err
			}, store.KindConflict, "overrideId"},
			{"private contact overridden", func() error {
				_, err := s.CreateContact(ctx, member, store.NewContact{FullName: "Mine", OverrideID: &private})
				return err
			}, store.KindInvalid, "overrideId"},
			{"missing contact overridden", func() error {
				_, err := s.CreateContact(ctx, member, store.NewContact{FullName: "Mine", OverrideID: ptr(uuid.New())})
				return err
			}, store.KindInvalid, "overrideId"},
		}
		for _, tt := range tests {
			err := tt.call()
			var e *store.Error
			if !errors.As(err, &e) || e.Kind != tt.kind || e.Field != tt.field {
				t.Errorf("%s: got %#v (%v), want kind %v on field %q", tt.name, e, err, tt.kind, tt.field)
			}
		}
	})
}
