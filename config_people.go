package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"lasuite.fr/people/store"
)

// People's environment, read as a People deployment writes it (people-behaviour.md §7): each of
// People's variables is an alias of one of ours, is read under its own name with People's
// meaning, means nothing here and is ignored (named in one start-up log line), or is refused at
// start when ignoring it would silently change what the deployment does. peopleVars is the one
// list of them; the README's "Moving from People" table is checked against it.

// peopleAction is what the server does with one of People's variables.
type peopleAction string

const (
	// peopleSame: read under the same name, with People's meaning and format.
	peopleSame peopleAction = "same"
	// peopleAlias: read as our variable ours, converted to our format when convert is set.
	// Setting both to different values stops the server, naming both.
	peopleAlias peopleAction = "alias"
	// peopleIgnored: means nothing here; named in the start-up log line when set.
	peopleIgnored peopleAction = "ignored"
	// peopleRefused: set to a value accept does not accept (any value without accept), it
	// stops the server with reason, which names what replaces it.
	peopleRefused peopleAction = "refused"
)

// peopleVar is one of People's variables.
type peopleVar struct {
	name   string
	action peopleAction
	ours   string // our variable: the alias's target, or what replaces a refused one
	reason string // why, for the README and for the refusal
	// accept, for a refused variable, says which values mean here what they meant in People.
	accept func(v string) bool
	// convert turns an alias's value into our format.
	convert func(v string) (string, error)
}

