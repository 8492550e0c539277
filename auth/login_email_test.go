package auth_test

// Whether the provider vouches for an email (email_verified), through the whole browser login
// against the fake provider and through partner tokens against oidctest: an email it does not
// vouch for is no email, whatever the person typed at it.

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/auth/oidctest"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// rowsAbout is every row a login could change about the users with email (in any case) or
// the ids given, and about team, as JSON text: two equal snapshots mean nothing changed.
func (r *loginRig) rowsAbout(t *testing.T, email string, user, team uuid.UUID) string {
	t.Helper()
	return scalar[string](t, r.s, `WITH who AS (SELECT id FROM users WHERE lower(email) = lower(?0) OR id = ?1)
		SELECT concat_ws(E'\n',
			(SELECT json_agg(u ORDER BY u.id)::text FROM users u WHERE u.id IN (SELECT id FROM who)),
			(SELECT json_agg(ui ORDER BY ui.id)::text FROM user_identities ui WHERE ui.user_id IN (SELECT id FROM who)),
			(SELECT json_agg(ta ORDER BY ta.id)::text FROM team_accesses ta WHERE ta.user_id IN (SELECT id FROM who) OR ta.team_id = ?2),
			(SELECT json_agg(i ORDER BY i.id)::text FROM invitations i WHERE lower(i.email) = lower(?0)))`, email, user, team)
}

// mustBeOther fails unless c's session is a user other than victim, without an email.
func (r *loginRig) mustBeOther(t *testing.T, c *http.Client, victim uuid.UUID) {
	t.Helper()
	var out struct {
		Me struct {
			ID, Email string
			IsStaff   bool
		}
	}
	if code := r.gql(t, c, `{ me { id email isStaff } }`, &out); code != "" {
		t.Fatalf("me answered %s", code)
	}
	if out.Me.ID == victim.String() || out.Me.Email != "" || out.Me.IsStaff {
		t.Errorf("me = %+v, want a user of the attacker's own, without email, not staff (victim %s)", out.Me, victim)
	}
}

