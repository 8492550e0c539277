package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
)

// Claims are what the identity provider said about the person, from the ID token and userinfo.
// The login handler has already verified them; the store only decides who they are.
type Claims struct {
	Issuer         string // iss: with Subject, the identity
	Subject        string // sub: public (browser login) subject at Issuer
	Email          string // "" when the provider gave none
	Name           string // USER_OIDC_FIELDS_TO_NAME joined by spaces; "" when none
	RegistrationID string // the OIDC_ORGANIZATION_REGISTRATION_ID_FIELD claim (a SIRET); "" when none
	// EmailVerified says that the provider vouches for Email: the login handler decides it
	// from the email_verified claim (auth's one rule, shared with partner tokens). An email it
	// does not vouch for is dropped, as if the provider had given none: anyone may type any
	// address at a provider that does not check it. So it never links an unknown subject to
	// the user who has that address, accepts that address's invitations, claims a staff user
	// made ahead by create-staff, replaces a stored email, is stored on a new user (where a
	// later verified login, an invitation or create-staff would take it for the owner's), nor
	// names an organization by its domain. The zero value is the safe one.
	EmailVerified bool
}

// LoginOptions are the deployment's provisioning rules. The zero value neither falls back to
// the email nor creates users; DefaultLoginOptions gives People's defaults.
type LoginOptions struct {
	FallbackToEmail bool // OIDC_FALLBACK_TO_EMAIL_FOR_IDENTIFICATION
	CreateUser      bool // OIDC_CREATE_USER
	FirstUserAdmin  bool // ORGANIZATION_FIRST_USER_ADMIN
	// RegistrationIDPattern is ORGANIZATION_REGISTRATION_ID_PATTERN. The whole claim must match,
	// even when the pattern is not anchored; nil means SIRETPattern.
	RegistrationIDPattern *regexp.Regexp
	// SharedEmailDomains is ORGANIZATION_SHARED_EMAIL_DOMAINS: mail domains that many unrelated
	// people use (webmail providers), which therefore name no organization. Lower case, exact
	// match (a subdomain is another domain); nil means DefaultSharedEmailDomains, an empty
	// list none.
	SharedEmailDomains []string
}

// DefaultSharedEmailDomains are the webmail providers most used in France and abroad. Without
// this list, the first person to log in from @gmail.com without a registration id created an
// organization "gmail.com" that every later one joined: strangers in one organization, its
// administrator too with ORGANIZATION_FIRST_USER_ADMIN.
var DefaultSharedEmailDomains = []string{
	"gmail.com", "googlemail.com",
	"orange.fr", "wanadoo.fr", "laposte.net", "free.fr", "sfr.fr", "neuf.fr", "bbox.fr",
	"numericable.fr", "club-internet.fr", "aliceadsl.fr", "cegetel.net",
	"yahoo.fr", "yahoo.com", "ymail.com", "hotmail.fr", "hotmail.com", "outlook.fr", "outlook.com",
	"live.fr", "live.com", "msn.com",
	"icloud.com", "me.com", "mac.com",
	"proton.me", "protonmail.com", "pm.me",
	"gmx.fr", "gmx.com", "gmx.net", "gmx.de", "aol.com", "aol.fr", "mail.com",
	"yandex.com", "yandex.ru", "zoho.com", "tutanota.com", "tuta.io", "web.de",
}

// sharedDomain reports whether domain is one of o's shared email domains.
func (o LoginOptions) sharedDomain(domain string) bool {
	list := o.SharedEmailDomains
	if list == nil {
		list = DefaultSharedEmailDomains
	}
	return slices.Contains(list, domain)
}

// SIRETPattern is a French SIRET, 14 digits: the registration id People's deployments accept.
var SIRETPattern = regexp.MustCompile(`^[0-9]{14}$`)

// DefaultLoginOptions are People's defaults: email fallback and user creation on, the first
// user of a new organization not made its administrator, SIRET registration ids.
func DefaultLoginOptions() LoginOptions {
	return LoginOptions{FallbackToEmail: true, CreateUser: true, RegistrationIDPattern: SIRETPattern}
}

