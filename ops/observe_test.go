package ops

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/graph"
	"lasuite.fr/people/store/storetest"
	"lasuite.fr/people/telemetry"
)

// TestCallerKey: whom each kind of caller counts as, in one allocation for the callers that
// are on every throttled request.
func TestCallerKey(t *testing.T) {
	user, sp := uuid.MustParse("0b9f4ad2-5c41-4f0e-9a53-2c1d7e0f6a11"), uuid.MustParse("7d2e31c8-90ab-4cde-8f01-23456789abcd")
	st := &requestState{addr: netip.MustParseAddr("203.0.113.7")}
	tests := []struct {
		name     string
		p        *auth.Principal
		want     string
		oneAlloc bool
	}{
		{"anonymous", nil, "ip:203.0.113.7", false},
		{"session", &auth.Principal{UserID: user, Method: auth.MethodSession}, "user:" + user.String(), true},
		{"partner user", &auth.Principal{UserID: user, Method: auth.MethodBearer, ServiceProviderID: sp, Audience: "docs"},
			"service:" + sp.String() + ":user:" + user.String(), true},
		{"partner user, service not recorded", &auth.Principal{UserID: user, Method: auth.MethodBearer, Audience: "docs"},
			"audience:docs:user:" + user.String(), false},
	}
	for _, tt := range tests {
		ctx := context.Background()
		if tt.p != nil {
			ctx = auth.WithPrincipal(ctx, *tt.p)
		}
		if got := callerKey(ctx, st); got != tt.want {
			t.Errorf("%s: callerKey = %q, want %q", tt.name, got, tt.want)
		}
		if tt.oneAlloc {
			if n := testing.AllocsPerRun(100, func() { callerKey(ctx, st) }); n > 1 {
				t.Errorf("%s: callerKey allocates %v times, want 1", tt.name, n)
			}
		}
	}
}

func TestTracingOffWithoutEndpoint(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	tp, err := telemetry.NewTracerProvider(t.Context(), telemetry.TracingOptions{ServiceName: "people", SampleRatio: 1}, log)
	if tp != nil || err != nil {
		t.Errorf("NewTracerProvider without OTEL_EXPORTER_OTLP_ENDPOINT = %v, %v; want nil, nil", tp, err)
	}
	o := New(Options{Deadline: time.Minute}, storetest.Open(t).DB().DB, nil, log)
	if o.tracing || o.tracer == nil {
		t.Errorf("ops without a tracer: tracing %v, tracer %v", o.tracing, o.tracer)
	}
	if ctx := o.Start(t.Context(), graph.Operation{Type: "query", Fields: []string{"me"}}); trace.SpanFromContext(ctx).SpanContext().IsValid() {
		t.Error("Start made a span with tracing off")
	}
}
