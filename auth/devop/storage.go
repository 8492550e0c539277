package devop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"lasuite.fr/people/store"
)

// Lifetimes. Access tokens live an hour so that one from `make token` lasts a working session.
const (
	authRequestLifetime = 10 * time.Minute
	accessTokenLifetime = time.Hour
	idTokenLifetime     = 10 * time.Minute
)

var errNotFound = errors.New("not found or expired")

// storage is zitadel's op.Storage, in memory. Auth requests are handed out as copies, so
// zitadel reads them while the login page may change the original.
type storage struct {
	users            Directory
	key              signingKey // ID tokens and signed userinfo
	introspectionKey signingKey // RFC 9701 answers: key itself when the algorithms agree
	issuer           string
	rpID             string
	clients          map[string]*client

	mu           sync.Mutex
	authRequests map[string]*authRequest
	codes        map[string]string // code → auth request id
	tokens       map[string]*accessToken
}

var _ op.Storage = (*storage)(nil)

func newStorage(users Directory, key, introspectionKey signingKey, issuer string, rp Client, partners []Client) *storage {
	s := &storage{users: users, key: key, introspectionKey: introspectionKey, issuer: issuer, rpID: rp.ID, clients: map[string]*client{},
		authRequests: map[string]*authRequest{}, codes: map[string]string{}, tokens: map[string]*accessToken{}}
	for _, c := range append([]Client{rp}, partners...) {
		s.clients[c.ID] = &client{Client: c, loginURL: issuer + "/" + pathLogin + "?authRequestID="}
	}
	return s
}

// ---- auth requests and codes

// authRequest is an authorization request, and once a user is picked on the login page, who.
type authRequest struct {
	id            string
	created       time.Time
	clientID      string
	redirectURI   string
	state, nonce  string
	acr           string
	loginHint     string
	scopes        []string
	responseType  oidc.ResponseType
	responseMode  oidc.ResponseMode
	codeChallenge *oidc.CodeChallenge

	user     *store.DevUser // nil until the login page sets it
	authTime time.Time
	code     string // set once: a request gives one code
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return a.acr }
func (a *authRequest) GetAMR() []string                      { return nil }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.codeChallenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) Done() bool                            { return a.user != nil }
func (a *authRequest) GetSubject() string {
	if a.user == nil {
		return ""
	}
	return a.user.Sub
}

func (a *authRequest) expired(now time.Time) bool { return now.Sub(a.created) > authRequestLifetime }

// CreateAuthRequest refuses requests without PKCE (S256): every client here must use it, as
// People's relying party does. With no session at the provider, prompt=none cannot succeed.
func (s *storage) CreateAuthRequest(_ context.Context, r *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if slices.Contains(r.Prompt, oidc.PromptNone) {
		return nil, oidc.ErrLoginRequired()
	}
	if r.CodeChallenge == "" || r.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE is required: send code_challenge with code_challenge_method=S256")
	}
	a := &authRequest{
		id: randomString(24), created: time.Now(), clientID: r.ClientID, redirectURI: r.RedirectURI,
		state: r.State, nonce: r.Nonce, loginHint: r.LoginHint, scopes: slices.Clone(r.Scopes),
		responseType: r.ResponseType, responseMode: r.ResponseMode,
		codeChallenge: &oidc.CodeChallenge{Challenge: r.CodeChallenge, Method: r.CodeChallengeMethod},
	}
	if len(r.ACRValues) > 0 {
		a.acr = r.ACRValues[0] // whatever level is asked for: nobody checks a password here
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep()
	s.authRequests[a.id] = a
	return a.copy(), nil
}

func (a *authRequest) copy() *authRequest {
	c := *a
	return &c
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authRequests[id]
	if !ok || a.expired(time.Now()) {
		return nil, errNotFound
	}
	return a.copy(), nil
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, errNotFound
	}
	return s.AuthRequestByID(ctx, id)
}

// SaveAuthCode records the one code of a completed request: a second visit to the callback
// gets no second code.
func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authRequests[id]
	switch {
	case !ok || a.expired(time.Now()) || a.user == nil:
		return errNotFound
	case a.code != "":
		return oidc.ErrInvalidRequest().WithDescription("this sign-in already gave a code")
	}
	a.code = code
	s.codes[code] = id
	return nil
}

