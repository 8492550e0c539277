package main

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// tracerName is the instrumentation scope of our spans.
const tracerName = "lasuite.fr/people"

// newTracerProvider exports spans over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT's /v1/traces,
// in batches, or returns nil when the variable is unset: then nothing is traced, and the
// tracer is a no-op. Export failures are logged as warnings.
func newTracerProvider(ctx context.Context, cfg Config, log *slog.Logger) (*sdktrace.TracerProvider, error) {
	t := cfg.Telemetry
	if t.OTLPEndpoint == "" {
		return nil, nil
	}
	headers, err := otlpHeaders(t.OTLPHeaders.reveal())
	if err != nil {
		return nil, err // parseConfig has checked it already
	}
	exp, err := otlptracehttp.New(ctx,
		otlptracehttp.WithEndpointURL(strings.TrimRight(t.OTLPEndpoint, "/")+"/v1/traces"),
		otlptracehttp.WithHeaders(headers),
		otlptracehttp.WithTimeout(10*time.Second))
	if err != nil {
		return nil, err
	}
	// The SDK reports export errors through otel's global handler only.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("trace export failed", "err", err) }))
	res := resource.NewSchemaless(
		attribute.String("service.name", t.ServiceName),
		attribute.String("service.version", cfg.Release),
		attribute.String("deployment.environment.name", cfg.Environment))
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(t.SampleRatio))),
	), nil
}

// queryTracer is a bun query hook that makes one span per SQL statement run on behalf of a
// traced request; statements of background work (webhook deliveries, purges) are not traced.
// Spans carry the statement's operation and table, not its text: bun writes the arguments
// into the text, and they are personal data (names, emails) and secrets (webhook tokens).
type queryTracer struct{ tracer trace.Tracer }

type querySpanKey struct{}

func (q queryTracer) BeforeQuery(ctx context.Context, e *bun.QueryEvent) context.Context {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	op := e.Operation()
	name := op
	attrs := []attribute.KeyValue{attribute.String("db.system.name", "postgresql"), attribute.String("db.operation.name", op)}
	if t, ok := e.IQuery.(interface{ GetTableName() string }); ok {
		if table := t.GetTableName(); table != "" {
			name += " " + table
			attrs = append(attrs, attribute.String("db.collection.name", table))
		}
	}
	ctx, span := q.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return context.WithValue(ctx, querySpanKey{}, span)
}

func (queryTracer) AfterQuery(ctx context.Context, e *bun.QueryEvent) {
	span, ok := ctx.Value(querySpanKey{}).(trace.Span)
	if !ok {
		return
	}
	if e.Err != nil && !errors.Is(e.Err, sql.ErrNoRows) {
		// The SQLSTATE only: PostgreSQL's messages may quote the values.
		code := "error"
		if pgErr, ok := errors.AsType[*pgconn.PgError](e.Err); ok {
			code = pgErr.Code
		}
		span.SetAttributes(attribute.String("db.response.status_code", code))
		span.SetStatus(codes.Error, code)
	}
	span.End()
}