// The reasons of a refused login: stable codes for LOGIN_REDIRECT_URL_FAILURE.
const (
	ReasonInvalidClaims        = "invalid_claims"         // no issuer or subject, one the directory cannot store, or a malformed email
	ReasonInactiveUser         = "inactive_user"          // the user exists but is deactivated
	ReasonAmbiguousEmail       = "ambiguous_email"        // an unknown subject whose email several users share
	ReasonUserCreationDisabled = "user_creation_disabled" // an unknown person, and OIDC_CREATE_USER is off
	ReasonNoOrganization       = "no_organization"        // a new user with neither a usable registration id nor email domain (verified, not a shared one)
)

// LoginError is a refused login. It is not an *Error (KindOf says KindInternal): a refusal is
// not an API client's mistake, and the login handler, not graph, turns it into a redirect.
// Message names no person (no email, no name), so it may be logged as is.
type LoginError struct {
	Reason  string // one of the Reason constants
	Message string
}

func (e *LoginError) Error() string { return e.Message }

func refuse(reason, msg string) error { return &LoginError{Reason: reason, Message: msg} }

// Advisory lock spaces (the first key of the two-key form) that serialize the logins of one
// person: a user and their identity are rows that do not exist yet, so there is no row to lock.
const (
	lockLoginSubject int32 = 7101 // second key: hashtext of issuer and subject
	lockLoginEmail   int32 = 7102 // second key: hashtext(lower(email))
)

// ProvisionLogin finds or creates the user a browser login stands for, in one transaction,
// following People's get_or_create_user with its known flaws fixed:
//
//   - The identity is (issuer, subject) with an empty audience. Failing that, with
//     FallbackToEmail, the one user whose email is the claim's, compared case-insensitively,
//     active or not (an inactive match is refused, not passed over to create a second
//     account); the subject is then linked to that user, next to the ones it has (ProConnect's
//     subject changes with the person's identity provider). Several matches are refused,
//     never guessed between.
//   - Email and name follow the claims; an absent claim erases nothing.
//   - A new user gets an organization (exact registration id, else exact email domain, created
//     when none matches), an identity and a profile contact. An existing user without an
//     organization (People's legacy users) gets one the same way, or keeps none when the
//     claims name none, as in People.
//   - Valid invitations to the claim's email are accepted at every login, not only the first:
//     People only did it when the row was created, stranding invitations sent to an address
//     its user took later.
//   - An email the provider does not vouch for (Claims.EmailVerified) is no email at all, and
//     an email at a shared webmail domain (LoginOptions.SharedEmailDomains) names no
//     organization: a new user then needs a registration id, or is refused no_organization,
//     as one without any email is.
//
// The advisory locks come first, before any row lock, so logins cannot deadlock on them: one
// subject, and with FallbackToEmail one email, never creates two users at once. Organizations
// rely on their unique identifiers instead (see loginOrganization). A refusal is a *LoginError
// and writes nothing.
func (s *Store) ProvisionLogin(ctx context.Context, c Claims, o LoginOptions) (*User, error) {
	lc, err := checkLoginClaims(c, o)
	if err != nil {
		return nil, err
	}
	var u *User
	err = s.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?, hashtext(?))",
			lockLoginSubject, lc.issuer+"\n"+lc.subject); err != nil {
			return fromDB("lock login subject", err)
		}
		useEmail := o.FallbackToEmail && lc.email != ""
		if useEmail {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?, hashtext(lower(?)))",
				lockLoginEmail, lc.email); err != nil {
				return fromDB("lock login email", err)
			}
		}
		var err error
		u, err = loginUser(ctx, tx, lc, useEmail)
		if err != nil {
			return err
		}
		created, hadOrganization := u == nil, u != nil && u.OrganizationID != nil
		if created {
			u, err = createLoginUser(ctx, tx, lc, o)
		} else {
			u, err = updateLoginUser(ctx, tx, u, lc)
		}
		if err != nil {
			return err
		}
		teams, err := acceptInvitations(ctx, tx, u.ID, lc.email, s.invitationValidity)
		if err != nil {
			return err
		}
		return auditLogin(ctx, tx, u, created, !hadOrganization && u.OrganizationID != nil, teams)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// loginClaims are Claims checked and normalized for storage.
