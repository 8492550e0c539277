package webhook

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
	"lasuite.fr/people/webhook/webhooktest"
)

// The webhook tests share the package database's outbox, and a sender claims whatever is due
// in it, so they run one after the other (no t.Parallel) and each cancels its leftovers by
// deleting its webhooks.

// testSender is a sender that retries after 20-40 ms, with a maximum age of maxAge. Its
// timeout is generous: the tests run on loaded machines, and only a hung receiver reaches it.
// The receivers listen on 127.0.0.1, which webhooks may reach only when allowed, as here.
func testSender(s *store.Store, roots *x509.CertPool, maxAge time.Duration) *Sender {
	w := New(Options{MaxAge: maxAge, Retention: time.Hour, AllowedNetworks: []netip.Prefix{webhooktest.Loopback}, Roots: roots},
		s, slog.New(slog.DiscardHandler))
	w.timeout, w.lease, w.backoffBase, w.backoffCap = 15*time.Second, time.Minute, 40*time.Millisecond, 40*time.Millisecond
	return w
}

func TestWebhookDelivered(t *testing.T) {
	s := storetest.Open(t)
	r := webhooktest.StartReceiver(t, true)
	team := storetest.TeamWithEveryRole(t, s)
	w := webhooktest.Hook(t, s, team.ID, r, "/scim/v2/Groups/42", "s3cret")
	bare := webhooktest.Hook(t, s, team.ID, r, "/no-secret", "")
	sender := testSender(s, r.Roots(), time.Hour)
	if ws := webhooktest.WebhookOf(t, s, w); ws.Status != store.WebhookStatusPending || ws.LastDeliveryAt != nil {
		t.Errorf("a new webhook: %+v, want pending and never delivered", ws)
	}

	newcomer := storetest.User(t, s, team.Org)
	a, err := s.CreateTeamAccess(t.Context(), store.UserActor(team.Owner), team.ID, newcomer.ID, store.RoleMember)
	if err != nil {
		t.Fatal(err)
	}
	if ws := webhooktest.WebhookOf(t, s, w); ws.Status != store.WebhookStatusPending || ws.Pending != 1 {
		t.Errorf("with a delivery waiting: %+v, want pending, 1 pending", ws)
	}
	if _, err := s.SetTeamAccessRole(t.Context(), store.UserActor(team.Owner), a.ID, store.RoleAdministrator); err != nil {
		t.Fatal(err)
	}
	ds := webhooktest.Drain(t, sender.SendDue, s, team.ID)
	if len(ds) != 2 { // one per webhook; the role change sends nothing
		t.Fatalf("deliveries %+v, want the addition to each webhook", ds)
	}
	got := r.Receipts()
	if len(got) != 2 {
		t.Fatalf("receiver got %d requests, want 2: %+v", len(got), got)
	}
	byPath := map[string]webhooktest.Receipt{got[0].Path: got[0], got[1].Path: got[1]}
	want := webhooktest.Receipt{Method: http.MethodPatch, Path: "/scim/v2/Groups/42", ContentType: "application/scim+json",
		Authorization: "Bearer s3cret", Body: webhooktest.Member("add", newcomer)}
	// Each request's Idempotency-Key is the id of its webhook's delivery, read from the outbox.
	var bareKey string
	for _, d := range ds {
		switch d.WebhookID {
		case w.ID:
			want.IdempotencyKey = d.ID.String()
		case bare.ID:
			bareKey = d.ID.String()
		}
	}
	if want.IdempotencyKey == "" || bareKey == "" {
		t.Fatalf("deliveries %+v: want one for each webhook", ds)
	}
	if diff := cmp.Diff(want, byPath["/scim/v2/Groups/42"]); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	if got := byPath["/no-secret"]; got.Authorization != "" || got.IdempotencyKey != bareKey {
		t.Errorf("request to the webhook without a secret: %+v, want no Authorization and Idempotency-Key %s", got, bareKey)
	}
	for _, d := range ds {
		if d.Status != store.WebhookStatusSuccess || d.Attempts != 1 || d.HasSecret || !d.Finished || d.LastError != "" {
			t.Errorf("delivery %+v, want success at the first attempt, its secret forgotten", d)
		}
	}
	ws := webhooktest.WebhookOf(t, s, w)
	if ws.Status != store.WebhookStatusSuccess || ws.Pending != 0 || ws.Failed != 0 || ws.LastDeliveryAt == nil || ws.LastError != "" || !ws.HasSecret {
		t.Errorf("webhook after the delivery: %+v", ws)
	}
	if n, err := sender.SendDue(t.Context()); n != 0 || err != nil {
		t.Errorf("second sendDue() = %d, %v; a delivery is sent once", n, err)
	}

	// The removal, as People's: same message with op remove.
	if _, err := s.DeleteTeamAccess(t.Context(), store.UserActor(team.Owner), a.ID); err != nil {
		t.Fatal(err)
	}
	s.DeleteTeamWebhook(t.Context(), bare.ID)
	webhooktest.Drain(t, sender.SendDue, s, team.ID)
	if got := r.Receipts(); len(got) != 3 || !cmp.Equal(got[2].Body, webhooktest.Member("remove", newcomer)) {
		t.Errorf("receipts %+v, want the removal last", got)
	}
}

