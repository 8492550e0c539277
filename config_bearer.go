package main

import (
	"fmt"
	"strings"
	"time"

	"lasuite.fr/people/auth"
)

// BearerSettings configure partner services' bearer tokens (auth.ResourceServer), with People's
// variable names. Tokens are accepted when OIDC_OP_URL, the introspection endpoint and the
// resource server's client id and secret are set, or in development from the development
// provider; otherwise they are refused, and the server runs.
type BearerSettings struct {
	IntrospectionEndpoint string        // OIDC_OP_INTROSPECTION_ENDPOINT
	JWKSEndpoint          string        // OIDC_OP_JWKS_ENDPOINT: the authorization server's signing keys (jwt backend)
	Timeout               time.Duration // OIDC_TIMEOUT
	ClientID              string        // OIDC_RS_CLIENT_ID
	ClientSecret          secret        // OIDC_RS_CLIENT_SECRET
	ClientAuthMethod      string        // OIDC_RS_CLIENT_AUTH_METHOD
	Backend               string        // OIDC_RS_BACKEND: json (RFC 7662) or jwt (RFC 9701, ProConnect)
	PrivateKey            secret        // OIDC_RS_PRIVATE_KEY_STR: PEM, one key or more
	EncryptionAlgo        string        // OIDC_RS_ENCRYPTION_ALGO
	EncryptionEncoding    string        // OIDC_RS_ENCRYPTION_ENCODING
	SigningAlgo           string        // OIDC_RS_SIGNING_ALGO
	Scopes                []string      // OIDC_RS_SCOPES
	AudienceClaim         string        // OIDC_RS_AUDIENCE_CLAIM
	CacheTTL              time.Duration // OIDC_RS_INTROSPECTION_CACHE_TTL
}

// bearer reads the partner services' settings. A broken decryption key stops the server here,
// before it listens, rather than at the first encrypted answer.
func (p *parser) bearer() BearerSettings {
	b := BearerSettings{
		IntrospectionEndpoint: p.str("OIDC_OP_INTROSPECTION_ENDPOINT", ""),
		JWKSEndpoint:          p.str("OIDC_OP_JWKS_ENDPOINT", ""),
		Timeout:               p.duration("OIDC_TIMEOUT", 5*time.Second),
		ClientID:              p.str("OIDC_RS_CLIENT_ID", ""),
		ClientSecret:          secret(strings.TrimSpace(p.getenv("OIDC_RS_CLIENT_SECRET"))),
		ClientAuthMethod:      p.oneOf("OIDC_RS_CLIENT_AUTH_METHOD", auth.ClientSecretPost, auth.ClientSecretPost, auth.ClientSecretBasic),
		Backend:               p.oneOf("OIDC_RS_BACKEND", auth.BackendJSON, auth.BackendJSON, auth.BackendJWT),
		PrivateKey:            secret(strings.TrimSpace(p.getenv("OIDC_RS_PRIVATE_KEY_STR"))),
		EncryptionAlgo:        p.str("OIDC_RS_ENCRYPTION_ALGO", "RSA-OAEP"),
		EncryptionEncoding:    p.str("OIDC_RS_ENCRYPTION_ENCODING", "A256GCM"),
		SigningAlgo:           p.str("OIDC_RS_SIGNING_ALGO", "ES256"),
		Scopes:                strings.FieldsFunc(p.str("OIDC_RS_SCOPES", "groups"), func(r rune) bool { return r == ',' || r == ' ' }),
		AudienceClaim:         p.str("OIDC_RS_AUDIENCE_CLAIM", "aud"),
		CacheTTL:              p.duration("OIDC_RS_INTROSPECTION_CACHE_TTL", 60*time.Second),
	}
	if b.PrivateKey != "" {
		if _, err := auth.ParseDecryptionKeys(b.PrivateKey.reveal(), b.EncryptionAlgo); err != nil {
			p.errs = append(p.errs, fmt.Sprintf("OIDC_RS_PRIVATE_KEY_STR: %v (with OIDC_RS_ENCRYPTION_ALGO=%s)", err, b.EncryptionAlgo))
		}
	}
	if b.Backend == auth.BackendJWT {
		if b.PrivateKey == "" {
			p.errs = append(p.errs, "OIDC_RS_BACKEND=jwt needs OIDC_RS_PRIVATE_KEY_STR, the PEM private key that introspection answers are encrypted to")
		}
		if b.JWKSEndpoint == "" {
			p.errs = append(p.errs, "OIDC_RS_BACKEND=jwt needs OIDC_OP_JWKS_ENDPOINT, the authorization server's signing keys")
		}
	}
	return b
}

// Enabled reports whether the environment configures a resource server.
func (b BearerSettings) Enabled(c Config) bool {
	return c.OIDCOPURL != "" && b.IntrospectionEndpoint != "" && b.ClientID != "" && b.ClientSecret != ""
}
