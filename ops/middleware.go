// Package ops is the server's HTTP operations layer: what operators get from every request (an
// id, a deadline, one log line, the metrics, trace spans, panics answered with INTERNAL), the
// rate limits, who may read /metrics, and the observer the GraphQL handler reports each
// operation to (graph.Observer). main makes one Layer, wraps the whole mux in its Middleware,
// and puts its Callers gate in the GraphQL chain.
//
// It imports auth, graph, wire, ratelimit and telemetry: never main or store. Its settings come
// from main as Options; it reads no environment.
package ops

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/ratelimit"
	"lasuite.fr/people/telemetry"
	"lasuite.fr/people/wire"
)

// Names of the rate limits, as the metrics and logs give them; auth.LimitIntrospection and
// auth.LimitIntrospectionConcurrency name the limits on introspection, which the bearer
// middleware applies.
const (
	limitBurst     = "burst"
	limitSustained = "sustained"
	limitService   = "service"
	limitAnonymous = "anonymous"
)

// Options are the operations layer's settings; a zero Rate is off.
type Options struct {
	Burst     ratelimit.Rate // BURST_THROTTLE_RATES: per caller, on People's throttled data
	Sustained ratelimit.Rate // SUSTAINED_THROTTLE_RATES: the same, over a longer period
	Service   ratelimit.Rate // SERVICE_THROTTLE_RATES: a partner service's ceiling, all its users together
	Anonymous ratelimit.Rate // ANON_THROTTLE_RATES: every anonymous GraphQL request, per client address
	// Introspection (INTROSPECTION_RATE_LIMIT) is how many tokens that are not cached a client
	// address may have introspected.
	Introspection ratelimit.Rate
	// Redis (REDIS_URL) keeps every bucket in Redis or Valkey, shared by the instances; empty
	// keeps them in memory.
	Redis string
	// TrustedProxies (TRUSTED_PROXIES) are the reverse proxies whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	Deadline       time.Duration // of every request: HTTP_WRITE_TIMEOUT
	// MetricsToken (METRICS_TOKEN) lets a scraper read /metrics from anywhere; MetricsLoopback
	// (METRICS_LOOPBACK) serves /metrics to loopback clients without it, and false to everyone.
	MetricsToken    string
	MetricsLoopback bool
}

// Layer is what operators get from every request: an id, a log line, metrics, trace spans, and
// the rate limits. main makes one and wraps the whole mux in its Middleware; its Callers gate
// goes in the GraphQL chain, and the GraphQL handler reports to it as its Observer.
type Layer struct {
	log          *slog.Logger
	metrics      *telemetry.Metrics
	tracer       trace.Tracer       // a no-op tracer when tracing is off
	tracing      bool               // spans are made and exported, and incoming trace context is followed
	throttle     *ratelimit.Limiter // burst and sustained, per caller, on People's throttled data
	services     *ratelimit.Limiter // a partner service's ceiling on the same data, all its users together
	anonymous    *ratelimit.Limiter // every anonymous GraphQL request, per client address
	introspect   *ratelimit.Limiter // tokens that are not cached, per client address (auth.Budget)
	shared       *ratelimit.Shared  // REDIS_URL: where the limiters' buckets live; nil keeps them in memory
	trusted      []netip.Prefix
	deadline     time.Duration // of every request: HTTP_WRITE_TIMEOUT
	metricsToken string
	// metricsLoopback (METRICS_LOOPBACK) serves /metrics to loopback clients without the token;
	// false serves it to everyone.
	metricsLoopback bool
}

// New prepares the middleware over db's pool. tracer nil means tracing is off. With Redis, the
// rate limits' buckets are in Redis (connected to at the first request), and Close lets go of
// it.
func New(rl Options, db *sql.DB, tracer trace.Tracer, log *slog.Logger) *Layer {
	o := &Layer{
		log: log, tracer: tracer,
		metrics: telemetry.NewMetrics(db, limitBurst, limitSustained, limitService, limitAnonymous,
			auth.LimitIntrospection, auth.LimitIntrospectionConcurrency), tracing: tracer != nil,
		throttle:   ratelimit.New(time.Now, rule(limitBurst, rl.Burst), rule(limitSustained, rl.Sustained)),
		services:   ratelimit.New(time.Now, rule(limitService, rl.Service)),
		anonymous:  ratelimit.New(time.Now, rule(limitAnonymous, rl.Anonymous)),
		introspect: ratelimit.New(time.Now, rule(auth.LimitIntrospection, rl.Introspection)),
		trusted:    rl.TrustedProxies, deadline: rl.Deadline, metricsToken: rl.MetricsToken,
		metricsLoopback: rl.MetricsLoopback,
	}
	if tracer == nil {
		o.tracer = noop.NewTracerProvider().Tracer("")
	}
	if rl.Redis != "" {
		shared, err := ratelimit.NewShared(rl.Redis, o.metrics.RedisFallback, log)
		if err != nil { // main has checked the URL (parseConfig): not reached
			log.Error("rate limits kept in memory: bad REDIS_URL")
			return o
		}
		o.shared = shared
		for _, l := range []*ratelimit.Limiter{o.throttle, o.services, o.anonymous, o.introspect} {
			l.Share(shared)
		}
		log.Info("rate limits shared through redis")
	}
	return o
}

