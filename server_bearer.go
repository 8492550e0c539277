package main

import (
	"log/slog"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/auth/devop"
	"lasuite.fr/people/store"
)

// newResourceServer prepares the bearer tokens of partner services: against the authorization
// server of the OIDC_RS_* settings, or, in development, against the development provider (People
// is its client "people", which may introspect every token), so that make token works. Without
// either, bearer tokens are refused with 401 and the rest of the server runs.
func newResourceServer(cfg Config, s *store.Store, dev *devop.Provider, log *slog.Logger) (*auth.ResourceServer, error) {
	b := cfg.Bearer
	rc := auth.ResourceServerConfig{
		Issuer: cfg.OIDCOPURL, IntrospectionURL: b.IntrospectionEndpoint, JWKSURL: b.JWKSEndpoint,
		ClientID: b.ClientID, ClientSecret: b.ClientSecret.reveal(), ClientAuthMethod: b.ClientAuthMethod,
		Backend: b.Backend, EncryptionAlg: b.EncryptionAlgo, EncryptionEnc: b.EncryptionEncoding, SigningAlg: b.SigningAlgo,
		Scopes: b.Scopes, AudienceClaim: b.AudienceClaim, FallbackToEmail: cfg.Login.FallbackToEmail,
		Timeout: b.Timeout, CacheTTL: b.CacheTTL,
	}
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
		rc.Backend, rc.ClientAuthMethod = auth.BackendJSON, auth.ClientSecretBasic
		log.Info("bearer tokens accepted from the development provider", "issuer", rc.Issuer)
	default:
		log.Warn("bearer tokens refused: set OIDC_OP_URL, OIDC_OP_INTROSPECTION_ENDPOINT, OIDC_RS_CLIENT_ID and OIDC_RS_CLIENT_SECRET to accept partner services")
	}
	return auth.NewResourceServer(rc, s, log)
}
