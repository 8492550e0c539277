package main

import (
	"strings"
	"testing"
	"time"
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
		{"development allows http", with("ENVIRONMENT", "development"), webhookConfig{MaxAge: 24 * time.Hour, AllowHTTP: true, Retention: 30 * 24 * time.Hour}},
		{"set", with("WEBHOOK_MAX_AGE", "2h", "WEBHOOK_ALLOW_HTTP", "true", "WEBHOOK_DELIVERY_RETENTION", "86400"),
			webhookConfig{MaxAge: 2 * time.Hour, AllowHTTP: true, Retention: 24 * time.Hour}},
		{"development refuses http when told", with("ENVIRONMENT", "development", "WEBHOOK_ALLOW_HTTP", "false"),
			webhookConfig{MaxAge: 24 * time.Hour, Retention: 30 * 24 * time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if c.Webhook != tc.want {
				t.Errorf("Webhook = %+v, want %+v", c.Webhook, tc.want)
			}
		})
	}

	_, err := parseConfig(env(with("WEBHOOK_MAX_AGE", "forever", "WEBHOOK_ALLOW_HTTP", "sometimes", "WEBHOOK_DELIVERY_RETENTION", "-1h")))
	for _, key := range []string{"WEBHOOK_MAX_AGE", "WEBHOOK_ALLOW_HTTP", "WEBHOOK_DELIVERY_RETENTION"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error %v does not name %s", err, key)
		}
	}
}
