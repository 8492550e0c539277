package main

import (
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
)

// TelemetrySettings say what is logged, who may read the metrics and where traces go.
type TelemetrySettings struct {
	// LogLevel (LOG_LEVEL: debug, info, warn, error) is the least severe record logged. Each
	// request is logged at info, health checks and scrapes that succeed at debug.
	LogLevel slog.Level
	// MetricsToken (METRICS_TOKEN) lets a scraper that is not on the loopback interface read
	// /metrics with Authorization: Bearer <token>. Without it, only loopback peers may.
	MetricsToken secret
	// MetricsLoopback (METRICS_LOOPBACK, default true) lets loopback clients read /metrics
	// without the token. false serves /metrics to every client, for a scraper that comes from
	// another address (a service mesh's sidecar) where the network alone decides who reaches
	// the port; METRICS_TOKEN then protects nothing, and setting both is refused.
	MetricsLoopback bool
	// OTLPEndpoint (OTEL_EXPORTER_OTLP_ENDPOINT) is an OTLP/HTTP collector's base URL; traces
	// go to its /v1/traces. Unset, nothing is traced.
	OTLPEndpoint string
	// OTLPHeaders (OTEL_EXPORTER_OTLP_HEADERS, "key=value,...") go with every export: often
	// the collector's credentials.
	OTLPHeaders secret
	ServiceName string  // OTEL_SERVICE_NAME
	SampleRatio float64 // OTEL_TRACES_SAMPLER_ARG: the share of traces started here that are kept
}

// telemetry reads the metrics token and OpenTelemetry's standard variables; the exporter reads
// no variable of its own (newTracerProvider passes it every setting).
func (p *parser) telemetry() TelemetrySettings {
	t := TelemetrySettings{
		LogLevel:        logLevels[p.oneOf("LOG_LEVEL", "info", "debug", "info", "warn", "error")],
		MetricsToken:    secret(strings.TrimSpace(p.getenv("METRICS_TOKEN"))),
		MetricsLoopback: p.boolean("METRICS_LOOPBACK", true),
		OTLPEndpoint:    p.str("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
		OTLPHeaders:     secret(strings.TrimSpace(p.getenv("OTEL_EXPORTER_OTLP_HEADERS"))),
		ServiceName:     p.str("OTEL_SERVICE_NAME", "people"),
		SampleRatio:     1,
	}
	if t.OTLPEndpoint != "" {
		if u, err := url.Parse(t.OTLPEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.errs = append(p.errs, "OTEL_EXPORTER_OTLP_ENDPOINT must be an http or https URL such as http://otel-collector:4318")
		}
	}
	if _, err := otlpHeaders(t.OTLPHeaders.reveal()); err != nil {
		p.errs = append(p.errs, "OTEL_EXPORTER_OTLP_HEADERS: "+err.Error())
	}
	if v := p.str("OTEL_TRACES_SAMPLER_ARG", ""); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 0 || r > 1 {
			p.errs = append(p.errs, "OTEL_TRACES_SAMPLER_ARG must be a ratio from 0 to 1")
		} else {
			t.SampleRatio = r
		}
	}
	if !t.MetricsLoopback && t.MetricsToken != "" {
		p.errs = append(p.errs, "METRICS_LOOPBACK=false serves /metrics to every client: METRICS_TOKEN would protect nothing, unset one of them")
	}
	if len(t.MetricsToken) > 0 && len(t.MetricsToken) < 16 {
		p.errs = append(p.errs, "METRICS_TOKEN must be at least 16 characters long")
	}
	return t
}

var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

// otlpHeaders parses OpenTelemetry's header list: comma-separated key=value pairs, values
// URL-encoded. Errors never quote the value, which is often a credential.
func otlpHeaders(s string) (map[string]string, error) {
	h := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if strings.TrimSpace(kv) == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		val, err := url.PathUnescape(strings.TrimSpace(v))
		if !ok || k == "" || err != nil {
			return nil, fmt.Errorf("want key=value pairs separated by commas")
		}
		h[k] = val
	}
	return h, nil
}
