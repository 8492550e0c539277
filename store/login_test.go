package store_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// loginEnv builds the rows and claims of login tests: one fresh issuer and mail domain each,
// so that parallel tests never meet.
type loginEnv struct {
	rules
	issuer, domain string
}

func newLoginEnv(t *testing.T) loginEnv {
	t.Helper()
	tok := storetest.Unique()
	return loginEnv{rules: rules{t, storetest.Open(t)}, issuer: "https://idp-" + tok + ".test", domain: "d-" + tok + ".test"}
}

// claims are a new person's claims at the env's issuer, with an email at the env's domain.
func (e loginEnv) claims() store.Claims {
	tok := storetest.Unique()
	return store.Claims{EmailVerified: true, Issuer: e.issuer, Subject: "sub-" + tok, Email: "person-" + tok + "@" + e.domain, Name: "Person " + tok}
}

// identify links subject at the env's issuer to user.
func (e loginEnv) identify(user uuid.UUID, subject string) {
	e.t.Helper()
	e.mustExec("INSERT INTO user_identities (user_id, issuer, subject) VALUES (?, ?, ?)", user, e.issuer, subject)
}

// userWithIdentity creates a user in org (uuid.Nil: none) and links a fresh subject to it.
func (e loginEnv) userWithIdentity(org uuid.UUID, opts ...storetest.UserOpt) (store.User, string) {
	e.t.Helper()
	u := storetest.User(e.t, e.s, org, opts...)
	sub := "sub-" + storetest.Unique()
	e.identify(u.ID, sub)
	return u, sub
}

func (e loginEnv) login(c store.Claims, o store.LoginOptions) (*store.User, error) {
	return e.s.ProvisionLogin(e.t.Context(), c, o)
}

func (e loginEnv) mustLogin(c store.Claims, o store.LoginOptions) *store.User {
	e.t.Helper()
	u, err := e.login(c, o)
	if err != nil {
		e.t.Fatalf("ProvisionLogin(%+v) = %v", c, err)
	}
	return u
}

// identityUser is the user (issuer, subject) resolves to, or uuid.Nil.
func (e loginEnv) identityUser(issuer, subject string) uuid.UUID {
	e.t.Helper()
	var id uuid.UUID
	err := e.s.DB().QueryRowContext(e.t.Context(),
		"SELECT coalesce((SELECT user_id FROM user_identities WHERE issuer = ? AND subject = ? AND audience = ''), ?)",
		issuer, subject, uuid.Nil).Scan(&id)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e loginEnv) user(id uuid.UUID) *store.User {
	e.t.Helper()
	u, err := e.s.UserByID(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// wantRefused checks that err is a *store.LoginError with reason.
func wantRefused(t *testing.T, u *store.User, err error, reason string) {
	t.Helper()
	var le *store.LoginError
	if !errors.As(err, &le) || le.Reason != reason {
		t.Fatalf("ProvisionLogin() = %v, %v; want a LoginError %q", u, err, reason)
	}
	if u != nil {
		t.Errorf("ProvisionLogin() refused but returned user %v", u.ID)
	}
}

func wantRecentLogin(t *testing.T, u *store.User) {
	t.Helper()
	if u.LastLoginAt == nil || time.Since(*u.LastLoginAt) > time.Minute || time.Since(*u.LastLoginAt) < -time.Minute {
		t.Errorf("last_login_at = %v, want about now", u.LastLoginAt)
	}
}

// siret is a fresh 14-digit registration id.
func siret() string { return fmt.Sprintf("%014d", rand.Int64N(1e14)) }

func TestLoginExistingUserByIdentity(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t)
	org := e.org()
	u, sub := e.userWithIdentity(org)

	c := store.Claims{EmailVerified: true, Issuer: e.issuer, Subject: sub, Email: "New.Name@" + strings.ToUpper(e.domain), Name: "  New Name  "}
	got := e.mustLogin(c, store.DefaultLoginOptions())
	if got.ID != u.ID {
		t.Fatalf("logged in as %v, want the identity's user %v", got.ID, u.ID)
	}
	if want := "New.Name@" + e.domain; got.Email != want || got.Name != "New Name" {
		t.Errorf("email, name = %q, %q; want %q, %q (domain lower-cased, name trimmed)", got.Email, got.Name, want, "New Name")
	}
	if *got.OrganizationID != org {
		t.Errorf("organization = %v, want unchanged %v", *got.OrganizationID, org)
	}
	wantRecentLogin(t, got)
	if stored := e.user(u.ID); stored.Email != got.Email || stored.Name != got.Name || stored.LastLoginAt == nil {
		t.Errorf("stored user = %+v, want the returned values", stored)
	}

	// Absent claims erase nothing.
	got = e.mustLogin(store.Claims{Issuer: e.issuer, Subject: sub}, store.DefaultLoginOptions())
	if got.Email != "New.Name@"+e.domain || got.Name != "New Name" {
		t.Errorf("after a login without email and name: %q, %q; want the stored values kept", got.Email, got.Name)
	}
	if n := e.count("SELECT count(*) FROM users WHERE email ILIKE ?", "%@"+e.domain); n != 1 {
		t.Errorf("%d users at the domain, want 1: no user is created for a known identity", n)
	}

	// Another issuer's identical subject is someone else.
	other := store.Claims{EmailVerified: true, Issuer: e.issuer + "/other", Subject: sub, Email: "other@" + e.domain}
	if got := e.mustLogin(other, store.DefaultLoginOptions()); got.ID == u.ID {
		t.Errorf("a subject from another issuer logged in as %v", u.ID)
	}
}

func TestLoginLongNameIsCut(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t)
	c := e.claims()
	c.Name = strings.Repeat("é", 99) + " abcdef"
	u := e.mustLogin(c, store.DefaultLoginOptions())
	if want := strings.Repeat("é", 99); u.Name != want {
		t.Errorf("name = %q (%d characters), want the first 100 characters without the trailing space", u.Name, len([]rune(u.Name)))
	}
}