func TestLoginUnverifiedEmail(t *testing.T) {
	t.Parallel()
	// Each way of not vouching: false in userinfo, "false" in userinfo, false in the ID token
	// while userinfo says nothing, and false in userinfo while the ID token says true.
	unvouched := []struct {
		name              string
		idToken, userinfo map[string]any
	}{
		{"false in userinfo", nil, map[string]any{"email_verified": false}},
		{`"false" in userinfo`, nil, map[string]any{"email_verified": "false"}},
		{`"true" as a string`, nil, map[string]any{"email_verified": "true"}},
		{"null in userinfo", nil, map[string]any{"email_verified": nil}},
		{"false in the ID token", map[string]any{"email_verified": false}, nil},
		{"ID token true, userinfo false", map[string]any{"email_verified": true}, map[string]any{"email_verified": false}},
	}
	knobs := func(i int, sub, email, siret string) opKnobs {
		u := unvouched[i%len(unvouched)]
		info := map[string]any{"email": strings.ToUpper(email), "given_name": "Mallory"}
		for k, v := range u.userinfo {
			info[k] = v
		}
		if siret != "" {
			info["siret"] = siret
		}
		return opKnobs{Sub: sub, IDToken: u.idToken, Userinfo: info}
	}

	t.Run("existing user not linked", func(t *testing.T) {
		t.Parallel()
		r := newLoginRig(t, nil)
		victim := storetest.User(t, r.s, storetest.Organization(t, r.s))
		before := r.rowsAbout(t, victim.Email, victim.ID, uuid.Nil)
		for i := range unvouched {
			sub, _ := person()
			c := r.browser(t)
			mustRefuse(t, r.logIn(t, c, knobs(i, sub, victim.Email, "")), store.ReasonNoOrganization)
			r.mustBeAnonymous(t, c)
			sub, _ = person()
			c = r.browser(t)
			mustLand(t, r.logIn(t, c, knobs(i, sub, victim.Email, freshSIRET())))
			r.mustBeOther(t, c, victim.ID)
		}
		if diff := cmp.Diff(before, r.rowsAbout(t, victim.Email, victim.ID, uuid.Nil)); diff != "" {
			t.Errorf("the victim's rows changed (-before +after):\n%s", diff)
		}
	})

	t.Run("pending owner invitation not converted", func(t *testing.T) {
		t.Parallel()
		r := newLoginRig(t, nil)
		org := storetest.Organization(t, r.s)
		owner := storetest.User(t, r.s, org)
		team := storetest.Team(t, r.s, org, "Team "+storetest.Unique())
		storetest.Access(t, r.s, team, owner.ID, store.RoleOwner)
		_, email := person()
		storetest.MustExec(t, r.s.DB(), "INSERT INTO invitations (email, team_id, role, issuer_id) VALUES (?, ?, 'owner', ?)", email, team, owner.ID)
		before := r.rowsAbout(t, email, uuid.Nil, team)
		for i := range unvouched {
			sub, _ := person()
			c := r.browser(t)
			mustLand(t, r.logIn(t, c, knobs(i, sub, email, freshSIRET())))
			r.mustBeOther(t, c, uuid.Nil)
		}
		if diff := cmp.Diff(before, r.rowsAbout(t, email, uuid.Nil, team)); diff != "" {
			t.Errorf("the invitation or the team's accesses changed (-before +after):\n%s", diff)
		}
	})

	t.Run("staff made ahead by email not claimed", func(t *testing.T) {
		t.Parallel()
		r := newLoginRig(t, nil)
		_, email := person()
		staff, _, err := r.s.CreateStaff(t.Context(), store.StaffRequest{Email: email}, store.DefaultLoginOptions())
		if err != nil {
			t.Fatal(err)
		}
		before := r.rowsAbout(t, email, staff.ID, uuid.Nil)
		for i := range unvouched {
			sub, _ := person()
			c := r.browser(t)
			mustRefuse(t, r.logIn(t, c, knobs(i, sub, email, "")), store.ReasonNoOrganization)
			sub, _ = person()
			c = r.browser(t)
			mustLand(t, r.logIn(t, c, knobs(i, sub, email, freshSIRET())))
			r.mustBeOther(t, c, staff.ID)
		}
		if diff := cmp.Diff(before, r.rowsAbout(t, email, staff.ID, uuid.Nil)); diff != "" {
			t.Errorf("the staff user's rows changed (-before +after):\n%s", diff)
		}
		// The owner, vouched for, claims it.
		sub, _ := person()
		c := r.browser(t)
		mustLand(t, r.logIn(t, c, opKnobs{Sub: sub, Userinfo: map[string]any{"email": email, "email_verified": true}}))
		if me := r.me(t, c); me.Me.ID != staff.ID.String() {
			t.Errorf("the verified owner logged in as %s, want the staff user %s", me.Me.ID, staff.ID)
		}
	})

	t.Run("stored email not overwritten", func(t *testing.T) {
		t.Parallel()
		r := newLoginRig(t, nil)
		u := storetest.User(t, r.s, storetest.Organization(t, r.s), storetest.Staff())
		sub, _ := person()
		storetest.MustExec(t, r.s.DB(), "INSERT INTO user_identities (user_id, issuer, subject) VALUES (?, ?, ?)", u.ID, r.op.issuer(), sub)
		for i := range unvouched {
			_, other := person()
			c := r.browser(t)
			mustLand(t, r.logIn(t, c, knobs(i, sub, other, "")))
			if me := r.me(t, c); me.Me.ID != u.ID.String() || me.Me.Email != u.Email {
				t.Errorf("%s: me = %+v, want %s keeping %s", unvouched[i].name, me.Me, u.ID, u.Email)
			}
		}
		if n := scalar[int](t, r.s, "SELECT count(*) FROM users WHERE id = ? AND email = ? AND is_staff", u.ID, u.Email); n != 1 {
			t.Errorf("the user's stored email or staff flag changed")
		}
	})
}

