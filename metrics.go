package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/graph"
)

// metrics are the server's Prometheus series, in a registry of their own (no global state).
// Every label takes its values from a fixed set: route patterns of the mux, status codes, root
// fields of the schema, error codes we define; never from what a client writes.
type metrics struct {
	registry       *prometheus.Registry
	httpRequests   *prometheus.CounterVec   // route, code
	httpDuration   *prometheus.HistogramVec // route
	operations     *prometheus.CounterVec   // operation, outcome
	opDuration     *prometheus.HistogramVec // operation, outcome
	introspections *prometheus.CounterVec   // outcome
	tokenCacheHits prometheus.Counter
	credentials    *prometheus.CounterVec // kind, outcome
	rateLimited    *prometheus.CounterVec // limit
	redisFallbacks prometheus.Counter
	panics         prometheus.Counter
}

// latencyBuckets run from a cached lookup to the statement timeout.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

func newMetrics(db *sql.DB) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "people_http_requests_total", Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "people_http_request_duration_seconds", Help: "Time to answer an HTTP request, by route pattern.", Buckets: latencyBuckets,
		}, []string{"route"}),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "people_graphql_requests_total",
			Help: "GraphQL requests, by operation (its root field when it selects one, else other) and outcome (ok, or the code of its first error).",
		}, []string{"operation", "outcome"}),
		opDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "people_graphql_request_duration_seconds", Help: "Time from a GraphQL request's arrival to its response, by operation and outcome.",
			Buckets: latencyBuckets,
		}, []string{"operation", "outcome"}),
		introspections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "people_bearer_introspections_total", Help: "Calls to the authorization server's introspection endpoint, by outcome (active, refused, failed).",
		}, []string{"outcome"}),
		tokenCacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "people_bearer_token_cache_hits_total", Help: "Bearer tokens answered from the introspection cache.",
		}),
		credentials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "people_credential_checks_total",
			Help: "Session and bearer user checks, by kind (session, bearer) and outcome: hit (answered from the credential cache), miss (read from the database), bypass (read from the database because the revocation listener is not listening).",
		}, []string{"kind", "outcome"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "people_rate_limited_total",
			Help: "Requests refused with 429, by limit (burst, sustained, service, anonymous, introspection, introspection_concurrency).",
		}, []string{"limit"}),
		redisFallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "people_rate_limit_redis_fallbacks_total",
			Help: "Rate-limit decisions made in this instance's memory because Redis (REDIS_URL) could not be reached.",
		}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "people_panics_total", Help: "Panics recovered while answering a request.",
		}),
	}
	m.registry.MustRegister(m.httpRequests, m.httpDuration, m.operations, m.opDuration, m.introspections, m.tokenCacheHits,
		m.credentials, m.rateLimited, m.redisFallbacks, m.panics,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		// go_sql_* with db_name="people": open, in use and idle connections, the pool's maximum,
		// and how often and how long requests waited for a connection.
		collectors.NewDBStatsCollector(db, "people"))
	// Series that exist before their first event, so that dashboards and alerts see zeros.
	for _, o := range []string{auth.IntrospectionActive, auth.IntrospectionRefused, auth.IntrospectionFailed} {
		m.introspections.WithLabelValues(o)
	}
	for _, k := range []string{auth.CredentialSession, auth.CredentialBearer} {
		for _, o := range []string{auth.CredentialHit, auth.CredentialMiss, auth.CredentialBypass} {
			m.credentials.WithLabelValues(k, o)
		}
	}
	for _, l := range []string{limitBurst, limitSustained, limitService, limitAnonymous, auth.LimitIntrospection, auth.LimitIntrospectionConcurrency} {
		m.rateLimited.WithLabelValues(l)
	}
	return m
}