func TestLoginEmailFallback(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t)
	org := e.org()
	u, oldSub := e.userWithIdentity(org, storetest.WithEmail("Alice.Martin@"+e.domain), storetest.WithName("Alice"))

	c := store.Claims{EmailVerified: true, Issuer: e.issuer, Subject: "new-" + storetest.Unique(), Email: "alice.martin@" + strings.ToUpper(e.domain), Name: "Alice Martin"}
	got := e.mustLogin(c, store.DefaultLoginOptions())
	if got.ID != u.ID {
		t.Fatalf("logged in as %v, want %v found by email", got.ID, u.ID)
	}
	if want := "alice.martin@" + e.domain; got.Email != want || got.Name != "Alice Martin" {
		t.Errorf("email, name = %q, %q; want %q, %q", got.Email, got.Name, want, "Alice Martin")
	}
	if got.Sub != u.Sub {
		t.Errorf("users.sub = %q, want unchanged %q: the identities hold the subjects", got.Sub, u.Sub)
	}
	for _, sub := range []string{oldSub, c.Subject} {
		if id := e.identityUser(e.issuer, sub); id != u.ID {
			t.Errorf("identity %q resolves to %v, want %v", sub, id, u.ID)
		}
	}
	// Both subjects now log in, even without an email.
	for _, sub := range []string{oldSub, c.Subject} {
		if got := e.mustLogin(store.Claims{Issuer: e.issuer, Subject: sub}, store.LoginOptions{}); got.ID != u.ID {
			t.Errorf("login as %q = %v, want %v", sub, got.ID, u.ID)
		}
	}
}

func TestLoginEmailFallbackDisabled(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t)
	u, _ := e.userWithIdentity(e.org(), storetest.WithEmail("bob@"+e.domain))
	c := store.Claims{EmailVerified: true, Issuer: e.issuer, Subject: "new-" + storetest.Unique(), Email: "bob@" + e.domain}
	o := store.DefaultLoginOptions()
	o.FallbackToEmail = false
	got := e.mustLogin(c, o)
	if got.ID == u.ID {
		t.Fatalf("logged in as the user with that email, with the fallback disabled")
	}
	if e.identityUser(e.issuer, c.Subject) != got.ID {
		t.Errorf("the new subject is not linked to the new user")
	}
}

func TestLoginAmbiguousEmail(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t)
	storetest.User(t, e.s, uuid.Nil, storetest.WithEmail("shared@"+e.domain))
	storetest.User(t, e.s, uuid.Nil, storetest.WithEmail("Shared@"+e.domain), storetest.Inactive())
	c := store.Claims{EmailVerified: true, Issuer: e.issuer, Subject: "new-" + storetest.Unique(), Email: "SHARED@" + e.domain}
	u, err := e.login(c, store.DefaultLoginOptions())
	wantRefused(t, u, err, store.ReasonAmbiguousEmail)
	if id := e.identityUser(e.issuer, c.Subject); id != uuid.Nil {
		t.Errorf("the subject was linked to %v", id)
	}
	if n := e.count("SELECT count(*) FROM users WHERE lower(email) = ?", "shared@"+e.domain); n != 2 {
		t.Errorf("%d users with the email, want the 2 there were", n)
	}
}

func TestLoginInactiveUser(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t)
	u, sub := e.userWithIdentity(e.org(), storetest.Inactive())

	t.Run("by identity", func(t *testing.T) {
		got, err := e.login(store.Claims{Issuer: e.issuer, Subject: sub, Name: "Changed"}, store.DefaultLoginOptions())
		wantRefused(t, got, err, store.ReasonInactiveUser)
		if stored := e.user(u.ID); stored.LastLoginAt != nil || stored.Name != u.Name {
			t.Errorf("refused login wrote the user: %+v", stored)
		}
	})
	t.Run("by email", func(t *testing.T) {
		c := store.Claims{EmailVerified: true, Issuer: e.issuer, Subject: "new-" + storetest.Unique(), Email: strings.ToUpper(u.Email)}
		got, err := e.login(c, store.DefaultLoginOptions())
		wantRefused(t, got, err, store.ReasonInactiveUser)
		if id := e.identityUser(e.issuer, c.Subject); id != uuid.Nil {
			t.Errorf("the subject was linked to %v", id)
		}
		if n := e.count("SELECT count(*) FROM users WHERE lower(email) = lower(?)", u.Email); n != 1 {
			t.Errorf("%d users with the email, want 1: an inactive match must not be shadowed by a new account", n)
		}
	})
}

