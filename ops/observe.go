package ops

import (
	"context"
	"encoding/hex"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/graph"
	"lasuite.fr/people/ratelimit"
)

var _ graph.Observer = (*Layer)(nil)

// Admit applies BURST_THROTTLE_RATES and SUSTAINED_THROTTLE_RATES to operations over People's
// throttled data, once per operation whatever its number of fields, per caller (callerKey);
// then, for a partner service, SERVICE_THROTTLE_RATES to all its users together. A refusal
// spends nothing: when the service's ceiling refuses, the user's tokens are given back.
//
// With the buckets in Redis, a query is admitted through ratelimit.Limiter.Begin: at once for a
// caller far from its limit, else it runs while Redis decides and its answer waits for the
// decision (later), so that a round trip to Redis costs the query no time. Mutations, and the
// queries of a caller refused lately, are decided before they run.
func (o *Layer) Admit(ctx context.Context, op graph.Operation) (time.Duration, func() time.Duration) {
	if !op.Throttled || (o.throttle == nil && o.services == nil) {
		return 0, nil
	}
	st := stateFrom(ctx)
	if st == nil {
		st = &requestState{}
	}
	key := callerKey(ctx, st)
	if op.Type != "query" {
		wait, rule := o.throttle.Allow(key)
		return o.admit(ctx, st, key, wait, rule), nil
	}
	wait, rule, later := o.throttle.Begin(key)
	if later == nil {
		return o.admit(ctx, st, key, wait, rule), nil
	}
	return 0, sync.OnceValue(func() time.Duration {
		wait, rule := later()
		return o.admit(ctx, st, key, wait, rule)
	})
}

// admit completes Admit once the caller's own limits answered wait (refused by rule when
// positive): the service's ceiling, and the refusal's log line and count.
func (o *Layer) admit(ctx context.Context, st *requestState, key string, wait time.Duration, rule string) time.Duration {
	if wait == 0 && o.services != nil {
		if p, ok := auth.PrincipalFrom(ctx); ok && p.Method == auth.MethodBearer {
			if wait, rule = o.services.Allow(serviceKey(p)); wait > 0 {
				o.throttle.Refund(key)
			}
		}
	}
	if wait > 0 {
		o.refused(ctx, st, wait, rule)
	}
	return wait
}

// callerKey is whom a rate limit counts: the user of a browser session, the user a partner
// service acts for through a bearer token (each user of the service on their own, as People
// throttles per user), or the client address of an anonymous request.
func callerKey(ctx context.Context, st *requestState) string {
	p, ok := auth.PrincipalFrom(ctx)
	switch {
	case !ok:
		return ratelimit.AddrKey(st.addr)
	case p.Method == auth.MethodBearer && p.ServiceProviderID != uuid.Nil:
		// One allocation, on every throttled request: the string itself.
		var b [len("service:") + 36 + len(":user:") + 36]byte
		n := copy(b[:], "service:")
		n += putUUID(b[n:], p.ServiceProviderID)
		n += copy(b[n:], ":user:")
		putUUID(b[n:], p.UserID)
		return string(b[:])
	case p.Method == auth.MethodBearer:
		return serviceKey(p) + ":user:" + p.UserID.String()
	}
	var b [len("user:") + 36]byte
	putUUID(b[copy(b[:], "user:"):], p.UserID)
	return string(b[:])
}

// putUUID writes u in its canonical form (36 bytes) at the start of dst, and returns 36.
func putUUID(dst []byte, u uuid.UUID) int {
	hex.Encode(dst[0:8], u[0:4])
	dst[8] = '-'
	hex.Encode(dst[9:13], u[4:6])
	dst[13] = '-'
	hex.Encode(dst[14:18], u[6:8])
	dst[18] = '-'
	hex.Encode(dst[19:23], u[8:10])
	dst[23] = '-'
	hex.Encode(dst[24:36], u[10:16])
	return 36
}

// serviceKey names the partner service of a bearer principal.
func serviceKey(p auth.Principal) string {
	if p.ServiceProviderID != uuid.Nil {
		return "service:" + p.ServiceProviderID.String()
	}
	return "audience:" + p.Audience
}

// operationSpanKey holds the span Start made, for Finish to end.
type operationSpanKey struct{}

// Start opens the operation's span, when tracing is on. Its name is bounded like the metrics'
// labels; the client's operationName is an attribute.
func (o *Layer) Start(ctx context.Context, op graph.Operation) context.Context {
	if !o.tracing {
		return ctx
	}
	ctx, span := o.tracer.Start(ctx, op.Type+" "+operationLabel(op), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("graphql.operation.type", op.Type),
			attribute.String("graphql.operation.name", truncate(op.Name, 100)),
			attribute.StringSlice("people.graphql.fields", op.Fields),
		))
	return context.WithValue(ctx, operationSpanKey{}, span)
}

// Finish counts the response, tells the middleware about the operation for its log line, ends
// Start's span, and gives each INTERNAL and UNAVAILABLE error the request id, which the client
// can quote.
func (o *Layer) Finish(ctx context.Context, op graph.Operation, resp *graphql.Response) {
	st := stateFrom(ctx)
	errCodes := make([]string, 0, len(resp.Errors))
	for _, e := range resp.Errors {
		code, _ := e.Extensions["code"].(string)
		errCodes = append(errCodes, code)
		if (code == graph.CodeInternal || code == graph.CodeUnavailable) && st != nil && st.id != "" {
			e.Extensions["requestId"] = st.id
		}
	}
	label, outcome := operationLabel(op), outcomeOf(errCodes)
	start := time.Now()
	switch {
	case st != nil:
		start = st.start
		st.operation, st.fields, st.outcome = op.Name, label, outcome
	case graphql.HasOperationContext(ctx):
		start = graphql.GetOperationContext(ctx).Stats.OperationStart
	}
	o.metrics.Operation(label, outcome, time.Since(start))
	if span, ok := ctx.Value(operationSpanKey{}).(trace.Span); ok {
		span.SetAttributes(attribute.String("people.graphql.outcome", outcome))
		if outcome != "ok" {
			span.SetStatus(codes.Error, outcome)
		}
		span.End()
	}
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

// Throttle holds a call of the partner REST API over People's throttled data (package rest:
// SCIM /Me, the REST twin of GraphQL's me) to the limits Admit applies to a GraphQL operation
// over the same data, in the same buckets: a partner's REST and GraphQL calls count together.
func (o *Layer) Throttle(ctx context.Context, route string) time.Duration {
	wait, _ := o.Admit(ctx, graph.Operation{Name: route, Throttled: true}) // no Type: decided at once
	return wait
}
