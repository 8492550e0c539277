package store_test

import (
	"bytes"
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// tokenHash stands for the SHA-256 of a fresh cookie id.
func tokenHash() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

func newSession(t *testing.T, s *store.Store, user uuid.UUID, issuer, sid, subject string, lifetime time.Duration) []byte {
	t.Helper()
	h := tokenHash()
	in := store.NewSession{UserID: user, Issuer: issuer, Subject: subject, SID: sid, IDToken: "id-token-" + storetest.Unique()}
	if _, err := s.CreateSession(t.Context(), h, in, lifetime); err != nil {
		t.Fatalf("CreateSession() = %v", err)
	}
	return h
}

// live reports whether the session under h resolves, failing on anything but found/not found.
func live(t *testing.T, s *store.Store, h []byte) bool {
	t.Helper()
	_, err := s.SessionByToken(t.Context(), h)
	switch store.KindOf(err) {
	case 0:
		return true
	case store.KindNotFound:
		return false
	}
	t.Fatalf("SessionByToken() = %v", err)
	return false
}

func TestSessionLifecycle(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	ctx := t.Context()
	u := storetest.User(t, s, uuid.Nil)
	issuer := "https://op-" + storetest.Unique() + ".test"
	h := tokenHash()
	in := store.NewSession{UserID: u.ID, Issuer: issuer, Subject: u.Sub, SID: "sid-1", IDToken: "header.payload.signature"}
	created, err := s.CreateSession(ctx, h, in, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := created.ExpiresAt.Sub(created.CreatedAt); got < time.Hour-time.Second || got > time.Hour+time.Second {
		t.Errorf("expires_at - created_at = %v, want 1h", got)
	}

	got, err := s.SessionByToken(ctx, h)
	if err != nil {
		t.Fatalf("SessionByToken() = %v", err)
	}
	if got.ID != created.ID || got.UserID != u.ID || got.Issuer != issuer || got.Subject != u.Sub || got.SID != "sid-1" {
		t.Errorf("SessionByToken() = %+v, want the created session %+v", got, created)
	}
	if got.IDToken != "" {
		t.Errorf("SessionByToken() read the ID token; only logout needs it")
	}
	if live(t, s, tokenHash()) {
		t.Error("an unknown token hash resolves")
	}

	// Touch writes at most once a minute: a fresh session is left alone, an idle one is touched.
	if err := s.TouchSession(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	if after, _ := s.SessionByToken(ctx, h); !after.LastSeenAt.Equal(got.LastSeenAt) {
		t.Errorf("TouchSession() within a minute moved last_seen_at from %v to %v", got.LastSeenAt, after.LastSeenAt)
	}
	storetest.MustExec(t, s.DB(), "UPDATE sessions SET last_seen_at = now() - interval '5 minutes' WHERE id = ?", created.ID)
	idle, _ := s.SessionByToken(ctx, h)
	if err := s.TouchSession(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	touched, _ := s.SessionByToken(ctx, h)
	if !touched.LastSeenAt.After(idle.LastSeenAt) || !touched.ExpiresAt.Equal(got.ExpiresAt) {
		t.Errorf("TouchSession() after 5 minutes: last_seen_at %v -> %v, expires_at %v -> %v; want later, unchanged",
			idle.LastSeenAt, touched.LastSeenAt, got.ExpiresAt, touched.ExpiresAt)
	}

	ended, err := s.DeleteSession(ctx, h)
	if err != nil {
		t.Fatalf("DeleteSession() = %v", err)
	}
	if ended.IDToken != in.IDToken || ended.SID != "sid-1" || ended.Subject != u.Sub {
		t.Errorf("DeleteSession() = %+v, want the ID token, sid and subject for logout", ended)
	}
	if live(t, s, h) {
		t.Error("a deleted session still resolves")
	}
	if _, err := s.DeleteSession(ctx, h); store.KindOf(err) != store.KindNotFound {
		t.Errorf("DeleteSession() twice = %v, want KindNotFound", err)
	}
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	u := storetest.User(t, s, uuid.Nil)
	h := newSession(t, s, u.ID, "https://op.test", "", u.Sub, time.Hour)
	storetest.MustExec(t, s.DB(), "UPDATE sessions SET expires_at = now() - interval '1 second', created_at = now() - interval '2 hours' WHERE token_hash = ?", h)
	if live(t, s, h) {
		t.Error("an expired session resolves")
	}
	// Logout still finds it, for the id_token_hint.
	if _, err := s.DeleteSession(t.Context(), h); err != nil {
		t.Errorf("DeleteSession() of an expired session = %v", err)
	}
}

func TestSessionOfInactiveUser(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	u := storetest.User(t, s, uuid.Nil)
	h := newSession(t, s, u.ID, "https://op.test", "", u.Sub, time.Hour)
	if !live(t, s, h) {
		t.Fatal("a new session does not resolve")
	}
	storetest.MustExec(t, s.DB(), "UPDATE users SET is_active = false WHERE id = ?", u.ID)
	if live(t, s, h) {
		t.Error("the session of a deactivated user still resolves")
	}
	storetest.MustExec(t, s.DB(), "UPDATE users SET is_active = true WHERE id = ?", u.ID)
	if !live(t, s, h) {
		t.Error("before a purge, reactivating the user should find the session again")
	}
}

func TestDeleteSessionsByProvider(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	u := storetest.User(t, s, uuid.Nil)
	other := storetest.User(t, s, uuid.Nil)
	iss := "https://op-" + storetest.Unique() + ".test"
	tests := []struct {
		name         string
		sid, subject string
		want         int
		gone, kept   []string // sessions, by name
	}{
		{"by sid", "sid-a", "", 1, []string{"a"}, []string{"b", "c", "otherIssuer", "otherUser"}},
		{"by sid and subject", "sid-b", u.Sub, 1, []string{"b"}, []string{"a", "c", "otherIssuer", "otherUser"}},
		{"sid of another subject", "sid-a", other.Sub, 0, nil, []string{"a", "b", "c", "otherIssuer", "otherUser"}},
		{"by subject", "", u.Sub, 3, []string{"a", "b", "c"}, []string{"otherIssuer", "otherUser"}},
		{"unknown sid", "sid-z", "", 0, nil, []string{"a", "b", "c", "otherIssuer", "otherUser"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each case has its own issuer, so cases cannot see each other's sessions.
			iss := iss + "/" + storetest.Unique()
			sessions := map[string][]byte{
				"a":           newSession(t, s, u.ID, iss, "sid-a", u.Sub, time.Hour),
				"b":           newSession(t, s, u.ID, iss, "sid-b", u.Sub, time.Hour),
				"c":           newSession(t, s, u.ID, iss, "", u.Sub, time.Hour),
				"otherIssuer": newSession(t, s, u.ID, iss+"/other", "sid-a", u.Sub, time.Hour),
				"otherUser":   newSession(t, s, other.ID, iss, "sid-o", other.Sub, time.Hour),
			}
			hashes, err := s.DeleteSessionsByProvider(t.Context(), iss, tt.sid, tt.subject)
			if err != nil || len(hashes) != tt.want {
				t.Errorf("DeleteSessionsByProvider() = %d hashes, %v; want %d", len(hashes), err, tt.want)
			}
			for _, name := range tt.gone {
				if !slices.ContainsFunc(hashes, func(h []byte) bool { return bytes.Equal(h, sessions[name]) }) {
					t.Errorf("the hash of deleted session %s is not returned", name)
				}
			}
			for _, name := range tt.gone {
				if live(t, s, sessions[name]) {
					t.Errorf("session %s survived", name)
				}
			}
			for _, name := range tt.kept {
				if !live(t, s, sessions[name]) {
					t.Errorf("session %s was ended", name)
				}
			}
		})
	}
	if _, err := s.DeleteSessionsByProvider(t.Context(), iss, "", ""); store.KindOf(err) != store.KindInvalid {
		t.Errorf("DeleteSessionsByProvider() without sid or subject = %v, want KindInvalid", err)
	}
}

func TestPurgeSessions(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	u := storetest.User(t, s, uuid.Nil)
	inactive := storetest.User(t, s, uuid.Nil)
	fresh := newSession(t, s, u.ID, "https://op.test", "", u.Sub, time.Hour)
	expired := newSession(t, s, u.ID, "https://op.test", "", u.Sub, time.Hour)
	ofInactive := newSession(t, s, inactive.ID, "https://op.test", "", inactive.Sub, time.Hour)
	storetest.MustExec(t, s.DB(), "UPDATE sessions SET created_at = now() - interval '2 hours', expires_at = now() - interval '1 hour' WHERE token_hash = ?", expired)
	storetest.MustExec(t, s.DB(), "UPDATE users SET is_active = false WHERE id = ?", inactive.ID)

	// Other tests run in parallel, so count rows by hash rather than trust the total.
	if _, err := s.PurgeSessions(t.Context()); err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string][]byte{"fresh": fresh, "expired": expired, "of an inactive user": ofInactive} {
		var n int
		if err := s.DB().NewRaw("SELECT count(*) FROM sessions WHERE token_hash = ?", h).Scan(t.Context(), &n); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 1, false: 0}[name == "fresh"]; n != want {
			t.Errorf("after PurgeSessions(), %d rows for the %s session, want %d", n, name, want)
		}
	}
	storetest.MustExec(t, s.DB(), "UPDATE users SET is_active = true WHERE id = ?", inactive.ID)
	if live(t, s, ofInactive) {
		t.Error("a purged session revived with its user")
	}
}

func TestSessionUserDeleted(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	u := storetest.User(t, s, uuid.Nil)
	h := newSession(t, s, u.ID, "https://op.test", "", u.Sub, time.Hour)
	storetest.MustExec(t, s.DB(), "DELETE FROM users WHERE id = ?", u.ID)
	var n int
	if err := s.DB().NewRaw("SELECT count(*) FROM sessions WHERE token_hash = ?", h).Scan(t.Context(), &n); err != nil || n != 0 {
		t.Errorf("sessions of a deleted user: %d rows (err %v), want 0", n, err)
	}
}
