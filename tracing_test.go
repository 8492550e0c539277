package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"lasuite.fr/people/store/storetest"
	"lasuite.fr/people/telemetry"
)

// TestTracingSpans: one span per operation, the SQL statements it runs as its children, the
// caller's trace continued (traceparent), and no statement text in any span.
func TestTracingSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer(telemetry.TracerName)
	cfg, err := parseConfig(env(map[string]string{"DATABASE_URL": "postgres://u:p@127.0.0.1/db"}))
	if err != nil {
		t.Fatal(err)
	}
	log := newLogger(cfg, io.Discard)
	s := storetest.OpenFresh(t, telemetry.QueryTracer{Tracer: tracer})
	o := newOps(cfg, s.DB().DB, tracer, log)
	rs, err := newResourceServer(cfg, s, nil, nil, o, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(o.Middleware(newMux(cfg, s, newSessions(cfg, s, nil, log), rs, o, log)))
	t.Cleanup(srv.Close)
	u := storetest.User(t, s, storetest.Organization(t, s))
	cookie := sessionCookie(t, s, u)
	rec.Reset() // the fixtures' statements ran outside any trace; none should be there anyway

	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	status, _, body := queryWith(t, srv.URL, cookie, "", `query Mine { me { id email } }`, map[string]string{"traceparent": parent})
	if status != http.StatusOK {
		t.Fatalf("me: %d %s", status, body)
	}
	spans := rec.Ended()
	var op sdktrace.ReadOnlySpan
	for _, sp := range spans {
		if sp.Name() == "query me" {
			op = sp
		}
	}
	if op == nil {
		t.Fatalf("no span named %q among %v", "query me", names(spans))
	}
	if op.SpanKind() != trace.SpanKindServer || op.Parent().SpanID().String() != "00f067aa0ba902b7" ||
		op.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("operation span: kind %v, parent %v, trace %v; want a server span continuing the caller's trace", op.SpanKind(), op.Parent(), op.SpanContext().TraceID())
	}
	if !hasAttr(op.Attributes(), "graphql.operation.name", "Mine") || !hasAttr(op.Attributes(), "people.graphql.outcome", "ok") {
		t.Errorf("operation span attributes: %v", op.Attributes())
	}
	var sqlUnderOp, sqlBeforeOp int
	for _, sp := range spans {
		if !hasAttr(sp.Attributes(), "db.system.name", "postgresql") {
			continue
		}
		switch sp.Parent().SpanID() {
		case op.SpanContext().SpanID():
			sqlUnderOp++
		case op.Parent().SpanID():
			sqlBeforeOp++ // the session lookup, before the operation starts
		}
		if sp.SpanKind() != trace.SpanKindClient || sp.SpanContext().TraceID() != op.SpanContext().TraceID() {
			t.Errorf("SQL span %q: kind %v, trace %v", sp.Name(), sp.SpanKind(), sp.SpanContext().TraceID())
		}
		for _, a := range sp.Attributes() {
			if strings.Contains(a.Value.Emit(), u.Email) || strings.Contains(a.Value.Emit(), u.ID.String()) {
				t.Errorf("SQL span %q holds a value of the statement: %v", sp.Name(), a)
			}
		}
	}
	if sqlUnderOp == 0 || sqlBeforeOp == 0 {
		t.Errorf("SQL spans: %d under the operation, %d before it (session lookup); want both: %v", sqlUnderOp, sqlBeforeOp, names(spans))
	}

	// Without a caller's trace, the operation is a root span, and its statements its children.
	rec.Reset()
	query(t, srv.URL, cookie, "", `{ me { id } }`)
	spans = rec.Ended()
	var root sdktrace.ReadOnlySpan
	for _, sp := range spans {
		if sp.Name() == "query me" && !sp.Parent().IsValid() {
			root = sp
		}
	}
	if root == nil {
		t.Fatalf("no root operation span: %v", names(spans))
	}
	for _, sp := range spans {
		if sp != root && sp.Parent().SpanID() != root.SpanContext().SpanID() {
			t.Errorf("span %q is not the operation's child", sp.Name())
		}
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, sp := range spans {
		out = append(out, sp.Name())
	}
	return out
}

func hasAttr(attrs []attribute.KeyValue, key, value string) bool {
	for _, a := range attrs {
		if string(a.Key) == key && a.Value.Emit() == value {
			return true
		}
	}
	return false
}

// collector is an OTLP/HTTP receiver: it decodes what the exporter posts.
type collector struct {
	mu      sync.Mutex
	paths   []string
	headers []http.Header
	spans   []string // service.name/span name
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req coltrace.ExportTraceServiceRequest
	if r.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paths = append(c.paths, r.Method+" "+r.URL.Path)
	c.headers = append(c.headers, r.Header.Clone())
	for _, rs := range req.ResourceSpans {
		service := ""
		for _, a := range rs.Resource.GetAttributes() {
			if a.Key == "service.name" {
				service = a.Value.GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				c.spans = append(c.spans, service+"/"+sp.Name)
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	b, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Write(b)
}

// TestTracingExportsOverOTLP runs the program with OTEL_EXPORTER_OTLP_ENDPOINT: its spans reach
// the collector's /v1/traces, with the configured headers, at the latest when it shuts down.
func TestTracingExportsOverOTLP(t *testing.T) {
	c := &collector{}
	otlp := httptest.NewServer(c)
	t.Cleanup(otlp.Close)
	base, _, stop := runServer(t, "people_otlp_"+storetest.Unique(), map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.URL, "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20collector-key",
		"OTEL_SERVICE_NAME": "people-test",
	})
	if status, _, body := query(t, base, nil, "", `{ config { release } }`); status != http.StatusOK {
		t.Fatalf("config: %d %s", status, body)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.paths) == 0 || c.paths[0] != "POST /v1/traces" || c.headers[0].Get("Authorization") != "Bearer collector-key" {
		t.Fatalf("the collector got %v with headers %v", c.paths, c.headers)
	}
	if !strings.Contains(strings.Join(c.spans, ","), "people-test/query config") {
		t.Errorf("exported spans: %v, want people-test/query config", c.spans)
	}
}
