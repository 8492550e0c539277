package main

import (
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// webhookConfig is how team webhooks are delivered (package webhook).
type webhookConfig struct {
	MaxAge    time.Duration // WEBHOOK_MAX_AGE: how long after a change its delivery is retried
	AllowHTTP bool          // WEBHOOK_ALLOW_HTTP: accept and call http:// URLs, for development and tests
	Retention time.Duration // WEBHOOK_DELIVERY_RETENTION: how long finished deliveries are kept
	// WEBHOOK_ALLOWED_NETWORKS: the private or local networks (webhook.refusedNetworks) webhooks may
	// reach all the same, such as a receiver inside the deployment's network.
	AllowedNetworks []netip.Prefix
	// SecretKeys seal the webhooks' secrets at rest: SECRET_KEY seals, and it and each of
	// SECRET_KEY_FALLBACKS open (store.Options.SecretKeys). Empty without SECRET_KEY.
	SecretKeys []secret
	// MatrixBotToken (MATRIX_BOT_ACCESS_TOKEN) is the bot's access token for Tchap rooms.
	MatrixBotToken secret
	// MatrixBaseHomeServer (MATRIX_BASE_HOME_SERVER) is the homeserver whose user directory says
	// which Matrix id a Tchap user has; "" asks none.
	MatrixBaseHomeServer string
}

// webhook reads the WEBHOOK_* settings. People had none: it called webhooks once, with TLS
// verification off, and to any address. Plain http and the loopback addresses are for a
// receiver on the developer's machine, hence allowed by default only in development.
func (p *parser) webhook(c Config) webhookConfig {
	w := webhookConfig{
		MaxAge:    p.duration("WEBHOOK_MAX_AGE", 24*time.Hour),
		AllowHTTP: p.boolean("WEBHOOK_ALLOW_HTTP", c.Development()),
		Retention: p.duration("WEBHOOK_DELIVERY_RETENTION", 30*24*time.Hour),
	}
	// SECRET_KEY as set: the login's random stand-in in development would make the secrets
	// sealed before a restart unreadable after it; unset, the store uses its built-in key.
	if k := p.getenv("SECRET_KEY"); k != "" {
		w.SecretKeys = append(w.SecretKeys, secret(k))
	}
	// Django's name and meaning: previous keys, still accepted, never used to seal. Comma-
	// separated, hence keys without commas.
	for _, k := range strings.Split(p.getenv("SECRET_KEY_FALLBACKS"), ",") {
		if k = strings.TrimSpace(k); k != "" {
			w.SecretKeys = append(w.SecretKeys, secret(k))
		}
	}
	if len(w.SecretKeys) > 0 && p.getenv("SECRET_KEY") == "" {
		p.errs = append(p.errs, "SECRET_KEY_FALLBACKS needs SECRET_KEY")
	}
	// People's names and meanings (Matrix webhooks, package webhook's matrix.go). No default
	// homeserver: People's settings name Tchap's, which is no default for other deployments.
	w.MatrixBotToken = secret(p.str("MATRIX_BOT_ACCESS_TOKEN", ""))
	if t := w.MatrixBotToken.reveal(); strings.ContainsFunc(t, func(r rune) bool { return r < '!' || r > '~' }) {
		p.errs = append(p.errs, "MATRIX_BOT_ACCESS_TOKEN may only contain visible ASCII characters")
	}
	w.MatrixBaseHomeServer = p.str("MATRIX_BASE_HOME_SERVER", "")
	if h := w.MatrixBaseHomeServer; h != "" {
		if u, err := url.Parse(h); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			p.errs = append(p.errs, "MATRIX_BASE_HOME_SERVER must be an https URL such as https://matrix.agent.tchap.gouv.fr")
		}
	}
	switch p.str("WEBHOOK_ALLOWED_NETWORKS", "") {
	case "none":
	case "":
		if c.Development() {
			w.AllowedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
		}
	default:
		w.AllowedNetworks = p.prefixes("WEBHOOK_ALLOWED_NETWORKS")
	}
	return w
}