func TestWebhookRetriedUntilDelivered(t *testing.T) {
	s := storetest.Open(t)
	r := webhooktest.StartReceiver(t, true)
	r.SetAnswer(func(n int) (int, time.Duration) {
		if n <= 2 {
			return http.StatusServiceUnavailable, 0
		}
		return http.StatusNoContent, 0
	})
	team := storetest.TeamWithEveryRole(t, s)
	w := webhooktest.Hook(t, s, team.ID, r, "/hook", "")
	sender := testSender(s, r.Roots(), time.Hour)
	sender.backoffBase, sender.backoffCap = time.Minute, time.Minute
	storetest.Access(t, s, team.ID, team.Outsider, store.RoleMember)

	if _, err := sender.SendDue(t.Context()); err != nil {
		t.Fatal(err)
	}
	ws := webhooktest.WebhookOf(t, s, w)
	if ws.Status != store.WebhookStatusPending || ws.Pending != 1 || ws.Attempts != 1 || !strings.Contains(ws.LastError, "503") || ws.LastDeliveryAt == nil {
		t.Errorf("after a failed attempt: %+v, want pending after 1 attempt, with the 503", ws)
	}
	if n, _ := sender.SendDue(t.Context()); n != 0 {
		t.Errorf("retried at once, before its backoff")
	}
	var wait float64
	if err := s.DB().QueryRowContext(t.Context(), `SELECT extract(epoch FROM next_attempt_at - now()) FROM team_webhook_deliveries
		WHERE team_id = ?`, team.ID).Scan(&wait); err != nil || wait < 25 || wait > 60 {
		t.Errorf("next attempt in %vs (%v), want 30 to 60 s (a minute's backoff, jittered)", wait, err)
	}
	for range 2 {
		webhooktest.FastForward(t, s, team.ID)
		if _, err := sender.SendDue(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	ds := webhooktest.Deliveries(t, s, team.ID)
	if len(ds) != 1 || ds[0].Status != store.WebhookStatusSuccess || ds[0].Attempts != 3 || ds[0].LastError != "" {
		t.Errorf("deliveries %+v, want one success at the third attempt", ds)
	}
	got := r.Receipts()
	if len(got) != 3 || got[0].IdempotencyKey != got[2].IdempotencyKey {
		t.Errorf("receipts %+v, want three attempts with one Idempotency-Key", got)
	}
	if ws := webhooktest.WebhookOf(t, s, w); ws.Status != store.WebhookStatusSuccess || ws.LastError != "" || ws.Failed != 0 || ws.Attempts != 3 {
		t.Errorf("after the recovery: %+v, want success after 3 attempts", ws)
	}
}

func TestWebhookGivenUpAfterMaxAge(t *testing.T) {
	s := storetest.Open(t)
	r := webhooktest.StartReceiver(t, true)
	r.Server.Close() // down for good
	team := storetest.TeamWithEveryRole(t, s)
	w := webhooktest.Hook(t, s, team.ID, r, "/hook", "s3cret")
	sender := testSender(s, r.Roots(), 300*time.Millisecond)
	// The maximum age counts from the delivery's creation, in the access's transaction: start
	// the clock before it, or a give-up right at the maximum age looks early.
	start := time.Now()
	storetest.Access(t, s, team.ID, team.Outsider, store.RoleMember)

	ds := webhooktest.Drain(t, sender.SendDue, s, team.ID)
	if len(ds) != 1 || ds[0].Status != store.WebhookStatusFailure || !ds[0].Finished || ds[0].HasSecret || ds[0].Attempts < 2 ||
		ds[0].LastError != "connection failed" {
		t.Errorf("deliveries %+v, want one failure after several attempts, its secret forgotten", ds)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Errorf("given up after %v, before the maximum age", time.Since(start))
	}
	ws := webhooktest.WebhookOf(t, s, w)
	if ws.Status != store.WebhookStatusFailure || ws.Failed != 1 || ws.Pending != 0 || ws.LastError == "" || ws.Attempts != ds[0].Attempts {
		t.Errorf("webhook %+v, want failure, 1 failed, the delivery's %d attempts", ws, ds[0].Attempts)
	}
	if n, _ := sender.SendDue(t.Context()); n != 0 {
		t.Errorf("a given-up delivery was tried again")
	}
}

// A change committed while no server runs, or while a sender dies before recording its send,
// is delivered by the next one.
func TestWebhookSurvivesRestart(t *testing.T) {
	s := storetest.Open(t)
	r := webhooktest.StartReceiver(t, true)
	team := storetest.TeamWithEveryRole(t, s)
	webhooktest.Hook(t, s, team.ID, r, "/hook", "")

	t.Run("committed with no server running", func(t *testing.T) {
		storetest.Access(t, s, team.ID, team.Outsider, store.RoleMember)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); testSender(s, r.Roots(), time.Hour).Run(ctx, 10*time.Millisecond) }()
		defer func() { cancel(); <-done }()
		// Until the sender has recorded its success: stopped between the receiver's answer and
		// that record, it would leave the delivery claimed, and the team's next delivery
		// (below) waits behind it.
		deadline := time.Now().Add(30 * time.Second)
		ds := webhooktest.Deliveries(t, s, team.ID)
		for (len(ds) != 1 || ds[0].Status != store.WebhookStatusSuccess) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			ds = webhooktest.Deliveries(t, s, team.ID)
		}
		if len(r.Receipts()) != 1 || len(ds) != 1 || ds[0].Status != store.WebhookStatusSuccess {
			t.Fatalf("receipts %+v, deliveries %+v", r.Receipts(), ds)
		}
	})

	t.Run("sender killed during a send", func(t *testing.T) {
		storetest.MustExec(t, s.DB(), "DELETE FROM team_accesses WHERE team_id = ? AND user_id = ?", team.ID, team.Outsider)
		// The dead sender claimed the delivery and never recorded it.
		claimed, err := s.ClaimWebhookDeliveries(t.Context(), 100, time.Minute)
		if err != nil || len(claimed) != 1 || claimed[0].Operation != "remove" {
			t.Fatalf("ClaimWebhookDeliveries() = %+v, %v", claimed, err)
		}
		sender := testSender(s, r.Roots(), time.Hour)
		if n, _ := sender.SendDue(t.Context()); n != 0 {
			t.Fatalf("a claimed delivery was taken over during its lease")
		}
		webhooktest.FastForward(t, s, team.ID) // the lease runs out
		ds := webhooktest.Drain(t, sender.SendDue, s, team.ID)
		if last := ds[len(ds)-1]; last.ID != claimed[0].ID || last.Status != store.WebhookStatusSuccess || last.Attempts != 2 {
			t.Errorf("delivery %+v, want the removal delivered at its second attempt", last)
		}
		if got := r.Receipts(); len(got) != 2 || got[1].IdempotencyKey != claimed[0].ID.String() {
			t.Errorf("receipts %+v", got)
		}
	})
}

