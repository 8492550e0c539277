package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
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
//
// In development without OIDC_OP_URL, the authorization server is the development provider
// (server_bearer.go), whose JWKS endpoint the server knows, so OIDC_RS_BACKEND=jwt needs neither
// OIDC_OP_JWKS_ENDPOINT nor OIDC_RS_PRIVATE_KEY_STR: without a key, one is made for this run, and
// the provider encrypts to it (it lives in the same process, and forgets its tokens at a restart too).
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
	// config.go reads ENVIRONMENT and OIDC_OP_URL the same way.
	devProvider := p.str("ENVIRONMENT", "production") == "development" && p.str("OIDC_OP_URL", "") == ""
	if b.Backend == auth.BackendJWT && b.PrivateKey == "" && devProvider {
		key, err := newDecryptionKeyPEM(b.EncryptionAlgo)
		if err != nil {
			p.errs = append(p.errs, fmt.Sprintf("OIDC_RS_PRIVATE_KEY_STR: %v", err))
		}
		b.PrivateKey = secret(key)
	}
	if b.PrivateKey != "" {
		if _, err := auth.ParseDecryptionKeys(b.PrivateKey.reveal(), b.EncryptionAlgo); err != nil {
			p.errs = append(p.errs, fmt.Sprintf("OIDC_RS_PRIVATE_KEY_STR: %v (with OIDC_RS_ENCRYPTION_ALGO=%s)", err, b.EncryptionAlgo))
		}
	}
	if b.Backend == auth.BackendJWT && !devProvider {
		if b.PrivateKey == "" {
			p.errs = append(p.errs, "OIDC_RS_BACKEND=jwt needs OIDC_RS_PRIVATE_KEY_STR, the PEM private key that introspection answers are encrypted to")
		}
		if b.JWKSEndpoint == "" {
			p.errs = append(p.errs, "OIDC_RS_BACKEND=jwt needs OIDC_OP_JWKS_ENDPOINT, the authorization server's signing keys")
		}
	}
	return b
}

// newDecryptionKeyPEM makes a private key for the JWE key algorithm alg: RSA 2048 bits for
// RSA-OAEP*, P-256 for ECDH-ES*, as PKCS #8 PEM.
func newDecryptionKeyPEM(alg string) (string, error) {
	var key any
	var err error
	switch {
	case strings.HasPrefix(alg, "RSA-OAEP"):
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case strings.HasPrefix(alg, "ECDH-ES"):
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return "", fmt.Errorf("no key can be made for OIDC_RS_ENCRYPTION_ALGO=%s: use RSA-OAEP, RSA-OAEP-256 or ECDH-ES", alg)
	}
	if err != nil {
		return "", fmt.Errorf("generate a key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", fmt.Errorf("encode a key: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

// Enabled reports whether the environment configures a resource server.
func (b BearerSettings) Enabled(c Config) bool {
	return c.OIDCOPURL != "" && b.IntrospectionEndpoint != "" && b.ClientID != "" && b.ClientSecret != ""
}
