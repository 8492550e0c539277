package telemetry

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TracerName is the instrumentation scope of our spans.
const TracerName = "lasuite.fr/people"

// TracingOptions say where spans go and what they say of the server (OpenTelemetry's standard
// OTEL_* variables, read by main).
type TracingOptions struct {
	// Endpoint (OTEL_EXPORTER_OTLP_ENDPOINT) is an OTLP/HTTP collector's base URL; traces go to
	// its /v1/traces. Empty: nothing is traced.
	Endpoint string
	Headers  map[string]string // OTEL_EXPORTER_OTLP_HEADERS, often the collector's credentials
	// ServiceName, Release and Environment describe the server in every span's resource.
	ServiceName, Release, Environment string
	SampleRatio                       float64 // OTEL_TRACES_SAMPLER_ARG
}

// NewTracerProvider exports spans over OTLP/HTTP to the endpoint's /v1/traces, in batches, or
// returns nil when there is no endpoint: then nothing is traced, and the tracer is a no-op.
// Export failures are logged as warnings.
func NewTracerProvider(ctx context.Context, t TracingOptions, log *slog.Logger) (*sdktrace.TracerProvider, error) {
	if t.Endpoint == "" {
		return nil, nil
	}
	exp, err := otlptracehttp.New(ctx,
		otlptracehttp.WithEndpointURL(strings.TrimRight(t.Endpoint, "/")+"/v1/traces"),
		otlptracehttp.WithHeaders(t.Headers),
		otlptracehttp.WithTimeout(10*time.Second))
	if err != nil {
		return nil, err
	}
	// The SDK reports export errors through otel's global handler only.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("trace export failed", "err", err) }))
	res := resource.NewSchemaless(
		attribute.String("service.name", t.ServiceName),
		attribute.String("service.version", t.Release),
		attribute.String("deployment.environment.name", t.Environment))
	return sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(t.SampleRatio))),
	), nil
}

// QueryTracer is a pgx query tracer that makes one span per SQL statement run on behalf of a
// traced request; statements of background work (webhook deliveries, purges) are not traced. It
// sits on the connections (store.Options.Tracer), so it sees the statements bun runs and those
// the store runs on pgx directly alike. Spans carry the statement's operation and table, read
// from the text's keywords and identifiers (statementName), never a literal: bun writes the
// arguments into the text, and they are personal data (names, emails) and secrets (webhook
// tokens).
type QueryTracer struct{ Tracer trace.Tracer }

type querySpanKey struct{}

// TraceQueryStart implements pgx.QueryTracer.
func (q QueryTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	op, table := statementName(data.SQL)
	name := op
	attrs := []attribute.KeyValue{attribute.String("db.system.name", "postgresql"), attribute.String("db.operation.name", op)}
	if table != "" {
		name += " " + table
		attrs = append(attrs, attribute.String("db.collection.name", table))
	}
	ctx, span := q.Tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return context.WithValue(ctx, querySpanKey{}, span)
}

// TraceQueryEnd implements pgx.QueryTracer.
func (QueryTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	span, ok := ctx.Value(querySpanKey{}).(trace.Span)
	if !ok {
		return
	}
	if data.Err != nil && !errors.Is(data.Err, sql.ErrNoRows) && !errors.Is(data.Err, pgx.ErrNoRows) {
		// The SQLSTATE only: PostgreSQL's messages may quote the values.
		code := "error"
		if pgErr, ok := errors.AsType[*pgconn.PgError](data.Err); ok {
			code = pgErr.Code
		}
		span.SetAttributes(attribute.String("db.response.status_code", code))
		span.SetStatus(codes.Error, code)
	}
	span.End()
}

