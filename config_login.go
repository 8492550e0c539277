package main

import (
	"crypto/rand"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/store"
)

// LoginSettings configure the browser sign-in (auth.Login), with People's variable names.
type LoginSettings struct {
	ClientID            string            // OIDC_RP_CLIENT_ID
	ClientSecret        secret            // OIDC_RP_CLIENT_SECRET
	SignAlgs            []string          // OIDC_RP_SIGN_ALGO
	Scopes              []string          // OIDC_RP_SCOPES
	ExtraParams         map[string]string // OIDC_AUTH_REQUEST_EXTRA_PARAMS
	UserinfoFormat      string            // OIDC_OP_USER_ENDPOINT_FORMAT
	Endpoints           map[string]string // OIDC_OP_*_ENDPOINT: instead of discovery
	NameFields          []string          // USER_OIDC_FIELDS_TO_NAME
	RegistrationIDClaim string            // OIDC_ORGANIZATION_REGISTRATION_ID_FIELD
	FallbackToEmail     bool              // OIDC_FALLBACK_TO_EMAIL_FOR_IDENTIFICATION
	CreateUser          bool              // OIDC_CREATE_USER
	FirstUserAdmin      bool              // ORGANIZATION_FIRST_USER_ADMIN
	LoginRedirect       string            // LOGIN_REDIRECT_URL
	FailureRedirect     string            // LOGIN_REDIRECT_URL_FAILURE
	LogoutRedirect      string            // LOGOUT_REDIRECT_URL
	AllowLogoutGet      bool              // ALLOW_LOGOUT_GET_METHOD: GET /api/v1.0/logout/, as People's
	SecretKey           secret            // SECRET_KEY: seals the login state cookie
	// EmailVerifiedDefault is OIDC_EMAIL_VERIFIED_DEFAULT: what a provider that sends no
	// email_verified claim is taken to say. True for ProConnect, which vouches for its emails
	// without always saying so; a claim present and not true is never overridden.
	EmailVerifiedDefault bool
	// SharedEmailDomains is ORGANIZATION_SHARED_EMAIL_DOMAINS: webmail domains that name no
	// organization at login; store.DefaultSharedEmailDomains when unset, none with "none".
	SharedEmailDomains []string
}

// endpointVars are the explicit provider endpoints People accepts instead of discovery.
var endpointVars = map[string]string{
	"authorization_endpoint": "OIDC_OP_AUTHORIZATION_ENDPOINT",
	"token_endpoint":         "OIDC_OP_TOKEN_ENDPOINT",
	"userinfo_endpoint":      "OIDC_OP_USER_ENDPOINT",
	"jwks_uri":               "OIDC_OP_JWKS_ENDPOINT",
	"end_session_endpoint":   "OIDC_OP_LOGOUT_ENDPOINT",
}

