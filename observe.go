package main

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/graph"
)

var _ graph.Observer = (*ops)(nil)

// Admit applies BURST_THROTTLE_RATES and SUSTAINED_THROTTLE_RATES to operations over People's
// throttled data, once per operation whatever its number of fields, per caller (callerKey).
func (o *ops) Admit(ctx context.Context, op graph.Operation) time.Duration {
	if !op.Throttled || o.throttle == nil {
		return 0
	}
	st := stateFrom(ctx)
	if st == nil {
		st = &requestState{}
	}
	wait, rule := o.throttle.allow(callerKey(ctx, st))
	if wait > 0 {
		o.refused(ctx, st, wait, rule)
	}
	return wait
}

// callerKey is whom a rate limit counts: the user of a browser session, the service provider
// of a bearer token (all its users together: a partner service is one caller), or the client
// address of an anonymous request.
func callerKey(ctx context.Context, st *requestState) string {
	p, ok := auth.PrincipalFrom(ctx)
	switch {
	case !ok:
		return addrKey(st.addr)
	case p.Method == auth.MethodBearer && p.ServiceProviderID != uuid.Nil:
		return "service:" + p.ServiceProviderID.String()
	case p.Method == auth.MethodBearer:
		return "audience:" + p.Audience
	}
	return "user:" + p.UserID.String()
}

// operationSpanKey holds the span Start made, for Finish to end.
type operationSpanKey struct{}

// Start opens the operation's span, when tracing is on. Its name is bounded like the metrics'
// labels; the client's operationName is an attribute.
func (o *ops) Start(ctx context.Context, op graph.Operation) context.Context {
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
func (o *ops) Finish(ctx context.Context, op graph.Operation, resp *graphql.Response) {
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
	o.metrics.operation(label, outcome, time.Since(start))
	if span, ok := ctx.Value(operationSpanKey{}).(trace.Span); ok {
		span.SetAttributes(attribute.String("people.graphql.outcome", outcome))
		if outcome != "ok" {
			span.SetStatus(codes.Error, outcome)
		}
		span.End()
	}
}
