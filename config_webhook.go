package main

import "time"

// webhookConfig is how team webhooks are delivered (webhook.go).
type webhookConfig struct {
	MaxAge    time.Duration // WEBHOOK_MAX_AGE: how long after a change its delivery is retried
	AllowHTTP bool          // WEBHOOK_ALLOW_HTTP: accept and call http:// URLs, for development and tests
	Retention time.Duration // WEBHOOK_DELIVERY_RETENTION: how long finished deliveries are kept
}

// webhook reads the WEBHOOK_* settings. People had none: it called webhooks once, with TLS
// verification off. Plain http is for a receiver on the developer's machine, hence on by
// default only in development.
func (p *parser) webhook(c Config) webhookConfig {
	return webhookConfig{
		MaxAge:    p.duration("WEBHOOK_MAX_AGE", 24*time.Hour),
		AllowHTTP: p.boolean("WEBHOOK_ALLOW_HTTP", c.Development()),
		Retention: p.duration("WEBHOOK_DELIVERY_RETENTION", 30*24*time.Hour),
	}
}