// Close lets go of what New opened.
func (o *Layer) Close() error { return o.shared.Close() }

// Metrics are the server's Prometheus series, which the bearer middleware and the credential
// cache count into too (auth.Metrics).
func (o *Layer) Metrics() *telemetry.Metrics { return o.metrics }

func rule(name string, r ratelimit.Rate) ratelimit.Rule { return ratelimit.Rule{Name: name, Rate: r} }

// IntrospectionBudget is the auth.Budget of tokens that are not cached; nil when off.
func (o *Layer) IntrospectionBudget() auth.Budget {
	if o.introspect == nil {
		return nil // not a nil *ratelimit.Limiter in a non-nil interface
	}
	return o.introspect
}

// ClientKey is the introspection budget's key of r: its client address, as the other limits
// read it.
func (o *Layer) ClientKey(r *http.Request) string {
	if st := stateFrom(r.Context()); st != nil {
		return ratelimit.AddrKey(st.addr)
	}
	return ratelimit.AddrKey(clientAddr(r, o.trusted))
}

// requestState is one request as the middleware sees it. The handlers inside fill in the
// caller and the operation; the middleware reads them once they returned. All of it happens
// in the request's goroutine.
type requestState struct {
	id    string
	start time.Time
	addr  netip.Addr // the client's (clientAddr)

	caller     string    // session, bearer or anonymous; empty when no GraphQL handler was reached
	userID     uuid.UUID // an authenticated caller's
	operation  string    // the client's operationName
	fields     string    // the operation's label in the metrics (operationLabel)
	outcome    string    // ok, or the code of its first error
	retryAfter time.Duration
}

type requestKey struct{}

func stateFrom(ctx context.Context) *requestState {
	st, _ := ctx.Value(requestKey{}).(*requestState)
	return st
}

// maxRequestIDLength bounds an X-Request-Id taken from the client.
const maxRequestIDLength = 64

// requestID is the request's X-Request-Id when it is short and made of letters, digits and
// . _ : - only (so that it can be logged and echoed as it is), else a new random one.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= maxRequestIDLength {
		ok := true
		for i := 0; i < len(id) && ok; i++ {
			c := id[i]
			ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-'
		}
		if ok {
			return id
		}
	}
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Middleware gives each request an id (echoed in X-Request-Id, and in every log line made with
// the request's context), a deadline, and the trace context of its caller; recovers a panic
// into INTERNAL; then counts and logs the answer. It wraps the whole mux, so it also sets
// X-Content-Type-Options: nosniff on every answer, whichever handler writes it (the dev
// provider's, the mux's 404): no browser reads a JSON error or a text body as HTML or script.
func (o *Layer) Middleware(next http.Handler) http.Handler {
	prop := propagation.TraceContext{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &requestState{id: requestID(r), start: time.Now(), addr: clientAddr(r, o.trusted)}
		h := w.Header()
		h.Set("X-Request-Id", st.id)
		h.Set("X-Content-Type-Options", "nosniff")
		ctx := context.WithValue(r.Context(), requestKey{}, st)
		if o.tracing {
			ctx = prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
		}
		// A request still waiting past the write timeout could not answer anyway: it lets go of
		// its place in the connection pool's queue, or of its statement.
		ctx, cancel := context.WithTimeout(ctx, o.deadline)
		defer cancel()
		r = r.WithContext(ctx)
		sw := &statusWriter{ResponseWriter: w, st: st}
		defer func() { o.done(sw, r, st, recover()) }()
		next.ServeHTTP(sw, r)
	})
}

