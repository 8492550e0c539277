// Package webhook delivers the membership changes the store queues to the teams' webhooks
// (People's SCIM push and Matrix rooms, made reliable): each delivery is claimed in the database before it is
// sent, so that every server instance may run a Sender, and a failed one is retried with
// backoff until its maximum age. Its connections go only to the destinations the dial-time
// check allows (dial.go).
//
// It imports store only: never main, graph, auth or the HTTP layer. Its settings come from
// main (the WEBHOOK_* variables) as Options; it reads no environment.
package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"lasuite.fr/people/store"
)

// Delivery timing. The lease is how long a claimed delivery stays invisible to other senders:
// longer than a send and its recording, so a live sender never sees its delivery taken over,
// and short enough that a crashed sender's deliveries go out a minute later.
const (
	webhookTimeout     = 5 * time.Second
	webhookLease       = time.Minute
	webhookBatch       = 16
	webhookPurgeEvery  = time.Hour
	webhookBackoffBase = 10 * time.Second
	webhookBackoffCap  = time.Hour
)

// Interval is how often a running Sender looks for due deliveries.
const Interval = 2 * time.Second

// Options say how webhooks are called.
type Options struct {
	MaxAge    time.Duration // WEBHOOK_MAX_AGE: how long after a change its delivery is retried
	AllowHTTP bool          // WEBHOOK_ALLOW_HTTP: call http:// URLs, for development and tests
	Retention time.Duration // WEBHOOK_DELIVERY_RETENTION: how long finished deliveries are kept
	// AllowedNetworks (WEBHOOK_ALLOWED_NETWORKS) are the private or local networks
	// (refusedNetworks) webhooks may reach all the same, such as a receiver inside the
	// deployment's network.
	AllowedNetworks []netip.Prefix
	// Roots are the certificate authorities receivers' certificates are verified against;
	// nil: the system's pool (People turned verification off).
	Roots *x509.CertPool
	// MatrixBotToken (MATRIX_BOT_ACCESS_TOKEN) is the bot's access token for Tchap rooms; other
	// Matrix rooms use their webhook's secret. A credential: never logged.
	MatrixBotToken string
	// MatrixBaseHomeServer (MATRIX_BASE_HOME_SERVER) is the homeserver whose user directory says
	// which Matrix id a Tchap user has; "": none is asked.
	MatrixBaseHomeServer string
}

// Sender delivers the queued membership changes (store.WebhookDelivery) to the teams'
// webhooks, as People's SCIM push but reliably: every change is claimed in the database before
// it is sent, so several server instances can run one each, and a failed one is retried with
// exponential backoff and jitter until WEBHOOK_MAX_AGE after the change.
type Sender struct {
	cfg    Options
	store  *store.Store
	log    *slog.Logger
	client *http.Client
	dial   *dialer
	// Tests shorten these.
	timeout, lease, backoffBase, backoffCap time.Duration
}