// peopleVars lists every variable of people-behaviour.md §7, in its order. Variables that are
// ours under the same name (OIDC_RP_CLIENT_ID…) are listed too, so that the list is complete.
var peopleVars = []peopleVar{
	// Selectors and Django's core.
	{name: "DJANGO_SETTINGS_MODULE", action: peopleIgnored, reason: "no Django"},
	{name: "DJANGO_CONFIGURATION", action: peopleIgnored, ours: "ENVIRONMENT", reason: "ENVIRONMENT is production unless set; production's rules (secure cookies) are the default"},
	{name: "DJANGO_SECRET_KEY", action: peopleAlias, ours: "SECRET_KEY", reason: "seals login state and webhook secrets; People's sessions cannot be reused anyway"},
	{name: "DJANGO_ALLOWED_HOSTS", action: peopleSame, ours: "PUBLIC_URL", reason: "when PUBLIC_URL and DJANGO_CSRF_TRUSTED_ORIGINS are unset and it names one host, PUBLIC_URL is https://<that host>; Host is not checked otherwise"},
	{name: "DJANGO_CSRF_TRUSTED_ORIGINS", action: peopleSame, ours: "PUBLIC_URL", reason: "when PUBLIC_URL is unset, its first origin is PUBLIC_URL; requests with the session cookie must come from PUBLIC_URL or CORS_ALLOWED_ORIGINS"},
	{name: "DJANGO_CORS_ALLOW_ALL_ORIGINS", action: peopleRefused, ours: "CORS_ALLOWED_ORIGINS", accept: isFalse,
		reason: "the session cookie is never offered to every site: list the frontends in CORS_ALLOWED_ORIGINS"},
	{name: "DJANGO_CORS_ALLOWED_ORIGINS", action: peopleAlias, ours: "CORS_ALLOWED_ORIGINS", convert: pythonList},
	{name: "DJANGO_CORS_ALLOWED_ORIGIN_REGEXES", action: peopleRefused, ours: "CORS_ALLOWED_ORIGINS", accept: isEmptyList,
		reason: "origins are matched exactly: list them in CORS_ALLOWED_ORIGINS"},
	{name: "DJANGO_SILENCED_SYSTEM_CHECKS", action: peopleIgnored, reason: "no Django system checks"},
	{name: "DJANGO_USE_SWAGGER", action: peopleIgnored, reason: "the API is GraphQL; its schema is at /graphql (introspection) and in schema.graphqls"},
	{name: "DJANGO_LANGUAGES", action: peopleRefused, accept: onlyOurLanguages,
		reason: "the interface languages are en-us and fr-fr, the ones users' language may hold: other codes cannot be offered"},
	{name: "DJANGO_ADMIN_HEADER_BACKGROUND", action: peopleIgnored, reason: "no Django admin"},
	{name: "DJANGO_ADMIN_HEADER_COLOR", action: peopleIgnored, reason: "no Django admin"},
	{name: "DJANGO_SPECTACULAR_SETTINGS_ENABLE_DJANGO_DEPLOY_CHECK", action: peopleIgnored, reason: "no Django"},
	{name: "DJANGO_STORAGES_STATICFILES_BACKEND", action: peopleIgnored, reason: "no static files"},
	{name: "DJANGO_AWS_S3_ENDPOINT_URL", action: peopleIgnored, reason: "no media files"},
	{name: "DJANGO_AWS_S3_ACCESS_KEY_ID", action: peopleIgnored, reason: "no media files"},
	{name: "DJANGO_AWS_S3_SECRET_ACCESS_KEY", action: peopleIgnored, reason: "no media files"},
	{name: "DJANGO_AWS_STORAGE_BUCKET_NAME", action: peopleIgnored, reason: "no media files"},
	{name: "DJANGO_AWS_S3_REGION_NAME", action: peopleIgnored, reason: "no media files"},
	{name: "DJANGO_LOGGING", action: peopleIgnored, ours: "LOG_LEVEL", reason: "logs are JSON lines on stdout"},
	{name: "DJANGO_CELERY_TASK_ALWAYS_EAGER", action: peopleIgnored, reason: "no Celery"},
	{name: "LANGUAGE_CODE", action: peopleIgnored, reason: "invitation emails follow the invitation's language"},
	{name: "INSTALLED_PLUGINS", action: peopleRefused, accept: isEmptyList,
		reason: "People's plugins do not run here (la_suite named new organizations from the SIRET registry): remove it to accept that new organizations are named by their registration id"},
	{name: "LOGGING_LEVEL_LOGGERS_ROOT", action: peopleIgnored, ours: "LOG_LEVEL", reason: "one level: LOG_LEVEL"},
	{name: "LOGGING_LEVEL_LOGGERS_APP", action: peopleIgnored, ours: "LOG_LEVEL", reason: "one level: LOG_LEVEL"},

	// Database: DB_* make DATABASE_URL when it is unset (peopleDatabaseURL).
	{name: "DB_ENGINE", action: peopleRefused, ours: "DATABASE_URL", accept: func(v string) bool { return strings.Contains(v, "postgresql") },
		reason: "PostgreSQL only"},
	{name: "DB_NAME", action: peopleAlias, ours: "DATABASE_URL", reason: "default people, as People's"},
	{name: "DB_USER", action: peopleAlias, ours: "DATABASE_URL", reason: "default dinum, as People's"},
	{name: "DB_PASSWORD", action: peopleAlias, ours: "DATABASE_URL", reason: "default pass, as People's"},
	{name: "DB_HOST", action: peopleAlias, ours: "DATABASE_URL", reason: "default localhost, as People's"},
	{name: "DB_PORT", action: peopleAlias, ours: "DATABASE_URL", reason: "default 5432, as People's"},

	// Email.
	{name: "DJANGO_EMAIL_BACKEND", action: peopleRefused, ours: "EMAIL_HOST", accept: func(v string) bool { return strings.Contains(v, "smtp") },
		reason: "emails go out over SMTP only: unset it, and EMAIL_HOST to keep invitations queued"},
	{name: "DJANGO_EMAIL_HOST", action: peopleAlias, ours: "EMAIL_HOST"},
	{name: "DJANGO_EMAIL_HOST_USER", action: peopleAlias, ours: "EMAIL_HOST_USER"},
	{name: "DJANGO_EMAIL_HOST_PASSWORD", action: peopleAlias, ours: "EMAIL_HOST_PASSWORD"},
	{name: "DJANGO_EMAIL_PORT", action: peopleAlias, ours: "EMAIL_PORT", reason: "default 587 (People's: 25)"},
	{name: "DJANGO_EMAIL_USE_TLS", action: peopleAlias, ours: "EMAIL_USE_TLS", convert: pythonBool, reason: "default true (People's: false): the SMTP password never crosses the network in clear"},
	{name: "DJANGO_EMAIL_USE_SSL", action: peopleAlias, ours: "EMAIL_USE_SSL", convert: pythonBool},
	{name: "DJANGO_EMAIL_FROM", action: peopleAlias, ours: "EMAIL_FROM"},

	// OIDC relying party.
	{name: "OIDC_RP_CLIENT_ID", action: peopleSame},
	{name: "OIDC_RP_CLIENT_SECRET", action: peopleSame},
	{name: "OIDC_RP_SIGN_ALGO", action: peopleSame, reason: "RS256, ES256 or PS256 only"},
	{name: "OIDC_RP_SCOPES", action: peopleSame},
	{name: "OIDC_OP_AUTHORIZATION_ENDPOINT", action: peopleSame},
	{name: "OIDC_OP_TOKEN_ENDPOINT", action: peopleSame},
	{name: "OIDC_OP_USER_ENDPOINT", action: peopleSame},
	{name: "OIDC_OP_JWKS_ENDPOINT", action: peopleSame},
	{name: "OIDC_OP_LOGOUT_ENDPOINT", action: peopleSame},
	{name: "OIDC_AUTH_REQUEST_EXTRA_PARAMS", action: peopleSame, reason: "a Python dict literal, as People's, or JSON"},
	{name: "OIDC_USE_NONCE", action: peopleIgnored, reason: "a nonce is always sent and checked, with PKCE"},
	{name: "LOGIN_REDIRECT_URL", action: peopleSame, reason: "default / (People's: none)"},
	{name: "LOGIN_REDIRECT_URL_FAILURE", action: peopleSame, reason: "default: a small page (People's: none); lands with ?reason=<code>"},
	{name: "LOGOUT_REDIRECT_URL", action: peopleSame, reason: "default / (People's: none)"},
	{name: "OIDC_REDIRECT_REQUIRE_HTTPS", action: peopleIgnored, reason: "next= is only ever a path on PUBLIC_URL"},
	{name: "OIDC_REDIRECT_ALLOWED_HOSTS", action: peopleIgnored, reason: "next= is only ever a path on PUBLIC_URL; a next= to another host lands on LOGIN_REDIRECT_URL"},
	{name: "OIDC_STORE_ID_TOKEN", action: peopleIgnored, reason: "the ID token is always kept with the session, for the provider's logout"},
	{name: "ALLOW_LOGOUT_GET_METHOD", action: peopleSame, reason: "GET /api/v1.0/logout/ (never /auth/logout); from another site it asks for a confirmation"},
	{name: "DJANGO_OIDC_CREATE_USER", action: peopleAlias, ours: "OIDC_CREATE_USER", convert: pythonBool},
	{name: "OIDC_USERINFO_FULLNAME_FIELDS", action: peopleAlias, ours: "USER_OIDC_FIELDS_TO_NAME", convert: pythonList,
		reason: "default given_name,usual_name (People's: first_name,last_name), ProConnect's claims"},
	{name: "USER_OIDC_FIELDS_TO_FULLNAME", action: peopleAlias, ours: "USER_OIDC_FIELDS_TO_NAME", convert: pythonList,
		reason: "read when OIDC_USERINFO_FULLNAME_FIELDS is unset, as in People"},
	{name: "OIDC_ORGANIZATION_REGISTRATION_ID_FIELD", action: peopleSame},
	{name: "OIDC_FALLBACK_TO_EMAIL_FOR_IDENTIFICATION", action: peopleSame, reason: "a user matched by email is linked to the new subject; the old one stays theirs"},
	{name: "OIDC_VERIFY_SSL", action: peopleRefused, accept: isTrue, ours: "SSL_CERT_FILE",
		reason: "the provider's certificate is always verified: trust a private authority with SSL_CERT_FILE"},
	{name: "OIDC_TIMEOUT", action: peopleSame, reason: "default 5s (People's: none)"},
	{name: "OIDC_PROXY", action: peopleRefused, ours: "HTTPS_PROXY", reason: "the outgoing proxy is HTTPS_PROXY (and NO_PROXY)"},

	// OIDC resource server.
	{name: "OIDC_OP_URL", action: peopleSame, reason: "also the issuer of the browser sign-in"},
	{name: "OIDC_OP_INTROSPECTION_ENDPOINT", action: peopleSame},
	{name: "OIDC_RS_BACKEND_CLASS", action: peopleAlias, ours: "OIDC_RS_BACKEND", convert: backendClass,
		reason: "ResourceServerBackend is json, JWTResourceServerBackend jwt; other classes are refused"},
	{name: "OIDC_RS_CLIENT_ID", action: peopleSame},
	{name: "OIDC_RS_CLIENT_SECRET", action: peopleSame},
	{name: "OIDC_RS_AUDIENCE_CLAIM", action: peopleSame, reason: "default aud (People's: client_id): set client_id to keep the service providers' stored audiences"},
	{name: "OIDC_RS_SCOPES", action: peopleSame},
	{name: "OIDC_RS_SIGNING_ALGO", action: peopleSame},
	{name: "OIDC_RS_PRIVATE_KEY_STR", action: peopleSame, reason: "keep the same key: the authorization server encrypts to the published JWKS"},
	{name: "OIDC_RS_ENCRYPTION_KEY_TYPE", action: peopleIgnored, reason: "the key type is the key's own"},
	{name: "OIDC_RS_ENCRYPTION_ALGO", action: peopleSame},
	{name: "OIDC_RS_ENCRYPTION_ENCODING", action: peopleSame},
	{name: "OIDC_OP_TOKEN_INTROSPECTION_ENDPOINT", action: peopleIgnored, reason: "unused by People too"},

	// Throttling, cache, Celery.
	{name: "SUSTAINED_THROTTLE_RATES", action: peopleSame},
	{name: "BURST_THROTTLE_RATES", action: peopleSame},
	{name: "REDIS_URL", action: peopleSame, reason: "rate limits' buckets; sessions live in PostgreSQL"},
	{name: "CACHES_DEFAULT_TIMEOUT", action: peopleIgnored, reason: "no Django cache"},
	{name: "DJANGO_CELERY_BROKER_URL", action: peopleIgnored, reason: "no Celery: webhooks and emails are queued in PostgreSQL"},
	{name: "DJANGO_CELERY_BROKER_TRANSPORT_OPTIONS", action: peopleIgnored, reason: "no Celery"},
	{name: "MANAGEMENT_COMMAND_AS_TASK", action: peopleIgnored, reason: "no Celery"},

	// Features and organizations.
	{name: "FEATURE_CONTACTS_CREATE", action: peopleSame},
	{name: "FEATURE_CONTACTS_DISPLAY", action: peopleSame},
	{name: "FEATURE_MAILBOXES_CREATE", action: peopleIgnored, reason: "no mailboxes: /api/v1.0/config/ says false"},
	{name: "FEATURE_TEAMS_DISPLAY", action: peopleSame},
	{name: "FEATURE_TEAMS_CREATE", action: peopleSame},
	{name: "ORGANIZATION_REGISTRATION_ID_VALIDATORS", action: peopleAlias, ours: "ORGANIZATION_REGISTRATION_ID_PATTERN", convert: registrationIDValidators,
		reason: "one RegexValidator becomes the pattern ([] any id); default ^[0-9]{14}$, SIRET (People's: [], any)"},
	{name: "ORGANIZATION_METADATA_SCHEMA", action: peopleIgnored, reason: "no organization metadata"},

	// Integrations.
	{name: "SENTRY_DSN", action: peopleIgnored, ours: "OTEL_EXPORTER_OTLP_ENDPOINT", reason: "errors are logged; traces go to OpenTelemetry"},
	{name: "MATRIX_BASE_HOME_SERVER", action: peopleSame, reason: "no default (People's: Tchap's); https only"},
	{name: "MATRIX_BOT_ACCESS_TOKEN", action: peopleSame, reason: "sent to Tchap homeservers and MATRIX_BASE_HOME_SERVER only"},
	{name: "MAIL_PROVISIONING_API_URL", action: peopleIgnored, reason: "no mailboxes"},
	{name: "MAIL_PROVISIONING_API_CREDENTIALS", action: peopleIgnored, reason: "no mailboxes"},
	{name: "MAIL_PROVISIONING_API_TIMEOUT", action: peopleIgnored, reason: "no mailboxes"},
	{name: "MAIL_CHECK_DOMAIN_INTERVAL", action: peopleIgnored, reason: "no mailboxes"},
	{name: "WEBMAIL_URL", action: peopleIgnored, reason: "no mailboxes"},
	{name: "SEND_MAILBOX_PASSWORD", action: peopleIgnored, reason: "no mailboxes"},
	{name: "CRISP_WEBSITE_ID", action: peopleSame, reason: "CRISP_WEBSITE_ID of /api/v1.0/config/"},
	{name: "ACCOUNT_SERVICE_SCOPES", action: peopleIgnored, reason: "no La Suite plugin API keys"},
	{name: "OAUTH2_PROVIDER_OIDC_ENABLED", action: peopleRefused, accept: isFalse,
		reason: "the mailbox OpenID provider (/o/…) is not served: its clients would stop signing in"},
	{name: "OAUTH2_PROVIDER_OIDC_RSA_PRIVATE_KEY", action: peopleIgnored, reason: "no mailbox OpenID provider"},
	{name: "OAUTH2_PROVIDER_VALIDATOR_CLASS", action: peopleIgnored, reason: "no mailbox OpenID provider"},
	{name: "MAX_LOGIN_ATTEMPTS", action: peopleIgnored, reason: "no password login"},
	{name: "ACCOUNT_LOCKOUT_TIME", action: peopleIgnored, reason: "no password login"},
	{name: "PASSWORD_MINIMAL_STRENGTH", action: peopleIgnored, reason: "no password login"},
}