// statementName returns a statement's operation (SELECT, INSERT, BEGIN…; for WITH, the
// statement after the common table expressions) and the table it reads or writes first (after
// FROM, INTO or UPDATE, unless that is one of its own CTEs or a function), as bun's query
// events named them. Both come from keywords and identifiers outside string literals and
// comments, so neither can hold a value of the statement.
func statementName(text string) (op, table string) {
	toks := sqlTokens(text)
	opAt := -1
	ctes := map[string]bool{}
	for i, t := range toks {
		if t.depth != 0 || t.kind == ',' {
			continue
		}
		word := strings.ToUpper(t.text)
		if t.kind == 'w' && slices.Contains([]string{"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "VALUES", "TABLE"}, word) {
			op, opAt = word, i
			break
		}
		if i == 0 && (t.kind != 'w' || word != "WITH") {
			if t.kind == 'w' {
				return word, "" // BEGIN, COMMIT, SET…: a command of its own
			}
			return "", ""
		}
		if i+1 < len(toks) && toks[i+1].kind == 'w' && strings.EqualFold(toks[i+1].text, "AS") {
			ctes[t.text] = true
		}
	}
	if opAt < 0 {
		return op, ""
	}
	want := map[string]string{"SELECT": "FROM", "DELETE": "FROM", "INSERT": "INTO", "MERGE": "INTO", "UPDATE": "UPDATE"}[op]
	for i := opAt; i < len(toks) && want != ""; i++ {
		if toks[i].depth != 0 || toks[i].kind != 'w' || !strings.EqualFold(toks[i].text, want) {
			continue
		}
		i++
		if i < len(toks) && toks[i].kind == 'w' && strings.EqualFold(toks[i].text, "ONLY") {
			i++
		}
		for i+2 < len(toks) && toks[i+1].kind == '.' { // schema.table
			i += 2
		}
		if i < len(toks) && (toks[i].kind == 'w' || toks[i].kind == '"') && !ctes[toks[i].text] &&
			(want != "FROM" || i+1 == len(toks) || toks[i+1].kind != '(') { // FROM f(…) reads a function
			return op, toks[i].text
		}
		break
	}
	return op, ""
}

// sqlToken is a word (kind 'w'), a quoted identifier ('"', unquoted), or a punctuation mark
// (its own kind), at a depth of parentheses.
type sqlToken struct {
	text  string
	kind  byte
	depth int
}

// sqlTokens splits a statement into tokens, leaving out string literals, numbers, parameters
// and comments.
func sqlTokens(text string) []sqlToken {
	var toks []sqlToken
	depth := 0
	isWord := func(c byte, first bool) bool {
		return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && (c == '$' || c >= '0' && c <= '9')
	}
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == '\'' || c == '"':
			escapes := c == '\'' && i > 0 && (text[i-1] == 'E' || text[i-1] == 'e')
			if escapes && len(toks) > 0 && toks[len(toks)-1].kind == 'w' && strings.EqualFold(toks[len(toks)-1].text, "E") {
				toks = toks[:len(toks)-1] // E'…' is a literal, not a word
			}
			j := i + 1
			for j < len(text) {
				if text[j] == c {
					if j+1 < len(text) && text[j+1] == c { // a doubled quote inside
						j += 2
						continue
					}
					break
				}
				if escapes && text[j] == '\\' {
					j++
				}
				j++
			}
			if c == '"' {
				toks = append(toks, sqlToken{strings.ReplaceAll(text[i+1:min(j, len(text))], `""`, `"`), '"', depth})
			}
			i = j + 1
		case strings.HasPrefix(text[i:], "--"):
			if j := strings.IndexByte(text[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(text)
			}
		case strings.HasPrefix(text[i:], "/*"):
			if j := strings.Index(text[i+2:], "*/"); j >= 0 {
				i += j + 4
			} else {
				i = len(text)
			}
		case isWord(c, true):
			j := i + 1
			for j < len(text) && isWord(text[j], false) {
				j++
			}
			toks = append(toks, sqlToken{text[i:j], 'w', depth})
			i = j
		case c == '$' || c >= '0' && c <= '9': // a parameter or a number
			j := i + 1
			for j < len(text) && (text[j] == '.' || text[j] >= '0' && text[j] <= '9') {
				j++
			}
			i = j
		case c == '(':
			toks = append(toks, sqlToken{"(", '(', depth})
			depth++
			i++
		case c == ')':
			depth--
			toks = append(toks, sqlToken{")", ')', depth})
			i++
		case c <= ' ':
			i++
		default:
			toks = append(toks, sqlToken{text[i : i+1], c, depth})
			i++
		}
	}
	return toks
}