func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.authRequests[id]; ok {
		delete(s.codes, a.code)
		delete(s.authRequests, id)
	}
	return nil
}

// pendingAuthRequest returns a copy of an auth request still waiting for its user.
func (s *storage) pendingAuthRequest(id string) (*authRequest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authRequests[id]
	if !ok || a.expired(time.Now()) || a.user != nil {
		return nil, false
	}
	return a.copy(), true
}

// completeAuthRequest sets the user of a pending auth request, once.
func (s *storage) completeAuthRequest(id string, u store.DevUser) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authRequests[id]
	if !ok || a.expired(time.Now()) || a.user != nil {
		return false
	}
	a.user, a.authTime = &u, time.Now()
	return true
}

// sweep forgets expired requests and tokens; the caller holds mu.
func (s *storage) sweep() {
	now := time.Now()
	maps.DeleteFunc(s.authRequests, func(_ string, a *authRequest) bool {
		if a.expired(now) {
			delete(s.codes, a.code)
			return true
		}
		return false
	})
	maps.DeleteFunc(s.tokens, func(_ string, t *accessToken) bool { return now.After(t.expires) })
}

// ---- access tokens

// accessToken is what an opaque access token stands for. The user's claims are taken when the
// token is made, as a provider's would be.
type accessToken struct {
	id       string
	clientID string
	user     store.DevUser
	scopes   []string
	issued   time.Time
	expires  time.Time
}

// mintRequest is a token request made without a browser, for `make token`.
type mintRequest struct {
	clientID string
	user     store.DevUser
	scopes   []string
}

func (m *mintRequest) GetSubject() string    { return m.user.Sub }
func (m *mintRequest) GetAudience() []string { return []string{m.clientID} }
func (m *mintRequest) GetScopes() []string   { return m.scopes }

func (s *storage) CreateAccessToken(_ context.Context, r op.TokenRequest) (string, time.Time, error) {
	var t accessToken
	switch r := r.(type) {
	case *authRequest:
		if r.user == nil {
			return "", time.Time{}, errNotFound
		}
		t = accessToken{clientID: r.clientID, user: *r.user, scopes: slices.Clone(r.scopes)}
	case *mintRequest:
		t = accessToken{clientID: r.clientID, user: r.user, scopes: slices.Clone(r.scopes)}
	default:
		return "", time.Time{}, fmt.Errorf("token request %T not supported", r)
	}
	t.id, t.issued = randomString(24), time.Now()
	t.expires = t.issued.Add(accessTokenLifetime)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep()
	s.tokens[t.id] = &t
	return t.id, t.expires, nil
}

// token returns a live token issued to subject.
func (s *storage) token(id, subject string) (accessToken, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[id]
	if !ok || time.Now().After(t.expires) || t.user.Sub != subject {
		return accessToken{}, false
	}
	return *t, true
}

func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, oidc.ErrUnsupportedGrantType().WithDescription("refresh tokens are not issued")
}

func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

// TerminateSession revokes the user's tokens for that client: there is no session at the
// provider itself (every authorization shows the login page).
func (s *storage) TerminateSession(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	maps.DeleteFunc(s.tokens, func(_ string, t *accessToken) bool { return t.user.Sub == userID && t.clientID == clientID })
	return nil
}

func (s *storage) RevokeToken(_ context.Context, tokenID, _, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tokenID]
	if !ok {
		return nil // unknown or already gone: revoked either way (RFC 7009)
	}
	if t.clientID != clientID {
		return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
	}
	delete(s.tokens, tokenID)
	return nil
}

// ---- clients

// client is a Client as zitadel's op.Client.
type client struct {
	Client
	loginURL  string
	recipient *recipient // from IntrospectionEncryption; nil: RFC 9701 answers are signed only
}

func (c *client) GetID() string                       { return c.ID }
func (c *client) RedirectURIs() []string              { return c.Client.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string    { return c.Client.PostLogoutRedirectURIs }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType         { return []oidc.GrantType{oidc.GrantTypeCode} }
func (c *client) LoginURL(id string) string            { return c.loginURL + id } // ids are base64url
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration       { return idTokenLifetime }
func (c *client) DevMode() bool                        { return false }
func (c *client) IsScopeAllowed(scope string) bool     { return slices.Contains(customScopes, scope) }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return slices.Clone[[]string]
}

