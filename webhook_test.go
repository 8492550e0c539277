package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// The webhook tests share the package database's outbox, and a sender claims whatever is due
// in it, so they run one after the other (no t.Parallel) and each cancels its leftovers by
// deleting its webhooks.

// receipt is one request a receiver got.
type receipt struct {
	Method, Path, ContentType, Authorization, IdempotencyKey string
	Body                                                     scimPatch
}

// loopback is where the receivers listen.
var loopback = netip.MustParsePrefix("127.0.0.1/32")

// receiver is an in-process webhook receiver on 127.0.0.1. answer decides each response; a
// sender that hangs up during the delay gets none.
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	conns  int // connections accepted
	got    []receipt
	answer func(n int) (status int, delay time.Duration) // n counts requests from 1
}

func startReceiver(t *testing.T, tls bool) *receiver {
	t.Helper()
	r := &receiver{answer: func(int) (int, time.Duration) { return http.StatusOK, 0 }}
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body scimPatch
		b, _ := io.ReadAll(req.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("receiver: body %q is not JSON: %v", b, err)
		}
		r.mu.Lock()
		r.got = append(r.got, receipt{req.Method, req.URL.Path, req.Header.Get("Content-Type"), req.Header.Get("Authorization"),
			req.Header.Get("Idempotency-Key"), body})
		status, delay := r.answer(len(r.got))
		r.mu.Unlock()
		select {
		case <-time.After(delay):
		case <-req.Context().Done():
			// The sender hung up (timed out, or was killed): no answer. Answering now would be
			// a success sometimes seen by the sender after its deadline (its transport uses a
			// response racing the cancellation), not the timeout the test wants.
			panic(http.ErrAbortHandler)
		}
		w.WriteHeader(status)
	})
	r.srv = httptest.NewUnstartedServer(h)
	r.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			r.mu.Lock()
			r.conns++
			r.mu.Unlock()
		}
	}
	if tls {
		r.srv.StartTLS()
	} else {
		r.srv.Start()
	}
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) connections() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns
}

func (r *receiver) receipts() []receipt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receipt(nil), r.got...)
}

func (r *receiver) setAnswer(f func(n int) (int, time.Duration)) {
	r.mu.Lock()
	r.answer = f
	r.mu.Unlock()
}

// roots trusts the receiver's self-signed certificate.
func (r *receiver) roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(r.srv.Certificate())
	return p
}

// testSender is a sender that retries after 20-40 ms, with a maximum age of maxAge. Its
// timeout is generous: the tests run on loaded machines, and only a hung receiver reaches it.
// The receivers listen on 127.0.0.1, which webhooks may reach only when allowed, as here.
func testSender(s *store.Store, roots *x509.CertPool, maxAge time.Duration) *webhookSender {
	w := newWebhookSender(webhookConfig{MaxAge: maxAge, Retention: time.Hour, AllowedNetworks: []netip.Prefix{loopback}},
		s, slog.New(slog.DiscardHandler), roots)
	w.timeout, w.lease, w.backoffBase, w.backoffCap = 15*time.Second, time.Minute, 40*time.Millisecond, 40*time.Millisecond
	return w
}

// fastForward makes the team's waiting deliveries due now, as if their backoff or lease had
// run out: the tests check that they wait, then do not wait.
func fastForward(t *testing.T, s *store.Store, team uuid.UUID) {
	t.Helper()
	storetest.MustExec(t, s.DB(), "UPDATE team_webhook_deliveries SET next_attempt_at = now() WHERE team_id = ? AND status = 'pending'", team)
}

// hook creates a webhook for team to the receiver at path, deleted (with its pending
// deliveries) when the test ends.
func hook(t *testing.T, s *store.Store, team uuid.UUID, r *receiver, path, secret string) *store.TeamWebhook {
	t.Helper()
	w, err := s.CreateTeamWebhook(t.Context(), store.NewTeamWebhook{TeamID: team, URL: r.srv.URL + path, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.DeleteTeamWebhook(context.Background(), w.ID) })
	return w
}

