package store_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

func linkIdentity(tb testing.TB, s *store.Store, user uuid.UUID, id store.Identity) {
	tb.Helper()
	storetest.MustExec(tb, s.DB(), "INSERT INTO user_identities (user_id, issuer, subject, audience) VALUES (?, ?, ?, ?)",
		user, id.Issuer, id.Subject, id.Audience)
}

func countIdentities(tb testing.TB, s *store.Store, id store.Identity) int {
	tb.Helper()
	var n int
	err := s.DB().QueryRowContext(context.Background(),
		"SELECT count(*) FROM user_identities WHERE issuer = ? AND subject = ? AND audience = ?", id.Issuer, id.Subject, id.Audience).Scan(&n)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func TestUserByIdentity(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	ctx := t.Context()
	iss := "https://idp-" + storetest.Unique() + ".test"
	org := storetest.Organization(t, s)

	t.Run("public and pairwise subjects resolve to the same user", func(t *testing.T) {
		t.Parallel()
		u := storetest.User(t, s, org)
		linkIdentity(t, s, u.ID, store.Identity{Issuer: iss, Subject: "pub-" + u.Sub})
		linkIdentity(t, s, u.ID, store.Identity{Issuer: iss, Subject: "pw-" + u.Sub, Audience: "docs"})
		for _, id := range []store.Identity{
			{Issuer: iss, Subject: "pub-" + u.Sub, Audience: "docs"}, // public subject, seen by a service
			{Issuer: iss, Subject: "pub-" + u.Sub, Audience: "meet"},
			{Issuer: iss, Subject: "pw-" + u.Sub, Audience: "docs"},
		} {
			got, err := s.UserByIdentity(ctx, id, "")
			if err != nil || got.ID != u.ID {
				t.Errorf("UserByIdentity(%+v) = %v, %v; want user %s", id, got, err, u.ID)
			}
		}
		// A pairwise subject belongs to its service: another service presenting it is unknown.
		if _, err := s.UserByIdentity(ctx, store.Identity{Issuer: iss, Subject: "pw-" + u.Sub, Audience: "meet"}, ""); store.KindOf(err) != store.KindNotFound {
			t.Errorf("pairwise subject of docs seen by meet: kind = %v, want not found", store.KindOf(err))
		}
		// Another issuer's subject is another person.
		if _, err := s.UserByIdentity(ctx, store.Identity{Issuer: iss + "/other", Subject: "pub-" + u.Sub, Audience: "docs"}, ""); store.KindOf(err) != store.KindNotFound {
			t.Errorf("subject at another issuer: kind = %v, want not found", store.KindOf(err))
		}
	})

	t.Run("pairwise subject wins over a public one", func(t *testing.T) {
		t.Parallel()
		pub, pw := storetest.User(t, s, org), storetest.User(t, s, org)
		sub := "both-" + storetest.Unique()
		linkIdentity(t, s, pub.ID, store.Identity{Issuer: iss, Subject: sub})
		linkIdentity(t, s, pw.ID, store.Identity{Issuer: iss, Subject: sub, Audience: "docs"})
		if got, err := s.UserByIdentity(ctx, store.Identity{Issuer: iss, Subject: sub, Audience: "docs"}, ""); err != nil || got.ID != pw.ID {
			t.Errorf("UserByIdentity = %v, %v; want the pairwise user %s", got, err, pw.ID)
		}
	})

	t.Run("unknown subject is refused and nothing is created", func(t *testing.T) {
		t.Parallel()
		id := store.Identity{Issuer: iss, Subject: "nobody-" + storetest.Unique(), Audience: "docs"}
		for _, email := range []string{"", "nobody-" + storetest.Unique() + "@example.test"} {
			if _, err := s.UserByIdentity(ctx, id, email); store.KindOf(err) != store.KindNotFound {
				t.Errorf("UserByIdentity(email %q) kind = %v, want not found (err: %v)", email, store.KindOf(err), err)
			}
		}
		if n := countIdentities(t, s, id); n != 0 {
			t.Errorf("identities for an unknown subject = %d, want 0", n)
		}
	})

	t.Run("inactive user is refused", func(t *testing.T) {
		t.Parallel()
		u := storetest.User(t, s, org, storetest.Inactive())
		id := store.Identity{Issuer: iss, Subject: u.Sub}
		linkIdentity(t, s, u.ID, id)
		if _, err := s.UserByIdentity(ctx, id, ""); store.KindOf(err) != store.KindForbidden {
			t.Errorf("kind = %v, want forbidden (err: %v)", store.KindOf(err), err)
		}
		// Nor is an inactive user reached by email.
		id2 := store.Identity{Issuer: iss, Subject: "pw-" + u.Sub, Audience: "docs"}
		if _, err := s.UserByIdentity(ctx, id2, u.Email); store.KindOf(err) != store.KindNotFound {
			t.Errorf("by email: kind = %v, want not found (err: %v)", store.KindOf(err), err)
		}
	})

	t.Run("email fallback links a pairwise subject once", func(t *testing.T) {
		t.Parallel()
		u := storetest.User(t, s, org)
		storetest.User(t, s, org, storetest.WithEmail(u.Email), storetest.Inactive()) // ignored: inactive
		id := store.Identity{Issuer: iss, Subject: "pw-" + u.Sub, Audience: "docs"}
		email := strings.ToUpper(u.Email) // compared case-insensitively
		var wg sync.WaitGroup
		errs := make(chan error, 10)
		for range 10 {
			wg.Go(func() {
				got, err := s.UserByIdentity(ctx, id, email)
				if err == nil && got.ID != u.ID {
					err = &store.Error{Message: "linked to user " + got.ID.String()}
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("concurrent UserByIdentity: %v", err)
			}
		}
		if n := countIdentities(t, s, id); n != 1 {
			t.Errorf("identities linked = %d, want 1", n)
		}
		// Linked: found again without the email.
		if got, err := s.UserByIdentity(ctx, id, ""); err != nil || got.ID != u.ID {
			t.Errorf("after linking: %v, %v", got, err)
		}
		if n := countIdentities(t, s, id); n != 1 {
			t.Errorf("identities after a second lookup = %d, want 1", n)
		}
	})

	t.Run("email shared by two active users is refused", func(t *testing.T) {
		t.Parallel()
		u := storetest.User(t, s, org)
		storetest.User(t, s, org, storetest.WithEmail(u.Email))
		id := store.Identity{Issuer: iss, Subject: "pw-" + u.Sub, Audience: "docs"}
		if _, err := s.UserByIdentity(ctx, id, u.Email); store.KindOf(err) != store.KindConflict {
			t.Errorf("kind = %v, want conflict (err: %v)", store.KindOf(err), err)
		}
		if n := countIdentities(t, s, id); n != 0 {
			t.Errorf("identities linked = %d, want 0", n)
		}
	})

	t.Run("unstorable input is unknown, not an error", func(t *testing.T) {
		t.Parallel()
		u := storetest.User(t, s, org)
		for _, id := range []store.Identity{
			{Issuer: iss, Subject: "nul\x00sub", Audience: "docs"},
			{Issuer: iss, Subject: strings.Repeat("s", 300), Audience: "docs"},
			{Issuer: "", Subject: "x", Audience: "docs"},
		} {
			if _, err := s.UserByIdentity(ctx, id, u.Email); store.KindOf(err) != store.KindNotFound {
				t.Errorf("UserByIdentity(%.40q) kind = %v, want not found (err: %v)", id.Subject, store.KindOf(err), err)
			}
		}
	})
}

func TestServiceProviderByAudience(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	ctx := t.Context()

	t.Run("created once under concurrent first sight", func(t *testing.T) {
		t.Parallel()
		aud := "client-" + storetest.Unique()
		ids := make(chan uuid.UUID, 10)
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				sp, err := s.ServiceProviderByAudience(ctx, aud)
				if err != nil {
					t.Errorf("ServiceProviderByAudience: %v", err)
					return
				}
				ids <- sp.ID
			})
		}
		wg.Wait()
		close(ids)
		var first uuid.UUID
		for id := range ids {
			if first == uuid.Nil {
				first = id
			} else if id != first {
				t.Errorf("two providers for one audience: %s and %s", first, id)
			}
		}
		sp, err := s.ServiceProviderByAudience(ctx, aud)
		if err != nil || sp.ID != first || sp.Name != aud || sp.AudienceID != aud {
			t.Errorf("again = %+v, %v; want id %s named %q", sp, err, first, aud)
		}
	})

	t.Run("name held by another provider", func(t *testing.T) {
		t.Parallel()
		aud := "taken-" + storetest.Unique()
		storetest.MustExec(t, s.DB(), "INSERT INTO service_providers (name, audience_id) VALUES (?, ?)", aud, "other-"+aud)
		sp, err := s.ServiceProviderByAudience(ctx, aud)
		if err != nil {
			t.Fatal(err)
		}
		if sp.AudienceID != aud || !strings.HasPrefix(sp.Name, aud+" (") {
			t.Errorf("provider = %+v, want audience %q and a name with a suffix", sp, aud)
		}
	})

	t.Run("long audience with a taken name fits the column", func(t *testing.T) {
		t.Parallel()
		aud := storetest.Unique() + strings.Repeat("é", 246)
		storetest.MustExec(t, s.DB(), "INSERT INTO service_providers (name, audience_id) VALUES (?, ?)", aud, "other-"+storetest.Unique())
		if sp, err := s.ServiceProviderByAudience(ctx, aud); err != nil || sp.AudienceID != aud {
			t.Errorf("ServiceProviderByAudience = %+v, %v", sp, err)
		}
	})

	for _, aud := range []string{"", "   ", "nul\x00", strings.Repeat("a", 257)} {
		if _, err := s.ServiceProviderByAudience(ctx, aud); store.KindOf(err) != store.KindInvalid {
			t.Errorf("ServiceProviderByAudience(%.20q) kind = %v, want invalid (err: %v)", aud, store.KindOf(err), err)
		}
	}
}