// RestrictAdditionalIdTokenScopes keeps the user's claims out of the ID token, as ProConnect
// does: they are read from userinfo.
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func([]string) []string { return nil }
}

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if c, ok := s.clients[id]; ok {
		return c, nil
	}
	return nil, errors.New("unknown client")
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, ok := s.clients[id]
	if !ok || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) != 1 {
		return errors.New("wrong client id or secret")
	}
	return nil
}

// ---- claims

// SetUserinfoFromScopes is deprecated in zitadel; ID tokens carry no user claims here.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	t, ok := s.token(tokenID, subject)
	if !ok {
		return errNotFound
	}
	*info = *userInfo(t.user, t.scopes)
	return nil
}

// SetIntrospectionFromToken answers People, as the partners' resource server, about any token,
// and a partner about its own tokens only; any other caller learns that the token is inactive.
func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	t, ok := s.token(tokenID, subject)
	if !ok || (clientID != s.rpID && clientID != t.clientID) {
		return errNotFound
	}
	resp.SetUserInfo(userInfo(t.user, t.scopes))
	resp.Scope = t.scopes
	resp.ClientID = t.clientID
	resp.Audience = []string{t.clientID}
	resp.TokenType = oidc.BearerToken
	resp.Issuer = s.issuer
	resp.IssuedAt = oidc.FromTime(t.issued)
	resp.Expiration = oidc.FromTime(t.expires)
	resp.JWTID = t.id
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("private_key_jwt and the JWT profile are not supported")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("the JWT profile is not supported")
}

func (s *storage) Health(context.Context) error { return nil }

// userInfo is what the provider says about u for these scopes, with ProConnect's claims: the
// name is split into given_name (its first word) and usual_name (the rest).
func userInfo(u store.DevUser, scopes []string) *oidc.UserInfo {
	info := &oidc.UserInfo{Subject: u.Sub}
	given, usual, _ := strings.Cut(strings.TrimSpace(u.Name), " ")
	usual = strings.TrimSpace(usual)
	for _, scope := range scopes {
		switch scope {
		case oidc.ScopeEmail:
			info.Email = u.Email
		case oidc.ScopeProfile:
			info.Name, info.GivenName, info.FamilyName = u.Name, given, usual
		case "given_name":
			info.GivenName = given
		case "usual_name":
			if usual != "" {
				info.AppendClaims("usual_name", usual)
			}
		case "siret":
			if u.RegistrationID != "" {
				info.AppendClaims("siret", u.RegistrationID)
			}
		case "idp_id":
			info.AppendClaims("idp_id", "dev")
		}
	}
	return info
}

// ---- keys

// signingKey signs ID tokens and userinfo, or introspection answers; it is made at start and
// published in the JWKS.
type signingKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key any // *rsa.PrivateKey or *ecdsa.PrivateKey
}

func newSigningKey(alg string) (signingKey, error) {
	k := signingKey{id: randomString(12)}
	var err error
	switch alg {
	case "", "RS256":
		k.alg = jose.RS256
		k.key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		k.alg = jose.ES256
		k.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return k, fmt.Errorf("dev oidc: signing algorithm %q is not RS256 or ES256", alg)
	}
	if err != nil {
		return k, fmt.Errorf("dev oidc: generate key: %w", err)
	}
	return k, nil
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k signingKey) Key() any                                    { return k.key }
func (k signingKey) ID() string                                  { return k.id }

// publicKey is the JWKS entry of a signingKey.
type publicKey struct{ signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return k.alg }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any {
	switch key := k.key.(type) {
	case *rsa.PrivateKey:
		return &key.PublicKey
	case *ecdsa.PrivateKey:
		return &key.PublicKey
	}
	return nil
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return s.key, nil }

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{s.key.alg}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	if s.introspectionKey.id == s.key.id {
		return []op.Key{publicKey{s.key}}, nil
	}
	return []op.Key{publicKey{s.key}, publicKey{s.introspectionKey}}, nil
}