func TestLoginCreateUserDisabled(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t)
	o := store.DefaultLoginOptions()
	o.CreateUser = false
	c := e.claims()
	u, err := e.login(c, o)
	wantRefused(t, u, err, store.ReasonUserCreationDisabled)
	if n := e.count("SELECT count(*) FROM users WHERE email = ?", c.Email); n != 0 {
		t.Errorf("%d users created", n)
	}
	if n := e.count("SELECT count(*) FROM organization_domains WHERE domain = ?", e.domain); n != 0 {
		t.Errorf("an organization was created for a refused login")
	}

	// Known people still log in.
	known, sub := e.userWithIdentity(e.org())
	if got := e.mustLogin(store.Claims{Issuer: e.issuer, Subject: sub}, o); got.ID != known.ID {
		t.Errorf("known user logged in as %v, want %v", got.ID, known.ID)
	}
}

func TestLoginInvalidClaims(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t)
	for name, mutate := range map[string]func(*store.Claims){
		"no issuer":        func(c *store.Claims) { c.Issuer = "" },
		"no subject":       func(c *store.Claims) { c.Subject = "" },
		"long subject":     func(c *store.Claims) { c.Subject = strings.Repeat("s", 256) },
		"NUL in subject":   func(c *store.Claims) { c.Subject = "a\x00b" },
		"malformed email":  func(c *store.Claims) { c.Email = "not an email" },
		"display name":     func(c *store.Claims) { c.Email = "Bob <bob@" + e.domain + ">" },
		"quoted @":         func(c *store.Claims) { c.Email = `"a@b"@` + e.domain },
		"invalid UTF-8 id": func(c *store.Claims) { c.Subject = "a\xffb" },
	} {
		t.Run(name, func(t *testing.T) {
			c := e.claims()
			mutate(&c)
			u, err := e.login(c, store.DefaultLoginOptions())
			wantRefused(t, u, err, store.ReasonInvalidClaims)
		})
	}
}

// A subject users.sub cannot hold, or one another user holds, still logs in: the identity
// links the person, and users.sub gets the user's id.
func TestLoginSubjectFallback(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t)
	taken := storetest.User(t, e.s, uuid.Nil)
	for name, subject := range map[string]string{
		"outside the pattern": "a b|c/" + storetest.Unique(),
		"held by another":     taken.Sub,
		"unicode word":        "élève_" + storetest.Unique(),
	} {
		t.Run(name, func(t *testing.T) {
			c := e.claims()
			c.Subject = subject
			u := e.mustLogin(c, store.DefaultLoginOptions())
			wantSub := u.ID.String()
			if name == "unicode word" {
				wantSub = subject
			}
			if u.Sub != wantSub {
				t.Errorf("users.sub = %q, want %q", u.Sub, wantSub)
			}
			if again := e.mustLogin(store.Claims{Issuer: e.issuer, Subject: subject}, store.DefaultLoginOptions()); again.ID != u.ID {
				t.Errorf("second login as %v, want %v", again.ID, u.ID)
			}
		})
	}
}