func (p *parser) login(c Config) LoginSettings {
	l := LoginSettings{
		ClientID:            p.str("OIDC_RP_CLIENT_ID", "people"),
		ClientSecret:        secret(p.getenv("OIDC_RP_CLIENT_SECRET")),
		SignAlgs:            p.list("OIDC_RP_SIGN_ALGO", "RS256"),
		Scopes:              p.list("OIDC_RP_SCOPES", "openid email"),
		UserinfoFormat:      p.oneOf("OIDC_OP_USER_ENDPOINT_FORMAT", "auto", "auto", "json", "jwt"),
		NameFields:          p.list("USER_OIDC_FIELDS_TO_NAME", "given_name,usual_name"),
		RegistrationIDClaim: p.str("OIDC_ORGANIZATION_REGISTRATION_ID_FIELD", ""),
		FallbackToEmail:     p.boolean("OIDC_FALLBACK_TO_EMAIL_FOR_IDENTIFICATION", true),
		CreateUser:          p.boolean("OIDC_CREATE_USER", true),
		FirstUserAdmin:      p.boolean("ORGANIZATION_FIRST_USER_ADMIN", false),
		LoginRedirect:       p.str("LOGIN_REDIRECT_URL", "/"),
		FailureRedirect:     p.str("LOGIN_REDIRECT_URL_FAILURE", ""),
		LogoutRedirect:      p.str("LOGOUT_REDIRECT_URL", "/"),
		AllowLogoutGet:      p.boolean("ALLOW_LOGOUT_GET_METHOD", true),
		SecretKey:           secret(p.getenv("SECRET_KEY")),
		Endpoints:           map[string]string{},
	}
	l.EmailVerifiedDefault = p.boolean("OIDC_EMAIL_VERIFIED_DEFAULT", true)
	l.SharedEmailDomains = p.domains("ORGANIZATION_SHARED_EMAIL_DOMAINS", store.DefaultSharedEmailDomains)
	for _, a := range l.SignAlgs {
		if a != "RS256" && a != "ES256" && a != "PS256" {
			p.errs = append(p.errs, "OIDC_RP_SIGN_ALGO must be RS256, ES256 or PS256 (never none or HMAC)")
		}
	}
	if raw := p.str("OIDC_AUTH_REQUEST_EXTRA_PARAMS", ""); raw != "" {
		var ok bool
		if l.ExtraParams, ok = extraParams(raw); !ok {
			p.errs = append(p.errs, `OIDC_AUTH_REQUEST_EXTRA_PARAMS must be an object of strings, as JSON ({"acr_values":"eidas1"}) or as a Python dict ({'acr_values': 'eidas1'})`)
		}
	}
	// Checked here, so that a bad target stops the server at start rather than every login.
	for _, t := range []struct{ key, value string }{
		{"LOGIN_REDIRECT_URL", l.LoginRedirect}, {"LOGIN_REDIRECT_URL_FAILURE", l.FailureRedirect}, {"LOGOUT_REDIRECT_URL", l.LogoutRedirect},
	} {
		if t.value == "" {
			continue
		}
		if err := auth.ValidateRedirectTarget(c.PublicURL, t.value); err != nil {
			p.errs = append(p.errs, fmt.Sprintf("%s must be a path on PUBLIC_URL such as /app or an http(s) URL such as https://app.example.org/: %v", t.key, err))
		}
	}
	for field, key := range endpointVars {
		if v := p.str(key, ""); v != "" {
			l.Endpoints[field] = v
		}
	}
	switch {
	case c.OIDCOPURL == "":
		// Development: the built-in provider; the state key only has to outlive this process.
		if l.SecretKey == "" {
			b := make([]byte, 32)
			rand.Read(b)
			l.SecretKey = secret(b)
		}
	case len(l.SecretKey) < 32:
		p.errs = append(p.errs, "SECRET_KEY must have at least 32 characters when OIDC_OP_URL is set (it seals login state and must be the same on every instance)")
	}
	if c.OIDCOPURL != "" && l.ClientSecret == "" {
		p.errs = append(p.errs, "OIDC_RP_CLIENT_SECRET is required when OIDC_OP_URL is set")
	}
	return l
}

// extraParams reads OIDC_AUTH_REQUEST_EXTRA_PARAMS as JSON or as the Python dict People's
// Helm values write ({'acr_values': 'eidas1'}); numbers and booleans become strings.
func extraParams(raw string) (map[string]string, bool) {
	lit, err := parseLiteral(raw)
	obj, ok := lit.(map[string]any)
	if err != nil || !ok {
		return nil, false
	}
	out := make(map[string]string, len(obj))
	for k, v := range obj {
		switch v := v.(type) {
		case string:
			out[k] = v
		case float64:
			out[k] = strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			out[k] = strconv.FormatBool(v)
		default:
			return nil, false
		}
	}
	return out, true
}

// domains reads a comma- or space-separated list of mail domains, in lower case; unset is def,
// "none" is the empty list.
func (p *parser) domains(key string, def []string) []string {
	v := p.str(key, "")
	switch {
	case v == "":
		return def
	case strings.EqualFold(v, "none"):
		return []string{}
	}
	var out []string
	for _, d := range p.list(key, "") {
		d = strings.ToLower(d)
		if !domainName.MatchString(d) {
			p.errs = append(p.errs, fmt.Sprintf("%s: %q is not a mail domain such as gmail.com", key, d))
			continue
		}
		out = append(out, d)
	}
	return out
}

// domainName is a DNS name of two labels or more, as organization_domains holds them.
var domainName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$`)

// list reads a comma- or space-separated list.
func (p *parser) list(key, def string) []string {
	return strings.FieldsFunc(p.str(key, def), func(r rune) bool { return r == ',' || r == ' ' })
}