// Two senders (two server instances) share the outbox: each delivery is received once, and a
// user's changes reach each webhook in order.
func TestWebhookTwoSenders(t *testing.T) {
	s := storetest.Open(t)
	r := webhooktest.StartReceiver(t, true)
	r.SetAnswer(func(int) (int, time.Duration) { return http.StatusOK, 5 * time.Millisecond })
	team := storetest.TeamWithEveryRole(t, s)
	webhooktest.Hook(t, s, team.ID, r, "/a", "")
	webhooktest.Hook(t, s, team.ID, r, "/b", "")
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
		wg.Go(func() { testSender(st, r.Roots(), time.Hour).Run(ctx, 5*time.Millisecond) })
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(r.Receipts()) < want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	// Stop both senders, then the receiver: Close waits for the requests that reached it, so
	// every delivery that was sent, twice or not, is among the receipts below; and the
	// outbox's attempt counts say whether any delivery was sent more than once.
	cancel()
	wg.Wait()
	r.Server.Close()
	for _, d := range webhooktest.Deliveries(t, s, team.ID) {
		if d.Status != store.WebhookStatusSuccess || d.Attempts != 1 {
			t.Errorf("delivery %+v, want delivered at its first attempt", d)
		}
	}

	got := r.Receipts()
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
	r := webhooktest.StartReceiver(t, true)
	sender := testSender(s, r.Roots(), time.Hour)
	team := storetest.TeamWithEveryRole(t, s)
	webhooktest.Hook(t, s, team.ID, r, "/hook", "s3cret")
	other := storetest.TeamWithEveryRole(t, s)
	webhooktest.Hook(t, s, other.ID, r, "/other", "")

	email := "invitee-" + storetest.Unique() + "@example.test"
	if _, err := s.CreateInvitation(t.Context(), store.UserActor(team.Owner), store.NewInvitation{TeamID: team.ID, Email: email, Role: store.RoleMember}); err != nil {
		t.Fatal(err)
	}
	invitee, err := s.ProvisionLogin(t.Context(), store.Claims{EmailVerified: true, Issuer: "https://idp.example.test", Subject: "sub-" + storetest.Unique(), Email: email},
		store.DefaultLoginOptions())
	if err != nil {
		t.Fatal(err)
	}
	webhooktest.Drain(t, sender.SendDue, s, team.ID)
	if got := r.Receipts(); len(got) != 1 || !cmp.Equal(got[0].Body, webhooktest.Member("add", *invitee)) {
		t.Fatalf("receipts %+v, want the invitee's addition", got)
	}

	// A user deleted: removed from the team, announced with the email they had.
	gone := storetest.User(t, s, other.Org)
	storetest.Access(t, s, other.ID, gone.ID, store.RoleMember)
	storetest.MustExec(t, s.DB(), "DELETE FROM users WHERE id = ?", gone.ID)
	webhooktest.Drain(t, sender.SendDue, s, other.ID)
	got := r.Receipts()
	if n := len(got); n != 3 || !cmp.Equal(got[1].Body, webhooktest.Member("add", gone)) || !cmp.Equal(got[2].Body, webhooktest.Member("remove", gone)) {
		t.Fatalf("receipts %+v, want the deleted user's addition and removal", got[1:])
	}

	// The team deleted: its webhook goes with it, yet every member is announced as removed.
	if _, err := s.DeleteTeam(t.Context(), store.UserActor(team.Owner), team.ID, false); err != nil {
		t.Fatal(err)
	}
	ds := webhooktest.Drain(t, sender.SendDue, s, team.ID)
	removed := map[string]webhooktest.Receipt{}
	for _, g := range r.Receipts()[3:] {
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
		r := webhooktest.StartReceiver(t, true)
		team := storetest.TeamWithEveryRole(t, s)
		w := webhooktest.Hook(t, s, team.ID, r, "/hook", "s3cret")
		storetest.Access(t, s, team.ID, team.Outsider, store.RoleMember)
		if _, err := testSender(s, nil, time.Hour).SendDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		if ws := webhooktest.WebhookOf(t, s, w); ws.LastError != "TLS certificate refused" || len(r.Receipts()) != 0 {
			t.Errorf("webhook %+v, receipts %d; want a certificate error and nothing received", ws, len(r.Receipts()))
		}
	})

	t.Run("http only when allowed", func(t *testing.T) {
		r := webhooktest.StartReceiver(t, false)
		team := storetest.TeamWithEveryRole(t, s)
		w := webhooktest.Hook(t, dev, team.ID, r, "/hook", "")
		storetest.Access(t, s, team.ID, team.Outsider, store.RoleMember)
		if _, err := testSender(s, nil, time.Hour).SendDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		if ws := webhooktest.WebhookOf(t, s, w); !strings.Contains(ws.LastError, "WEBHOOK_ALLOW_HTTP") || len(r.Receipts()) != 0 {
			t.Errorf("webhook %+v, receipts %d; want http refused", ws, len(r.Receipts()))
		}
		allowed := testSender(s, nil, time.Hour)
		allowed.cfg.AllowHTTP = true
		if ds := webhooktest.Drain(t, allowed.SendDue, s, team.ID); ds[0].Status != store.WebhookStatusSuccess || len(r.Receipts()) != 1 {
			t.Errorf("deliveries %+v with WEBHOOK_ALLOW_HTTP", ds)
		}
	})

	t.Run("redirect not followed", func(t *testing.T) {
		r := webhooktest.StartReceiver(t, true)
		r.SetAnswer(func(int) (int, time.Duration) { return http.StatusFound, 0 })
		team := storetest.TeamWithEveryRole(t, s)
		w := webhooktest.Hook(t, s, team.ID, r, "/hook", "s3cret")
		storetest.Access(t, s, team.ID, team.Outsider, store.RoleMember)
		if _, err := testSender(s, r.Roots(), time.Hour).SendDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		if ws := webhooktest.WebhookOf(t, s, w); ws.LastError != "HTTP 3xx (302): redirects are not followed" || len(r.Receipts()) != 1 {
			t.Errorf("webhook %+v, want the 302 as a failure", ws)
		}
	})

	t.Run("a timed-out attempt is sent again with its key", func(t *testing.T) {
		r := webhooktest.StartReceiver(t, true)
		r.SetAnswer(func(n int) (int, time.Duration) {
			if n == 1 {
				return http.StatusOK, 10 * time.Second // until the sender gives up and hangs up
			}
			return http.StatusOK, 0
		})
		team := storetest.TeamWithEveryRole(t, s)
		w := webhooktest.Hook(t, s, team.ID, r, "/hook", "")
		storetest.Access(t, s, team.ID, team.Outsider, store.RoleMember)
		sender := testSender(s, r.Roots(), time.Hour)
		sender.timeout = time.Second
		if _, err := sender.SendDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		if ws := webhooktest.WebhookOf(t, s, w); ws.LastError != "timeout: no answer within 1s" {
			t.Errorf("webhook %+v, want a timeout", ws)
		}
		if ds := webhooktest.Drain(t, sender.SendDue, s, team.ID); ds[0].Status != store.WebhookStatusSuccess {
			t.Errorf("delivery %+v, want delivered after the timeout", ds[0])
		}
		// Twice, or more if a loaded machine made a retry time out too.
		got := r.Receipts()
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
	w := New(Options{}, nil, slog.New(slog.DiscardHandler))
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
