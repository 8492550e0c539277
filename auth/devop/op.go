package devop

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Endpoint paths, relative to the issuer.
const (
	pathAuthorize  = "authorize"
	pathToken      = "oauth/token"
	pathIntrospect = "oauth/introspect"
	pathUserinfo   = "userinfo"
	pathRevoke     = "revoke"
	pathEndSession = "end_session"
	pathKeys       = "keys"
	pathLogin      = "login"
	pathLoggedOut  = "logged-out"
	pathDevToken   = "dev/token"
)

// customScopes are ProConnect's scopes beyond OpenID's, each asking for the claim of its name,
// and People's "groups", which partner tokens carry.
var customScopes = []string{"given_name", "usual_name", "siret", "idp_id", "groups"}

func (p *Provider) newOP() (*op.Provider, http.Handler, error) {
	var cryptoKey [32]byte
	rand.Read(cryptoKey[:]) // opaque access tokens and codes are encrypted with it; never fails
	config := &op.Config{
		CryptoKey:                cryptoKey,
		CryptoKeyId:              randomString(8),
		DefaultLogoutRedirectURI: p.issuer + "/" + pathLoggedOut,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		SupportedScopes:          append([]string{oidc.ScopeOpenID, oidc.ScopeEmail, oidc.ScopeProfile}, customScopes...),
		SupportedClaims: []string{"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "acr", "at_hash", "c_hash", "azp",
			"email", "given_name", "usual_name", "family_name", "name", "siret", "idp_id"},
	}
	options := []op.Option{}
	if strings.HasPrefix(p.issuer, "http://") {
		options = append(options, op.WithAllowInsecure())
	}
	provider, err := op.NewProvider(config, p.storage, op.StaticIssuer(p.issuer), options...)
	if err != nil {
		return nil, nil, fmt.Errorf("dev oidc: %w", err)
	}
	endpoints := op.Endpoints{
		Authorization: op.NewEndpoint(pathAuthorize),
		Token:         op.NewEndpoint(pathToken),
		Introspection: op.NewEndpoint(pathIntrospect),
		Userinfo:      op.NewEndpoint(pathUserinfo),
		Revocation:    op.NewEndpoint(pathRevoke),
		EndSession:    op.NewEndpoint(pathEndSession),
		JwksURI:       op.NewEndpoint(pathKeys),
	}
	// The legacy server accepts client_secret_post at the introspection endpoint, which the
	// provider's own router does not; CORS stays off, as every client talks from a server.
	oidcHandler := op.RegisterLegacyServer(&server{LegacyServer: op.NewLegacyServer(provider, endpoints), p: p},
		op.AuthorizeCallbackHandler(provider), op.WithServerCORSOptions(nil))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /"+pathLogin, p.loginPage)
	mux.HandleFunc("POST /"+pathLogin, p.login)
	mux.HandleFunc("GET /"+pathLoggedOut, p.loggedOut)
	mux.HandleFunc("/"+pathUserinfo, p.userinfo)
	mux.HandleFunc("/"+pathDevToken, p.mint)
	mux.Handle("/"+pathIntrospect, p.introspectionJWT(oidcHandler))
	mux.Handle("/", oidcHandler)
	return provider, http.StripPrefix(p.path, headers(mux)), nil
}

// headers sets what every answer of the provider carries: nothing it serves may be sniffed,
// framed or cached (pages hold auth request ids, answers hold tokens).
func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if !strings.HasPrefix(r.URL.Path, "/.well-known/") && r.URL.Path != "/"+pathKeys {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// server is zitadel's legacy server with a few changes.
type server struct {
	*op.LegacyServer
	p *Provider
}

// CodeExchange checks the PKCE verifier of every code. The legacy server checks it only for
// public clients or when the client sends one, so a confidential client could leave it out;
// every auth request here has a challenge (CreateAuthRequest refuses the others).
func (s *server) CodeExchange(ctx context.Context, r *op.ClientRequest[oidc.AccessTokenRequest]) (*op.Response, error) {
	authReq, err := op.AuthRequestByCode(ctx, s.p.storage, r.Data.Code)
	if err != nil {
		return nil, err
	}
	if err := op.AuthorizeCodeChallenge(r.Data.CodeVerifier, authReq.GetCodeChallenge()); err != nil {
		return nil, err
	}
	return s.LegacyServer.CodeExchange(ctx, r)
}

// VerifyClient answers a failed client authentication at the token endpoint with 401
// invalid_client (RFC 6749 5.2) rather than zitadel's 400.
func (s *server) VerifyClient(ctx context.Context, r *op.Request[op.ClientCredentials]) (op.Client, error) {
	c, err := s.LegacyServer.VerifyClient(ctx, r)
	var e *oidc.Error
	if errors.As(err, &e) && (e.ErrorType == oidc.InvalidClient || e.ErrorType == oidc.UnauthorizedClient) {
		return nil, errClientAuth()
	}
	return c, err
}

// Introspect answers a failed client authentication with 401 invalid_client (RFC 7662 2.1)
// rather than zitadel's 400; a client_assertion is not a way in here. It tells introspectionJWT
// who the caller is, whose key an RFC 9701 answer is encrypted to.
func (s *server) Introspect(ctx context.Context, r *op.Request[op.IntrospectionRequest]) (*op.Response, error) {
	cc := r.Data.ClientCredentials
	if cc.ClientAssertion != "" || s.p.storage.AuthorizeClientIDSecret(ctx, cc.ClientID, cc.ClientSecret) != nil {
		return nil, errClientAuth()
	}
	if c, ok := ctx.Value(callerKey{}).(*caller); ok {
		c.clientID = cc.ClientID
	}
	return s.LegacyServer.Introspect(ctx, r)
}

func errClientAuth() error {
	return op.NewStatusError(oidc.ErrInvalidClient().WithDescription("client authentication failed"), http.StatusUnauthorized)
}

// Discovery adds what zitadel does not know the provider does: signed userinfo, and the
// introspection endpoint's client authentication methods.
func (s *server) Discovery(ctx context.Context, r *op.Request[struct{}]) (*op.Response, error) {
	resp, err := s.LegacyServer.Discovery(ctx, r)
	if d, ok := resp.Data.(*oidc.DiscoveryConfiguration); ok && err == nil {
		d.UserinfoSigningAlgValuesSupported = []string{string(s.p.storage.key.alg)}
		d.IntrospectionEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost}
		d.CodeChallengeMethodsSupported = []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256}
		d.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
		d.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode}
		d.TokenEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost}
	}
	return resp, err
}
