package main

import (
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// peopleConfig parses vars plus a database URL (unless vars name one, or DB_*).
func peopleConfig(t *testing.T, vars map[string]string) (Config, error) {
	t.Helper()
	all := map[string]string{"DATABASE_URL": "postgres://u:p@127.0.0.1/db"}
	for k := range vars {
		if strings.HasPrefix(k, "DB_") {
			delete(all, "DATABASE_URL")
		}
	}
	maps.Copy(all, vars)
	return parseConfig(env(all))
}

// TestPeopleAliases: each of People's names sets our setting, in People's format.
func TestPeopleAliases(t *testing.T) {
	key := strings.Repeat("django-secret-key-", 3)
	tests := []struct {
		name string
		vars map[string]string
		got  func(Config) any
		want any
	}{
		{"DJANGO_SECRET_KEY", map[string]string{"DJANGO_SECRET_KEY": key}, func(c Config) any { return c.Login.SecretKey.reveal() }, key},
		{"DB_* with People's defaults", map[string]string{"DB_HOST": "postgresql.people.svc", "DB_PASSWORD": "p@ss/w:rd?#%"},
			func(c Config) any { return c.DatabaseURL.reveal() },
			(&url.URL{Scheme: "postgres", User: url.UserPassword("dinum", "p@ss/w:rd?#%"), Host: "postgresql.people.svc:5432", Path: "/people"}).String()},
		{"DB_* all set", map[string]string{"DB_HOST": "db", "DB_PORT": "6432", "DB_NAME": "desk", "DB_USER": "desk_user", "DB_PASSWORD": "x"},
			func(c Config) any { return c.DatabaseURL.reveal() }, "postgres://desk_user:x@db:6432/desk"},
		{"DJANGO_EMAIL_*", map[string]string{"DJANGO_EMAIL_HOST": "smtp.example", "DJANGO_EMAIL_PORT": "2525", "DJANGO_EMAIL_HOST_USER": "u",
			"DJANGO_EMAIL_HOST_PASSWORD": "pw", "DJANGO_EMAIL_USE_TLS": "False", "DJANGO_EMAIL_FROM": "people@example.org"},
			func(c Config) any { return c.Mail },
			mailConfig{Host: "smtp.example", Port: 2525, User: "u", Password: "pw", From: "people@example.org", FrontendURL: "http://localhost:8071/"}},
		{"DJANGO_EMAIL_USE_SSL", map[string]string{"DJANGO_EMAIL_HOST": "smtp.example", "DJANGO_EMAIL_USE_SSL": "True"},
			func(c Config) any { return [3]any{c.Mail.UseSSL, c.Mail.UseTLS, c.Mail.Port} }, [3]any{true, false, 465}},
		{"DJANGO_CORS_ALLOWED_ORIGINS", map[string]string{"DJANGO_CORS_ALLOWED_ORIGINS": "https://a.example, https://b.example"},
			func(c Config) any { return c.CORSAllowedOrigins }, []string{"https://a.example", "https://b.example"}},
		{"OIDC_USERINFO_FULLNAME_FIELDS", map[string]string{"OIDC_USERINFO_FULLNAME_FIELDS": "first_name,last_name", "USER_OIDC_FIELDS_TO_FULLNAME": "name"},
			func(c Config) any { return c.Login.NameFields }, []string{"first_name", "last_name"}},
		{"USER_OIDC_FIELDS_TO_FULLNAME", map[string]string{"USER_OIDC_FIELDS_TO_FULLNAME": "given_name"},
			func(c Config) any { return c.Login.NameFields }, []string{"given_name"}},
		{"OIDC_RS_BACKEND_CLASS json", map[string]string{"OIDC_RS_BACKEND_CLASS": "lasuite.oidc_resource_server.backend.ResourceServerBackend"},
			func(c Config) any { return c.Bearer.Backend }, "json"},
		{"OIDC_RS_BACKEND_CLASS jwt", map[string]string{"OIDC_RS_BACKEND_CLASS": "lasuite.oidc_resource_server.backend.JWTResourceServerBackend", "ENVIRONMENT": "development"},
			func(c Config) any { return c.Bearer.Backend }, "jwt"},
		{"ORGANIZATION_REGISTRATION_ID_VALIDATORS, JSON", map[string]string{"ORGANIZATION_REGISTRATION_ID_VALIDATORS": `[{"NAME": "django.core.validators.RegexValidator", "OPTIONS": {"regex": "^[0-9]{14}$"}}]`},
			func(c Config) any { return c.RegistrationIDPattern.String() }, "^[0-9]{14}$"},
		{"ORGANIZATION_REGISTRATION_ID_VALIDATORS, Python, searching", map[string]string{"ORGANIZATION_REGISTRATION_ID_VALIDATORS": `[{'NAME': 'django.core.validators.RegexValidator', 'OPTIONS': {'regex': '\\d{9}', 'message': 'nine digits'}}]`},
			func(c Config) any { return c.RegistrationIDPattern.String() }, `(?s:.*)(?:\d{9})(?s:.*)`},
		{"ORGANIZATION_REGISTRATION_ID_VALIDATORS, none", map[string]string{"ORGANIZATION_REGISTRATION_ID_VALIDATORS": "[]"},
			func(c Config) any { return c.RegistrationIDPattern.String() }, ".+"},
		{"DJANGO_OIDC_CREATE_USER", map[string]string{"DJANGO_OIDC_CREATE_USER": "False"}, func(c Config) any { return c.Login.CreateUser }, false},
		{"OIDC_AUTH_REQUEST_EXTRA_PARAMS, Python dict", map[string]string{"OIDC_AUTH_REQUEST_EXTRA_PARAMS": "{'acr_values': 'eidas1', \"max_age\": 3600,}"},
			func(c Config) any { return c.Login.ExtraParams }, map[string]string{"acr_values": "eidas1", "max_age": "3600"}},
		{"OIDC_AUTH_REQUEST_EXTRA_PARAMS, JSON", map[string]string{"OIDC_AUTH_REQUEST_EXTRA_PARAMS": `{"acr_values": "eidas1 eidas2"}`},
			func(c Config) any { return c.Login.ExtraParams }, map[string]string{"acr_values": "eidas1 eidas2"}},
		{"Python booleans", map[string]string{"ALLOW_LOGOUT_GET_METHOD": "False", "FEATURE_TEAMS_CREATE": "no", "MIGRATE": "Y"},
			func(c Config) any { return [3]bool{c.Login.AllowLogoutGet, c.FeatureTeamsCreate, c.Migrate} }, [3]bool{false, false, true}},
		{"CRISP_WEBSITE_ID", map[string]string{"DJANGO_LANGUAGES": "fr-fr,French;en-us,English", "CRISP_WEBSITE_ID": "crisp-1"},
			func(c Config) any { return c.CrispWebsiteID }, "crisp-1"},
		{"PUBLIC_URL from DJANGO_CSRF_TRUSTED_ORIGINS", map[string]string{"DJANGO_CSRF_TRUSTED_ORIGINS": "https://desk.example.org,https://other.example.org", "DJANGO_ALLOWED_HOSTS": "x.example"},
			func(c Config) any { return c.PublicURL }, "https://desk.example.org"},
		{"PUBLIC_URL from DJANGO_ALLOWED_HOSTS", map[string]string{"DJANGO_ALLOWED_HOSTS": "desk.example.org"},
			func(c Config) any { return c.PublicURL }, "https://desk.example.org"},
		{"PUBLIC_URL wins", map[string]string{"DJANGO_ALLOWED_HOSTS": "desk.example.org", "PUBLIC_URL": "https://people.example.org"},
			func(c Config) any { return c.PublicURL }, "https://people.example.org"},
		{"same value under both names", map[string]string{"DJANGO_EMAIL_USE_TLS": "True", "EMAIL_USE_TLS": "true", "DJANGO_SECRET_KEY": key, "SECRET_KEY": key},
			func(c Config) any { return c.Mail.UseTLS }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := peopleConfig(t, tt.vars)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, tt.got(c)); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// TestPeopleAliasConflicts: our name and People's set to different values stop the server,
// naming both; for every alias of peopleVars.
func TestPeopleAliasConflicts(t *testing.T) {
	values := map[string][2]string{ // People's value, ours that differs
		"DJANGO_SECRET_KEY":                       {strings.Repeat("a", 40), strings.Repeat("b", 40)},
		"DB_NAME":                                 {"people", "postgres://dinum:pass@localhost:5432/other"},
		"DB_USER":                                 {"dinum", "postgres://other:pass@localhost:5432/people"},
		"DB_PASSWORD":                             {"pass", "postgres://dinum:other@localhost:5432/people"},
		"DB_HOST":                                 {"localhost", "postgres://dinum:pass@elsewhere:5432/people"},
		"DB_PORT":                                 {"5432", "postgres://dinum:pass@localhost:6432/people"},
		"DJANGO_EMAIL_HOST":                       {"a.example", "b.example"},
		"DJANGO_EMAIL_HOST_USER":                  {"a", "b"},
		"DJANGO_EMAIL_HOST_PASSWORD":              {"a", "b"},
		"DJANGO_EMAIL_PORT":                       {"25", "587"},
		"DJANGO_EMAIL_USE_TLS":                    {"False", "true"},
		"DJANGO_EMAIL_USE_SSL":                    {"True", "no"},
		"DJANGO_EMAIL_FROM":                       {"a@example.org", "b@example.org"},
		"DJANGO_CORS_ALLOWED_ORIGINS":             {"https://a.example", "https://b.example"},
		"DJANGO_OIDC_CREATE_USER":                 {"True", "false"},
		"OIDC_USERINFO_FULLNAME_FIELDS":           {"first_name,last_name", "given_name"},
		"USER_OIDC_FIELDS_TO_FULLNAME":            {"first_name,last_name", "given_name"},
		"OIDC_RS_BACKEND_CLASS":                   {"lasuite.oidc_resource_server.backend.ResourceServerBackend", "jwt"},
		"ORGANIZATION_REGISTRATION_ID_VALIDATORS": {"[]", "^[0-9]{9}$"},
	}
	for _, v := range peopleVars {
		if v.action != peopleAlias {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			val, ok := values[v.name]
			if !ok {
				t.Fatalf("no test values for the alias %s", v.name)
			}
			_, err := parseConfig(env(map[string]string{v.name: val[0], v.ours: val[1]}))
			if err == nil || !strings.Contains(err.Error(), v.ours+" and People's ") || !strings.Contains(err.Error(), v.name) {
				t.Errorf("%s=%q with %s=%q: err = %v, want it to name both", v.name, val[0], v.ours, val[1], err)
			}
		})
	}
}

// TestPeopleRefusedAndBadValues: a People setting this server cannot honour stops it, naming
// the variable and what replaces it; an accepted value of the same variable does not.
func TestPeopleRefusedAndBadValues(t *testing.T) {
	for _, tt := range []struct {
		vars map[string]string
		want string // in the error; "" for none
	}{
		{map[string]string{"DJANGO_CORS_ALLOW_ALL_ORIGINS": "True"}, "CORS_ALLOWED_ORIGINS"},
		{map[string]string{"DJANGO_CORS_ALLOW_ALL_ORIGINS": "False"}, ""},
		{map[string]string{"DJANGO_LANGUAGES": "en-us,English;de-de,German"}, "DJANGO_LANGUAGES"},
		{map[string]string{"DJANGO_CORS_ALLOWED_ORIGIN_REGEXES": `^https://.*\.example\.org$`}, "CORS_ALLOWED_ORIGINS"},
		{map[string]string{"DB_ENGINE": "django.db.backends.mysql", "DB_HOST": "db"}, "DB_ENGINE"},
		{map[string]string{"DB_ENGINE": "django.db.backends.postgresql", "DB_HOST": "db"}, ""},
		{map[string]string{"DJANGO_EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}, "EMAIL_HOST"},
		{map[string]string{"DJANGO_EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend"}, ""},
		{map[string]string{"OIDC_VERIFY_SSL": "False"}, "SSL_CERT_FILE"},
		{map[string]string{"OIDC_VERIFY_SSL": "True"}, ""},
		{map[string]string{"OIDC_PROXY": "http://proxy:3128"}, "HTTPS_PROXY"},
		{map[string]string{"INSTALLED_PLUGINS": "plugins.la_suite"}, "INSTALLED_PLUGINS"},
		{map[string]string{"OAUTH2_PROVIDER_OIDC_ENABLED": "True"}, "OAUTH2_PROVIDER_OIDC_ENABLED"},
		{map[string]string{"OIDC_RS_BACKEND_CLASS": "myproject.backends.Custom"}, "OIDC_RS_BACKEND=json"},
		{map[string]string{"ORGANIZATION_REGISTRATION_ID_VALIDATORS": `[{"NAME": "django.core.validators.RegexValidator", "OPTIONS": {"regex": "a"}}, {"NAME": "django.core.validators.RegexValidator", "OPTIONS": {"regex": "b"}}]`}, "ORGANIZATION_REGISTRATION_ID_PATTERN"},
		{map[string]string{"ORGANIZATION_REGISTRATION_ID_VALIDATORS": `[{"NAME": "django.core.validators.RegexValidator", "OPTIONS": {"regex": "^a$", "inverse_match": true}}]`}, "inverse_match"},
		{map[string]string{"ORGANIZATION_REGISTRATION_ID_VALIDATORS": `[{"NAME": "core.validators.Luhn"}]`}, "ORGANIZATION_REGISTRATION_ID_PATTERN"},
		{map[string]string{"ORGANIZATION_REGISTRATION_ID_VALIDATORS": `[{"NAME": "django.core.validators.RegexValidator", "OPTIONS": {"regex": "(?P<x>a)(?=b)"}}]`}, "ORGANIZATION_REGISTRATION_ID_PATTERN"},
		{map[string]string{"OIDC_AUTH_REQUEST_EXTRA_PARAMS": "{'acr_values': ['eidas1']}"}, "Python dict"},
		{map[string]string{"DJANGO_EMAIL_USE_TLS": "True", "DJANGO_EMAIL_USE_SSL": "True"}, "mutually exclusive"},
		{map[string]string{"DJANGO_EMAIL_USE_TLS": "maybe"}, "DJANGO_EMAIL_USE_TLS"},
		{map[string]string{"DJANGO_ALLOWED_HOSTS": "desk.example.org,.svc.cluster.local", "OIDC_OP_URL": "https://op.example",
			"OIDC_RP_CLIENT_SECRET": "s", "DJANGO_SECRET_KEY": strings.Repeat("k", 50)}, "PUBLIC_URL is required"},
	} {
		_, err := peopleConfig(t, tt.vars)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%v: %v, want no error", tt.vars, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%v: err = %v, want it to name %s", tt.vars, err, tt.want)
		}
	}
}

// TestPeopleVarsAreHandled: every People variable of the table is read by the parser when the
// table says it is the same here, and the table lists each name once with a reason where it
// is refused or ignored.
func TestPeopleVarsAreHandled(t *testing.T) {
	read := map[string]bool{}
	for _, vars := range []map[string]string{{}, {"OIDC_OP_URL": "https://op.example", "OIDC_RP_CLIENT_SECRET": "s", "SECRET_KEY": strings.Repeat("k", 32)}} {
		// Only the parser's reads: readPeopleEnv reads no variable that the table says is
		// the same here.
		parseConfig(func(k string) string { read[k] = true; return vars[k] })
	}
	seen := map[string]bool{}
	for _, v := range peopleVars {
		if seen[v.name] {
			t.Errorf("%s listed twice", v.name)
		}
		seen[v.name] = true
		switch v.action {
		case peopleSame:
			// readPeopleEnv skips these, so a read is the parser's own.
			if !read[v.name] {
				t.Errorf("%s is said to be read as People's, but the parser never reads it", v.name)
			}
		case peopleIgnored, peopleRefused:
			if v.reason == "" {
				t.Errorf("%s is %s without a reason", v.name, v.action)
			}
		case peopleAlias:
			if !read[v.ours] {
				t.Errorf("%s is an alias of %s, which the parser never reads", v.name, v.ours)
			}
		default:
			t.Errorf("%s: unknown action %q", v.name, v.action)
		}
	}
	ignored := func(vars map[string]string) []string {
		c, err := peopleConfig(t, vars)
		if err != nil {
			t.Fatal(err)
		}
		return c.PeopleIgnored
	}
	got := ignored(map[string]string{"DJANGO_CONFIGURATION": "Production", "SENTRY_DSN": "https://k@sentry.example/1",
		"DJANGO_CELERY_BROKER_URL": "redis://redis:6379/0", "OIDC_RP_CLIENT_ID": "people"})
	if want := []string{"DJANGO_CONFIGURATION", "DJANGO_CELERY_BROKER_URL", "SENTRY_DSN"}; !slices.Equal(got, want) {
		t.Errorf("ignored = %v, want %v", got, want)
	}
}
