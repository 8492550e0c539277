package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
	"lasuite.fr/people/webhook"
	"lasuite.fr/people/webhook/webhooktest"
)

// The webhook tests that go through run: a server process's deliveries, and the sealing of the
// webhooks' secrets at start. The sender's own tests are in webhook/.

// serveChildEnv, set in its environment, makes the test binary a server process (run with that
// environment, as main does) for TestWebhookServerKilled, which kills it.
const serveChildEnv = "PEOPLE_TEST_SERVE_CHILD"

func serveChild() {
	err := run(context.Background(), nil, os.Getenv, io.Discard, nil)
	fmt.Fprintln(os.Stderr, "people:", err)
	os.Exit(1)
}

// TestWebhookServerKilled: a change committed while no server runs; a server process starts,
// sends the delivery and is killed (SIGKILL) before it has an answer, so the delivery stays
// claimed and unrecorded; another server, started once the claim's lease is over, sends it again
// with the same Idempotency-Key and records it.
func TestWebhookServerKilled(t *testing.T) {
	s := storetest.Open(t)
	r := webhooktest.StartReceiver(t, false)
	r.SetAnswer(func(n int) (int, time.Duration) {
		if n == 1 {
			return http.StatusOK, time.Minute // no answer before the kill
		}
		return http.StatusOK, 0
	})
	team := storetest.TeamWithEveryRole(t, s)
	webhooktest.Hook(t, store.New(s.DB(), store.Options{WebhookAllowHTTP: true}), team.ID, r, "/hook", "s3cret")
	newcomer := storetest.User(t, s, team.Org)
	storetest.Access(t, s, team.ID, newcomer.ID, store.RoleMember)

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command(exe, "-test.run=^$")
	child.Env = append(os.Environ(), serveChildEnv+"=1", "DATABASE_URL="+storetest.URL(t), "LISTEN_ADDR=127.0.0.1:0",
		"WEBHOOK_ALLOW_HTTP=true", "WEBHOOK_ALLOWED_NETWORKS=127.0.0.1", "ENVIRONMENT=production")
	var stderr lockedBuffer
	child.Stderr = &stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	for deadline := time.Now().Add(60 * time.Second); len(r.Receipts()) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server process sent nothing within a minute; its stderr: %s", stderr.String())
		}
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	ds := webhooktest.Deliveries(t, s, team.ID)
	if len(ds) != 1 || ds[0].Status != store.WebhookStatusPending || ds[0].Attempts != 1 || ds[0].LastError != "" || !ds[0].HasSecret {
		t.Fatalf("after the kill: %+v, want one pending delivery, claimed once and unrecorded", ds)
	}

	webhooktest.FastForward(t, s, team.ID) // the claim's lease (a minute) runs out
	startServer(t, storetest.URL(t), map[string]string{"WEBHOOK_ALLOW_HTTP": "true", "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1"})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ds = webhooktest.Deliveries(t, s, team.ID); ds[0].Status != store.WebhookStatusPending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted server did not deliver: %+v", ds)
		}
	}
	if ds[0].Status != store.WebhookStatusSuccess || ds[0].Attempts != 2 {
		t.Errorf("delivery %+v, want success at the second attempt", ds[0])
	}
	got := r.Receipts()
	if len(got) != 2 {
		t.Fatalf("receipts %+v, want the killed attempt and the one after the restart", got)
	}
	for _, g := range got {
		want := webhooktest.Receipt{Method: http.MethodPatch, Path: "/hook", ContentType: "application/scim+json", Authorization: "Bearer s3cret",
			IdempotencyKey: ds[0].ID.String(), Body: webhooktest.Member("add", newcomer)}
		if diff := cmp.Diff(want, g); diff != "" {
			t.Errorf("request (-want +got):\n%s", diff)
		}
	}
}

