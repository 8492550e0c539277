package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestOperationsConfig(t *testing.T) {
	base := map[string]string{"DATABASE_URL": "postgres://u:p@127.0.0.1/db"}
	c, err := parseConfig(env(base))
	if err != nil {
		t.Fatal(err)
	}
	wantHTTP := HTTPSettings{ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	wantLimits := RateLimitSettings{Burst: rate{20, time.Minute}, Sustained: rate{150, time.Hour}, Anonymous: rate{300, time.Minute},
		Introspection: rate{60, time.Minute}, IntrospectionConcurrency: 16}
	wantTelemetry := TelemetrySettings{MetricsLoopback: true, ServiceName: "people", SampleRatio: 1}
	if diff := cmp.Diff(wantHTTP, c.HTTP, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("HTTP defaults (-want +got):\n%s", diff)
	}
	if c.RateLimits != wantLimits || c.Telemetry != wantTelemetry {
		t.Errorf("defaults: %+v %+v", c.RateLimits, c.Telemetry)
	}

	set := map[string]string{
		"DATABASE_URL": "postgres://u:p@127.0.0.1/db", "HTTP_READ_HEADER_TIMEOUT": "2s", "HTTP_READ_TIMEOUT": "5", "HTTP_WRITE_TIMEOUT": "20s",
		"HTTP_IDLE_TIMEOUT": "1m", "TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7 ,::1", "BURST_THROTTLE_RATES": "5/second",
		"SUSTAINED_THROTTLE_RATES": "off", "ANON_THROTTLE_RATES": "1000/day", "METRICS_TOKEN": "0123456789abcdef-scrape",
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_EXPORTER_OTLP_HEADERS": "x-key=a%20b", "OTEL_SERVICE_NAME": "annuaire",
		"OTEL_TRACES_SAMPLER_ARG": "0.25", "LOG_LEVEL": "warn", "SERVICE_THROTTLE_RATES": "600/minute", "INTROSPECTION_RATE_LIMIT": "off",
		"INTROSPECTION_MAX_CONCURRENCY": "4", "REDIS_URL": "redis://:redis-password@valkey:6379/2",
	}
	c, err = parseConfig(env(set))
	if err != nil {
		t.Fatal(err)
	}
	wantHTTP = HTTPSettings{ReadHeaderTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 20 * time.Second, IdleTimeout: time.Minute,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"), netip.MustParsePrefix("::1/128")}}
	if diff := cmp.Diff(wantHTTP, c.HTTP, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("HTTP (-want +got):\n%s", diff)
	}
	if want := (RateLimitSettings{Burst: rate{5, time.Second}, Anonymous: rate{1000, 24 * time.Hour}, Service: rate{600, time.Minute},
		IntrospectionConcurrency: 4, Redis: "redis://:redis-password@valkey:6379/2"}); c.RateLimits != want {
		t.Errorf("RateLimits = %+v, want %+v", c.RateLimits, want)
	}
	if tm := c.Telemetry; tm.MetricsToken.reveal() != "0123456789abcdef-scrape" || tm.OTLPEndpoint != "http://collector:4318" ||
		tm.OTLPHeaders.reveal() != "x-key=a%20b" || tm.ServiceName != "annuaire" || tm.SampleRatio != 0.25 || tm.LogLevel != slog.LevelWarn {
		t.Errorf("Telemetry = %+v", tm)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", c)
	fmt.Fprintf(&buf, "%+v", c)
	if strings.Contains(buf.String(), "0123456789abcdef") || strings.Contains(buf.String(), "a%20b") || strings.Contains(buf.String(), "redis-password") {
		t.Errorf("a secret leaked: %s", buf.String())
	}
	if !strings.Contains(buf.String(), `"Burst":"5/second"`) {
		t.Errorf("rates are not logged readably: %s", buf.String())
	}

	_, err = parseConfig(env(map[string]string{
		"DATABASE_URL": "postgres://u:p@127.0.0.1/db", "HTTP_READ_TIMEOUT": "soon", "HTTP_WRITE_TIMEOUT": "5s", "DATABASE_STATEMENT_TIMEOUT": "10s",
		"TRUSTED_PROXIES": "10.0.0.0/33", "BURST_THROTTLE_RATES": "20/fortnight", "SUSTAINED_THROTTLE_RATES": "lots",
		"ANON_THROTTLE_RATES": "-1/minute", "METRICS_TOKEN": "short", "OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318",
		"OTEL_EXPORTER_OTLP_HEADERS": "novalue", "OTEL_TRACES_SAMPLER_ARG": "2", "LOG_LEVEL": "loud",
		"SERVICE_THROTTLE_RATES": "many", "INTROSPECTION_RATE_LIMIT": "60", "INTROSPECTION_MAX_CONCURRENCY": "0",
		"REDIS_URL": "http://:short@redis",
	}))
	for _, key := range []string{"HTTP_READ_TIMEOUT", "HTTP_WRITE_TIMEOUT (5s) must be longer than DATABASE_STATEMENT_TIMEOUT", "TRUSTED_PROXIES",
		"BURST_THROTTLE_RATES", "SUSTAINED_THROTTLE_RATES", "ANON_THROTTLE_RATES", "METRICS_TOKEN", "OTEL_EXPORTER_OTLP_ENDPOINT",
		"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_TRACES_SAMPLER_ARG", "LOG_LEVEL", "SERVICE_THROTTLE_RATES", "INTROSPECTION_RATE_LIMIT",
		"INTROSPECTION_MAX_CONCURRENCY", "REDIS_URL"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error %v does not name %s", err, key)
		}
	}
	if err != nil && strings.Contains(err.Error(), "short") {
		t.Errorf("the error quotes METRICS_TOKEN or REDIS_URL: %v", err)
	}
}