// TokenCached, Introspected, CredentialChecked and RateLimited implement auth.Metrics.
func (m *metrics) TokenCached()                { m.tokenCacheHits.Inc() }
func (m *metrics) Introspected(outcome string) { m.introspections.WithLabelValues(outcome).Inc() }
func (m *metrics) RateLimited(limit string)    { m.rateLimited.WithLabelValues(limit).Inc() }
func (m *metrics) CredentialChecked(kind, outcome string) {
	m.credentials.WithLabelValues(kind, outcome).Inc()
}

// request counts one answered HTTP request.
func (m *metrics) request(route string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	m.httpRequests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(route).Observe(d.Seconds())
}

// operation counts one GraphQL response.
func (m *metrics) operation(label, outcome string, d time.Duration) {
	m.operations.WithLabelValues(label, outcome).Inc()
	m.opDuration.WithLabelValues(label, outcome).Observe(d.Seconds())
}

// operationLabel names an operation in the metrics: its root field when it selects one (a
// field of the schema, so a bounded set), else other.
func operationLabel(op graph.Operation) string {
	if len(op.Fields) == 1 {
		return op.Fields[0]
	}
	return "other"
}

// knownCodes are the extensions.code values an outcome may take; any other is "error".
var knownCodes = map[string]bool{
	graph.CodeUnauthenticated: true, graph.CodeForbidden: true, graph.CodeNotFound: true, graph.CodeBadUserInput: true,
	graph.CodeConflict: true, graph.CodeInternal: true, graph.CodeUnavailable: true, graph.CodeBadRequest: true, graph.CodeNotAcceptable: true,
	graph.CodeUnsupportedMediaType: true, graph.CodeMethodNotAllowed: true, graph.CodeRequestTooLarge: true,
	graph.CodeOperationNotFound: true, graph.CodeOperationTooLarge: true, graph.CodeQueryTooDeep: true,
	graph.CodeQueryTooComplex: true, graph.CodeTooManyAliases: true, graph.CodeIntrospectionDisabled: true,
	graph.CodePersistedQueryNotFound: true, graph.CodeRateLimited: true,
	errcode.ParseFailed: true, errcode.ValidationFailed: true,
}

// outcomeOf is ok, or the code of the first error.
func outcomeOf(codes []string) string {
	switch {
	case len(codes) == 0:
		return "ok"
	case knownCodes[codes[0]]:
		return codes[0]
	}
	return "error"
}

// handler serves the registry to loopback clients, and to anyone presenting token as a
// bearer token; with loopback false (METRICS_LOOPBACK=false), to every client. A loopback
// client is a loopback peer that names a loopback host: a page of another site whose name was
// rebound to 127.0.0.1 (DNS rebinding) reaches a loopback peer too, but with its own name in
// Host. A loopback peer that relays for someone else (a reverse proxy on the same host, which
// adds X-Forwarded-For or Forwarded) does not count either.
func (m *metrics) handler(token secret, loopback bool, log *slog.Logger) http.Handler {
	serve := promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError), Registry: m.registry,
	})
	if !loopback {
		return serve // the network restricts who reaches it (METRICS_LOOPBACK's documentation)
	}
	want := sha256.Sum256([]byte(token.reveal()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local := peerAddr(r).IsLoopback() && loopbackHost(r.Host) &&
			r.Header.Get("X-Forwarded-For") == "" && r.Header.Get("Forwarded") == ""
		scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		// Hashes of equal length, so that the comparison says nothing about the token's length.
		sum := sha256.Sum256([]byte(got))
		authorized := token != "" && strings.EqualFold(scheme, "Bearer") && subtle.ConstantTimeCompare(sum[:], want[:]) == 1
		if !local && !authorized {
			log.WarnContext(r.Context(), "metrics refused", "reason", "not a loopback client and no valid METRICS_TOKEN")
			http.Error(w, "forbidden: metrics are served to loopback clients, or with METRICS_TOKEN\n", http.StatusForbidden)
			return
		}
		serve.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether a Host header names this machine: localhost or a loopback
// address (127.0.0.0/8, [::1]), with or without a port. No name is resolved.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Zone() == "" && a.Unmap().IsLoopback()
}