// TestWebhookSecretsSealedAtStart: a start (here `people migrate`) seals the secrets stored in
// clear (as migration 0009 leaves those stored before it) and those sealed under a key now in
// SECRET_KEY_FALLBACKS, without printing them; the deliveries then carry the secrets with the
// new key alone, and a server that has lost the key sends nothing and says why.
func TestWebhookSecretsSealedAtStart(t *testing.T) {
	db := storetest.EmptyDatabase(t) // its own: a start seals every row of its database
	const oldKey, newKey = "the old key of at least thirty-two characters", "the new key of at least thirty-two characters"
	open := func(keys ...string) *store.Store {
		t.Helper()
		o := store.Options{MaxConns: 4, WebhookAllowHTTP: true}
		for _, k := range keys {
			o.SecretKeys = append(o.SecretKeys, []byte(k))
		}
		s, err := store.Open(t.Context(), db, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	if err := run(t.Context(), []string{"migrate"}, env(map[string]string{"DATABASE_URL": db}), io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	old := open(oldKey)
	r := webhooktest.StartReceiver(t, false)
	team := storetest.TeamWithEveryRole(t, old)
	legacy := webhooktest.Hook(t, old, team.ID, r, "/legacy", "legacy-"+storetest.Unique())
	storetest.MustExec(t, old.DB(), "UPDATE team_webhooks SET secret = ? WHERE id = ?", "plain:legacy-secret", legacy.ID)
	webhooktest.Hook(t, old, team.ID, r, "/sealed", "sealed-secret")

	var logs bytes.Buffer
	vars := map[string]string{"DATABASE_URL": db, "SECRET_KEY": newKey, "SECRET_KEY_FALLBACKS": "an unrelated key, " + oldKey, "LOG_LEVEL": "debug"}
	if err := run(t.Context(), []string{"migrate"}, env(vars), &logs, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "webhook secrets sealed under the current key") || strings.Contains(logs.String(), "neither SECRET_KEY") {
		t.Errorf("migrate's log:\n%s\nwant the sealing reported", logs.String())
	}
	for _, leak := range []string{"legacy-secret", "sealed-secret", oldKey, newKey} {
		if strings.Contains(logs.String(), leak) {
			t.Errorf("migrate's log prints %q", leak)
		}
	}
	var clear int
	if err := old.DB().QueryRowContext(t.Context(), `SELECT count(*) FROM team_webhooks
		WHERE secret NOT LIKE 'v1:%' OR secret LIKE '%secret%'`).Scan(&clear); err != nil || clear != 0 {
		t.Errorf("%d secrets not sealed (%v)", clear, err)
	}

	storetest.Access(t, old, team.ID, team.Outsider, store.RoleMember)
	sender := func(s *store.Store) *webhook.Sender {
		return webhook.New(webhook.Options{MaxAge: time.Hour, Retention: time.Hour, AllowHTTP: true,
			AllowedNetworks: []netip.Prefix{webhooktest.Loopback}}, s, slog.New(slog.DiscardHandler))
	}
	lost := sender(open("a third key: the others forgotten"))
	if _, err := lost.SendDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ws := webhooktest.WebhookOf(t, old, legacy); ws.LastError != "webhook secret unreadable: SECRET_KEY changed without SECRET_KEY_FALLBACKS" || r.Connections() != 0 {
		t.Errorf("webhook %+v, %d connections; want the secret unreadable and nothing sent", ws, r.Connections())
	}

	webhooktest.FastForward(t, old, team.ID)
	webhooktest.Drain(t, sender(open(newKey)).SendDue, old, team.ID) // the old key no longer needed
	got := map[string]string{}
	for _, g := range r.Receipts() {
		got[g.Path] = g.Authorization
	}
	if diff := cmp.Diff(map[string]string{"/legacy": "Bearer legacy-secret", "/sealed": "Bearer sealed-secret"}, got); diff != "" {
		t.Errorf("Authorization by webhook (-want +got):\n%s", diff)
	}
}
