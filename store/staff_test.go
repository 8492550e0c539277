package store_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// createStaff runs CreateStaff with People's login defaults (the email fallback on).
func (e loginEnv) createStaff(r store.StaffRequest) (*store.User, bool, error) {
	return e.s.CreateStaff(e.t.Context(), r, store.DefaultLoginOptions())
}

func TestCreateStaffPromotes(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t)
	org := e.org()

	t.Run("by email, case aside, reactivating", func(t *testing.T) {
		t.Parallel()
		u := storetest.User(t, e.s, org, storetest.Inactive())
		got, created, err := e.createStaff(store.StaffRequest{Email: strings.ToUpper(u.Email[:4]) + u.Email[4:], Name: "Ignored"})
		if err != nil {
			t.Fatal(err)
		}
		if created || got.ID != u.ID || !got.IsStaff || !got.IsActive || got.Name != u.Name {
			t.Errorf("CreateStaff() = %+v, created %v; want %s made active staff, its name kept", got, created, u.ID)
		}
		events := eventsOn(t, e.s, u.ID)
		if len(events) != 1 {
			t.Fatalf("events = %+v, want one", events)
		}
		want := store.AuditEvent{ID: events[0].ID, CreatedAt: events[0].CreatedAt, ActorMethod: store.ActorCommand,
			Operation: "createStaff", TargetIDs: []uuid.UUID{u.ID}, Changes: map[string]any{"isStaff": true, "isActive": true}}
		if diff := cmp.Diff(want, events[0]); diff != "" {
			t.Errorf("event (-want +got):\n%s", diff)
		}
	})
	t.Run("by id", func(t *testing.T) {
		t.Parallel()
		u := storetest.User(t, e.s, org)
		if got, created, err := e.createStaff(store.StaffRequest{ID: u.ID}); err != nil || created || !got.IsStaff {
			t.Errorf("CreateStaff(id) = %+v, %v, %v", got, created, err)
		}
	})
	t.Run("an existing user, with the email fallback off", func(t *testing.T) {
		t.Parallel()
		u := storetest.User(t, e.s, org)
		got, created, err := e.s.CreateStaff(t.Context(), store.StaffRequest{Email: u.Email}, store.LoginOptions{})
		if err != nil || created || got.ID != u.ID || !got.IsStaff {
			t.Errorf("CreateStaff() = %+v, %v, %v; want %s promoted", got, created, err, u.ID)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		t.Parallel()
		shared := "shared-" + storetest.Unique() + "@example.test"
		storetest.User(t, e.s, org, storetest.WithEmail(shared))
		storetest.User(t, e.s, org, storetest.WithEmail(strings.ToUpper(shared[:6])+shared[6:]))
		for _, tc := range []struct {
			r    store.StaffRequest
			want store.Kind
		}{
			{store.StaffRequest{ID: uuid.New()}, store.KindNotFound},
			{store.StaffRequest{Email: shared}, store.KindConflict},
			{store.StaffRequest{Email: "not an email"}, store.KindInvalid},
			{store.StaffRequest{Email: `"a@b"@example.test`}, store.KindInvalid},
			{store.StaffRequest{Email: "long-" + storetest.Unique() + "@example.test", Name: strings.Repeat("n", 101)}, store.KindInvalid},
			{store.StaffRequest{Email: "nul-" + storetest.Unique() + "@example.test", Name: "a\x00b"}, store.KindInvalid},
		} {
			if _, _, err := e.createStaff(tc.r); store.KindOf(err) != tc.want {
				t.Errorf("CreateStaff(%+v) = %v, want %v", tc.r, err, tc.want)
			}
		}
		if n := e.count("SELECT count(*) FROM users WHERE email LIKE 'long-%@example.test' OR email LIKE 'nul-%@example.test'"); n != 0 {
			t.Errorf("a refused request created %d users", n)
		}
	})
}