func TestLoginOrganization(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t)
	knownSIRET, knownDomain := siret(), "known-"+e.domain
	known := e.orgWith([]string{knownSIRET}, []string{knownDomain})
	// Decoys for People's icontains: a registration id containing the claim's, and a parent
	// domain of the claim's.
	longSIRET := siret()
	decoy := e.orgWith([]string{longSIRET + "9"}, []string{"decoy-" + e.domain})
	parent := e.orgWith([]string{siret()}, []string{"parent-" + e.domain})
	loose := regexp.MustCompile(`[0-9]{14,15}`) // unanchored on purpose
	reg1, reg2, reg3, reg4 := siret(), siret(), siret(), siret()
	// A webmail domain some organization holds from before the list (or from an operator):
	// listed as shared, it finds nothing.
	webmail := "webmail-" + e.domain
	e.orgWith(nil, []string{webmail})

	tests := []struct {
		name       string
		regID      string
		domain     string // of the email; "" for no email
		pattern    *regexp.Regexp
		want       uuid.UUID // uuid.Nil: a new organization
		wantName   string    // of a new organization
		wantRegIDs []string  // of a new organization
		wantDoms   []string
		refused    string
		unverified bool     // the provider does not vouch for the email
		shared     []string // LoginOptions.SharedEmailDomains; nil: the default
	}{
		{name: "by registration id", regID: knownSIRET, domain: "other-" + e.domain, want: known},
		{name: "by domain", domain: knownDomain, want: known},
		{name: "unknown registration id, known domain", regID: siret(), domain: knownDomain, want: known},
		{name: "created from a registration id", regID: reg1, domain: "new1-" + e.domain, wantName: reg1, wantRegIDs: []string{reg1}},
		{name: "created from a domain", domain: "new2-" + e.domain, wantName: "new2-" + e.domain, wantDoms: []string{"new2-" + e.domain}},
		{name: "created from a registration id, no email", regID: reg2, wantName: reg2, wantRegIDs: []string{reg2}},
		{name: "prefix of a known registration id", regID: longSIRET, domain: "new3-" + e.domain, wantName: longSIRET, wantRegIDs: []string{longSIRET}},
		{name: "subdomain of a known domain", domain: "sub.parent-" + e.domain, wantName: "sub.parent-" + e.domain, wantDoms: []string{"sub.parent-" + e.domain}},
		{name: "invalid registration id falls back to the domain", regID: "ABC", domain: knownDomain, want: known},
		{name: "registration id inside text, unanchored pattern", regID: "x" + knownSIRET, domain: "new4-" + e.domain, pattern: loose,
			wantName: "new4-" + e.domain, wantDoms: []string{"new4-" + e.domain}},
		{name: "custom pattern", regID: longSIRET + "9", domain: knownDomain, pattern: loose, want: decoy},
		{name: "invalid registration id, no email", regID: "123", refused: store.ReasonNoOrganization},
		{name: "neither", refused: store.ReasonNoOrganization},
		{name: "domain organizations cannot hold", domain: "under_score-" + e.domain, refused: store.ReasonNoOrganization},
		// Shared webmail domains name no organization, by default or as configured; a
		// registration id still does, and the domain is not added to it.
		{name: "gmail.com, no registration id", domain: "gmail.com", refused: store.ReasonNoOrganization},
		{name: "orange.fr, no registration id", domain: "orange.fr", refused: store.ReasonNoOrganization},
		{name: "proton.me, no registration id", domain: "proton.me", refused: store.ReasonNoOrganization},
		{name: "gmail.com with a registration id", regID: reg3, domain: "gmail.com", wantName: reg3, wantRegIDs: []string{reg3}},
		{name: "configured shared domain held by an organization", domain: webmail, shared: []string{webmail}, refused: store.ReasonNoOrganization},
		{name: "configured list replaces the default", domain: "new5-" + e.domain, shared: []string{"new5-" + e.domain}, refused: store.ReasonNoOrganization},
		// An email the provider does not vouch for names no organization either.
		{name: "unverified email at a known domain", domain: knownDomain, unverified: true, refused: store.ReasonNoOrganization},
		{name: "unverified email at a known domain, with a registration id", regID: reg4, domain: knownDomain, unverified: true,
			wantName: reg4, wantRegIDs: []string{reg4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := store.Claims{Issuer: e.issuer, Subject: "sub-" + storetest.Unique(), Name: "N", RegistrationID: tt.regID, EmailVerified: !tt.unverified}
			if tt.domain != "" {
				c.Email = "p-" + storetest.Unique() + "@" + tt.domain
			}
			o := store.DefaultLoginOptions()
			o.SharedEmailDomains = tt.shared
			if tt.pattern != nil {
				o.RegistrationIDPattern = tt.pattern
			}
			u, err := e.login(c, o)
			if tt.refused != "" {
				wantRefused(t, u, err, tt.refused)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.OrganizationID == nil {
				t.Fatal("no organization")
			}
			got := *u.OrganizationID
			if tt.want != uuid.Nil {
				if got != tt.want {
					t.Errorf("organization = %v, want %v", got, tt.want)
				}
				return
			}
			if got == known || got == parent || got == decoy {
				t.Fatalf("joined an existing organization %v, want a new one", got)
			}
			view, err := e.s.OrganizationByID(t.Context(), u.ID, got)
			if err != nil {
				t.Fatal(err)
			}
			if view.Name != tt.wantName || !cmp.Equal(view.RegistrationIDs, tt.wantRegIDs, cmpopts.EquateEmpty()) || !cmp.Equal(view.Domains, tt.wantDoms, cmpopts.EquateEmpty()) {
				t.Errorf("new organization = %q %v %v, want %q %v %v", view.Name, view.RegistrationIDs, view.Domains,
					tt.wantName, tt.wantRegIDs, tt.wantDoms)
			}
			if view.ViewerIsAdmin {
				t.Errorf("the first user of a new organization is its administrator without FirstUserAdmin")
			}
		})
	}
}

func TestLoginFirstUserAdmin(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t)
	existing := e.org()
	var existingDomain string
	if err := e.s.DB().QueryRowContext(t.Context(), "SELECT domain FROM organization_domains WHERE organization_id = ?", existing).Scan(&existingDomain); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		on        bool
		domain    string
		wantAdmin bool
	}{
		{"off, new organization", false, "a-" + e.domain, false},
		{"on, new organization", true, "b-" + e.domain, true},
		{"on, existing organization", true, existingDomain, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := store.DefaultLoginOptions()
			o.FirstUserAdmin = tt.on
			first := e.mustLogin(store.Claims{EmailVerified: true, Issuer: e.issuer, Subject: "s-" + storetest.Unique(), Email: "first@" + tt.domain}, o)
			second := e.mustLogin(store.Claims{EmailVerified: true, Issuer: e.issuer, Subject: "s-" + storetest.Unique(), Email: "second@" + tt.domain}, o)
			if *first.OrganizationID != *second.OrganizationID {
				t.Fatalf("two users of one domain in two organizations")
			}
			admins := e.count("SELECT count(*) FROM organization_accesses WHERE organization_id = ? AND user_id = ?", *first.OrganizationID, first.ID)
			if got := admins == 1; got != tt.wantAdmin {
				t.Errorf("first user is administrator = %v, want %v", got, tt.wantAdmin)
			}
			if n := e.count("SELECT count(*) FROM organization_accesses WHERE user_id = ?", second.ID); n != 0 {
				t.Errorf("the second user is an administrator")
			}
		})
	}
}