// peopleEnv is the environment with People's variables read: get answers for our names, from
// ours or from People's aliases. ignored are the People variables set that mean nothing here.
type peopleEnv struct {
	getenv  func(string) string
	aliased map[string]string // our name → its value from People's variables
	ignored []string
	errs    []string
}

// readPeopleEnv reads every People variable once.
func readPeopleEnv(getenv func(string) string) *peopleEnv {
	e := &peopleEnv{getenv: getenv, aliased: map[string]string{}}
	from := map[string]string{} // our name → the People variable its alias value came from
	for _, v := range peopleVars {
		if v.action == peopleSame {
			continue // read by the parser, under its own name
		}
		raw := strings.TrimSpace(getenv(v.name))
		if raw == "" {
			continue
		}
		switch v.action {
		case peopleIgnored:
			e.ignored = append(e.ignored, v.name)
		case peopleRefused:
			if v.accept == nil || !v.accept(raw) {
				e.errs = append(e.errs, fmt.Sprintf("%s is not supported: %s", v.name, v.reason))
			}
		case peopleAlias:
			if v.ours == "DATABASE_URL" || from[v.ours] != "" {
				continue // DB_* together below; the first alias set wins, as in People
			}
			val := raw
			if v.convert != nil {
				var err error
				if val, err = v.convert(raw); err != nil {
					e.errs = append(e.errs, fmt.Sprintf("%s: %v", v.name, err))
					continue
				}
			}
			e.aliased[v.ours], from[v.ours] = val, v.name
		}
	}
	if u, ok := peopleDatabaseURL(getenv); ok {
		e.aliased["DATABASE_URL"], from["DATABASE_URL"] = u, "DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD"
	}
	for ours, val := range e.aliased {
		if mine := strings.TrimSpace(getenv(ours)); mine != "" && !sameSetting(ours, mine, val) {
			e.errs = append(e.errs, fmt.Sprintf("%s and People's %s are both set, to different values: keep one", ours, from[ours]))
		}
	}
	slices.Sort(e.errs)
	return e
}

