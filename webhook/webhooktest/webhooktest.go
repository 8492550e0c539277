// Package webhooktest is an in-process webhook receiver for tests, a fake Matrix homeserver
// (matrix.go), and helpers that create webhooks and read the store's delivery bookkeeping,
// named like net/http/httptest. It decodes
// what it receives into its own types, so that a test checks the message on the wire, not the
// sender's structs.
//
// It imports store and storetest only: never webhook (whose tests use it) or main.
package webhooktest

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// Loopback is where the receivers listen; webhooks may reach it only when a sender's
// AllowedNetworks (WEBHOOK_ALLOWED_NETWORKS) names it.
var Loopback = netip.MustParsePrefix("127.0.0.1/32")

// SCIMPatch is People's message as a receiver reads it: a SCIM PatchOp adding or removing
// members.
type SCIMPatch struct {
	Schemas    []string        `json:"schemas"`
	Operations []SCIMOperation `json:"Operations"`
}

// SCIMOperation is one operation of a SCIMPatch.
type SCIMOperation struct {
	Op    string       `json:"op"`
	Path  string       `json:"path"`
	Value []SCIMMember `json:"value"`
}

// SCIMMember is a member an operation names.
type SCIMMember struct {
	Value string  `json:"value"`
	Email *string `json:"email"`
	Type  string  `json:"type"`
}

// Member is the message announcing that u was added to (op "add") or removed from ("remove")
// a team.
func Member(op string, u store.User) SCIMPatch {
	email := u.Email
	return SCIMPatch{Schemas: []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		Operations: []SCIMOperation{{Op: op, Path: "members", Value: []SCIMMember{{Value: u.ID.String(), Email: &email, Type: "User"}}}}}
}

// Receipt is one request a receiver got.
type Receipt struct {
	Method, Path, ContentType, Authorization, IdempotencyKey string
	Body                                                     SCIMPatch
}

// Receiver is an in-process webhook receiver on 127.0.0.1. Its answer function decides each
// response; a sender that hangs up during the delay gets none.
type Receiver struct {
	Server *httptest.Server
	mu     sync.Mutex
	conns  int // connections accepted
	got    []Receipt
	answer func(n int) (status int, delay time.Duration) // n counts requests from 1
}

// StartReceiver starts a receiver, over TLS with a self-signed certificate (Roots) when tls
// is set, answering 200 until SetAnswer says otherwise; it stops when the test ends.
func StartReceiver(tb testing.TB, tls bool) *Receiver {
	tb.Helper()
	r := &Receiver{answer: func(int) (int, time.Duration) { return http.StatusOK, 0 }}
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body SCIMPatch
		b, _ := io.ReadAll(req.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			tb.Errorf("receiver: body %q is not JSON: %v", b, err)
		}
		r.mu.Lock()
		r.got = append(r.got, Receipt{req.Method, req.URL.Path, req.Header.Get("Content-Type"), req.Header.Get("Authorization"),
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
	r.Server = httptest.NewUnstartedServer(h)
	r.Server.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			r.mu.Lock()
			r.conns++
			r.mu.Unlock()
		}
	}
	if tls {
		r.Server.StartTLS()
	} else {
		r.Server.Start()
	}
	tb.Cleanup(r.Server.Close)
	return r
}

// Connections is how many connections the receiver accepted.
func (r *Receiver) Connections() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns
}

// Receipts are the requests received so far, in order.
func (r *Receiver) Receipts() []Receipt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Receipt(nil), r.got...)
}

// SetAnswer makes f decide the status and delay of each later request.
func (r *Receiver) SetAnswer(f func(n int) (int, time.Duration)) {
	r.mu.Lock()
	r.answer = f
	r.mu.Unlock()
}

// Roots trusts the receiver's self-signed certificate.
func (r *Receiver) Roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(r.Server.Certificate())
	return p
}

// FastForward makes the team's waiting deliveries due now, as if their backoff or lease had
// run out: the tests check that they wait, then do not wait.
func FastForward(tb testing.TB, s *store.Store, team uuid.UUID) {
	tb.Helper()
	storetest.MustExec(tb, s.DB(), "UPDATE team_webhook_deliveries SET next_attempt_at = now() WHERE team_id = ? AND status = 'pending'", team)
}

// Hook creates a webhook for team to the receiver at path, deleted (with its pending
// deliveries) when the test ends.
func Hook(tb testing.TB, s *store.Store, team uuid.UUID, r *Receiver, path, secret string) *store.TeamWebhook {
	tb.Helper()
	w, err := s.CreateTeamWebhook(tb.Context(), store.NewTeamWebhook{TeamID: team, URL: r.Server.URL + path, Secret: secret})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.DeleteTeamWebhook(context.Background(), w.ID) })
	return w
}

// WebhookOf reads a webhook's state as staff see it.
func WebhookOf(tb testing.TB, s *store.Store, w *store.TeamWebhook) store.TeamWebhook {
	tb.Helper()
	ws, err := s.TeamWebhooks(tb.Context(), storetest.StaffActor(tb, s), []uuid.UUID{w.TeamID})
	if err != nil {
		tb.Fatal(err)
	}
	for _, x := range ws[w.TeamID] {
		if x.ID == w.ID {
			return x
		}
	}
	tb.Fatalf("webhook %s not found", w.ID)
	return store.TeamWebhook{}
}

// Delivery is a delivery's bookkeeping.
type Delivery struct {
	ID        uuid.UUID `bun:"id"` // the Idempotency-Key of each of its attempts
	WebhookID uuid.UUID `bun:"webhook_id"`
	Operation string    `bun:"operation"`
	UserID    uuid.UUID `bun:"user_id"`
	Status    string    `bun:"status"`
	Attempts  int       `bun:"attempts"`
	HasSecret bool      `bun:"has_secret"`
	Finished  bool      `bun:"finished"`
	LastError string    `bun:"last_error"`
}

// Deliveries are the team's deliveries, oldest first.
func Deliveries(tb testing.TB, s *store.Store, team uuid.UUID) []Delivery {
	tb.Helper()
	var ds []Delivery
	err := s.DB().NewRaw(`SELECT id, webhook_id, operation, user_id, status, attempts, secret IS NOT NULL AS has_secret,
			finished_at IS NOT NULL AS finished, coalesce(last_error, '') AS last_error
		FROM team_webhook_deliveries WHERE team_id = ? ORDER BY seq`, team).Scan(tb.Context(), &ds)
	if err != nil {
		tb.Fatal(err)
	}
	return ds
}

// Drain calls sendDue (a sender's) until every delivery of team is finished, or fails after
// 30 seconds.
func Drain(tb testing.TB, sendDue func(context.Context) (int, error), s *store.Store, team uuid.UUID) []Delivery {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := sendDue(tb.Context()); err != nil {
			tb.Fatal(err)
		}
		ds := Deliveries(tb, s, team)
		done := true
		for _, d := range ds {
			done = done && d.Status != store.WebhookStatusPending
		}
		if done {
			return ds
		}
		if time.Now().After(deadline) {
			tb.Fatalf("deliveries not finished: %+v", ds)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