func TestLoginProfileContact(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t)
	long := strings.Repeat("x", 160) + "@" + e.domain
	tests := []struct {
		name         string
		email, label string
		wantName     string
		wantData     map[string]any // nil: no contact
	}{
		{"name and email", "c1@" + e.domain, "Claire Dupont", "Claire Dupont",
			map[string]any{"emails": []any{map[string]any{"type": "Work", "value": "c1@" + e.domain}}}},
		{"email only", "c2@" + e.domain, "", "c2@" + e.domain,
			map[string]any{"emails": []any{map[string]any{"type": "Work", "value": "c2@" + e.domain}}}},
		{"long email", long, "", strings.Repeat("x", 150),
			map[string]any{"emails": []any{map[string]any{"type": "Work", "value": long}}}},
		{"name only", "", "Nameless Mail", "Nameless Mail", map[string]any{}},
		{"neither", "", "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := store.Claims{EmailVerified: true, Issuer: e.issuer, Subject: "s-" + storetest.Unique(), Email: tt.email, Name: tt.label, RegistrationID: siret()}
			u := e.mustLogin(c, store.DefaultLoginOptions())
			var contacts []store.Contact
			if err := e.s.DB().NewSelect().Model(&contacts).Where("c.user_id = ? OR c.owner_id = ?", u.ID, u.ID).Scan(t.Context()); err != nil {
				t.Fatal(err)
			}
			if tt.wantData == nil {
				if len(contacts) != 0 {
					t.Errorf("contacts = %+v, want none", contacts)
				}
				return
			}
			if len(contacts) != 1 {
				t.Fatalf("%d contacts, want 1", len(contacts))
			}
			got := contacts[0]
			if *got.OwnerID != u.ID || *got.UserID != u.ID || got.FullName != tt.wantName {
				t.Errorf("contact owner, user, full name = %v, %v, %q; want %v, %v, %q", *got.OwnerID, *got.UserID, got.FullName, u.ID, u.ID, tt.wantName)
			}
			if diff := cmp.Diff(tt.wantData, got.Data); diff != "" {
				t.Errorf("contact data (-want +got):\n%s", diff)
			}
		})
	}

	// An existing user gets no second profile.
	u, sub := e.userWithIdentity(e.org())
	e.mustLogin(store.Claims{EmailVerified: true, Issuer: e.issuer, Subject: sub, Email: u.Email}, store.DefaultLoginOptions())
	if n := e.count("SELECT count(*) FROM contacts WHERE user_id = ?", u.ID); n != 0 {
		t.Errorf("a returning user got %d profile contacts", n)
	}
}

func TestLoginInvitations(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t)
	org := e.org()
	issuer := storetest.User(t, e.s, org).ID
	invite := func(team uuid.UUID, email string, role store.Role, age time.Duration) uuid.UUID {
		return e.id(`INSERT INTO invitations (email, team_id, role, issuer_id, created_at) VALUES (?, ?, ?, ?, now() - ? * interval '1 second')
			RETURNING id`, email, team, role, issuer, int64(age.Seconds()))
	}
	team := func() uuid.UUID { return storetest.Team(t, e.s, org, "Team "+storetest.Unique()) }
	const day = 24 * time.Hour

	email := "Invited.Person@" + e.domain
	valid1, valid2, expired, stale, other := team(), team(), team(), team(), team()
	inv1 := invite(valid1, email, store.RoleAdministrator, 0)
	inv2 := invite(valid2, strings.ToLower(email), store.RoleOwner, 6*day)
	invExpired := invite(expired, email, store.RoleMember, 8*day)
	invOther := invite(other, "someone.else@"+e.domain, store.RoleMember, 0)
	e.mustExec("INSERT INTO mail_queue (template, recipient, language, invitation_id) VALUES ('invitation', ?, 'en-us', ?)", email, inv1)

	c := store.Claims{EmailVerified: true, Issuer: e.issuer, Subject: "s-" + storetest.Unique(), Email: strings.ToUpper("invited.person") + "@" + e.domain}
	u := e.mustLogin(c, store.DefaultLoginOptions())

	roles := func(user uuid.UUID) map[uuid.UUID]store.Role {
		t.Helper()
		var rows []struct {
			TeamID uuid.UUID
			Role   store.Role
		}
		if err := e.s.DB().NewSelect().TableExpr("team_accesses").Column("team_id", "role").Where("user_id = ?", user).Scan(t.Context(), &rows); err != nil {
			t.Fatal(err)
		}
		m := map[uuid.UUID]store.Role{}
		for _, r := range rows {
			m[r.TeamID] = r.Role
		}
		return m
	}
	if diff := cmp.Diff(map[uuid.UUID]store.Role{valid1: store.RoleAdministrator, valid2: store.RoleOwner}, roles(u.ID)); diff != "" {
		t.Errorf("team accesses (-want +got):\n%s", diff)
	}
	for id, want := range map[uuid.UUID]int{inv1: 0, inv2: 0, invExpired: 1, invOther: 1} {
		if n := e.count("SELECT count(*) FROM invitations WHERE id = ?", id); n != want {
			t.Errorf("invitation %v: %d rows, want %d", id, n, want)
		}
	}
	if n := e.count("SELECT count(*) FROM mail_queue WHERE invitation_id = ?", inv1); n != 0 {
		t.Errorf("the accepted invitation's email is still queued")
	}

	// An invitation left for a team the user is already in (sent before they took the address)
	// is accepted at their next login without changing the role they have.
	storetest.Access(t, e.s, stale, u.ID, store.RoleMember)
	invStale := invite(stale, email, store.RoleOwner, day)
	invNew := invite(other, email, store.RoleAdministrator, 0)
	e.mustLogin(store.Claims{EmailVerified: true, Issuer: e.issuer, Subject: c.Subject, Email: c.Email}, store.DefaultLoginOptions())
	want := map[uuid.UUID]store.Role{valid1: store.RoleAdministrator, valid2: store.RoleOwner, stale: store.RoleMember, other: store.RoleAdministrator}
	if diff := cmp.Diff(want, roles(u.ID)); diff != "" {
		t.Errorf("team accesses after the second login (-want +got):\n%s", diff)
	}
	if n := e.count("SELECT count(*) FROM invitations WHERE id IN (?, ?)", invStale, invNew); n != 0 {
		t.Errorf("%d accepted invitations remain", n)
	}
}