type loginClaims struct {
	issuer, subject string
	email           string // NormalizeEmail'd; "" when absent
	name            string // trimmed and cut to 100 characters; "" when absent
	registrationID  string // "" when absent or not matching the pattern
	domain          string // the email's domain when organization_domains can hold it; else ""
}

// domainPattern is organization_domains_domain_check.
var domainPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)

// checkLoginClaims refuses claims the directory cannot store as an identity, and drops the
// ones it cannot use:
//   - A malformed email is refused rather than ignored: it could neither identify the person
//     nor be stored, and ignoring it would hide a misconfigured provider.
//   - A name longer than users.name's 100 characters is cut, not refused: the person cannot
//     fix it at their provider, and it is display text only.
//   - A registration id that does not match the pattern is ignored, as if absent, so the email
//     domain decides the organization (and with no email the login is refused for want of one):
//     the domain is still a sound identifier, and the provider's data is not the user's fault.
//   - An email domain that organization_domains cannot hold (an IP literal, an internationalized
//     name not in its ASCII form) is likewise unusable for the organization, and so is a shared
//     webmail domain: it identifies a mail provider, not an organization.
//   - An email the provider does not vouch for is dropped before anything looks at it (see
//     Claims.EmailVerified), malformed or not.
func checkLoginClaims(c Claims, o LoginOptions) (loginClaims, error) {
	lc := loginClaims{issuer: c.Issuer, subject: c.Subject}
	switch {
	case lc.issuer == "" || lc.subject == "":
		return lc, refuse(ReasonInvalidClaims, "the identity provider gave no issuer or subject")
	case !utf8.ValidString(lc.issuer) || !storableText(lc.issuer) || !utf8.ValidString(lc.subject) || !storableText(lc.subject):
		return lc, refuse(ReasonInvalidClaims, "the issuer or subject is not valid text")
	case utf8.RuneCountInString(lc.subject) > 255:
		return lc, refuse(ReasonInvalidClaims, "the subject is longer than 255 characters")
	}
	if c.EmailVerified && strings.TrimSpace(c.Email) != "" {
		email, err := NormalizeEmail("email", c.Email)
		// emailLike too: net/mail accepts a quoted local part holding an @, which users_email_check does not.
		if err != nil || !emailLike(email) || !utf8.ValidString(email) || !storableText(email) {
			return lc, refuse(ReasonInvalidClaims, "the email claim is not a valid email address")
		}
		lc.email = email
		if d := email[strings.LastIndexByte(email, '@')+1:]; len(d) <= 253 && domainPattern.MatchString(d) && !o.sharedDomain(d) {
			lc.domain = d
		}
	}
	lc.name = truncate(strings.TrimSpace(strings.ReplaceAll(strings.ToValidUTF8(c.Name, "\uFFFD"), "\x00", "")), 100)
	if id := strings.TrimSpace(c.RegistrationID); id != "" && validRegistrationID(id, o.RegistrationIDPattern) {
		lc.registrationID = id
	}
	return lc, nil
}

// validRegistrationID matches the whole of id against pattern (anchored here, so that a pattern
// written without ^ and $ cannot accept a SIRET inside longer text), and against what
// organization_registration_ids can hold.
func validRegistrationID(id string, pattern *regexp.Regexp) bool {
	if pattern == nil {
		pattern = SIRETPattern
	}
	full, err := regexp.Compile(`^(?:` + pattern.String() + `)$`)
	return err == nil && full.MatchString(id) && utf8.ValidString(id) && storableText(id) &&
		utf8.RuneCountInString(id) <= 128 && !strings.ContainsFunc(id, isSpace)
}

// isSpace is PostgreSQL's \s in organization_registration_ids_registration_id_check.
func isSpace(r rune) bool { return strings.ContainsRune(" \t\n\r\f\v", r) }

// truncate cuts s to at most n characters, without leaving trailing space.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return strings.TrimSpace(string([]rune(s)[:n]))
}