// get reads our variable: its own value, else the one People's alias gives it.
func (e *peopleEnv) get(key string) string {
	if v := e.getenv(key); strings.TrimSpace(v) != "" {
		return v
	}
	return e.aliased[key]
}

// sameSetting reports whether our value mine and an alias's converted value mean the same.
func sameSetting(key, mine, alias string) bool {
	if key == "DATABASE_URL" {
		a, errA := url.Parse(mine)
		b, errB := url.Parse(alias)
		if errA != nil || errB != nil {
			return false
		}
		pa, _ := a.User.Password()
		pb, _ := b.User.Password()
		return a.Hostname() == b.Hostname() && cmpPort(a.Port()) == cmpPort(b.Port()) && a.User.Username() == b.User.Username() &&
			pa == pb && strings.TrimPrefix(a.Path, "/") == strings.TrimPrefix(b.Path, "/")
	}
	if bm, okm := parseBool(mine); okm {
		if ba, oka := parseBool(alias); oka {
			return bm == ba
		}
	}
	split := func(s string) []string {
		return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
	}
	return slices.Equal(split(mine), split(alias))
}

func cmpPort(p string) string {
	if p == "" {
		return "5432"
	}
	return p
}

// peopleDatabaseURL builds a postgres:// URL from People's DB_* variables, with People's
// defaults for those unset; ok is false when none is set.
func peopleDatabaseURL(getenv func(string) string) (string, bool) {
	set := false
	get := func(key, def string) string {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			set = true
			return v
		}
		return def
	}
	host, port := get("DB_HOST", "localhost"), get("DB_PORT", "5432")
	user, password, name := get("DB_USER", "dinum"), get("DB_PASSWORD", "pass"), get("DB_NAME", "people")
	if !set {
		return "", false
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: net.JoinHostPort(host, port), Path: "/" + name}
	return u.String(), true
}

