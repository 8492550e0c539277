package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestWebhookConfig(t *testing.T) {
	base := map[string]string{"DATABASE_URL": "postgres://u:p@127.0.0.1/db"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want webhookConfig
	}{
		{"production defaults", with(), webhookConfig{MaxAge: 24 * time.Hour, Retention: 30 * 24 * time.Hour}},
		{"development allows http and loopback", with("ENVIRONMENT", "development"), webhookConfig{MaxAge: 24 * time.Hour, AllowHTTP: true,
			Retention: 30 * 24 * time.Hour, AllowedNetworks: prefixes("127.0.0.0/8", "::1/128")}},
		{"set", with("WEBHOOK_MAX_AGE", "2h", "WEBHOOK_ALLOW_HTTP", "true", "WEBHOOK_DELIVERY_RETENTION", "86400",
			"WEBHOOK_ALLOWED_NETWORKS", "10.1.0.0/16, 192.168.1.7,fd00::/8"),
			webhookConfig{MaxAge: 2 * time.Hour, AllowHTTP: true, Retention: 24 * time.Hour,
				AllowedNetworks: prefixes("10.1.0.0/16", "192.168.1.7/32", "fd00::/8")}},
		{"secret keys", with("SECRET_KEY", "current", "SECRET_KEY_FALLBACKS", " previous , older,"),
			webhookConfig{MaxAge: 24 * time.Hour, Retention: 30 * 24 * time.Hour, SecretKeys: []secret{"current", "previous", "older"}}},
		{"matrix", with("MATRIX_BOT_ACCESS_TOKEN", "syt_bot", "MATRIX_BASE_HOME_SERVER", "https://matrix.agent.tchap.gouv.fr"),
			webhookConfig{MaxAge: 24 * time.Hour, Retention: 30 * 24 * time.Hour, MatrixBotToken: "syt_bot",
				MatrixBaseHomeServer: "https://matrix.agent.tchap.gouv.fr"}},
		{"development refuses http and loopback when told", with("ENVIRONMENT", "development", "WEBHOOK_ALLOW_HTTP", "false",
			"WEBHOOK_ALLOWED_NETWORKS", "none"),
			webhookConfig{MaxAge: 24 * time.Hour, Retention: 30 * 24 * time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, c.Webhook, cmp.AllowUnexported(webhookConfig{}), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("Webhook (-want +got):\n%s", diff)
			}
		})
	}

	_, err := parseConfig(env(with("WEBHOOK_MAX_AGE", "forever", "WEBHOOK_ALLOW_HTTP", "sometimes", "WEBHOOK_DELIVERY_RETENTION", "-1h",
		"WEBHOOK_ALLOWED_NETWORKS", "10.0.0.0/33")))
	if _, err := parseConfig(env(with("SECRET_KEY_FALLBACKS", "previous"))); err == nil || !strings.Contains(err.Error(), "SECRET_KEY_FALLBACKS needs SECRET_KEY") {
		t.Errorf("fallbacks without a key: %v", err)
	}
	for _, h := range []string{"http://matrix.example.org", "matrix.example.org", "https://u:p@matrix.example.org"} {
		if _, err := parseConfig(env(with("MATRIX_BASE_HOME_SERVER", h))); err == nil || !strings.Contains(err.Error(), "MATRIX_BASE_HOME_SERVER") {
			t.Errorf("MATRIX_BASE_HOME_SERVER=%s: %v, want an error naming it", h, err)
		}
	}
	if _, err := parseConfig(env(with("MATRIX_BOT_ACCESS_TOKEN", "a b"))); err == nil || !strings.Contains(err.Error(), "MATRIX_BOT_ACCESS_TOKEN") {
		t.Errorf("a token with a space: %v, want an error naming MATRIX_BOT_ACCESS_TOKEN", err)
	}
	for _, key := range []string{"WEBHOOK_MAX_AGE", "WEBHOOK_ALLOW_HTTP", "WEBHOOK_DELIVERY_RETENTION", "WEBHOOK_ALLOWED_NETWORKS"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error %v does not name %s", err, key)
		}
	}
}

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}
