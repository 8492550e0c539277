package store_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"lasuite.fr/people/migrations"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

var (
	key1 = []byte("first key of at least thirty-two characters")
	key2 = []byte("second key of at least thirty-two characters")
)

// ownDatabase is a migrated database of the test's own, opened with keys: SealWebhookSecrets
// seals every row of its database, which must not be another parallel test's.
func ownDatabase(t *testing.T, keys ...[]byte) (*store.Store, string) {
	t.Helper()
	url := storetest.EmptyDatabase(t)
	s := openWith(t, url, keys...)
	if _, err := migrations.Up(t.Context(), s.DB().DB); err != nil {
		t.Fatal(err)
	}
	return s, url
}

func openWith(t *testing.T, url string, keys ...[]byte) *store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), url, store.Options{MaxConns: 2, SecretKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func rawSecrets(t *testing.T, s *store.Store, webhook uuid.UUID) (hook, delivery string) {
	t.Helper()
	if err := s.DB().QueryRowContext(t.Context(), `SELECT w.secret, coalesce(min(d.secret), '') FROM team_webhooks w
		LEFT JOIN team_webhook_deliveries d ON d.webhook_id = w.id AND d.status = 'pending'
		WHERE w.id = ? GROUP BY w.secret`, webhook).Scan(&hook, &delivery); err != nil {
		t.Fatal(err)
	}
	return hook, delivery
}

// TestWebhookSecretsSealed: a secret is stored sealed, on the webhook and its deliveries, bound
// to its webhook, and nothing staff read holds it.
func TestWebhookSecretsSealed(t *testing.T) {
	t.Parallel()
	s := storetest.Open(t)
	k1 := store.New(s.DB(), store.Options{SecretKeys: [][]byte{key1}})
	team := storetest.TeamWithEveryRole(t, s)
	secret := "s3cret-" + storetest.Unique()
	w, err := k1.CreateTeamWebhook(t.Context(), store.NewTeamWebhook{TeamID: team.ID, URL: "https://r.example.test/" + storetest.Unique(), Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	storetest.Access(t, s, team.ID, team.Outsider, store.RoleMember)
	hook, delivery := rawSecrets(t, s, w.ID)
	for _, raw := range []string{hook, delivery} {
		if !strings.HasPrefix(raw, "v1:") || strings.Contains(raw, secret) {
			t.Errorf("stored secret %q, want it sealed", raw)
		}
	}
	if got, err := k1.OpenSecret(delivery, w.ID); got != secret || err != nil {
		t.Errorf("the delivery's secret opens to %q, %v; want the secret", got, err)
	}
	if _, err := k1.OpenSecret(delivery, uuid.New()); err == nil {
		t.Error("the secret opens for another webhook")
	}
	if _, err := s.OpenSecret(delivery, w.ID); err == nil {
		t.Error("the secret opens without its key")
	}
	// Sealed twice, a secret reads differently (a fresh nonce each time).
	if again, err := k1.UpdateTeamWebhook(t.Context(), w.ID, store.TeamWebhookUpdate{Secret: &secret}); err != nil || !again.HasSecret {
		t.Fatalf("update: %+v, %v", again, err)
	}
	if h, _ := rawSecrets(t, s, w.ID); h == hook {
		t.Error("the same secret sealed twice reads the same")
	}
}

// TestSealWebhookSecrets: the secrets stored in clear (as migration 0009 tags them) and those
// sealed under a previous key are sealed under the current one at start-up, in batches, and
// still open; a value no key opens is counted and left alone.
func TestSealWebhookSecrets(t *testing.T) {
	t.Parallel()
	s1, url := ownDatabase(t, key1)
	team := storetest.TeamWithEveryRole(t, s1)
	type hook struct {
		id     uuid.UUID
		secret string
	}
	var hooks []hook
	for i := range 250 { // more than two batches
		secret := "secret-" + storetest.Unique()
		w, err := s1.CreateTeamWebhook(t.Context(), store.NewTeamWebhook{TeamID: team.ID, URL: "https://r.example.test/" + storetest.Unique(), Secret: secret})
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 { // as migration 0009 leaves a secret stored before it
			storetest.MustExec(t, s1.DB(), "UPDATE team_webhooks SET secret = ? WHERE id = ?", "plain:"+secret, w.ID)
		}
		hooks = append(hooks, hook{w.ID, secret})
	}
	storetest.Access(t, s1, team.ID, team.Outsider, store.RoleMember) // a delivery per webhook
	storetest.MustExec(t, s1.DB(), "INSERT INTO team_webhook_deliveries (webhook_id, team_id, url, secret, protocol, operation, user_id) VALUES (?, ?, 'https://gone.example.test/', 'plain:orphan', 'scim', 'remove', ?)",
		uuid.New(), team.ID, team.Member) // the delivery of a webhook deleted with its team

	// Rotation: key2 is current, key1 a fallback.
	s2 := openWith(t, url, key2, key1)
	sealed, unreadable, err := s2.SealWebhookSecrets(t.Context())
	if err != nil || unreadable != 0 || sealed < 251 {
		t.Fatalf("SealWebhookSecrets() = %d, %d, %v; want every webhook and the orphan delivery sealed", sealed, unreadable, err)
	}
	only2 := openWith(t, url, key2)
	for _, h := range hooks {
		raw, delivery := rawSecrets(t, s2, h.id)
		for _, v := range []string{raw, delivery} {
			if got, err := only2.OpenSecret(v, h.id); got != h.secret || err != nil {
				t.Fatalf("webhook %s: %q opens to %q, %v with the new key alone; want %q", h.id, v, got, err, h.secret)
			}
		}
	}
	var orphan string
	if err := s2.DB().QueryRowContext(t.Context(), "SELECT secret FROM team_webhook_deliveries WHERE url = 'https://gone.example.test/'").Scan(&orphan); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(orphan, "v1:") {
		t.Errorf("the orphan delivery's secret is %q, want it sealed", orphan)
	}
	if sealed, unreadable, err := only2.SealWebhookSecrets(t.Context()); sealed != 0 || unreadable != 0 || err != nil {
		t.Errorf("SealWebhookSecrets() again = %d, %d, %v; want nothing to do", sealed, unreadable, err)
	}

	// A key lost: its values are counted, left alone, and never sealed under the new key.
	lost := openWith(t, url, []byte("a third key, the old ones forgotten......"))
	before, _ := rawSecrets(t, s2, hooks[0].id)
	if sealed, unreadable, err := lost.SealWebhookSecrets(t.Context()); sealed != 0 || unreadable < 250 || err != nil {
		t.Errorf("SealWebhookSecrets() without the key = %d, %d, %v; want every value unreadable", sealed, unreadable, err)
	}
	if after, _ := rawSecrets(t, s2, hooks[0].id); after != before {
		t.Errorf("an unreadable value changed from %q to %q", before, after)
	}
}