func TestLoginLegacyUserWithoutOrganization(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t)
	o := store.DefaultLoginOptions()
	o.FirstUserAdmin = true // not for legacy users, whatever it says

	u, sub := e.userWithIdentity(uuid.Nil)
	got := e.mustLogin(store.Claims{EmailVerified: true, Issuer: e.issuer, Subject: sub, Email: "legacy@" + e.domain}, o)
	if got.OrganizationID == nil {
		t.Fatal("a legacy user without an organization got none at login")
	}
	var domain string
	if err := e.s.DB().QueryRowContext(t.Context(), "SELECT domain FROM organization_domains WHERE organization_id = ?", *got.OrganizationID).Scan(&domain); err != nil || domain != e.domain {
		t.Errorf("organization domain = %q (%v), want %q", domain, err, e.domain)
	}
	if n := e.count("SELECT count(*) FROM organization_accesses WHERE user_id = ?", u.ID); n != 0 {
		t.Errorf("a legacy user was made administrator of the organization created for them")
	}

	// With nothing to find an organization by, the login still succeeds, as in People.
	bare, bareSub := e.userWithIdentity(uuid.Nil)
	got = e.mustLogin(store.Claims{Issuer: e.issuer, Subject: bareSub}, o)
	if got.ID != bare.ID || got.OrganizationID != nil {
		t.Errorf("login = %v in %v, want %v without organization", got.ID, got.OrganizationID, bare.ID)
	}
	wantRecentLogin(t, got)
}

// concurrently runs n logins at the same moment and returns their users, failing on any error.
func (e loginEnv) concurrently(n int, o store.LoginOptions, claims func(i int) store.Claims) []*store.User {
	e.t.Helper()
	users := make([]*store.User, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			users[i], errs[i] = e.login(claims(i), o)
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		e.t.Fatalf("concurrent logins: %v", err)
	}
	return users
}

// Eight first logins from one new organization at the same moment make one organization.
func TestLoginConcurrentFirstLogins(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t)
	sameOrg := func(t *testing.T, users []*store.User) uuid.UUID {
		t.Helper()
		org := users[0].OrganizationID
		for _, u := range users {
			if u.OrganizationID == nil || *u.OrganizationID != *org {
				t.Fatalf("users in organizations %v and %v", org, u.OrganizationID)
			}
		}
		return *org
	}
	for round := range 5 {
		t.Run(fmt.Sprintf("registration id %d", round), func(t *testing.T) {
			reg := siret()
			users := e.concurrently(8, store.DefaultLoginOptions(), func(i int) store.Claims {
				tok := storetest.Unique()
				return store.Claims{EmailVerified: true, Issuer: e.issuer, Subject: "s-" + tok, Email: "p@" + tok + "-" + e.domain, RegistrationID: reg}
			})
			org := sameOrg(t, users)
			if n := e.count("SELECT count(*) FROM organizations WHERE name = ?", reg); n != 1 {
				t.Errorf("%d organizations named %s, want 1", n, reg)
			}
			if n := e.count("SELECT count(*) FROM users WHERE organization_id = ?", org); n != 8 {
				t.Errorf("%d users in the organization, want 8", n)
			}
		})
		t.Run(fmt.Sprintf("domain %d", round), func(t *testing.T) {
			domain := fmt.Sprintf("r%d-%s", round, e.domain)
			users := e.concurrently(8, store.DefaultLoginOptions(), func(i int) store.Claims {
				return store.Claims{EmailVerified: true, Issuer: e.issuer, Subject: "s-" + storetest.Unique(), Email: fmt.Sprintf("p%d@%s", i, domain)}
			})
			org := sameOrg(t, users)
			if n := e.count("SELECT count(*) FROM organizations WHERE name = ?", domain); n != 1 {
				t.Errorf("%d organizations named %s, want 1", n, domain)
			}
			if n := e.count("SELECT count(*) FROM users WHERE organization_id = ?", org); n != 8 {
				t.Errorf("%d users in the organization, want 8", n)
			}
		})
	}
}