// done answers a panic with INTERNAL, then counts and logs the request.
func (o *Layer) done(w *statusWriter, r *http.Request, st *requestState, p any) {
	if p == http.ErrAbortHandler {
		panic(p) // a handler's deliberate abort: net/http closes the connection quietly
	}
	if p != nil {
		o.metrics.Panicked()
		o.log.ErrorContext(r.Context(), "request panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		if w.wrote {
			defer panic(http.ErrAbortHandler) // half an answer: cut the connection, once logged
		} else {
			wire.Respond(w, r, http.StatusInternalServerError, wire.Error{Code: wire.CodeInternal, Message: "internal error", RequestID: st.id})
		}
	}
	status := w.status
	if !w.wrote {
		status = http.StatusOK // what net/http sends for a handler that wrote nothing
	}
	d := time.Since(st.start)
	o.metrics.Request(r.Pattern, status, d)
	level := slog.LevelInfo
	if quietRoutes[r.Pattern] && status < 400 {
		level = slog.LevelDebug
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method), slog.String("path", truncate(r.URL.Path, 200)), slog.Int("status", status),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
	}
	if st.caller != "" {
		attrs = append(attrs, slog.String("principal", st.caller))
	}
	if st.userID != uuid.Nil {
		attrs = append(attrs, slog.String("user_id", st.userID.String()))
	}
	if st.outcome != "" {
		attrs = append(attrs, slog.String("operation", truncate(st.operation, 100)), slog.String("fields", st.fields), slog.String("outcome", st.outcome))
	}
	o.log.LogAttrs(r.Context(), level, "request", attrs...)
}

// quietRoutes are polled by machines: their successes are logged at debug level only.
var quietRoutes = map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET /metrics": true,
	"GET /__heartbeat__": true, "GET /__heartbeat__/{$}": true, "GET /__lbheartbeat__": true, "GET /__lbheartbeat__/{$}": true}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// statusWriter remembers the status written, and turns the answer of a request refused by a
// rate limit (state.retryAfter) into 429 with Retry-After, whatever status the GraphQL
// transport chose for its RATE_LIMITED error.
type statusWriter struct {
	http.ResponseWriter
	st     *requestState
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(status int) {
	if !w.wrote && status >= 200 {
		w.wrote = true
		if w.st.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(ratelimit.RetryAfter(w.st.retryAfter)))
			status = http.StatusTooManyRequests
		}
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Flush keeps streaming answers working through the wrapper.
func (w *statusWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Callers sits in the GraphQL chain, and the partner REST API's (package rest), after
// authentication: it notes who the caller is, for the request's log line, and holds anonymous
// callers to ANON_THROTTLE_RATES per client address.
// Requests with a bad bearer token never get here: the bearer middleware answers them, and
// remembers its refusals for a few seconds (auth.tokenCache).
func (o *Layer) Callers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := stateFrom(r.Context())
		if st == nil { // a mux served without the middleware, as some tests do
			st = &requestState{start: time.Now(), addr: clientAddr(r, o.trusted)}
			r = r.WithContext(context.WithValue(r.Context(), requestKey{}, st))
		}
		p, ok := auth.PrincipalFrom(r.Context())
		if ok {
			st.caller, st.userID = string(p.Method), p.UserID
			next.ServeHTTP(w, r)
			return
		}
		st.caller = "anonymous"
		if wait, rule := o.anonymous.Allow(ratelimit.AddrKey(st.addr)); wait > 0 {
			o.refused(r.Context(), st, wait, rule)
			wire.Respond(w, r, http.StatusTooManyRequests, wire.Error{Code: wire.CodeRateLimited, Message: "too many requests: retry later", RetryAfter: ratelimit.RetryAfter(wait)})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// refused counts and logs a request refused by a rate limit, and has statusWriter answer 429.
func (o *Layer) refused(ctx context.Context, st *requestState, wait time.Duration, rule string) {
	o.metrics.RateLimited(rule)
	o.log.WarnContext(ctx, "rate limited", "limit", rule, "principal", st.caller, "retry_after", ratelimit.RetryAfter(wait))
	st.retryAfter = wait
}

// NewLogHandler wraps h so that every record logged with a request's context carries the
// request's id, and the trace id when there is one.
func NewLogHandler(h slog.Handler) slog.Handler { return contextHandler{h} }

// contextHandler is NewLogHandler's.
type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if st := stateFrom(ctx); st != nil && st.id != "" {
		r.AddAttrs(slog.String("request_id", st.id))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(as)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}