// nullable is s, or NULL for "".
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// loginUser finds and locks the user of the identity, or with useEmail the one user with the
// claim's email, and links the identity to that user. It returns nil when there is none.
func loginUser(ctx context.Context, tx bun.Tx, lc loginClaims, useEmail bool) (*User, error) {
	u := new(User)
	err := tx.NewSelect().Model(u).
		Where("u.id = (SELECT ui.user_id FROM user_identities ui WHERE ui.issuer = ? AND ui.subject = ? AND ui.audience = '')", lc.issuer, lc.subject).
		For("NO KEY UPDATE OF u").Scan(ctx)
	switch {
	case err == nil:
		if !u.IsActive {
			return nil, refuse(ReasonInactiveUser, "this account is disabled")
		}
		return u, nil
	case !errors.Is(err, sql.ErrNoRows):
		return nil, fromDB("select user by identity", err)
	case !useEmail:
		return nil, nil
	}
	// Inactive users are candidates too (People's review: do not filter the lookup on
	// is_active), so that a deactivated account refuses the login instead of being shadowed by
	// a fresh one.
	var users []User
	err = tx.NewSelect().Model(&users).Where("lower(u.email) = lower(?)", lc.email).
		OrderExpr("u.created_at, u.id").Limit(2).For("NO KEY UPDATE OF u").Scan(ctx)
	switch {
	case err != nil:
		return nil, fromDB("select user by email", err)
	case len(users) == 0:
		return nil, nil
	case len(users) > 1:
		return nil, refuse(ReasonAmbiguousEmail, "several accounts share this email address")
	case !users[0].IsActive:
		return nil, refuse(ReasonInactiveUser, "this account is disabled")
	}
	if err := insertIdentity(ctx, tx, users[0].ID, lc); err != nil {
		return nil, err
	}
	return &users[0], nil
}

func insertIdentity(ctx context.Context, tx bun.Tx, user uuid.UUID, lc loginClaims) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO user_identities (user_id, issuer, subject) VALUES (?, ?, ?)",
		user, lc.issuer, lc.subject)
	return fromDB("insert user identity", err)
}

// updateLoginUser records the login of an existing user: the claims' email and name when
// given, and an organization for a user without one (no administrator: People's rule for its
// legacy users, whichever FirstUserAdmin says).
func updateLoginUser(ctx context.Context, tx bun.Tx, u *User, lc loginClaims) (*User, error) {
	var org *uuid.UUID
	if u.OrganizationID == nil {
		id, _, err := loginOrganization(ctx, tx, lc)
		if err != nil {
			return nil, err
		}
		if id != uuid.Nil {
			org = &id
		}
	}
	err := tx.NewRaw(`UPDATE users SET email = coalesce(?, email), name = coalesce(?, name),
			organization_id = coalesce(organization_id, ?), last_login_at = now()
		WHERE id = ? RETURNING *`, nullable(lc.email), nullable(lc.name), org, u.ID).Scan(ctx, u)
	if err != nil {
		return nil, fromDB("update user at login", err)
	}
	return u, nil
}