// webhookOf reads a webhook's state as staff see it.
func webhookOf(t *testing.T, s *store.Store, w *store.TeamWebhook) store.TeamWebhook {
	t.Helper()
	ws, err := s.TeamWebhooks(t.Context(), storetest.StaffActor(t, s), []uuid.UUID{w.TeamID})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ws[w.TeamID] {
		if x.ID == w.ID {
			return x
		}
	}
	t.Fatalf("webhook %s not found", w.ID)
	return store.TeamWebhook{}
}

// deliveryRow is a delivery's bookkeeping.
type deliveryRow struct {
	ID        uuid.UUID `bun:"id"`
	Operation string    `bun:"operation"`
	UserID    uuid.UUID `bun:"user_id"`
	Status    string    `bun:"status"`
	Attempts  int       `bun:"attempts"`
	HasSecret bool      `bun:"has_secret"`
	Finished  bool      `bun:"finished"`
	LastError string    `bun:"last_error"`
}

func deliveriesOf(t *testing.T, s *store.Store, team uuid.UUID) []deliveryRow {
	t.Helper()
	var ds []deliveryRow
	err := s.DB().NewRaw(`SELECT id, operation, user_id, status, attempts, secret IS NOT NULL AS has_secret,
			finished_at IS NOT NULL AS finished, coalesce(last_error, '') AS last_error
		FROM team_webhook_deliveries WHERE team_id = ? ORDER BY seq`, team).Scan(t.Context(), &ds)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// drain calls sendDue until every delivery of team is finished, or fails after a few seconds.
func drain(t *testing.T, w *webhookSender, s *store.Store, team uuid.UUID) []deliveryRow {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := w.sendDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		ds := deliveriesOf(t, s, team)
		done := true
		for _, d := range ds {
			done = done && d.Status != store.WebhookStatusPending
		}
		if done {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries not finished: %+v", ds)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func member(op string, u store.User) scimPatch {
	email := u.Email
	return scimPatch{Schemas: []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		Operations: []scimOperation{{Op: op, Path: "members", Value: []scimMember{{Value: u.ID.String(), Email: &email, Type: "User"}}}}}
}

func TestWebhookDelivered(t *testing.T) {
	s := storetest.Open(t)
	r := startReceiver(t, true)
	team := storetest.TeamWithEveryRole(t, s)
	w := hook(t, s, team.ID, r, "/scim/v2/Groups/42", "s3cret")
	bare := hook(t, s, team.ID, r, "/no-secret", "")
	sender := testSender(s, r.roots(), time.Hour)
	if ws := webhookOf(t, s, w); ws.Status != store.WebhookStatusPending || ws.LastDeliveryAt != nil {
		t.Errorf("a new webhook: %+v, want pending and never delivered", ws)
	}

	newcomer := storetest.User(t, s, team.Org)
	a, err := s.CreateTeamAccess(t.Context(), store.UserActor(team.Owner), team.ID, newcomer.ID, store.RoleMember)
	if err != nil {
		t.Fatal(err)
	}
	if ws := webhookOf(t, s, w); ws.Status != store.WebhookStatusPending || ws.Pending != 1 {
		t.Errorf("with a delivery waiting: %+v, want pending, 1 pending", ws)
	}
	if _, err := s.SetTeamAccessRole(t.Context(), store.UserActor(team.Owner), a.ID, store.RoleAdministrator); err != nil {
		t.Fatal(err)
	}
	ds := drain(t, sender, s, team.ID)
	if len(ds) != 2 { // one per webhook; the role change sends nothing
		t.Fatalf("deliveries %+v, want the addition to each webhook", ds)
	}
	got := r.receipts()
	if len(got) != 2 {
		t.Fatalf("receiver got %d requests, want 2: %+v", len(got), got)
	}
	byPath := map[string]receipt{got[0].Path: got[0], got[1].Path: got[1]}
	want := receipt{Method: http.MethodPatch, Path: "/scim/v2/Groups/42", ContentType: "application/scim+json",
		Authorization: "Bearer s3cret", Body: member("add", newcomer)}
	for _, d := range ds {
		if byPath["/scim/v2/Groups/42"].IdempotencyKey == d.ID.String() {
			want.IdempotencyKey = d.ID.String()
		}
	}
	if diff := cmp.Diff(want, byPath["/scim/v2/Groups/42"]); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	if got := byPath["/no-secret"]; got.Authorization != "" || got.IdempotencyKey == "" || got.IdempotencyKey == want.IdempotencyKey {
		t.Errorf("request to the webhook without a secret: %+v, want no Authorization and its own Idempotency-Key", got)
	}
	for _, d := range ds {
		if d.Status != store.WebhookStatusSuccess || d.Attempts != 1 || d.HasSecret || !d.Finished || d.LastError != "" {
			t.Errorf("delivery %+v, want success at the first attempt, its secret forgotten", d)
		}
	}
	ws := webhookOf(t, s, w)
	if ws.Status != store.WebhookStatusSuccess || ws.Pending != 0 || ws.Failed != 0 || ws.LastDeliveryAt == nil || ws.LastError != "" || !ws.HasSecret {
		t.Errorf("webhook after the delivery: %+v", ws)
	}
	if n, err := sender.sendDue(t.Context()); n != 0 || err != nil {
		t.Errorf("second sendDue() = %d, %v; a delivery is sent once", n, err)
	}

	// The removal, as People's: same message with op remove.
	if _, err := s.DeleteTeamAccess(t.Context(), store.UserActor(team.Owner), a.ID); err != nil {
		t.Fatal(err)
	}
	s.DeleteTeamWebhook(t.Context(), bare.ID)
	drain(t, sender, s, team.ID)
	if got := r.receipts(); len(got) != 3 || !cmp.Equal(got[2].Body, member("remove", newcomer)) {
		t.Errorf("receipts %+v, want the removal last", got)
	}
}

func TestWebhookRetriedUntilDelivered(t *testing.T) {
	s := storetest.Open(t)
	r := startReceiver(t, true)
	r.setAnswer(func(n int) (int, time.Duration) {
		if n <= 2 {
			return http.StatusServiceUnavailable, 0
		}
		return http.StatusNoContent, 0
	})
	team := storetest.TeamWithEveryRole(t, s)
	w := hook(t, s, team.ID, r, "/hook", "")
	sender := testSender(s, r.roots(), time.Hour)
	sender.backoffBase, sender.backoffCap = time.Minute, time.Minute
	storetest.Access(t, s, team.ID, team.Outsider, store.RoleMember)

	if _, err := sender.sendDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	ws := webhookOf(t, s, w)
	if ws.Status != store.WebhookStatusPending || ws.Pending != 1 || ws.Attempts != 1 || !strings.Contains(ws.LastError, "503") || ws.LastDeliveryAt == nil {
		t.Errorf("after a failed attempt: %+v, want pending after 1 attempt, with the 503", ws)
	}
	if n, _ := sender.sendDue(t.Context()); n != 0 {
		t.Errorf("retried at once, before its backoff")
	}
	var wait float64
	if err := s.DB().QueryRowContext(t.Context(), `SELECT extract(epoch FROM next_attempt_at - now()) FROM team_webhook_deliveries
		WHERE team_id = ?`, team.ID).Scan(&wait); err != nil || wait < 25 || wait > 60 {
		t.Errorf("next attempt in %vs (%v), want 30 to 60 s (a minute's backoff, jittered)", wait, err)
	}
	for range 2 {
		fastForward(t, s, team.ID)
		if _, err := sender.sendDue(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	ds := deliveriesOf(t, s, team.ID)
	if len(ds) != 1 || ds[0].Status != store.WebhookStatusSuccess || ds[0].Attempts != 3 || ds[0].LastError != "" {
		t.Errorf("deliveries %+v, want one success at the third attempt", ds)
	}
	got := r.receipts()
	if len(got) != 3 || got[0].IdempotencyKey != got[2].IdempotencyKey {
		t.Errorf("receipts %+v, want three attempts with one Idempotency-Key", got)
	}
	if ws := webhookOf(t, s, w); ws.Status != store.WebhookStatusSuccess || ws.LastError != "" || ws.Failed != 0 || ws.Attempts != 3 {
		t.Errorf("after the recovery: %+v, want success after 3 attempts", ws)
	}
}

func TestWebhookGivenUpAfterMaxAge(t *testing.T) {
	s := storetest.Open(t)
	r := startReceiver(t, true)
	r.srv.Close() // down for good
	team := storetest.TeamWithEveryRole(t, s)
	w := hook(t, s, team.ID, r, "/hook", "s3cret")
	sender := testSender(s, r.roots(), 300*time.Millisecond)
	// The maximum age counts from the delivery's creation, in the access's transaction: start
	// the clock before it, or a give-up right at the maximum age looks early.
	start := time.Now()
	storetest.Access(t, s, team.ID, team.Outsider, store.RoleMember)

	ds := drain(t, sender, s, team.ID)
	if len(ds) != 1 || ds[0].Status != store.WebhookStatusFailure || !ds[0].Finished || ds[0].HasSecret || ds[0].Attempts < 2 ||
		ds[0].LastError != "connection failed" {
		t.Errorf("deliveries %+v, want one failure after several attempts, its secret forgotten", ds)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Errorf("given up after %v, before the maximum age", time.Since(start))
	}
	ws := webhookOf(t, s, w)
	if ws.Status != store.WebhookStatusFailure || ws.Failed != 1 || ws.Pending != 0 || ws.LastError == "" || ws.Attempts != ds[0].Attempts {
		t.Errorf("webhook %+v, want failure, 1 failed, the delivery's %d attempts", ws, ds[0].Attempts)
	}
	if n, _ := sender.sendDue(t.Context()); n != 0 {
		t.Errorf("a given-up delivery was tried again")
	}
}

// A change committed while no server runs, or while a sender dies before recording its send,
// is delivered by the next one.
func TestWebhookSurvivesRestart(t *testing.T) {
	s := storetest.Open(t)
	r := startReceiver(t, true)
	team := storetest.TeamWithEveryRole(t, s)
	hook(t, s, team.ID, r, "/hook", "")

	t.Run("committed with no server running", func(t *testing.T) {
		storetest.Access(t, s, team.ID, team.Outsider, store.RoleMember)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); testSender(s, r.roots(), time.Hour).run(ctx, 10*time.Millisecond) }()
		defer func() { cancel(); <-done }()
		// Until the sender has recorded its success: stopped between the receiver's answer and
		// that record, it would leave the delivery claimed, and the team's next delivery
		// (below) waits behind it.
		deadline := time.Now().Add(30 * time.Second)
		ds := deliveriesOf(t, s, team.ID)
		for (len(ds) != 1 || ds[0].Status != store.WebhookStatusSuccess) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			ds = deliveriesOf(t, s, team.ID)
		}
		if len(r.receipts()) != 1 || len(ds) != 1 || ds[0].Status != store.WebhookStatusSuccess {
			t.Fatalf("receipts %+v, deliveries %+v", r.receipts(), ds)
		}
	})

	t.Run("sender killed during a send", func(t *testing.T) {
		storetest.MustExec(t, s.DB(), "DELETE FROM team_accesses WHERE team_id = ? AND user_id = ?", team.ID, team.Outsider)
		// The dead sender claimed the delivery and never recorded it.
		claimed, err := s.ClaimWebhookDeliveries(t.Context(), 100, time.Minute)
		if err != nil || len(claimed) != 1 || claimed[0].Operation != "remove" {
			t.Fatalf("ClaimWebhookDeliveries() = %+v, %v", claimed, err)
		}
		sender := testSender(s, r.roots(), time.Hour)
		if n, _ := sender.sendDue(t.Context()); n != 0 {
			t.Fatalf("a claimed delivery was taken over during its lease")
		}
		fastForward(t, s, team.ID) // the lease runs out
		ds := drain(t, sender, s, team.ID)
		if last := ds[len(ds)-1]; last.ID != claimed[0].ID || last.Status != store.WebhookStatusSuccess || last.Attempts != 2 {
			t.Errorf("delivery %+v, want the removal delivered at its second attempt", last)
		}
		if got := r.receipts(); len(got) != 2 || got[1].IdempotencyKey != claimed[0].ID.String() {
			t.Errorf("receipts %+v", got)
		}
	})
}

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
	r := startReceiver(t, false)
	r.setAnswer(func(n int) (int, time.Duration) {
		if n == 1 {
			return http.StatusOK, time.Minute // no answer before the kill
		}
		return http.StatusOK, 0
	})
	team := storetest.TeamWithEveryRole(t, s)
	hook(t, store.New(s.DB(), store.Options{WebhookAllowHTTP: true}), team.ID, r, "/hook", "s3cret")
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
	for deadline := time.Now().Add(60 * time.Second); len(r.receipts()) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server process sent nothing within a minute; its stderr: %s", stderr.String())
		}
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	ds := deliveriesOf(t, s, team.ID)
	if len(ds) != 1 || ds[0].Status != store.WebhookStatusPending || ds[0].Attempts != 1 || ds[0].LastError != "" || !ds[0].HasSecret {
		t.Fatalf("after the kill: %+v, want one pending delivery, claimed once and unrecorded", ds)
	}

	fastForward(t, s, team.ID) // the claim's lease (a minute) runs out
	startServer(t, storetest.URL(t), map[string]string{"WEBHOOK_ALLOW_HTTP": "true", "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1"})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ds = deliveriesOf(t, s, team.ID); ds[0].Status != store.WebhookStatusPending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted server did not deliver: %+v", ds)
		}
	}
	if ds[0].Status != store.WebhookStatusSuccess || ds[0].Attempts != 2 {
		t.Errorf("delivery %+v, want success at the second attempt", ds[0])
	}
	got := r.receipts()
	if len(got) != 2 {
		t.Fatalf("receipts %+v, want the killed attempt and the one after the restart", got)
	}
	for _, g := range got {
		want := receipt{Method: http.MethodPatch, Path: "/hook", ContentType: "application/scim+json", Authorization: "Bearer s3cret",
			IdempotencyKey: ds[0].ID.String(), Body: member("add", newcomer)}
		if diff := cmp.Diff(want, g); diff != "" {
			t.Errorf("request (-want +got):\n%s", diff)
		}
	}
}