// Eight logins of one new person at once, by one subject or (with the email fallback) by
// several subjects and one email, make one user.
func TestLoginConcurrentSamePerson(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t)
	t.Run("one subject", func(t *testing.T) {
		c := e.claims()
		o := store.DefaultLoginOptions()
		o.FallbackToEmail = false // so that only the subject orders them
		users := e.concurrently(8, o, func(int) store.Claims { return c })
		for _, u := range users {
			if u.ID != users[0].ID {
				t.Fatalf("one subject logged in as %v and %v", users[0].ID, u.ID)
			}
		}
		if n := e.count("SELECT count(*) FROM users WHERE email = ?", c.Email); n != 1 {
			t.Errorf("%d users, want 1", n)
		}
	})
	t.Run("one email", func(t *testing.T) {
		c := e.claims()
		users := e.concurrently(8, store.DefaultLoginOptions(), func(i int) store.Claims {
			c := c
			c.Subject = fmt.Sprintf("%s-%d", c.Subject, i)
			if i%2 == 1 {
				c.Email = strings.ToUpper(c.Email[:1]) + c.Email[1:]
			}
			return c
		})
		for _, u := range users {
			if u.ID != users[0].ID {
				t.Fatalf("one email logged in as %v and %v", users[0].ID, u.ID)
			}
		}
		if n := e.count("SELECT count(*) FROM user_identities WHERE user_id = ?", users[0].ID); n != 8 {
			t.Errorf("%d identities, want the 8 subjects", n)
		}
	})
}

