package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"lasuite.fr/people/store"
)

// The browser sign-in's settings, with People's names and defaults (the README's table), and
// the values a ProConnect deployment sets.
func TestLoginConfig(t *testing.T) {
	db := map[string]string{"DATABASE_URL": "postgres://u:p@127.0.0.1/db"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range db {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}

	t.Run("defaults", func(t *testing.T) {
		c, err := parseConfig(env(db))
		if err != nil {
			t.Fatal(err)
		}
		want := LoginSettings{ClientID: "people", SignAlgs: []string{"RS256"}, Scopes: []string{"openid", "email"},
			UserinfoFormat: "auto", NameFields: []string{"given_name", "usual_name"}, FallbackToEmail: true, CreateUser: true,
			LoginRedirect: "/", LogoutRedirect: "/", AllowLogoutGet: true, Endpoints: map[string]string{},
			EmailVerifiedDefault: true, SharedEmailDomains: store.DefaultSharedEmailDomains}
		got := c.Login
		got.SecretKey = "" // random without OIDC_OP_URL
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("login defaults (-want +got):\n%s", diff)
		}
		if c.SessionCookieAge != 12*time.Hour || !c.SessionCookieSecure || c.OIDCOPURL != "" || c.DevOIDCAllowRemote {
			t.Errorf("session cookie age %v, secure %v, OIDC_OP_URL %q, DEV_OIDC_ALLOW_REMOTE %v; want 12h, true, none, false",
				c.SessionCookieAge, c.SessionCookieSecure, c.OIDCOPURL, c.DevOIDCAllowRemote)
		}
		if c.SessionCacheTTL != 2*time.Minute {
			t.Errorf("SESSION_CACHE_TTL = %v, want 2m", c.SessionCacheTTL)
		}
		for v, want := range map[string]time.Duration{"0": 0, "0s": 0, "5": 5 * time.Second, "1m": time.Minute} {
			if c, err := parseConfig(env(with(map[string]string{"SESSION_CACHE_TTL": v}))); err != nil || c.SessionCacheTTL != want {
				t.Errorf("SESSION_CACHE_TTL=%s: %v (%v), want %v", v, c.SessionCacheTTL, err, want)
			}
		}
		if len(c.Login.SecretKey) < 32 {
			t.Errorf("development SECRET_KEY of %d bytes, want a random one of 32", len(c.Login.SecretKey))
		}
		if c.Mail.Port != 587 || !c.Mail.UseTLS || c.Mail.From != "from@example.com" || c.Mail.FrontendURL != "http://localhost:8071/" || c.Mail.Host != "" {
			t.Errorf("mail defaults = %+v", c.Mail)
		}
		dev, err := parseConfig(env(with(map[string]string{"ENVIRONMENT": "development"})))
		if err != nil || dev.SessionCookieSecure {
			t.Errorf("development: SESSION_COOKIE_SECURE %v (%v), want false by default", dev.SessionCookieSecure, err)
		}
	})

	t.Run("a ProConnect deployment", func(t *testing.T) {
		c, err := parseConfig(env(with(map[string]string{
			"OIDC_OP_URL": "https://auth.agentconnect.gouv.fr/api/v2", "OIDC_RP_CLIENT_ID": "people-prod", "OIDC_RP_CLIENT_SECRET": "s3cret",
			"OIDC_RP_SIGN_ALGO": "ES256", "OIDC_RP_SCOPES": "openid email siret given_name usual_name",
			"OIDC_AUTH_REQUEST_EXTRA_PARAMS": `{"acr_values": "eidas1"}`, "OIDC_OP_USER_ENDPOINT_FORMAT": "jwt",
			"OIDC_OP_JWKS_ENDPOINT": "https://auth.agentconnect.gouv.fr/api/v2/jwks", "OIDC_OP_LOGOUT_ENDPOINT": "https://auth.agentconnect.gouv.fr/api/v2/session/end",
			"USER_OIDC_FIELDS_TO_NAME": "given_name usual_name", "OIDC_ORGANIZATION_REGISTRATION_ID_FIELD": "siret",
			"OIDC_FALLBACK_TO_EMAIL_FOR_IDENTIFICATION": "false", "OIDC_CREATE_USER": "false", "ORGANIZATION_FIRST_USER_ADMIN": "true",
			"LOGIN_REDIRECT_URL": "https://people.example/", "LOGIN_REDIRECT_URL_FAILURE": "https://people.example/login-failed",
			"LOGOUT_REDIRECT_URL": "https://people.example/bye", "SECRET_KEY": strings.Repeat("k", 32),
			"SESSION_COOKIE_AGE": "3600", "SESSION_COOKIE_SECURE": "true", "PUBLIC_URL": "https://people.example",
			"EMAIL_HOST": "smtp.example", "EMAIL_PORT": "465", "EMAIL_HOST_USER": "mailer", "EMAIL_HOST_PASSWORD": "pw",
			"EMAIL_USE_TLS": "false", "EMAIL_FROM": "La Suite <noreply@example>", "FRONTEND_URL": "https://front.example/",
			"OIDC_EMAIL_VERIFIED_DEFAULT": "false", "ORGANIZATION_SHARED_EMAIL_DOMAINS": "Gmail.com, mail.example.org",
		})))
		if err != nil {
			t.Fatal(err)
		}
		want := LoginSettings{ClientID: "people-prod", ClientSecret: "s3cret", SignAlgs: []string{"ES256"},
			Scopes: []string{"openid", "email", "siret", "given_name", "usual_name"}, ExtraParams: map[string]string{"acr_values": "eidas1"},
			UserinfoFormat: "jwt", NameFields: []string{"given_name", "usual_name"}, RegistrationIDClaim: "siret",
			Endpoints:      map[string]string{"jwks_uri": "https://auth.agentconnect.gouv.fr/api/v2/jwks", "end_session_endpoint": "https://auth.agentconnect.gouv.fr/api/v2/session/end"},
			FirstUserAdmin: true, LoginRedirect: "https://people.example/", FailureRedirect: "https://people.example/login-failed",
			LogoutRedirect: "https://people.example/bye", AllowLogoutGet: true, SecretKey: secret(strings.Repeat("k", 32)),
			SharedEmailDomains: []string{"gmail.com", "mail.example.org"}}
		if diff := cmp.Diff(want, c.Login); diff != "" {
			t.Errorf("login settings (-want +got):\n%s", diff)
		}
		if c.SessionCookieAge != time.Hour || !c.SessionCookieSecure {
			t.Errorf("session cookie age %v, secure %v", c.SessionCookieAge, c.SessionCookieSecure)
		}
		wantMail := mailConfig{Host: "smtp.example", Port: 465, User: "mailer", Password: "pw", From: "La Suite <noreply@example>", FrontendURL: "https://front.example/"}
		if diff := cmp.Diff(wantMail, c.Mail); diff != "" {
			t.Errorf("mail settings (-want +got):\n%s", diff)
		}
	})

	t.Run("no shared email domains", func(t *testing.T) {
		c, err := parseConfig(env(with(map[string]string{"ORGANIZATION_SHARED_EMAIL_DOMAINS": "none"})))
		if err != nil || c.Login.SharedEmailDomains == nil || len(c.Login.SharedEmailDomains) != 0 {
			t.Errorf("ORGANIZATION_SHARED_EMAIL_DOMAINS=none: %#v (%v), want an empty list, not the default", c.Login.SharedEmailDomains, err)
		}
	})

	for name, tc := range map[string]struct {
		vars map[string]string
		key  string // named by the error
	}{
		"alg none":                             {map[string]string{"OIDC_RP_SIGN_ALGO": "none"}, "OIDC_RP_SIGN_ALGO"},
		"HMAC":                                 {map[string]string{"OIDC_RP_SIGN_ALGO": "RS256,HS256"}, "OIDC_RP_SIGN_ALGO"},
		"extra params not JSON":                {map[string]string{"OIDC_AUTH_REQUEST_EXTRA_PARAMS": "acr_values=eidas1"}, "OIDC_AUTH_REQUEST_EXTRA_PARAMS"},
		"extra params not scalars":             {map[string]string{"OIDC_AUTH_REQUEST_EXTRA_PARAMS": `{"max_age": [3]}`}, "OIDC_AUTH_REQUEST_EXTRA_PARAMS"},
		"unknown userinfo format":              {map[string]string{"OIDC_OP_USER_ENDPOINT_FORMAT": "xml"}, "OIDC_OP_USER_ENDPOINT_FORMAT"},
		"provider without client secret":       {map[string]string{"OIDC_OP_URL": "https://op.example", "SECRET_KEY": strings.Repeat("k", 32)}, "OIDC_RP_CLIENT_SECRET"},
		"provider without SECRET_KEY":          {map[string]string{"OIDC_OP_URL": "https://op.example", "OIDC_RP_CLIENT_SECRET": "s"}, "SECRET_KEY"},
		"short SECRET_KEY":                     {map[string]string{"OIDC_OP_URL": "https://op.example", "OIDC_RP_CLIENT_SECRET": "s", "SECRET_KEY": "short"}, "SECRET_KEY"},
		"not a boolean":                        {map[string]string{"OIDC_CREATE_USER": "maybe"}, "OIDC_CREATE_USER"},
		"session age not a duration":           {map[string]string{"SESSION_COOKIE_AGE": "half a day"}, "SESSION_COOKIE_AGE"},
		"session cache TTL negative":           {map[string]string{"SESSION_CACHE_TTL": "-1s"}, "SESSION_CACHE_TTL"},
		"session cache TTL not a duration":     {map[string]string{"SESSION_CACHE_TTL": "soon"}, "SESSION_CACHE_TTL"},
		"CORS wildcard":                        {map[string]string{"CORS_ALLOWED_ORIGINS": "*"}, "CORS_ALLOWED_ORIGINS"},
		"PUBLIC_URL with a path":               {map[string]string{"PUBLIC_URL": "https://people.example/app"}, "PUBLIC_URL"},
		"email verified default not a boolean": {map[string]string{"OIDC_EMAIL_VERIFIED_DEFAULT": "sometimes"}, "OIDC_EMAIL_VERIFIED_DEFAULT"},
		"shared domain with an @":              {map[string]string{"ORGANIZATION_SHARED_EMAIL_DOMAINS": "gmail.com,@orange.fr"}, "ORGANIZATION_SHARED_EMAIL_DOMAINS"},
		"shared domain of one label":           {map[string]string{"ORGANIZATION_SHARED_EMAIL_DOMAINS": "localhost"}, "ORGANIZATION_SHARED_EMAIL_DOMAINS"},
		"login redirect scheme-relative":       {map[string]string{"LOGIN_REDIRECT_URL": "//evil.example"}, "LOGIN_REDIRECT_URL"},
		"failure redirect backslash":           {map[string]string{"LOGIN_REDIRECT_URL_FAILURE": "/\\evil.example"}, "LOGIN_REDIRECT_URL_FAILURE"},
		"logout redirect javascript":           {map[string]string{"LOGOUT_REDIRECT_URL": "javascript:alert(1)"}, "LOGOUT_REDIRECT_URL"},
		"logout redirect with userinfo":        {map[string]string{"LOGOUT_REDIRECT_URL": "https://front.example@evil.example/"}, "LOGOUT_REDIRECT_URL"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseConfig(env(with(tc.vars)))
			if err == nil || !strings.Contains(err.Error(), tc.key) {
				t.Errorf("parseConfig = %v, want an error naming %s", err, tc.key)
			}
		})
	}
}