// createLoginUser creates the user of an unknown identity, with its organization, identity
// and profile contact.
func createLoginUser(ctx context.Context, tx bun.Tx, lc loginClaims, o LoginOptions) (*User, error) {
	if !o.CreateUser {
		return nil, refuse(ReasonUserCreationDisabled, "this account does not exist and accounts are not created at login")
	}
	org, created, err := loginOrganization(ctx, tx, lc)
	if err != nil {
		return nil, err
	}
	if org == uuid.Nil {
		return nil, refuse(ReasonNoOrganization, "the identity provider gave neither a valid registration id nor a verified email at an organization's own domain")
	}
	// users.sub is kept for People's data, but user_identities is the link to the provider. The
	// subject is stored there when users_sub_check accepts it (the database's own regex decides,
	// so no Go approximation of ICU's \w can drift from it) and no other user holds it; else
	// the user's own id, which matches the pattern and is nobody else's.
	id := uuid.New()
	u := new(User)
	err = tx.NewRaw(`INSERT INTO users (id, sub, email, name, organization_id, last_login_at)
		VALUES (?0, CASE WHEN (?1::text COLLATE "und-x-icu") ~ '^[\w.@+-]+$' THEN ?1 ELSE ?0::text END, ?2, ?3, ?4, now())
		ON CONFLICT (sub) DO NOTHING RETURNING *`, id, lc.subject, nullable(lc.email), nullable(lc.name), org).Scan(ctx, u)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.NewRaw(`INSERT INTO users (id, sub, email, name, organization_id, last_login_at)
			VALUES (?0, ?0::text, ?1, ?2, ?3, now()) RETURNING *`, id, nullable(lc.email), nullable(lc.name), org).Scan(ctx, u)
	}
	if err != nil {
		return nil, fromDB("insert user", err)
	}
	if err := insertIdentity(ctx, tx, u.ID, lc); err != nil {
		return nil, err
	}
	// People made the first user of a new organization its administrator; it withdrew that as a
	// security flaw (anyone first to log in from a domain took it over), so it is opt-in here.
	if created && o.FirstUserAdmin {
		if _, err := tx.ExecContext(ctx, "INSERT INTO organization_accesses (organization_id, user_id, role) VALUES (?, ?, 'administrator')",
			org, u.ID); err != nil {
			return nil, fromDB("insert organization access", err)
		}
	}
	if err := insertProfileContact(ctx, tx, u.ID, lc.name, lc.email); err != nil {
		return nil, err
	}
	return u, nil
}