// What a provider that sends no email_verified gets: by default (ProConnect) its emails are
// vouched for; with OIDC_EMAIL_VERIFIED_DEFAULT=false they are not, and an explicit true still is.
func TestLoginEmailVerifiedDefault(t *testing.T) {
	t.Parallel()
	for _, required := range []bool{false, true} {
		t.Run(map[bool]string{false: "absent claim vouches (default)", true: "absent claim does not vouch"}[required], func(t *testing.T) {
			t.Parallel()
			r := newLoginRig(t, func(c *auth.LoginConfig) { c.EmailVerifiedRequired = required })
			victim := storetest.User(t, r.s, storetest.Organization(t, r.s))
			before := r.rowsAbout(t, victim.Email, victim.ID, uuid.Nil)
			sub, _ := person()
			c := r.browser(t)
			l := r.logIn(t, c, opKnobs{Sub: sub, Userinfo: map[string]any{"email": victim.Email}})
			if !required {
				mustLand(t, l)
				if me := r.me(t, c); me.Me.ID != victim.ID.String() {
					t.Errorf("me = %s, want the user with the email %s", me.Me.ID, victim.ID)
				}
				return
			}
			mustRefuse(t, l, store.ReasonNoOrganization)
			if diff := cmp.Diff(before, r.rowsAbout(t, victim.Email, victim.ID, uuid.Nil)); diff != "" {
				t.Errorf("the user's rows changed (-before +after):\n%s", diff)
			}
			c = r.browser(t)
			mustLand(t, r.logIn(t, c, opKnobs{Sub: sub, Userinfo: map[string]any{"email": victim.Email, "email_verified": true}}))
			if me := r.me(t, c); me.Me.ID != victim.ID.String() {
				t.Errorf("with email_verified true, me = %s, want %s", me.Me.ID, victim.ID)
			}
		})
	}
}

// Partner tokens follow the same rule: only JSON true vouches, and an absent claim vouches
// unless OIDC_EMAIL_VERIFIED_DEFAULT=false.
func TestBearerEmailVerified(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		claims   map[string]any
		required bool
		linked   bool
	}{
		{name: "absent", linked: true},
		{name: "true", claims: map[string]any{"email_verified": true}, linked: true},
		{name: "false", claims: map[string]any{"email_verified": false}},
		{name: `"false"`, claims: map[string]any{"email_verified": "false"}},
		{name: "absent, required", required: true},
		{name: "true, required", claims: map[string]any{"email_verified": true}, required: true, linked: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newRSEnv(t, auth.BackendJSON, func(c *auth.ResourceServerConfig) { c.EmailVerifiedRequired = tt.required })
			u, _ := e.user(t)
			tok := e.as.Mint(oidctest.Token{Subject: "pw-" + storetest.Unique(), ClientID: "docs-" + storetest.Unique(), Email: u.Email, Claims: tt.claims})
			a := e.do(t, "Bearer "+tok, `{ me { id } }`, nil)
			if tt.linked && a.status != http.StatusOK || !tt.linked && a.status != http.StatusUnauthorized {
				t.Errorf("status = %d, want the user found: %v", a.status, tt.linked)
			}
		})
	}
}

