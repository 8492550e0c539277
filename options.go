package main

import (
	"context"
	"database/sql"
	"log/slog"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"lasuite.fr/people/mail"
	"lasuite.fr/people/ops"
	"lasuite.fr/people/ratelimit"
	"lasuite.fr/people/telemetry"
	"lasuite.fr/people/webhook"
)

// The packages that main assembles take plain option structs and never see Config or its
// secrets: these hand each one the part of the configuration it needs.

// mailOptions are the invitation emails' settings (EMAIL_*, FRONTEND_URL).
func mailOptions(c mailConfig) mail.Options {
	return mail.Options{Host: c.Host, Port: c.Port, User: c.User, Password: c.Password.reveal(), UseTLS: c.UseTLS, UseSSL: c.UseSSL,
		From: c.From, FrontendURL: c.FrontendURL}
}

// webhookOptions are the team webhooks' delivery settings (WEBHOOK_*); receivers' certificates
// are verified against the system's pool. SecretKeys go to the store, not to the sender.
func webhookOptions(c webhookConfig) webhook.Options {
	return webhook.Options{MaxAge: c.MaxAge, AllowHTTP: c.AllowHTTP, Retention: c.Retention, AllowedNetworks: c.AllowedNetworks,
		MatrixBotToken: c.MatrixBotToken.reveal(), MatrixBaseHomeServer: c.MatrixBaseHomeServer}
}

// newTracerProvider exports traces as OTEL_EXPORTER_OTLP_ENDPOINT and the other OTEL_* settings
// say, or returns nil when the endpoint is unset (telemetry.NewTracerProvider).
func newTracerProvider(ctx context.Context, cfg Config, log *slog.Logger) (*sdktrace.TracerProvider, error) {
	t := cfg.Telemetry
	headers, err := otlpHeaders(t.OTLPHeaders.reveal())
	if err != nil {
		return nil, err // parseConfig has checked it already
	}
	return telemetry.NewTracerProvider(ctx, telemetry.TracingOptions{Endpoint: t.OTLPEndpoint, Headers: headers,
		ServiceName: t.ServiceName, Release: cfg.Release, Environment: cfg.Environment, SampleRatio: t.SampleRatio}, log)
}

// newOps prepares the operations layer over db's pool (ops.New): the rate limits, the client
// addresses behind TRUSTED_PROXIES, the requests' deadline and who may read /metrics. tracer
// nil means tracing is off.
func newOps(cfg Config, db *sql.DB, tracer trace.Tracer, log *slog.Logger) *ops.Layer {
	rl := cfg.RateLimits
	return ops.New(ops.Options{
		Burst: rl.Burst.limit(), Sustained: rl.Sustained.limit(), Service: rl.Service.limit(),
		Anonymous: rl.Anonymous.limit(), Introspection: rl.Introspection.limit(), Redis: rl.Redis.reveal(),
		TrustedProxies: cfg.HTTP.TrustedProxies, Deadline: cfg.HTTP.WriteTimeout,
		MetricsToken: cfg.Telemetry.MetricsToken.reveal(), MetricsLoopback: cfg.Telemetry.MetricsLoopback,
	}, db, tracer, log)
}

// limit is the rate as package ratelimit takes it.
func (r rate) limit() ratelimit.Rate { return ratelimit.Rate{N: r.N, Period: r.Period} }