// create-staff for an email nobody has creates the user ahead of their first login, which
// reaches them by the email and links the provider's subject.
func TestCreateStaffCreates(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t)
	email := "Chief-" + storetest.Unique() + "@" + strings.ToUpper(e.domain)
	u, created, err := e.createStaff(store.StaffRequest{Email: email, Name: "  Camille Chef "})
	if err != nil || !created {
		t.Fatalf("CreateStaff() = %+v, %v, %v; want a user created", u, created, err)
	}
	stored := strings.Split(email, "@")[0] + "@" + e.domain
	if u.Email != stored || u.Name != "Camille Chef" || !u.IsStaff || !u.IsActive || u.OrganizationID != nil || u.LastLoginAt != nil {
		t.Errorf("created %+v, want active staff %s named Camille Chef, without organization or login", u, stored)
	}
	// users.sub is the user's own id, which no identity holds.
	if u.Sub != u.ID.String() {
		t.Errorf("users.sub = %q, want the user's id", u.Sub)
	}
	if n := e.count("SELECT count(*) FROM user_identities WHERE user_id = ?", u.ID); n != 0 {
		t.Errorf("%d identities, want none before a login", n)
	}
	if n := e.count("SELECT count(*) FROM contacts WHERE owner_id = ?0 AND user_id = ?0 AND full_name = 'Camille Chef' AND data->'emails'->0->>'value' = ?1", u.ID, stored); n != 1 {
		t.Errorf("%d profile contacts, want 1 as a login makes", n)
	}
	events := eventsOn(t, e.s, u.ID)
	if len(events) != 1 {
		t.Fatalf("events = %+v, want one", events)
	}
	want := store.AuditEvent{ID: events[0].ID, CreatedAt: events[0].CreatedAt, ActorMethod: store.ActorCommand,
		Operation: "createStaff", TargetIDs: []uuid.UUID{u.ID}, Changes: map[string]any{"userCreated": true, "isStaff": true}}
	if diff := cmp.Diff(want, events[0]); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}

	// Again: the same user, kept as is.
	again, created, err := e.createStaff(store.StaffRequest{Email: strings.ToLower(email), Name: "Other"})
	if err != nil || created || again.ID != u.ID || again.Name != "Camille Chef" || !again.IsStaff {
		t.Errorf("CreateStaff() again = %+v, %v, %v; want %s unchanged", again, created, err, u.ID)
	}
	if n := e.count("SELECT count(*) FROM users WHERE lower(email) = lower(?)", email); n != 1 {
		t.Errorf("%d users with the email, want 1", n)
	}
	if events := eventsOn(t, e.s, u.ID); len(events) != 2 || len(events[0].Changes) != 0 {
		t.Errorf("events = %+v, want a second one that changed nothing", events)
	}

	// The placeholder is no identity: a login by that subject, with another email or none, is
	// someone else, and a partner service's token by it is nobody.
	other := e.mustLogin(store.Claims{EmailVerified: true, Issuer: e.issuer, Subject: u.Sub, Email: "other-" + storetest.Unique() + "@" + e.domain}, store.DefaultLoginOptions())
	if other.ID == u.ID {
		t.Errorf("a login by the placeholder subject with another email reached the staff user")
	}
	if got, err := e.login(store.Claims{Issuer: e.issuer + "/2", Subject: u.Sub}, store.DefaultLoginOptions()); err == nil && got.ID == u.ID {
		t.Errorf("a login by the placeholder subject without an email reached the staff user")
	}
	if got, err := e.s.UserByIdentity(t.Context(), store.Identity{Issuer: e.issuer + "/3", Subject: u.Sub}, ""); store.KindOf(err) != store.KindNotFound {
		t.Errorf("UserByIdentity(placeholder) = %+v, %v; want KindNotFound", got, err)
	}

	// The first login, by a new subject and the email in another case, is the staff user.
	c := store.Claims{EmailVerified: true, Issuer: e.issuer, Subject: "proconnect-" + storetest.Unique(), Email: strings.ToUpper(email), Name: "Camille Chef-Durand"}
	got := e.mustLogin(c, store.DefaultLoginOptions())
	if got.ID != u.ID || !got.IsStaff || got.Name != "Camille Chef-Durand" || got.OrganizationID == nil {
		t.Fatalf("first login = %+v, want %s, staff, with the provider's name and an organization", got, u.ID)
	}
	if id := e.identityUser(e.issuer, c.Subject); id != u.ID {
		t.Errorf("the subject resolves to %v, want %v", id, u.ID)
	}
	if n := e.count("SELECT count(*) FROM organization_accesses WHERE user_id = ?", u.ID); n != 0 {
		t.Errorf("the login made the staff user administrator of %d organizations", n)
	}
	// From then on the subject alone logs in.
	if got := e.mustLogin(store.Claims{Issuer: e.issuer, Subject: c.Subject}, store.LoginOptions{}); got.ID != u.ID {
		t.Errorf("login by the linked subject = %v, want %v", got.ID, u.ID)
	}
}