// A webmail domain names no organization: without a SIRET the login is refused
// no_organization and nothing is created; with one, the SIRET's organization is the user's,
// and the domain is not added to it.
func TestLoginSharedEmailDomain(t *testing.T) {
	t.Parallel()
	r := newLoginRig(t, nil)
	for _, domain := range []string{"gmail.com", "orange.fr", "wanadoo.fr", "laposte.net", "free.fr", "yahoo.fr",
		"hotmail.fr", "outlook.fr", "icloud.com", "proton.me", "protonmail.com", "outlook.com", "sfr.fr", "gmx.fr", "aol.com"} {
		sub, _ := person()
		email := "someone-" + storetest.Unique() + "@" + strings.ToUpper(domain)
		c := r.browser(t)
		mustRefuse(t, r.logIn(t, c, opKnobs{Sub: sub, Userinfo: map[string]any{"email": email}}), store.ReasonNoOrganization)
		r.mustBeAnonymous(t, c)
		if n := scalar[int](t, r.s, "SELECT count(*) FROM users WHERE lower(email) = lower(?)", email); n != 0 {
			t.Errorf("%s: %d users created", domain, n)
		}
		if n := scalar[int](t, r.s, "SELECT count(*) FROM organizations WHERE name = ?", domain); n != 0 {
			t.Errorf("%s: an organization was named after the webmail domain", domain)
		}
	}
	siret := freshSIRET()
	sub, _ := person()
	c := r.browser(t)
	mustLand(t, r.logIn(t, c, opKnobs{Sub: sub, Userinfo: map[string]any{"email": "agent-" + storetest.Unique() + "@gmail.com", "siret": siret}}))
	me := r.me(t, c)
	if me.Me.Organization == nil || me.Me.Organization.Name != siret {
		t.Fatalf("me = %+v, want the organization of SIRET %s", me.Me, siret)
	}
	if n := scalar[int](t, r.s, "SELECT count(*) FROM organization_domains WHERE domain = 'gmail.com'"); n != 0 {
		t.Errorf("gmail.com was given to %d organizations", n)
	}
	// A second gmail.com user with another SIRET is in another organization.
	c = r.browser(t)
	sub, _ = person()
	mustLand(t, r.logIn(t, c, opKnobs{Sub: sub, Userinfo: map[string]any{"email": "other-" + storetest.Unique() + "@gmail.com", "siret": freshSIRET()}}))
	if other := r.me(t, c); other.Me.Organization == nil || other.Me.Organization.Name == siret {
		t.Errorf("a second gmail.com user joined %+v, want the organization of their own SIRET", other.Me.Organization)
	}
}

// A staff user made by create-staff --sub (store.CreateStaff by subject): the first login
// with that issuer and subject is them, even with an email the provider does not vouch for,
// and no login by email ever is.
func TestLoginStaffBySubject(t *testing.T) {
	t.Parallel()
	r := newLoginRig(t, nil)
	sub, email := person()
	staff, created, err := r.s.CreateStaff(t.Context(), store.StaffRequest{Issuer: r.op.issuer(), Subject: sub, Name: "Dana"}, store.DefaultLoginOptions())
	if err != nil || !created {
		t.Fatalf("CreateStaff(subject) = %+v, %v, %v", staff, created, err)
	}
	// Another subject without an email is someone else.
	other, _ := person()
	c := r.browser(t)
	mustLand(t, r.logIn(t, c, opKnobs{Sub: other, Userinfo: map[string]any{"siret": freshSIRET()}}))
	r.mustBeOther(t, c, staff.ID)

	c = r.browser(t)
	mustLand(t, r.logIn(t, c, opKnobs{Sub: sub, Userinfo: map[string]any{"email": email, "email_verified": false, "siret": freshSIRET(), "given_name": "Dana"}}))
	var out struct {
		Me struct {
			ID, Email string
			IsStaff   bool
		}
	}
	if code := r.gql(t, c, `{ me { id email isStaff } }`, &out); code != "" {
		t.Fatalf("me answered %s", code)
	}
	if out.Me.ID != staff.ID.String() || !out.Me.IsStaff || out.Me.Email != "" {
		t.Errorf("me = %+v, want the staff user %s, still without the unverified email", out.Me, staff.ID)
	}
	// With the email vouched for, the login records it.
	c = r.browser(t)
	mustLand(t, r.logIn(t, c, opKnobs{Sub: sub, Userinfo: map[string]any{"email": email, "email_verified": true}}))
	if me := r.me(t, c); me.Me.ID != staff.ID.String() || me.Me.Email != email {
		t.Errorf("me = %+v, want the staff user with %s", me.Me, email)
	}
}