// Two senders (two server instances) share the outbox: each delivery is received once, and a
// user's changes reach each webhook in order.
func TestWebhookTwoSenders(t *testing.T) {
	s := storetest.Open(t)
	r := startReceiver(t, true)
	r.setAnswer(func(int) (int, time.Duration) { return http.StatusOK, 5 * time.Millisecond })
	team := storetest.TeamWithEveryRole(t, s)
	hook(t, s, team.ID, r, "/a", "")
	hook(t, s, team.ID, r, "/b", "")
	const users = 20
	for range users {
		u := storetest.User(t, s, team.Org)
		storetest.Access(t, s, team.ID, u.ID, store.RoleMember)
		storetest.MustExec(t, s.DB(), "DELETE FROM team_accesses WHERE team_id = ? AND user_id = ?", team.ID, u.ID)
	}
	const want = users * 2 * 2 // an addition and a removal, to two webhooks

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for _, st := range []*store.Store{s, storetest.OpenFresh(t)} {
		wg.Go(func() { testSender(st, r.roots(), time.Hour).run(ctx, 5*time.Millisecond) })
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(r.receipts()) < want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // time for a double delivery to show
	cancel()
	wg.Wait()

	got := r.receipts()
	perKey, order := map[string]int{}, map[string][]string{}
	for _, g := range got {
		perKey[g.IdempotencyKey]++
		k := g.Path + " " + g.Body.Operations[0].Value[0].Value
		order[k] = append(order[k], g.Body.Operations[0].Op)
	}
	if len(got) != want || len(perKey) != want {
		t.Errorf("%d receipts with %d keys, want %d of each", len(got), len(perKey), want)
	}
	for k, n := range perKey {
		if n != 1 {
			t.Errorf("delivery %s received %d times", k, n)
		}
	}
	for k, ops := range order {
		if !cmp.Equal(ops, []string{"add", "remove"}) {
			t.Errorf("%s received %v, want add then remove", k, ops)
		}
	}
}

// Memberships that People never announced: invitations accepted at login, and the members of a
// deleted team or a deleted user.
func TestWebhookCascades(t *testing.T) {
	s := storetest.Open(t)
	r := startReceiver(t, true)
	sender := testSender(s, r.roots(), time.Hour)
	team := storetest.TeamWithEveryRole(t, s)
	hook(t, s, team.ID, r, "/hook", "s3cret")
	other := storetest.TeamWithEveryRole(t, s)
	hook(t, s, other.ID, r, "/other", "")

	email := "invitee-" + storetest.Unique() + "@example.test"
	if _, err := s.CreateInvitation(t.Context(), store.UserActor(team.Owner), store.NewInvitation{TeamID: team.ID, Email: email, Role: store.RoleMember}); err != nil {
		t.Fatal(err)
	}
	invitee, err := s.ProvisionLogin(t.Context(), store.Claims{EmailVerified: true, Issuer: "https://idp.example.test", Subject: "sub-" + storetest.Unique(), Email: email},
		store.DefaultLoginOptions())
	if err != nil {
		t.Fatal(err)
	}
	drain(t, sender, s, team.ID)
	if got := r.receipts(); len(got) != 1 || !cmp.Equal(got[0].Body, member("add", *invitee)) {
		t.Fatalf("receipts %+v, want the invitee's addition", got)
	}

	// A user deleted: removed from the team, announced with the email they had.
	gone := storetest.User(t, s, other.Org)
	storetest.Access(t, s, other.ID, gone.ID, store.RoleMember)
	storetest.MustExec(t, s.DB(), "DELETE FROM users WHERE id = ?", gone.ID)
	drain(t, sender, s, other.ID)
	got := r.receipts()
	if n := len(got); n != 3 || !cmp.Equal(got[1].Body, member("add", gone)) || !cmp.Equal(got[2].Body, member("remove", gone)) {
		t.Fatalf("receipts %+v, want the deleted user's addition and removal", got[1:])
	}

	// The team deleted: its webhook goes with it, yet every member is announced as removed.
	if _, err := s.DeleteTeam(t.Context(), store.UserActor(team.Owner), team.ID, false); err != nil {
		t.Fatal(err)
	}
	ds := drain(t, sender, s, team.ID)
	removed := map[string]receipt{}
	for _, g := range r.receipts()[3:] {
		removed[g.Body.Operations[0].Value[0].Value] = g
	}
	for _, u := range []uuid.UUID{team.Owner, team.Admin, team.Member, invitee.ID} {
		g, ok := removed[u.String()]
		if !ok || g.Body.Operations[0].Op != "remove" || g.Authorization != "Bearer s3cret" || g.Path != "/hook" {
			t.Errorf("member %s of the deleted team: %+v, want a removal with the webhook's secret", u, g)
		}
	}
	if len(removed) != 4 || len(ds) != 5 {
		t.Errorf("removals %d, deliveries %d; want 4 and 5", len(removed), len(ds))
	}
}

// TLS is verified (People's requests had verify=False), and plain http needs WEBHOOK_ALLOW_HTTP.
func TestWebhookTransportSecurity(t *testing.T) {
	s := storetest.Open(t)
	dev := store.New(s.DB(), store.Options{WebhookAllowHTTP: true})

	t.Run("self-signed certificate refused", func(t *testing.T) {
		r := startReceiver(t, true)
		team := storetest.TeamWithEveryRole(t, s)
		w := hook(t, s, team.ID, r, "/hook", "s3cret")
		storetest.Access(t, s, team.ID, team.Outsider, store.RoleMember)
		if _, err := testSender(s, nil, time.Hour).sendDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		if ws := webhookOf(t, s, w); ws.LastError != "TLS certificate refused" || len(r.receipts()) != 0 {
			t.Errorf("webhook %+v, receipts %d; want a certificate error and nothing received", ws, len(r.receipts()))
		}
	})

	t.Run("http only when allowed", func(t *testing.T) {
		r := startReceiver(t, false)
		team := storetest.TeamWithEveryRole(t, s)
		w := hook(t, dev, team.ID, r, "/hook", "")
		storetest.Access(t, s, team.ID, team.Outsider, store.RoleMember)
		if _, err := testSender(s, nil, time.Hour).sendDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		if ws := webhookOf(t, s, w); !strings.Contains(ws.LastError, "WEBHOOK_ALLOW_HTTP") || len(r.receipts()) != 0 {
			t.Errorf("webhook %+v, receipts %d; want http refused", ws, len(r.receipts()))
		}
		allowed := testSender(s, nil, time.Hour)
		allowed.cfg.AllowHTTP = true
		if ds := drain(t, allowed, s, team.ID); ds[0].Status != store.WebhookStatusSuccess || len(r.receipts()) != 1 {
			t.Errorf("deliveries %+v with WEBHOOK_ALLOW_HTTP", ds)
		}
	})

	t.Run("redirect not followed", func(t *testing.T) {
		r := startReceiver(t, true)
		r.setAnswer(func(int) (int, time.Duration) { return http.StatusFound, 0 })
		team := storetest.TeamWithEveryRole(t, s)
		w := hook(t, s, team.ID, r, "/hook", "s3cret")
		storetest.Access(t, s, team.ID, team.Outsider, store.RoleMember)
		if _, err := testSender(s, r.roots(), time.Hour).sendDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		if ws := webhookOf(t, s, w); ws.LastError != "HTTP 3xx (302): redirects are not followed" || len(r.receipts()) != 1 {
			t.Errorf("webhook %+v, want the 302 as a failure", ws)
		}
	})

	t.Run("a timed-out attempt is sent again with its key", func(t *testing.T) {
		r := startReceiver(t, true)
		r.setAnswer(func(n int) (int, time.Duration) {
			if n == 1 {
				return http.StatusOK, 10 * time.Second // until the sender gives up and hangs up
			}
			return http.StatusOK, 0
		})
		team := storetest.TeamWithEveryRole(t, s)
		w := hook(t, s, team.ID, r, "/hook", "")
		storetest.Access(t, s, team.ID, team.Outsider, store.RoleMember)
		sender := testSender(s, r.roots(), time.Hour)
		sender.timeout = time.Second
		if _, err := sender.sendDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		if ws := webhookOf(t, s, w); ws.LastError != "timeout: no answer within 1s" {
			t.Errorf("webhook %+v, want a timeout", ws)
		}
		if ds := drain(t, sender, s, team.ID); ds[0].Status != store.WebhookStatusSuccess {
			t.Errorf("delivery %+v, want delivered after the timeout", ds[0])
		}
		// Twice, or more if a loaded machine made a retry time out too.
		got := r.receipts()
		for _, g := range got {
			if g.IdempotencyKey != got[0].IdempotencyKey {
				t.Errorf("receipts %+v, want the same delivery each time", got)
			}
		}
		if len(got) < 2 {
			t.Errorf("receipts %+v, want the timed-out delivery sent again", got)
		}
	})
}

func TestWebhookRetryDelay(t *testing.T) {
	w := newWebhookSender(webhookConfig{}, nil, slog.New(slog.DiscardHandler), nil)
	if w.timeout != 5*time.Second {
		t.Errorf("timeout = %v, want 5s", w.timeout)
	}
	for _, tc := range []struct {
		attempt  int
		min, max time.Duration
	}{
		{1, 5 * time.Second, 10 * time.Second},
		{2, 10 * time.Second, 20 * time.Second},
		{5, 80 * time.Second, 160 * time.Second},
		{12, 30 * time.Minute, time.Hour},
		{1000, 30 * time.Minute, time.Hour},
	} {
		for range 50 {
			if d := w.retryDelay(tc.attempt); d < tc.min || d > tc.max {
				t.Errorf("retryDelay(%d) = %v, want %v..%v", tc.attempt, d, tc.min, tc.max)
			}
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
	r := startReceiver(t, false)
	team := storetest.TeamWithEveryRole(t, old)
	legacy := hook(t, old, team.ID, r, "/legacy", "legacy-"+storetest.Unique())
	storetest.MustExec(t, old.DB(), "UPDATE team_webhooks SET secret = ? WHERE id = ?", "plain:legacy-secret", legacy.ID)
	hook(t, old, team.ID, r, "/sealed", "sealed-secret")

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
	lost := testSender(open("a third key: the others forgotten"), nil, time.Hour)
	lost.cfg.AllowHTTP = true
	if _, err := lost.sendDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ws := webhookOf(t, old, legacy); ws.LastError != "webhook secret unreadable: SECRET_KEY changed without SECRET_KEY_FALLBACKS" || r.connections() != 0 {
		t.Errorf("webhook %+v, %d connections; want the secret unreadable and nothing sent", ws, r.connections())
	}

	fastForward(t, old, team.ID)
	sender := testSender(open(newKey), nil, time.Hour) // the old key no longer needed
	sender.cfg.AllowHTTP = true
	drain(t, sender, old, team.ID)
	got := map[string]string{}
	for _, g := range r.receipts() {
		got[g.Path] = g.Authorization
	}
	if diff := cmp.Diff(map[string]string{"/legacy": "Bearer legacy-secret", "/sealed": "Bearer sealed-secret"}, got); diff != "" {
		t.Errorf("Authorization by webhook (-want +got):\n%s", diff)
	}
}