// insertProfileContact gives a new user their profile contact, named by the name, else the
// email (cut to full_name's 150 characters); it lists the email only when there is one. With
// neither there is nothing to name it by, so there is none, where People failed the login.
func insertProfileContact(ctx context.Context, tx bun.Tx, user uuid.UUID, name, email string) error {
	fullName := truncate(cmp.Or(name, email), 150)
	if fullName == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO contacts (owner_id, user_id, full_name, data)
		VALUES (?0, ?0, ?1, CASE WHEN ?2::text IS NULL THEN '{}'::jsonb
			ELSE jsonb_build_object('emails', jsonb_build_array(jsonb_build_object('type', 'Work', 'value', ?2::text))) END)`,
		user, fullName, nullable(email))
	if err != nil {
		return fromDB("insert profile contact", err)
	}
	return nil
}

// errIdentifierTaken says that another transaction gave the organization identifier to its own
// new organization while this one was creating one.
var errIdentifierTaken = errors.New("organization identifier taken concurrently")

// loginOrganization returns the organization whose registration id is exactly the claim's,
// else the one whose domain is exactly the email's, creating one when neither exists; created
// says whether it did. It returns uuid.Nil when the claims give neither identifier.
//
// People matched with icontains over the arrays' text (a SIRET inside a longer one matched,
// and two matches crashed the login) and checked uniqueness in Python, so two first logins
// from one organization could create it twice. Here the identifiers have unique indexes: a new
// organization and its identifier are inserted in a savepoint with ON CONFLICT DO NOTHING,
// which waits for a concurrent insert of the same identifier to end; when that one committed,
// the savepoint is rolled back (taking the orphan organization with it) and the winner re-read.
// An organization made from a registration id gets only that id, as in People: the email
// domain may be a shared provider's.
func loginOrganization(ctx context.Context, tx bun.Tx, lc loginClaims) (uuid.UUID, bool, error) {
	if lc.registrationID == "" && lc.domain == "" {
		return uuid.Nil, false, nil
	}
	name, insert := lc.registrationID, `INSERT INTO organization_registration_ids (organization_id, registration_id)
		VALUES (?, ?) ON CONFLICT (registration_id) DO NOTHING`
	if name == "" {
		name, insert = lc.domain, `INSERT INTO organization_domains (organization_id, domain)
			VALUES (?, ?) ON CONFLICT (domain) DO NOTHING`
	}
	// A winner is never rolled back by its own transaction once seen committed, so the second
	// pass finds it; the third is for one deleted in between.
	for range 3 {
		var found uuid.NullUUID
		err := tx.QueryRowContext(ctx, `SELECT coalesce(
			(SELECT organization_id FROM organization_registration_ids WHERE registration_id = ?),
			(SELECT organization_id FROM organization_domains WHERE domain = ?))`, lc.registrationID, lc.domain).Scan(&found)
		if err != nil {
			return uuid.Nil, false, fromDB("select organization by identifier", err)
		}
		if found.Valid {
			// KEY SHARE, as the foreign key of the user's row will take it, but now: staff's
			// deletion of the organization (AdminDeleteOrganization, FOR UPDATE) then either
			// waits for this login and counts its user, or has committed and the row is gone,
			// and the next pass creates the organization again instead of failing the login.
			err := tx.NewSelect().TableExpr("organizations").Column("id").Where("id = ?", found.UUID).
				For("KEY SHARE").Scan(ctx, new(uuid.UUID))
			if err == nil {
				return found.UUID, false, nil
			} else if !errors.Is(err, sql.ErrNoRows) {
				return uuid.Nil, false, fromDB("lock organization", err)
			}
			continue
		}
		var id uuid.UUID
		err = tx.RunInTx(ctx, nil, func(ctx context.Context, sp bun.Tx) error {
			if err := sp.QueryRowContext(ctx, "INSERT INTO organizations (name) VALUES (?) RETURNING id", truncate(name, 100)).Scan(&id); err != nil {
				return fromDB("insert organization", err)
			}
			res, err := sp.ExecContext(ctx, insert, id, name)
			if err != nil {
				return fromDB("insert organization identifier", err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return errIdentifierTaken
			}
			if lc.registrationID != "" {
				// Named by its SIRET for now: the server asks the companies registry for its name
				// after this login, which never waits for it (migration 0010).
				if _, err := sp.ExecContext(ctx, "INSERT INTO organization_registry_lookups (organization_id) VALUES (?)", id); err != nil {
					return fromDB("queue organization lookup", err)
				}
			}
			return nil
		})
		if !errors.Is(err, errIdentifierTaken) {
			return id, err == nil, err
		}
	}
	return uuid.Nil, false, fmt.Errorf("create organization at login: %w", errIdentifierTaken)
}

// acceptInvitations turns every valid invitation to email, compared case-insensitively, into
// a team access with the invited role, and deletes them (their queued emails go with them).
// Expired ones stay, for their team to see and withdraw. A user already in the team keeps the
// role they have. The validity is counted by the database clock, as created_at is.
// It returns the teams the user joined.
func acceptInvitations(ctx context.Context, tx bun.Tx, user uuid.UUID, email string, validity time.Duration) ([]uuid.UUID, error) {
	if email == "" {
		return nil, nil
	}
	var teams []uuid.UUID
	err := tx.NewRaw(`WITH accepted AS (
			DELETE FROM invitations WHERE lower(email) = lower(?) AND created_at > now() - ? * interval '1 microsecond'
			RETURNING team_id, role)
		INSERT INTO team_accesses (team_id, user_id, role) SELECT team_id, ?, role FROM accepted
		ON CONFLICT (team_id, user_id) DO NOTHING RETURNING team_id`, email, validity.Microseconds(), user).Scan(ctx, &teams)
	if err != nil {
		return nil, fromDB("accept invitations", err)
	}
	return teams, nil
}

// auditLogin records what a login changed beyond the user's own profile: a user created, an
// organization given to a user without one, invitations turned into team accesses. The email
// and name a login copies from the identity provider, and the time of the login, are not
// events: they are the provider's data, kept in step at every login.
func auditLogin(ctx context.Context, tx bun.Tx, u *User, created, organizationSet bool, teams []uuid.UUID) error {
	if !created && !organizationSet && len(teams) == 0 {
		return nil
	}
	targets, c := []uuid.UUID{u.ID}, changes{}
	if created {
		c["userCreated"] = true
	}
	if (created || organizationSet) && u.OrganizationID != nil {
		targets, c["organizationId"] = append(targets, *u.OrganizationID), *u.OrganizationID
	}
	if len(teams) > 0 {
		targets, c["joinedTeamIds"] = append(targets, teams...), teams
	}
	return audit(ctx, tx, Actor{UserID: u.ID, Method: ActorLogin}, "provisionLogin", targets, c)
}