// New prepares a Sender of the deliveries queued in s; Run sends them. Its connections go only
// where the dialer allows, and never through HTTP(S)_PROXY: a proxy would resolve the
// receiver's name itself, after the check.
func New(cfg Options, s *store.Store, log *slog.Logger) *Sender {
	d := &dialer{allowed: cfg.AllowedNetworks, resolver: net.DefaultResolver,
		dialer: net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = d.DialContext
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: cfg.Roots}
	t.MaxIdleConnsPerHost = 4
	return &Sender{cfg: cfg, store: s, log: log, dial: d,
		client: &http.Client{Transport: t,
			// A redirect is a failure: the PATCH and its bearer token go to the URL staff set, nowhere else.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		timeout: webhookTimeout, lease: webhookLease, backoffBase: webhookBackoffBase, backoffCap: webhookBackoffCap}
}

// Run sends due deliveries every interval until ctx ends, at once again after a full batch, and
// purges finished ones past the retention period every hour.
func (w *Sender) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var purged time.Time
	for {
		claimed, err := w.SendDue(ctx)
		if err != nil && ctx.Err() == nil {
			w.log.ErrorContext(ctx, "webhook queue", "err", err)
		}
		if time.Since(purged) >= webhookPurgeEvery && ctx.Err() == nil {
			if n, err := w.store.PurgeWebhookDeliveries(ctx, w.cfg.Retention); err != nil {
				w.log.ErrorContext(ctx, "purge webhook deliveries", "err", err)
			} else if n > 0 {
				w.log.InfoContext(ctx, "webhook deliveries purged", "deliveries", n)
			}
			purged = time.Now()
		}
		if claimed == webhookBatch && err == nil && ctx.Err() == nil {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SendDue claims the deliveries due now, sends them concurrently and records each outcome; it
// returns how many it claimed. Run calls it every interval. The sends and their recording finish even when ctx ends
// (shutdown): each is bounded by the timeout, and a recorded delivery is not sent again.
func (w *Sender) SendDue(ctx context.Context) (int, error) {
	ds, err := w.store.ClaimWebhookDeliveries(ctx, webhookBatch, w.lease)
	if err != nil {
		return 0, err
	}
	ctx = context.WithoutCancel(ctx)
	errs := make([]error, len(ds))
	var wg sync.WaitGroup
	for i, d := range ds {
		wg.Go(func() { errs[i] = w.deliver(ctx, d) })
	}
	wg.Wait()
	return len(ds), errors.Join(errs...)
}

// deliver sends one delivery and records the outcome; the error is the recording's. Staff
// see the failure's class (deliveryFailure.class); the log has its detail, addresses included,
// for the operators.
func (w *Sender) deliver(ctx context.Context, d store.WebhookDelivery) error {
	log := w.log.With("delivery_id", d.ID, "webhook_id", d.WebhookID, "team_id", d.TeamID, "attempt", d.Attempts)
	f := w.send(ctx, d)
	if f == nil {
		log.InfoContext(ctx, "webhook delivered")
		return w.store.WebhookDelivered(ctx, d.ID)
	}
	delay, maxAge := w.retryDelay(d.Attempts), w.cfg.MaxAge
	if f.retryAfter > delay { // a homeserver's rate limit says when to come back
		delay = min(f.retryAfter, w.backoffCap)
	}
	if f.final {
		maxAge = 0
	}
	status, err := w.store.WebhookAttemptFailed(ctx, d.ID, f.class, delay, maxAge)
	switch {
	case err != nil:
		return err
	case status == store.WebhookStatusFailure:
		log.ErrorContext(ctx, "webhook delivery given up", "failure", f.class, "err", f.err, "max_age", w.cfg.MaxAge)
	case status == store.WebhookStatusPending:
		log.WarnContext(ctx, "webhook delivery failed, will retry", "failure", f.class, "err", f.err)
	}
	return nil
}

// deliveryFailure is a failed attempt. class is what staff read (TeamWebhook.lastError): a
// fixed phrase naming the kind of failure, never an address or a receiver's or a library's
// text, since a webhook's URL may name an internal host and its answers are the receiver's to
// choose. err is the detail, for the log.
type deliveryFailure struct {
	class string
	err   error
	// retryAfter is the least wait the receiver asked for (a Matrix rate limit); final means no
	// retry can succeed, so the delivery is given up at once.
	retryAfter time.Duration
	final      bool
}

func failure(class string, err error) *deliveryFailure {
	if err == nil {
		err = errors.New(class)
	}
	return &deliveryFailure{class: class, err: err}
}

// classify names the kind of a failed request (client.Do's error).
func (w *Sender) classify(err error) *deliveryFailure {
	var (
		refused  *refusedDestinationError
		dnsErr   *net.DNSError
		verify   *tls.CertificateVerificationError
		hostname x509.HostnameError
		ue       *url.Error
	)
	switch {
	case errors.As(err, &refused):
		return failure("refused destination: a private or local address (WEBHOOK_ALLOWED_NETWORKS)", err)
	case errors.As(err, &ue) && ue.Timeout():
		return failure(fmt.Sprintf("timeout: no answer within %v", w.timeout), err)
	case errors.As(err, &dnsErr):
		return failure("DNS lookup failed", err)
	case errors.As(err, &verify), errors.As(err, &hostname):
		return failure("TLS certificate refused", err)
	default:
		return failure("connection failed", err)
	}
}

// retryDelay is the wait after the attempt-th failure: exponential from backoffBase, capped at
// backoffCap, with "equal jitter" (half of it random) so that the deliveries of one outage do
// not all come back at the same moment.
func (w *Sender) retryDelay(attempt int) time.Duration {
	d := w.backoffCap
	if attempt >= 1 && attempt <= 30 {
		if e := w.backoffBase << (attempt - 1); e > 0 && e < d {
			d = e
		}
	}
	return d/2 + rand.N(d/2+1)
}

// scimPatch is People's message: a SCIM PatchOp (RFC 7644 §3.5.2) adding or removing one member.
type scimPatch struct {
	Schemas    []string        `json:"schemas"`
	Operations []scimOperation `json:"Operations"`
}

type scimOperation struct {
	Op    string       `json:"op"`
	Path  string       `json:"path"`
	Value []scimMember `json:"value"`
}

type scimMember struct {
	Value string  `json:"value"`
	Email *string `json:"email"` // null for a user without one, as People's None
	Type  string  `json:"type"`
}

// send makes one attempt, by the delivery's protocol.
func (w *Sender) send(ctx context.Context, d store.WebhookDelivery) *deliveryFailure {
	switch d.Protocol {
	case store.WebhookProtocolSCIM:
		return w.sendSCIM(ctx, d)
	case store.WebhookProtocolMatrix:
		return w.sendMatrix(ctx, d)
	}
	return failure("unknown protocol", fmt.Errorf("unknown protocol %q", d.Protocol))
}

// sendSCIM makes one attempt of a SCIM delivery: a PATCH of the SCIM message, with the
// delivery's id as the Idempotency-Key (a timed-out attempt may have been applied: the retry
// says it is the same). Any 2xx is a success (People wanted 200; SCIM receivers may answer
// 204). The failure names neither the URL nor the secret: it is logged, and its class shown to
// staff.
func (w *Sender) sendSCIM(ctx context.Context, d store.WebhookDelivery) *deliveryFailure {
	u, err := url.Parse(d.URL)
	switch {
	case err != nil:
		return failure("invalid URL", err)
	case u.Scheme == "http" && !w.cfg.AllowHTTP:
		return failure("http URLs are refused (WEBHOOK_ALLOW_HTTP is off)", nil)
	case u.Scheme != "https" && u.Scheme != "http":
		return failure("the URL must use https", nil)
	}
	if d.SecretUnreadable {
		return failure("webhook secret unreadable: SECRET_KEY changed without SECRET_KEY_FALLBACKS", nil)
	}
	m := scimMember{Value: d.UserID.String(), Type: "User"}
	if d.Email != "" {
		m.Email = &d.Email
	}
	body, err := json.Marshal(scimPatch{
		Schemas:    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		Operations: []scimOperation{{Op: d.Operation, Path: "members", Value: []scimMember{m}}},
	})
	if err != nil {
		return failure("internal error", err)
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, d.URL, bytes.NewReader(body))
	if err != nil {
		return failure("invalid URL", err)
	}
	req.Header.Set("Content-Type", "application/scim+json")
	req.Header.Set("Accept", "application/scim+json, application/json")
	req.Header.Set("Idempotency-Key", d.ID.String())
	if d.Secret != "" {
		req.Header.Set("Authorization", "Bearer "+d.Secret)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return w.classify(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// The code only: the reason phrase is the receiver's text.
		class := fmt.Sprintf("HTTP %dxx (%d)", resp.StatusCode/100, resp.StatusCode)
		if resp.StatusCode/100 == 3 {
			class += ": redirects are not followed"
		}
		return failure(class, fmt.Errorf("the receiver answered %s", resp.Status))
	}
	return nil
}