// Without the email fallback no login could reach a user made ahead, so none is made.
func TestCreateStaffWithoutEmailFallback(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t)
	email := "nobody-" + storetest.Unique() + "@" + e.domain
	if _, _, err := e.s.CreateStaff(t.Context(), store.StaffRequest{Email: email}, store.LoginOptions{CreateUser: true}); store.KindOf(err) != store.KindNotFound {
		t.Errorf("CreateStaff() = %v, want KindNotFound", err)
	}
	if n := e.count("SELECT count(*) FROM users WHERE email = ?", email); n != 0 {
		t.Errorf("%d users created", n)
	}
}

// create-staff and first logins of one email at the same moment make one user.
func TestCreateStaffRacesFirstLogins(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t)
	for range 5 {
		email := "race-" + storetest.Unique() + "@" + e.domain
		var wg sync.WaitGroup
		ids := make([]uuid.UUID, 5)
		errs := make([]error, 5)
		start := make(chan struct{})
		for i := range ids {
			wg.Go(func() {
				<-start
				var u *store.User
				if i == 0 {
					u, _, errs[i] = e.createStaff(store.StaffRequest{Email: email})
				} else {
					u, errs[i] = e.login(store.Claims{EmailVerified: true, Issuer: e.issuer, Subject: "s-" + storetest.Unique(), Email: email}, store.DefaultLoginOptions())
				}
				if u != nil {
					ids[i] = u.ID
				}
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil || ids[i] != ids[0] {
				t.Fatalf("call %d: user %v, %v; want %v", i, ids[i], err, ids[0])
			}
		}
		if !e.user(ids[0]).IsStaff {
			t.Errorf("the user is not staff")
		}
	}
}

// create-staff --sub: the user holds exactly one identity from the start, and no email is
// involved, so only a login with that issuer and subject is them, whatever email it brings.
func TestCreateStaffBySubject(t *testing.T) {
	t.Parallel()
	e := newLoginEnv(t)
	sub := "agent-" + storetest.Unique()
	u, created, err := e.createStaff(store.StaffRequest{Issuer: e.issuer, Subject: sub, Name: " Dana "})
	if err != nil || !created {
		t.Fatalf("CreateStaff() = %+v, %v, %v; want a user created", u, created, err)
	}
	if u.Email != "" || u.Name != "Dana" || !u.IsStaff || !u.IsActive || u.OrganizationID != nil || u.Sub != u.ID.String() {
		t.Errorf("created %+v, want active staff named Dana, without email or organization, sub its own id", u)
	}
	if id := e.identityUser(e.issuer, sub); id != u.ID {
		t.Errorf("the identity resolves to %v, want %v", id, u.ID)
	}
	if n := e.count("SELECT count(*) FROM user_identities WHERE user_id = ?", u.ID); n != 1 {
		t.Errorf("%d identities, want exactly one", n)
	}
	// Again: the same user.
	if again, created, err := e.createStaff(store.StaffRequest{Issuer: e.issuer, Subject: sub}); err != nil || created || again.ID != u.ID {
		t.Errorf("CreateStaff() again = %+v, %v, %v; want %v", again, created, err, u.ID)
	}
	// The same subject at another issuer is someone else.
	if got := e.mustLogin(store.Claims{Issuer: e.issuer + "/other", Subject: sub, RegistrationID: siret()}, store.DefaultLoginOptions()); got.ID == u.ID || got.IsStaff {
		t.Errorf("a login by the subject at another issuer reached the staff user")
	}
	// The first login with the identity is the staff user, whose email the provider then gives.
	email := "dana-" + storetest.Unique() + "@" + e.domain
	got := e.mustLogin(store.Claims{EmailVerified: true, Issuer: e.issuer, Subject: sub, Email: email, Name: "Dana Durand"}, store.DefaultLoginOptions())
	if got.ID != u.ID || !got.IsStaff || got.Email != email || got.OrganizationID == nil {
		t.Errorf("first login = %+v, want %v, staff, with the provider's email and an organization", got, u.ID)
	}
	// An existing user's identity: promoted.
	v, vsub := e.userWithIdentity(e.org())
	if p, created, err := e.createStaff(store.StaffRequest{Issuer: e.issuer, Subject: vsub}); err != nil || created || p.ID != v.ID || !p.IsStaff {
		t.Errorf("CreateStaff(existing identity) = %+v, %v, %v; want %v promoted", p, created, err, v.ID)
	}
	for _, r := range []store.StaffRequest{
		{Subject: "no-issuer"},
		{Issuer: e.issuer, Subject: strings.Repeat("s", 256)},
		{Issuer: e.issuer, Subject: "nul\x00"},
	} {
		if _, _, err := e.createStaff(r); store.KindOf(err) != store.KindInvalid {
			t.Errorf("CreateStaff(%q at %q) = %v, want KindInvalid", r.Subject, r.Issuer, err)
		}
	}
}
