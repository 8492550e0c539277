// Package telemetry is what the server tells its operators besides the log: the Prometheus
// series (Metrics, in a registry of their own) and the OpenTelemetry traces (NewTracerProvider,
// and QueryTracer for the SQL statements). Who may read /metrics, and what each request
// counts, is the HTTP layer's to decide (package ops).
//
// It imports auth only, for the names of the outcomes whose series exist from the start: never
// main, graph or store.
package telemetry

import (
	"database/sql"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"lasuite.fr/people/auth"
)

// Metrics are the server's Prometheus series, in a registry of their own (no global state).
// Every label takes its values from a fixed set: route patterns of the mux, status codes, root
// fields of the schema, error codes we define; never from what a client writes.
type Metrics struct {
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

// NewMetrics registers the series, db's pool statistics among them. limits name the rate limits
// whose refusals are counted, so that their series exist from the start.
func NewMetrics(db *sql.DB, limits ...string) *Metrics {
	m := &Metrics{
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
	for _, l := range limits {
		m.rateLimited.WithLabelValues(l)
	}
	return m
}

// TokenCached, Introspected, CredentialChecked and RateLimited implement auth.Metrics.
func (m *Metrics) TokenCached()                { m.tokenCacheHits.Inc() }
func (m *Metrics) Introspected(outcome string) { m.introspections.WithLabelValues(outcome).Inc() }
func (m *Metrics) RateLimited(limit string)    { m.rateLimited.WithLabelValues(limit).Inc() }
func (m *Metrics) CredentialChecked(kind, outcome string) {
	m.credentials.WithLabelValues(kind, outcome).Inc()
}

// Request counts one answered HTTP request; route is the mux's pattern, empty when none matched.
func (m *Metrics) Request(route string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	m.httpRequests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(route).Observe(d.Seconds())
}

// Operation counts one GraphQL response, by its label (its root field, or other) and outcome.
func (m *Metrics) Operation(label, outcome string, d time.Duration) {
	m.operations.WithLabelValues(label, outcome).Inc()
	m.opDuration.WithLabelValues(label, outcome).Observe(d.Seconds())
}

// Panicked counts a panic recovered while answering a request.
func (m *Metrics) Panicked() { m.panics.Inc() }

// RedisFallback counts a rate-limit decision made in memory because Redis could not be reached.
func (m *Metrics) RedisFallback() { m.redisFallbacks.Inc() }

// Handler serves the registry in Prometheus's text format, to whoever reaches it.
func (m *Metrics) Handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError), Registry: m.registry,
	})
}
