package main

import (
	"fmt"
	"log/slog"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/auth/devop"
	"lasuite.fr/people/ops"
	"lasuite.fr/people/store"
)

// newResourceServer prepares the bearer tokens of partner services: against the authorization
// server of the OIDC_RS_* settings, or, in development, against the development provider (People
// is its client "people", which may introspect every token), so that make token works, with
// RFC 7662 answers or, with OIDC_RS_BACKEND=jwt, RFC 9701 ones (devIntrospection). Without
// either, bearer tokens are refused with 401 and the rest of the server runs. creds, when not
// nil, remembers which users are active. o counts the work, and holds the introspection budget
// of each client address (INTROSPECTION_RATE_LIMIT).
func newResourceServer(cfg Config, s *store.Store, dev *devop.Provider, creds *auth.CredentialCache, o *ops.Layer, log *slog.Logger) (*auth.ResourceServer, error) {
	b := cfg.Bearer
	rc := auth.ResourceServerConfig{
		Issuer: cfg.OIDCOPURL, IntrospectionURL: b.IntrospectionEndpoint, JWKSURL: b.JWKSEndpoint,
		ClientID: b.ClientID, ClientSecret: b.ClientSecret.reveal(), ClientAuthMethod: b.ClientAuthMethod,
		Backend: b.Backend, EncryptionAlg: b.EncryptionAlgo, EncryptionEnc: b.EncryptionEncoding, SigningAlg: b.SigningAlgo,
		Scopes: b.Scopes, AudienceClaim: b.AudienceClaim, FallbackToEmail: cfg.Login.FallbackToEmail,
		Timeout: b.Timeout, CacheTTL: b.CacheTTL, Metrics: o.Metrics(), Cache: creds,
		MaxConcurrentIntrospections: cfg.RateLimits.IntrospectionConcurrency,
		IntrospectionBudget:         o.IntrospectionBudget(), ClientKey: o.ClientKey,
	}
	rc.EmailVerifiedRequired = !cfg.Login.EmailVerifiedDefault
	if b.PrivateKey != "" {
		keys, err := auth.ParseDecryptionKeys(b.PrivateKey.reveal(), b.EncryptionAlgo)
		if err != nil {
			return nil, err // parseConfig has checked it already
		}
		rc.DecryptionKeys = keys
	}
	switch {
	case b.Enabled(cfg):
		log.Info("bearer tokens accepted", "issuer", rc.Issuer, "backend", rc.Backend, "client_id", rc.ClientID)
	case dev != nil:
		c, ep := dev.RPClient(), dev.Endpoints()
		rc.Issuer, rc.IntrospectionURL, rc.JWKSURL, rc.ClientID, rc.ClientSecret = dev.Issuer(), ep.Introspection, ep.JWKS, c.ID, c.Secret
		rc.ClientAuthMethod = auth.ClientSecretBasic
		log.Info("bearer tokens accepted from the development provider", "issuer", rc.Issuer, "backend", rc.Backend)
	default:
		log.Warn("bearer tokens refused: set OIDC_OP_URL, OIDC_OP_INTROSPECTION_ENDPOINT, OIDC_RS_CLIENT_ID and OIDC_RS_CLIENT_SECRET to accept partner services")
	}
	return auth.NewResourceServer(rc, s, log)
}

// devIntrospection registers this server with the development provider for OIDC_RS_BACKEND=jwt,
// as a deployment registers with ProConnect: its client "people" gets RFC 9701 answers signed
// with OIDC_RS_SIGNING_ALGO and encrypted, as OIDC_RS_ENCRYPTION_ALGO and _ENCODING say, to the
// keys that /jwks publishes (OIDC_RS_PRIVATE_KEY_STR, or the key parseConfig made for this run).
func devIntrospection(b BearerSettings, o *devop.Options) error {
	if b.Backend != auth.BackendJWT {
		return nil
	}
	keys, err := auth.ParseDecryptionKeys(b.PrivateKey.reveal(), b.EncryptionAlgo)
	if err != nil {
		return fmt.Errorf("OIDC_RS_PRIVATE_KEY_STR: %w", err) // parseConfig has checked it already
	}
	o.RPClient.IntrospectionEncryption = &devop.Encryption{Keys: keys.PublicKeys(), Alg: b.EncryptionAlgo, Enc: b.EncryptionEncoding}
	o.IntrospectionSigningAlg = b.SigningAlgo
	return nil
}