// rowsAbout is every row a login could change about the person with email, the users and the
// teams, as JSON text: users with that email (in any case) or id, their identities, team
// accesses and profile contacts, the invitations to the email, and the teams' accesses. Two
// snapshots equal means a login left them as they were, to the last timestamp.
func (e loginEnv) rowsAbout(email string, users, teams []uuid.UUID) string {
	e.t.Helper()
	users, teams = append(users, uuid.Nil), append(teams, uuid.Nil) // IN () is not SQL
	var out string
	err := e.s.DB().QueryRowContext(e.t.Context(), `WITH who AS (SELECT id FROM users WHERE lower(email) = lower(?0) OR id IN (?1))
		SELECT concat_ws(E'\n',
			(SELECT json_agg(u ORDER BY u.id)::text FROM users u WHERE u.id IN (SELECT id FROM who)),
			(SELECT json_agg(ui ORDER BY ui.id)::text FROM user_identities ui WHERE ui.user_id IN (SELECT id FROM who)),
			(SELECT json_agg(ta ORDER BY ta.id)::text FROM team_accesses ta WHERE ta.user_id IN (SELECT id FROM who) OR ta.team_id IN (?2)),
			(SELECT json_agg(c ORDER BY c.id)::text FROM contacts c WHERE c.owner_id IN (SELECT id FROM who)),
			(SELECT json_agg(i ORDER BY i.id)::text FROM invitations i WHERE lower(i.email) = lower(?0)))`,
		email, bun.In(users), bun.In(teams)).Scan(&out)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// An email the provider does not vouch for is no email: whoever types another's address at a
// provider that does not check it gets nothing of theirs. Each attack leaves the victim's rows
// as they were; the attacker is refused (no organization without the email's domain) or,
// with a registration id, gets an account of their own, without the email.
func TestLoginUnverifiedEmail(t *testing.T) {
	t.Parallel()
	// attacker logs in with a fresh subject, email in another case, unverified.
	attacker := func(e loginEnv, email, regID string) (store.Claims, store.LoginOptions) {
		return store.Claims{Issuer: e.issuer, Subject: "attacker-" + storetest.Unique(), Email: strings.ToUpper(email),
			Name: "Mallory", RegistrationID: regID}, store.DefaultLoginOptions()
	}
	// wantOwnAccount checks that the login made a new user of the attacker's own: no email, no
	// staff, holding only the attacker's identity.
	wantOwnAccount := func(e loginEnv, u *store.User, err error, c store.Claims, victims ...uuid.UUID) {
		e.t.Helper()
		if err != nil {
			e.t.Fatalf("ProvisionLogin() = %v; want a new user of the attacker's own", err)
		}
		if slices.Contains(victims, u.ID) || u.Email != "" || u.IsStaff {
			e.t.Errorf("attacker's login = %+v, want a new user without email or staff flag", u)
		}
		if id := e.identityUser(c.Issuer, c.Subject); id != u.ID {
			e.t.Errorf("the attacker's subject resolves to %v, want their own user %v", id, u.ID)
		}
	}

	t.Run("existing user not linked", func(t *testing.T) {
		t.Parallel()
		e := newLoginEnv(t)
		victim, _ := e.userWithIdentity(e.org(), storetest.WithEmail("victim-"+storetest.Unique()+"@"+e.domain))
		before := e.rowsAbout(victim.Email, []uuid.UUID{victim.ID}, nil)

		c, o := attacker(e, victim.Email, "")
		u, err := e.login(c, o)
		wantRefused(t, u, err, store.ReasonNoOrganization)
		if id := e.identityUser(c.Issuer, c.Subject); id != uuid.Nil {
			t.Errorf("the attacker's subject was linked to %v", id)
		}
		c, o = attacker(e, victim.Email, siret())
		u, err = e.login(c, o)
		wantOwnAccount(e, u, err, c, victim.ID)
		if diff := cmp.Diff(before, e.rowsAbout(victim.Email, []uuid.UUID{victim.ID}, nil)); diff != "" {
			t.Errorf("the victim's rows changed (-before +after):\n%s", diff)
		}
	})

	t.Run("pending owner invitation not converted", func(t *testing.T) {
		t.Parallel()
		e := newLoginEnv(t)
		org := e.org()
		owner := storetest.User(t, e.s, org).ID
		team := storetest.Team(t, e.s, org, "Team "+storetest.Unique())
		storetest.Access(t, e.s, team, owner, store.RoleOwner)
		email := "invitee-" + storetest.Unique() + "@" + e.domain
		e.mustExec("INSERT INTO invitations (email, team_id, role, issuer_id) VALUES (?, ?, 'owner', ?)", email, team, owner)
		before := e.rowsAbout(email, nil, []uuid.UUID{team})

		c, o := attacker(e, email, siret())
		u, err := e.login(c, o)
		wantOwnAccount(e, u, err, c)
		if diff := cmp.Diff(before, e.rowsAbout(email, nil, []uuid.UUID{team})); diff != "" {
			t.Errorf("the invitation or the team's accesses changed (-before +after):\n%s", diff)
		}
		// The person the invitation is for, vouched for, still gets it.
		got := e.mustLogin(store.Claims{EmailVerified: true, Issuer: e.issuer, Subject: "invitee-" + storetest.Unique(), Email: email}, o)
		if n := e.count("SELECT count(*) FROM team_accesses WHERE team_id = ? AND user_id = ? AND role = 'owner'", team, got.ID); n != 1 {
			t.Errorf("the verified invitee did not get the invitation")
		}
	})

	t.Run("staff made ahead by email not claimed", func(t *testing.T) {
		t.Parallel()
		e := newLoginEnv(t)
		email := "chief-" + storetest.Unique() + "@" + e.domain
		staff, created, err := e.s.CreateStaff(t.Context(), store.StaffRequest{Email: email, Name: "Chief"}, store.DefaultLoginOptions())
		if err != nil || !created {
			t.Fatalf("CreateStaff() = %+v, %v, %v", staff, created, err)
		}
		before := e.rowsAbout(email, []uuid.UUID{staff.ID}, nil)

		c, o := attacker(e, email, "")
		u, err := e.login(c, o)
		wantRefused(t, u, err, store.ReasonNoOrganization)
		c, o = attacker(e, email, siret())
		u, err = e.login(c, o)
		wantOwnAccount(e, u, err, c, staff.ID)
		if diff := cmp.Diff(before, e.rowsAbout(email, []uuid.UUID{staff.ID}, nil)); diff != "" {
			t.Errorf("the staff user's rows changed (-before +after):\n%s", diff)
		}
		// The owner, vouched for, still claims it.
		c = store.Claims{EmailVerified: true, Issuer: e.issuer, Subject: "chief-" + storetest.Unique(), Email: email}
		if got := e.mustLogin(c, o); got.ID != staff.ID || !got.IsStaff {
			t.Errorf("the verified owner's login = %+v, want the staff user %v", got, staff.ID)
		}
	})

	t.Run("stored email not overwritten", func(t *testing.T) {
		t.Parallel()
		e := newLoginEnv(t)
		u, sub := e.userWithIdentity(e.org(), storetest.Staff())
		other := "someone-else-" + storetest.Unique() + "@" + e.domain
		got := e.mustLogin(store.Claims{Issuer: e.issuer, Subject: sub, Email: other, Name: "New Name"}, store.DefaultLoginOptions())
		if got.ID != u.ID || got.Email != u.Email || !got.IsStaff || got.Name != "New Name" {
			t.Errorf("login = %+v, want %v keeping %s and staff, with the new name", got, u.ID, u.Email)
		}
		if stored := e.user(u.ID); stored.Email != u.Email {
			t.Errorf("stored email = %q, want %q", stored.Email, u.Email)
		}
		if n := e.count("SELECT count(*) FROM users WHERE lower(email) = lower(?)", other); n != 0 {
			t.Errorf("%d users hold the unverified email", n)
		}
	})

	t.Run("malformed unverified email ignored", func(t *testing.T) {
		t.Parallel()
		e := newLoginEnv(t)
		c := store.Claims{Issuer: e.issuer, Subject: "s-" + storetest.Unique(), Email: "not an email", RegistrationID: siret()}
		if u := e.mustLogin(c, store.DefaultLoginOptions()); u.Email != "" {
			t.Errorf("email = %q, want none", u.Email)
		}
	})
}
