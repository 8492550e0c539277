package main

import (
	"cmp"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/store"
)

// secret is a credential: it prints as [redacted] through fmt, slog's text and JSON handlers
// and encoding, so a Config can be logged whole.
type secret string

func (secret) String() string               { return "[redacted]" }
func (secret) GoString() string             { return "[redacted]" }
func (secret) LogValue() slog.Value         { return slog.StringValue("[redacted]") }
func (secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// reveal returns the credential itself, for the one place that uses it.
func (s secret) reveal() string { return string(s) }

// Config is the server's configuration, read once from the environment by parseConfig. The
// README lists every variable with its default.
type Config struct {
	Environment      string // development | production
	ListenAddr       string
	DatabaseURL      secret
	DatabaseMaxConns int
	StatementTimeout time.Duration
	// DatabasePooler is what stands between the server and PostgreSQL (store.Pooler), and
	// DatabaseListenURL the revocation listener's connection past a transaction pooler.
	DatabasePooler    store.Pooler
	DatabaseListenURL secret
	Migrate           bool
	ShutdownTimeout   time.Duration

	FeatureContactsDisplay, FeatureContactsCreate bool
	FeatureTeamsDisplay, FeatureTeamsCreate       bool
	Release, Commit                               string

	InvitationValidity    time.Duration
	InvitationRateLimit   int // invitations one user may create in an hour; 0 for no limit
	RegistrationIDPattern *regexp.Regexp

	// PublicURL is the server's origin as browsers reach it, scheme://host[:port]: the
	// cookie's own origin for the CSRF checks.
	PublicURL        string
	SessionCookieAge time.Duration
	// SessionCacheTTL is the longest a session, or a bearer token's user being active, is
	// trusted from memory (auth.CredentialCache); 0 reads the database on every request.
	SessionCacheTTL     time.Duration
	SessionCookieSecure bool     // default: true, except in development
	CORSAllowedOrigins  []string // frontends that may call the API with the session cookie

	// OIDCOPURL is the OpenID provider's issuer (ProConnect). Unset in development, the server
	// runs its own development provider (auth/devop) at PUBLIC_URL/dev-oidc, on a loopback
	// LISTEN_ADDR only unless DevOIDCAllowRemote.
	OIDCOPURL          string
	DevOIDCAllowRemote bool

	Login LoginSettings // browser sign-in (config_login.go)
	Mail  mailConfig    // invitation emails (config_mail.go)

	Webhook webhookConfig // team webhooks' delivery (config_webhook.go)

	Registry registryConfig // organization names from the companies registry (config_registry.go)

	Bearer BearerSettings // partner services' bearer tokens (config_bearer.go)

	GraphQL GraphQLSettings // request limits and introspection (config_graphql.go)

	HTTP       HTTPSettings      // server timeouts and trusted proxies (config_http.go)
	RateLimits RateLimitSettings // per-caller token buckets (config_http.go)
	Telemetry  TelemetrySettings // metrics and traces (config_telemetry.go)

	// CrispWebsiteID (CRISP_WEBSITE_ID) is reported to People's frontend by /api/v1.0/config/,
	// as People's setting of the same name was.
	CrispWebsiteID string
	// PeopleIgnored are the People variables set in the environment that mean nothing here
	// (config_people.go), logged once at start.
	PeopleIgnored []string
}

// Development reports whether the server runs for a developer on their machine.
func (c Config) Development() bool { return c.Environment == "development" }

// parseConfig reads the environment through getenv; every bad value is reported at once.
func parseConfig(getenv func(string) string) (Config, error) {
	people := readPeopleEnv(getenv)
	p := parser{getenv: people.get, errs: people.errs}
	c := Config{
		Environment:      p.oneOf("ENVIRONMENT", "production", "development", "production"),
		ListenAddr:       p.str("LISTEN_ADDR", ":8071"),
		DatabaseURL:      secret(p.getenv("DATABASE_URL")),
		DatabaseMaxConns: p.integer("DATABASE_MAX_CONNS", 20, 1, 1000),
		StatementTimeout: p.duration("DATABASE_STATEMENT_TIMEOUT", 10*time.Second),
		DatabasePooler: store.Pooler(p.oneOf("DATABASE_POOLER", string(store.PoolerNone),
			string(store.PoolerNone), string(store.PoolerTransaction))),
		DatabaseListenURL: secret(getenv("DATABASE_LISTEN_URL")),
		Migrate:           p.boolean("MIGRATE", true),
		ShutdownTimeout:   p.duration("SHUTDOWN_TIMEOUT", 25*time.Second),

		FeatureContactsDisplay: p.boolean("FEATURE_CONTACTS_DISPLAY", true),
		FeatureContactsCreate:  p.boolean("FEATURE_CONTACTS_CREATE", true),
		FeatureTeamsDisplay:    p.boolean("FEATURE_TEAMS_DISPLAY", true),
		FeatureTeamsCreate:     p.boolean("FEATURE_TEAMS_CREATE", true),
		Release:                p.str("RELEASE", "NA"),
		Commit:                 p.str("COMMIT", "NA"),

		InvitationValidity:    p.duration("INVITATION_VALIDITY", 7*24*time.Hour),
		InvitationRateLimit:   p.integer("INVITATION_RATE_LIMIT", 100, 0, 1_000_000),
		RegistrationIDPattern: p.regexp("ORGANIZATION_REGISTRATION_ID_PATTERN", `^[0-9]{14}$`),

		PublicURL:          p.origin("PUBLIC_URL", cmp.Or(peoplePublicURL(getenv), "http://localhost:8071")),
		SessionCookieAge:   p.duration("SESSION_COOKIE_AGE", 12*time.Hour),
		SessionCacheTTL:    p.durationOrOff("SESSION_CACHE_TTL", 2*time.Minute),
		CORSAllowedOrigins: p.origins("CORS_ALLOWED_ORIGINS"),

		OIDCOPURL:          p.str("OIDC_OP_URL", ""),
		DevOIDCAllowRemote: p.boolean("DEV_OIDC_ALLOW_REMOTE", false),

		CrispWebsiteID: p.str("CRISP_WEBSITE_ID", ""),
		PeopleIgnored:  people.ignored,
	}
	c.SessionCookieSecure = p.boolean("SESSION_COOKIE_SECURE", !c.Development())
	c.Login = p.login(c)
	c.Mail = p.mail(c)
	c.Webhook = p.webhook(c)
	c.Registry = p.registry(c)
	c.Bearer = p.bearer()
	c.GraphQL = p.graphql()
	c.HTTP = p.http(c)
	c.RateLimits = p.rateLimits()
	c.Telemetry = p.telemetry()
	if strings.TrimSpace(getenv("PUBLIC_URL")) == "" && peoplePublicURL(getenv) == "" && c.OIDCOPURL != "" &&
		strings.TrimSpace(getenv("DJANGO_ALLOWED_HOSTS")) != "" {
		// A People environment whose hosts do not say which origin browsers use: its redirect
		// URIs would name localhost.
		p.errs = append(p.errs, "PUBLIC_URL is required: People built its URLs from each request's Host, and DJANGO_ALLOWED_HOSTS names no single host (or set DJANGO_CSRF_TRUSTED_ORIGINS)")
	}
	if c.DatabaseURL == "" {
		p.errs = append(p.errs, "DATABASE_URL (or People's DB_HOST, DB_NAME…) is required (make run sets it to a private PostgreSQL under .data/)")
	}
	if len(p.errs) > 0 {
		return c, fmt.Errorf("configuration: %s", strings.Join(p.errs, "; "))
	}
	return c, nil
}

type parser struct {
	getenv func(string) string
	errs   []string
}

func (p *parser) str(key, def string) string {
	if v := strings.TrimSpace(p.getenv(key)); v != "" {
		return v
	}
	return def
}

func (p *parser) oneOf(key, def string, allowed ...string) string {
	v := p.str(key, def)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	p.errs = append(p.errs, fmt.Sprintf("%s must be one of %s", key, strings.Join(allowed, ", ")))
	return def
}

func (p *parser) boolean(key string, def bool) bool {
	v := p.str(key, "")
	if v == "" {
		return def
	}
	b, ok := parseBool(v)
	if !ok {
		p.errs = append(p.errs, fmt.Sprintf("%s must be true or false (or yes, no, 1, 0, as People's)", key))
		return def
	}
	return b
}

func (p *parser) integer(key string, def, lo, hi int) int {
	v := p.str(key, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.errs = append(p.errs, fmt.Sprintf("%s must be an integer from %d to %d", key, lo, hi))
		return def
	}
	return n
}

// duration accepts Go durations ("90s", "168h") and, as People's settings, plain seconds.
func (p *parser) duration(key string, def time.Duration) time.Duration {
	v := p.str(key, "")
	if v == "" {
		return def
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		p.errs = append(p.errs, fmt.Sprintf("%s must be a positive duration such as 30s or a number of seconds", key))
		return def
	}
	return d
}

// durationOrOff is duration for a setting that 0 turns off.
func (p *parser) durationOrOff(key string, def time.Duration) time.Duration {
	v := p.str(key, "")
	if v == "" {
		return def
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		p.errs = append(p.errs, fmt.Sprintf("%s must be a duration such as 30s, a number of seconds, or 0 to turn it off", key))
		return def
	}
	return d
}

// origin reads a scheme://host[:port] and returns it as browsers write it in Origin headers.
func (p *parser) origin(key, def string) string {
	o, err := auth.ParseOrigin(p.str(key, def))
	if err != nil {
		p.errs = append(p.errs, fmt.Sprintf("%s must be an origin such as https://people.example.org: %v", key, err))
		return def
	}
	return o
}

// origins reads a comma-separated list of origins; "*" is refused, since the session cookie
// must never be offered to every site.
func (p *parser) origins(key string) []string {
	var out []string
	for _, v := range strings.Split(p.str(key, ""), ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		o, err := auth.ParseOrigin(v)
		if err != nil {
			p.errs = append(p.errs, fmt.Sprintf("%s: %q is not an origin such as https://app.example.org: %v", key, v, err))
			continue
		}
		out = append(out, o)
	}
	return out
}

func (p *parser) regexp(key, def string) *regexp.Regexp {
	v := p.str(key, def)
	re, err := regexp.Compile(v)
	if err != nil {
		p.errs = append(p.errs, fmt.Sprintf("%s is not a valid regular expression", key))
		return regexp.MustCompile(def)
	}
	return re
}