// parseBool reads a boolean as People's django-configurations does (yes/y/true/1,
// no/n/false/0, in any case) and as Go's strconv does (t, f).
func parseBool(v string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "t", "yes", "y", "1":
		return true, true
	case "false", "f", "no", "n", "0":
		return false, true
	}
	return false, false
}

func isTrue(v string) bool  { b, ok := parseBool(v); return ok && b }
func isFalse(v string) bool { b, ok := parseBool(v); return ok && !b }

// peoplePublicURL is PUBLIC_URL's default for a People environment, which has none (People
// built its URLs from each request's Host): the first of DJANGO_CSRF_TRUSTED_ORIGINS, else
// https://<host> when DJANGO_ALLOWED_HOSTS names a single host (Production redirected to HTTPS).
func peoplePublicURL(getenv func(string) string) string {
	if origins, err := pythonList(getenv("DJANGO_CSRF_TRUSTED_ORIGINS")); err == nil && origins != "" {
		return strings.Split(origins, ",")[0]
	}
	if hosts, err := pythonList(getenv("DJANGO_ALLOWED_HOSTS")); err == nil && hosts != "" && !strings.ContainsAny(hosts, ",*") && !strings.HasPrefix(hosts, ".") {
		return "https://" + hosts
	}
	return ""
}

// onlyOurLanguages accepts a DJANGO_LANGUAGES ("code,Name;code,Name") naming only languages
// of store.Languages.
func onlyOurLanguages(v string) bool {
	for _, pair := range strings.Split(v, ";") {
		code, _, _ := strings.Cut(strings.TrimSpace(pair), ",")
		if code = strings.ToLower(strings.TrimSpace(code)); code != "" &&
			!slices.ContainsFunc(store.Languages, func(l struct{ Code, Name string }) bool { return l.Code == code }) {
			return false
		}
	}
	return true
}

// isEmptyList accepts an empty list as People's settings write one.
func isEmptyList(v string) bool {
	switch strings.TrimSpace(v) {
	case "", "[]", "()":
		return true
	}
	return false
}

// pythonBool normalizes a People boolean to true or false.
func pythonBool(v string) (string, error) {
	b, ok := parseBool(v)
	if !ok {
		return "", fmt.Errorf("%q is not a boolean (yes/true/1 or no/false/0)", v)
	}
	return fmt.Sprint(b), nil
}

// pythonList reads a People list, comma-separated or as a Python or JSON list literal, into
// our comma-separated form.
func pythonList(v string) (string, error) {
	if t := strings.TrimSpace(v); strings.HasPrefix(t, "[") || strings.HasPrefix(t, "(") {
		lit, err := parseLiteral(t)
		if err != nil {
			return "", err
		}
		items, _ := lit.([]any)
		var out []string
		for _, it := range items {
			s, ok := it.(string)
			if !ok {
				return "", fmt.Errorf("%q is not a list of strings", v)
			}
			out = append(out, strings.TrimSpace(s))
		}
		return strings.Join(out, ","), nil
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return strings.Join(out, ","), nil
}

// backendClass names our OIDC_RS_BACKEND for People's OIDC_RS_BACKEND_CLASS: django-lasuite's
// backends, or those of People's own code before they moved there.
func backendClass(v string) (string, error) {
	switch v {
	case "lasuite.oidc_resource_server.backend.ResourceServerBackend", "core.resource_server.backend.ResourceServerBackend":
		return "json", nil
	case "lasuite.oidc_resource_server.backend.JWTResourceServerBackend", "core.resource_server.backend.JWTResourceServerBackend":
		return "jwt", nil
	}
	return "", fmt.Errorf("%q is not one of People's resource server backends (ResourceServerBackend: set OIDC_RS_BACKEND=json; JWTResourceServerBackend: jwt)", v)
}

// registrationIDValidators turns People's validator list into our pattern. People's
// RegexValidator searches (re.search), while our pattern must match the whole id: an anchored
// regex is kept as it is, any other is wrapped so that it may match anywhere, as in People.
func registrationIDValidators(v string) (string, error) {
	lit, err := parseLiteral(v)
	if err != nil {
		return "", fmt.Errorf("not a JSON list of validators: %v", err)
	}
	list, ok := lit.([]any)
	if !ok {
		return "", fmt.Errorf("not a list of validators")
	}
	switch len(list) {
	case 0:
		return ".+", nil // no validator: any id, as in People
	case 1:
	default:
		return "", fmt.Errorf("only one RegexValidator can be mapped: merge them into ORGANIZATION_REGISTRATION_ID_PATTERN")
	}
	spec, _ := list[0].(map[string]any)
	name, _ := spec["NAME"].(string)
	opts, _ := spec["OPTIONS"].(map[string]any)
	regex, _ := opts["regex"].(string)
	if !strings.HasSuffix(name, "RegexValidator") || regex == "" {
		return "", fmt.Errorf("only a RegexValidator with a regex can be mapped: set ORGANIZATION_REGISTRATION_ID_PATTERN")
	}
	for k, o := range opts {
		switch k {
		case "regex", "message", "code":
		case "inverse_match", "flags":
			if o != false && o != float64(0) && o != nil {
				return "", fmt.Errorf("a RegexValidator with %s cannot be mapped: set ORGANIZATION_REGISTRATION_ID_PATTERN", k)
			}
		default:
			return "", fmt.Errorf("a RegexValidator with %s cannot be mapped: set ORGANIZATION_REGISTRATION_ID_PATTERN", k)
		}
	}
	// Python's \Z is RE2's \z.
	pattern := strings.ReplaceAll(regex, `\Z`, `\z`)
	if !(strings.HasPrefix(pattern, "^") || strings.HasPrefix(pattern, `\A`)) ||
		!(strings.HasSuffix(pattern, "$") || strings.HasSuffix(pattern, `\z`)) {
		pattern = "(?s:.*)(?:" + pattern + ")(?s:.*)"
	}
	return pattern, nil
}

// parseLiteral reads JSON, or a Python literal as People's settings hold them
// (ast.literal_eval: single-quoted strings, True/False/None, tuples): strings, numbers,
// booleans, None, lists and dicts with string keys.
func parseLiteral(s string) (any, error) {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err == nil {
		return v, nil
	}
	l := &literal{s: s}
	v, err := l.value()
	if err != nil {
		return nil, err
	}
	if l.skip(); l.i != len(l.s) {
		return nil, fmt.Errorf("unexpected %q after the value", l.s[l.i:])
	}
	return v, nil
}

type literal struct {
	s string
	i int
}

func (l *literal) skip() {
	for l.i < len(l.s) && strings.ContainsRune(" \t\r\n", rune(l.s[l.i])) {
		l.i++
	}
}

func (l *literal) value() (any, error) {
	l.skip()
	if l.i >= len(l.s) {
		return nil, fmt.Errorf("unexpected end")
	}
	switch c := l.s[l.i]; {
	case c == '\'' || c == '"':
		return l.str()
	case c == '{':
		return l.dict()
	case c == '[' || c == '(':
		return l.list()
	}
	start := l.i
	for l.i < len(l.s) && !strings.ContainsRune(",:]}) \t\r\n", rune(l.s[l.i])) {
		l.i++
	}
	word := l.s[start:l.i]
	switch word {
	case "True":
		return true, nil
	case "False":
		return false, nil
	case "None":
		return nil, nil
	}
	var n float64
	if err := json.Unmarshal([]byte(word), &n); err != nil {
		return nil, fmt.Errorf("%q is not a literal", word)
	}
	return n, nil
}

func (l *literal) str() (string, error) {
	q := l.s[l.i]
	l.i++
	var b strings.Builder
	for l.i < len(l.s) {
		c := l.s[l.i]
		l.i++
		switch {
		case c == q:
			return b.String(), nil
		case c == '\\' && l.i < len(l.s):
			e := l.s[l.i]
			l.i++
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case '\\', '\'', '"':
				b.WriteByte(e)
			default: // kept, as regular expressions need their backslashes
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", fmt.Errorf("unterminated string")
}

func (l *literal) list() ([]any, error) {
	closing := map[byte]byte{'[': ']', '(': ')'}[l.s[l.i]]
	l.i++
	out := []any{}
	for {
		l.skip()
		if l.i < len(l.s) && l.s[l.i] == closing {
			l.i++
			return out, nil
		}
		v, err := l.value()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		if err := l.sep(closing); err != nil {
			return nil, err
		}
	}
}

func (l *literal) dict() (map[string]any, error) {
	l.i++
	out := map[string]any{}
	for {
		l.skip()
		if l.i < len(l.s) && l.s[l.i] == '}' {
			l.i++
			return out, nil
		}
		k, err := l.value()
		if err != nil {
			return nil, err
		}
		key, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("dict keys must be strings")
		}
		if l.skip(); l.i >= len(l.s) || l.s[l.i] != ':' {
			return nil, fmt.Errorf("expected : after %q", key)
		}
		l.i++
		if out[key], err = l.value(); err != nil {
			return nil, err
		}
		if err := l.sep('}'); err != nil {
			return nil, err
		}
	}
}

// sep reads the comma after an item, or sees the closing bracket.
func (l *literal) sep(closing byte) error {
	l.skip()
	switch {
	case l.i < len(l.s) && l.s[l.i] == ',':
		l.i++
		return nil
	case l.i < len(l.s) && l.s[l.i] == closing:
		return nil
	}
	return fmt.Errorf("expected , or %c", closing)
}
