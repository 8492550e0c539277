package auth

import (
	"bytes"
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"

	"lasuite.fr/people/store"
)

// LoginConfig configures the browser sign-in with an OpenID provider (ProConnect in
// production, the development provider under make run). The names follow People's settings.
type LoginConfig struct {
	Issuer       string   // OIDC_OP_URL; discovery at Issuer/.well-known/openid-configuration
	ClientID     string   // OIDC_RP_CLIENT_ID
	ClientSecret string   // OIDC_RP_CLIENT_SECRET
	SignAlgs     []string // OIDC_RP_SIGN_ALGO: the only ID token algorithms accepted
	Scopes       []string // OIDC_RP_SCOPES
	// ExtraParams are added to the authorization request (OIDC_AUTH_REQUEST_EXTRA_PARAMS,
	// such as acr_values=eidas1 for ProConnect). With acr_values, an ID token whose acr is not
	// one of its space-separated values is refused (insufficient_acr).
	ExtraParams map[string]string
	// UserinfoFormat is auto, json or jwt (OIDC_OP_USER_ENDPOINT_FORMAT): ProConnect answers
	// userinfo as a signed JWT.
	UserinfoFormat string
	PublicURL      string // the server's own origin, for redirect URIs
	// NameFields are the claims joined by spaces into the user's name (USER_OIDC_FIELDS_TO_NAME).
	NameFields []string
	// RegistrationIDClaim names the claim holding the organization's registration id
	// (OIDC_ORGANIZATION_REGISTRATION_ID_FIELD, e.g. siret); empty to use domains only.
	RegistrationIDClaim string
	// LoginRedirect (LOGIN_REDIRECT_URL; empty: "/") is where a successful login without next
	// lands, FailureRedirect (LOGIN_REDIRECT_URL_FAILURE; empty: a small page) where a refused
	// one does, and LogoutRedirect (LOGOUT_REDIRECT_URL; empty: "/") where logout does. Each is
	// a path on PublicURL or an absolute http(s) URL (ValidateRedirectTarget).
	LoginRedirect   string
	FailureRedirect string
	LogoutRedirect  string
	// CookieSecure marks the login and logout state cookies Secure and names them with the
	// __Host- prefix, as SessionOptions.CookieSecure does the session cookie.
	CookieSecure bool
	SecretKey    []byte // seals the login state cookie; at least 32 bytes
	Provisioning store.LoginOptions
	HTTPClient   *http.Client
	// KeysMinRefetch is the least time between two fetches of the provider's key set (jwks_uri);
	// 0 means 10 seconds. A token signed under a kid we do not know makes us fetch it again, and
	// anyone may post such tokens to /auth/backchannel-logout.
	KeysMinRefetch time.Duration
	// Endpoints, when set, replace discovery (People's OIDC_OP_*_ENDPOINT variables), keyed
	// by their discovery names: authorization_endpoint, token_endpoint, userinfo_endpoint,
	// jwks_uri, end_session_endpoint.
	Endpoints map[string]string
	// EmailVerifiedRequired is OIDC_EMAIL_VERIFIED_DEFAULT=false: an email counts as vouched
	// for only when the provider says email_verified: true, not when it says nothing.
	EmailVerifiedRequired bool
	// AllowLogoutGet (ALLOW_LOGOUT_GET_METHOD) lets People's logout URL answer GET as well as
	// POST, as People's did; /auth/logout stays POST only.
	AllowLogoutGet bool
}

// Routes are the paths of one set of login URLs. The redirect URIs sent to the provider are
// those of the set the login or logout started from, so that a provider where People's are
// registered keeps working.
type Routes struct {
	Login, Callback, Logout, LogoutCallback, BackchannelLogout string
	// cookiePath scopes the state cookies when they are not __Host- cookies (which need "/").
	cookiePath string
}

// OurRoutes are this server's login URLs.
var OurRoutes = Routes{Login: "/auth/login", Callback: "/auth/callback", Logout: "/auth/logout",
	LogoutCallback: "/auth/logout/callback", BackchannelLogout: "/auth/backchannel-logout", cookiePath: "/auth/"}

// PeopleRoutes are People's login URLs (people-behaviour.md §5), trailing slashes included:
// ProConnect has People's callback and post-logout URIs registered.
var PeopleRoutes = Routes{Login: "/api/v1.0/authenticate/", Callback: "/api/v1.0/callback/", Logout: "/api/v1.0/logout/",
	LogoutCallback: "/api/v1.0/logout-callback/", BackchannelLogout: "/api/v1.0/backchannel-logout/", cookiePath: "/api/v1.0/"}

// SessionManager opens and ends browser sessions: the login handlers' view of Sessions.
type SessionManager interface {
	Start(w http.ResponseWriter, r *http.Request, s store.NewSession) error
	End(w http.ResponseWriter, r *http.Request) (store.Session, bool, error)
	EndByProvider(ctx context.Context, issuer, sid, subject string) (int, error)
	TrustedOrigin(r *http.Request) bool
}

// Login serves /auth/login, /auth/callback, /auth/logout, /auth/logout/callback and
// /auth/backchannel-logout, and the same at People's paths (PeopleRoutes).
type Login struct {
	cfg      LoginConfig
	opts     []rp.Option
	store    *store.Store
	sessions SessionManager
	seal     *sealer
	log      *slog.Logger

	// The redirect targets, checked and written once as Location will say them (redirect.go).
	public                    *url.URL
	loginTarget, logoutTarget string
	failureTarget             *url.URL // nil: the failure page
	// acrValues are OIDC_AUTH_REQUEST_EXTRA_PARAMS' acr_values: an ID token must carry one.
	acrValues []string
	// The state cookies' names: __Host- when CookieSecure, and then for Path=/.
	loginCookie, logoutCookie string

	mu    sync.Mutex // guards party: discovered on first use, so a provider down at start-up
	party rp.RelyingParty
}

// loginState is what a login in progress keeps in the browser, sealed. Callback is the
// redirect URI's path sent to the provider; empty in states sealed before there were two.
type loginState struct {
	State, Nonce, Verifier, Next, Callback string
}

type nonceKey struct{}

const (
	loginCookie        = "people_login"
	logoutCookie       = "people_logout"
	secureLoginCookie  = "__Host-people_login"
	secureLogoutCookie = "__Host-people_logout"
	loginTTL           = 10 * time.Minute
)

// NewLogin prepares the relying party; the provider is discovered at the first login.
func NewLogin(cfg LoginConfig, s *store.Store, sessions SessionManager, log *slog.Logger) (*Login, error) {
	seal, err := newSealer(cfg.SecretKey, "login")
	if err != nil {
		return nil, err
	}
	l := &Login{store: s, sessions: sessions, seal: seal, log: log, acrValues: strings.Fields(cfg.ExtraParams["acr_values"]),
		loginCookie: loginCookie, logoutCookie: logoutCookie}
	if cfg.CookieSecure {
		// __Host- cookies must be Secure, host-only and for Path=/: no sibling subdomain or
		// plain-HTTP page can then plant a login state of its own in the browser.
		l.loginCookie, l.logoutCookie = secureLoginCookie, secureLogoutCookie
	}
	if l.public, err = url.Parse(cfg.PublicURL); err != nil || (l.public.Scheme != "http" && l.public.Scheme != "https") || l.public.Host == "" {
		return nil, fmt.Errorf("public URL %q is not an http(s) origin", cfg.PublicURL)
	}
	for _, t := range []struct {
		name, raw string
		out       *string
	}{
		{"login redirect", cmp.Or(cfg.LoginRedirect, "/"), &l.loginTarget},
		{"logout redirect", cmp.Or(cfg.LogoutRedirect, "/"), &l.logoutTarget},
		{"login failure redirect", cfg.FailureRedirect, nil},
	} {
		if t.raw == "" {
			continue
		}
		target, err := configuredTarget(l.public, t.raw)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", t.name, t.raw, err)
		}
		if t.out != nil {
			*t.out = target
		} else if l.failureTarget, err = url.Parse(target); err != nil {
			return nil, fmt.Errorf("%s %q: %w", t.name, t.raw, err)
		}
	}
	if len(cfg.SignAlgs) == 0 {
		cfg.SignAlgs = []string{"RS256"}
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	next := cfg.HTTPClient.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c := *cfg.HTTPClient
	c.Transport = &providerTransport{url: strings.TrimSuffix(cfg.Issuer, "/") + oidc.DiscoveryEndpoint, issuer: cfg.Issuer,
		endpoints: cfg.Endpoints, next: next, keys: &keyFetches{interval: cmp.Or(cfg.KeysMinRefetch, keysMinRefetch)}}
	cfg.HTTPClient = &c
	opts := []rp.Option{
		rp.WithHTTPClient(cfg.HTTPClient),
		rp.WithVerifierOpts(
			rp.WithSupportedSigningAlgorithms(cfg.SignAlgs...),
			rp.WithNonce(func(ctx context.Context) string { n, _ := ctx.Value(nonceKey{}).(string); return n }),
		),
		rp.WithLogger(log),
	}
	l.cfg, l.opts = cfg, opts
	return l, nil
}

// providerTransport carries the relying party's requests to the provider. It answers the
// discovery request from configured endpoints, for providers configured endpoint by endpoint
// as People allows: with the four endpoints a login needs, the provider is not asked at all;
// with some of them (such as OIDC_OP_JWKS_ENDPOINT alone, which bearer introspection needs
// too), they replace those of the provider's own document. It notes the document's jwks_uri,
// whose fetches keys throttles; every other request goes out as it is.
type providerTransport struct {
	url, issuer string
	endpoints   map[string]string
	next        http.RoundTripper
	keys        *keyFetches
}

// loginEndpoints are the discovery fields a login cannot do without.
var loginEndpoints = []string{"authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"}

func (t *providerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet && t.keys.is(r.URL.String()) {
		return t.keys.roundTrip(t.next, r)
	}
	if r.Method != http.MethodGet || r.URL.String() != t.url {
		return t.next.RoundTrip(r)
	}
	doc := map[string]any{"issuer": t.issuer, "code_challenge_methods_supported": []string{"S256"}}
	if slices.ContainsFunc(loginEndpoints, func(k string) bool { return t.endpoints[k] == "" }) {
		resp, err := t.next.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("discovery: %s", resp.Status)
		}
		doc = map[string]any{}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil {
			return nil, fmt.Errorf("discovery: %w", err)
		}
	}
	for k, v := range t.endpoints {
		doc[k] = v
	}
	jwks, _ := doc["jwks_uri"].(string)
	t.keys.setURL(jwks)
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)), Request: r}, nil
}

// rp returns the relying party, discovering the provider on first use (and again after a
// failure): the server starts even when the provider is briefly unreachable, and the
// development provider, served by this same server, is discovered once it listens.
func (l *Login) rp(ctx context.Context) (rp.RelyingParty, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.party != nil {
		return l.party, nil
	}
	party, err := rp.NewRelyingPartyOIDC(ctx, l.cfg.Issuer, l.cfg.ClientID, l.cfg.ClientSecret,
		strings.TrimSuffix(l.cfg.PublicURL, "/")+"/auth/callback", l.cfg.Scopes, l.opts...)
	if err != nil {
		return nil, fmt.Errorf("discover OpenID provider: %w", err)
	}
	l.party = party
	return party, nil
}

// Mount registers the handlers on mux, at our paths and at People's.
func (l *Login) Mount(mux *http.ServeMux) {
	for _, rt := range []Routes{OurRoutes, PeopleRoutes} {
		mux.HandleFunc("GET "+exact(rt.Login), func(w http.ResponseWriter, r *http.Request) { l.login(w, r, rt) })
		mux.HandleFunc("GET "+exact(rt.Callback), func(w http.ResponseWriter, r *http.Request) { l.callback(w, r, rt) })
		mux.HandleFunc("POST "+exact(rt.Logout), func(w http.ResponseWriter, r *http.Request) { l.logout(w, r, rt) })
		mux.HandleFunc("GET "+exact(rt.LogoutCallback), func(w http.ResponseWriter, r *http.Request) { l.logoutCallback(w, r, rt) })
		mux.HandleFunc("POST "+exact(rt.BackchannelLogout), l.backchannelLogout)
	}
	if l.cfg.AllowLogoutGet {
		rt := PeopleRoutes
		mux.HandleFunc("GET "+exact(rt.Logout), func(w http.ResponseWriter, r *http.Request) { l.logoutGet(w, r, rt) })
	}
}

// exact is a ServeMux pattern for path alone: People's paths end in "/", which would otherwise
// match every path below them.
func exact(path string) string {
	if strings.HasSuffix(path, "/") {
		return path + "{$}"
	}
	return path
}

// cookie is a login or logout state cookie of the routes rt; maxAge < 0 deletes it, with the
// same attributes, which browsers need to replace a __Host- cookie.
func (l *Login) cookie(rt Routes, name, value string, maxAge int) *http.Cookie {
	path := rt.cookiePath
	if l.cfg.CookieSecure {
		path = "/"
	}
	return &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true,
		Secure: l.cfg.CookieSecure, SameSite: http.SameSiteLaxMode}
}

// url is the absolute URL of one of our paths.
func (l *Login) url(path string) string { return strings.TrimSuffix(l.cfg.PublicURL, "/") + path }

// login starts the authorization code flow with PKCE (S256), state and nonce; the provider is
// to send the browser back to the callback of the same routes.
func (l *Login) login(w http.ResponseWriter, r *http.Request, rt Routes) {
	// Next is kept as Location will say it: the callback sends exactly what was checked here.
	st := loginState{State: randomToken(32), Nonce: randomToken(32), Verifier: randomToken(32), Next: l.loginTarget,
		Callback: rt.Callback}
	if next, ok := localTarget(l.public, r.URL.Query().Get("next")); ok && next != "/" {
		st.Next = next
	}
	party, err := l.rp(r.Context())
	if err != nil {
		l.fail(w, r, "provider_unavailable", err)
		return
	}
	sealed, err := seal(l.seal, st, loginTTL)
	if err != nil {
		l.fail(w, r, "internal", err)
		return
	}
	http.SetCookie(w, l.cookie(rt, l.loginCookie, sealed, int(loginTTL.Seconds())))
	opts := []rp.AuthURLOpt{rp.WithCodeChallenge(oidc.NewSHACodeChallenge(st.Verifier)), authParam("nonce", st.Nonce),
		authParam("redirect_uri", l.url(rt.Callback))}
	for k, v := range l.cfg.ExtraParams {
		if !reservedAuthParams[k] && !strings.HasPrefix(k, "code_challenge") {
			opts = append(opts, authParam(k, v))
		}
	}
	http.Redirect(w, r, rp.AuthURL(st.State, party, opts...), http.StatusFound)
}

// reservedAuthParams are the authorization request's own parameters: configuration may add
// others (acr_values…) but never replace these.
var reservedAuthParams = map[string]bool{"nonce": true, "state": true, "client_id": true, "redirect_uri": true,
	"scope": true, "response_type": true, "response_mode": true}

func authParam(k, v string) rp.AuthURLOpt {
	return func() []oauth2.AuthCodeOption { return []oauth2.AuthCodeOption{oauth2.SetAuthURLParam(k, v)} }
}

// callback finishes the login: state, code exchange, ID token (issuer, audience, nonce,
// expiry, algorithm), userinfo (same sub), provisioning, then a new session.
func (l *Login) callback(w http.ResponseWriter, r *http.Request, rt Routes) {
	c, err := r.Cookie(l.loginCookie)
	http.SetCookie(w, l.cookie(rt, l.loginCookie, "", -1)) // one use, whatever happens
	if err != nil {
		l.fail(w, r, "invalid_state", errors.New("no login in progress"))
		return
	}
	st, err := open[loginState](l.seal, c.Value)
	q := r.URL.Query()
	if err != nil || subtle.ConstantTimeCompare([]byte(st.State), []byte(q.Get("state"))) != 1 {
		l.fail(w, r, "invalid_state", errors.New("state mismatch"))
		return
	}
	if cmp.Or(st.Callback, OurRoutes.Callback) != rt.Callback {
		// The provider sends the browser to the redirect URI it was given: another one means
		// the browser was sent here by someone else, and the code exchange would fail anyway.
		l.fail(w, r, "invalid_state", errors.New("callback of another login path"))
		return
	}
	if e := q.Get("error"); e != "" {
		l.fail(w, r, "provider_error", fmt.Errorf("provider answered %q", e))
		return
	}
	party, err := l.rp(r.Context())
	if err != nil {
		l.fail(w, r, "provider_unavailable", err)
		return
	}
	ctx := context.WithValue(r.Context(), nonceKey{}, st.Nonce)
	tokens, err := rp.CodeExchange[*oidc.IDTokenClaims](ctx, q.Get("code"), party, rp.WithCodeVerifier(st.Verifier),
		rp.CodeExchangeOpt(rp.WithURLParam("redirect_uri", l.url(rt.Callback))))
	if err != nil {
		l.fail(w, r, "invalid_token", fmt.Errorf("code exchange: %w", err))
		return
	}
	if acr := tokens.IDTokenClaims.AuthenticationContextClassReference; len(l.acrValues) > 0 && !slices.Contains(l.acrValues, acr) {
		// The provider may answer with a lower level than asked (acr_values is a request, not
		// an order): what was asked for is what the deployment needs, so anything else is
		// refused before anyone is provisioned.
		l.fail(w, r, "insufficient_acr", fmt.Errorf("acr %q is not one of acr_values", acr))
		return
	}
	info, err := l.userinfo(ctx, party, tokens.AccessToken, tokens.IDTokenClaims.Subject)
	if err != nil {
		l.fail(w, r, "invalid_userinfo", err)
		return
	}
	claims := l.claims(tokens.IDTokenClaims, info)
	user, err := l.store.ProvisionLogin(ctx, claims, l.cfg.Provisioning)
	if err != nil {
		var le *store.LoginError
		if errors.As(err, &le) {
			l.fail(w, r, le.Reason, err)
		} else {
			l.fail(w, r, "internal", err)
		}
		return
	}
	sid, _ := tokens.IDTokenClaims.Claims["sid"].(string)
	err = l.sessions.Start(w, r, store.NewSession{UserID: user.ID, Issuer: claims.Issuer, Subject: claims.Subject, SID: sid, IDToken: tokens.IDToken})
	if err != nil {
		l.fail(w, r, "internal", err)
		return
	}
	l.log.InfoContext(ctx, "login", "user_id", user.ID)
	// Next was checked at /auth/login and sealed; a state sealed by an older version, which
	// checked less, lands on the default instead.
	next := st.Next
	if !sameOriginPath(next) {
		next = l.loginTarget
	}
	redirect(w, next, http.StatusFound)
}

// maxUserinfo bounds what we read from the provider.
const maxUserinfo = 1 << 20

// userinfo fetches the userinfo claims as JSON or as a JWT signed by the provider, and checks
// that they are about the same subject as the ID token.
func (l *Login) userinfo(ctx context.Context, party rp.RelyingParty, accessToken, subject string) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, party.UserinfoEndpoint(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := l.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("userinfo: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxUserinfo))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("userinfo: status %d", resp.StatusCode)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	format := l.cfg.UserinfoFormat
	if format == "" || format == "auto" {
		format = "json"
		if mt == "application/jwt" {
			format = "jwt"
		}
	}
	if format == "jwt" {
		algs := make([]jose.SignatureAlgorithm, len(l.cfg.SignAlgs))
		for i, a := range l.cfg.SignAlgs {
			algs[i] = jose.SignatureAlgorithm(a)
		}
		jws, err := jose.ParseSigned(strings.TrimSpace(string(body)), algs)
		if err != nil {
			return nil, fmt.Errorf("userinfo: not a signed JWT with an accepted algorithm")
		}
		if body, err = party.IDTokenVerifier().KeySet.VerifySignature(ctx, jws); err != nil {
			return nil, fmt.Errorf("userinfo: bad signature")
		}
	}
	var info map[string]any
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, fmt.Errorf("userinfo: not a JSON object")
	}
	if format == "jwt" {
		if iss, ok := info["iss"].(string); ok && iss != party.Issuer() {
			return nil, fmt.Errorf("userinfo: wrong issuer")
		}
		if aud, ok := info["aud"]; ok && !audienceHas(aud, l.cfg.ClientID) {
			return nil, fmt.Errorf("userinfo: wrong audience")
		}
	}
	if sub, _ := info["sub"].(string); sub != subject {
		return nil, fmt.Errorf("userinfo: sub differs from the ID token's")
	}
	return info, nil
}

func audienceHas(aud any, id string) bool {
	switch a := aud.(type) {
	case string:
		return a == id
	case []any:
		return slices.ContainsFunc(a, func(v any) bool { s, _ := v.(string); return s == id })
	}
	return false
}

// claims merges the ID token and userinfo into what provisioning needs; userinfo wins.
func (l *Login) claims(id *oidc.IDTokenClaims, info map[string]any) store.Claims {
	get := func(name string) string {
		if v, ok := info[name].(string); ok {
			return strings.TrimSpace(v)
		}
		if v, ok := id.Claims[name].(string); ok {
			return strings.TrimSpace(v)
		}
		return ""
	}
	var parts []string
	for _, f := range l.cfg.NameFields {
		if v := get(f); v != "" {
			parts = append(parts, v)
		}
	}
	c := store.Claims{Issuer: id.Issuer, Subject: id.Subject, Email: get("email"), Name: strings.Join(parts, " "),
		EmailVerified: emailVouched(l.cfg.EmailVerifiedRequired, info, id.Claims)}
	if l.cfg.RegistrationIDClaim != "" {
		c.RegistrationID = get(l.cfg.RegistrationIDClaim)
	}
	return c
}

// logout ends the session and, when the provider can, ends the provider's session too.
func (l *Login) logout(w http.ResponseWriter, r *http.Request, rt Routes) {
	if !l.sessions.TrustedOrigin(r) {
		page(w, http.StatusForbidden, "Logout", "This logout request did not come from this site.")
		return
	}
	l.endSession(w, r, rt)
}

// logoutGet is People's GET logout (ALLOW_LOGOUT_GET_METHOD): a People frontend leaves by
// navigating to it. A link on another site could log people out through it, so a GET that the
// browser says comes from another site (Sec-Fetch-Site) only shows a page whose button posts
// the logout; one from this site, typed, or from a browser that does not say, logs out as
// People's did.
func (l *Login) logoutGet(w http.ResponseWriter, r *http.Request, rt Routes) {
	if fromAnotherSite(r) && !l.sessions.TrustedOrigin(r) {
		confirmPage(w, rt.Logout)
		return
	}
	l.endSession(w, r, rt)
}

// endSession is the logout itself, once the request is known to come from this site.
func (l *Login) endSession(w http.ResponseWriter, r *http.Request, rt Routes) {
	sess, ok, err := l.sessions.End(w, r)
	if err != nil {
		l.log.ErrorContext(r.Context(), "logout", "err", err)
	}
	party, perr := l.rp(r.Context())
	if ok && sess.IDToken != "" && perr == nil && party.GetEndSessionEndpoint() != "" {
		state := randomToken(32)
		sealed, err := seal(l.seal, state, loginTTL)
		if err == nil {
			// The browser itself must visit the provider, so that the provider's own session
			// (its cookies) ends too: rp.EndSession would call it from the server.
			u, err := url.Parse(party.GetEndSessionEndpoint())
			if err == nil {
				q := u.Query()
				q.Set("id_token_hint", sess.IDToken)
				q.Set("state", state)
				q.Set("post_logout_redirect_uri", l.url(rt.LogoutCallback))
				q.Set("client_id", l.cfg.ClientID)
				u.RawQuery = q.Encode()
				http.SetCookie(w, l.cookie(rt, l.logoutCookie, sealed, int(loginTTL.Seconds())))
				// The provider is another origin: leave through a page rather than a redirect,
				// so that pages posting here keep a strict form-action 'self' policy (browsers
				// check it against every redirect that follows a form).
				redirectPage(w, u.String())
				return
			}
		}
	}
	redirect(w, l.logoutTarget, http.StatusSeeOther)
}

// logoutCallback is where the provider sends the browser back after its own logout.
func (l *Login) logoutCallback(w http.ResponseWriter, r *http.Request, rt Routes) {
	c, err := r.Cookie(l.logoutCookie)
	http.SetCookie(w, l.cookie(rt, l.logoutCookie, "", -1))
	var state string
	if err == nil {
		state, err = open[string](l.seal, c.Value)
	}
	if err != nil || subtle.ConstantTimeCompare([]byte(state), []byte(r.URL.Query().Get("state"))) != 1 {
		page(w, http.StatusBadRequest, "Logout", "This logout link is not valid or has expired. You are logged out of this site.")
		return
	}
	redirect(w, l.logoutTarget, http.StatusFound)
}

// backchannelLogout ends the sessions named by an OpenID Back-Channel Logout token.
func (l *Login) backchannelLogout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	refuse := func(err error) {
		l.log.WarnContext(r.Context(), "back-channel logout refused", "err", err)
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
	}
	claims, expires, err := l.verifyLogoutToken(r.Context(), r.PostFormValue("logout_token"))
	if err != nil {
		refuse(err)
		return
	}
	// Recorded in the database, not in memory: a replay is refused by every instance.
	first, err := l.store.RecordLogoutToken(r.Context(), claims.Issuer, claims.JWTID, expires)
	if err != nil {
		l.log.ErrorContext(r.Context(), "back-channel logout", "err", err)
		http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
		return
	}
	if !first {
		refuse(errors.New("replayed"))
		return
	}
	n, err := l.sessions.EndByProvider(r.Context(), claims.Issuer, claims.SessionID, claims.Subject)
	if err != nil {
		l.log.ErrorContext(r.Context(), "back-channel logout", "err", err)
		// The provider may retry the same token: it must not be taken for a replay.
		if ferr := l.store.ForgetLogoutToken(context.WithoutCancel(r.Context()), claims.Issuer, claims.JWTID); ferr != nil {
			l.log.ErrorContext(r.Context(), "back-channel logout", "err", ferr)
		}
		http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
		return
	}
	l.log.InfoContext(r.Context(), "back-channel logout", "sessions", n)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// isObject reports whether a claim's value is a JSON object.
func isObject(v any) bool {
	_, ok := v.(map[string]any)
	return ok
}

// Logout tokens are short-lived: one older than maxLogoutTokenAge (by its iat) is refused even
// without exp, so that its jti need not be remembered longer; clockLeeway allows for clocks
// that differ between the provider and us.
const (
	maxLogoutTokenAge = 10 * time.Minute
	clockLeeway       = time.Minute
)

// verifyLogoutToken checks a logout token as OpenID Back-Channel Logout 1.0 §2.6 asks, and
// returns its claims with the time until which it would be accepted, which its jti must be
// remembered until.
func (l *Login) verifyLogoutToken(ctx context.Context, token string) (*oidc.LogoutTokenClaims, time.Time, error) {
	c, err := l.parseLogoutToken(ctx, token)
	if err != nil {
		return nil, time.Time{}, err
	}
	iat := c.IssuedAt.AsTime()
	until := iat.Add(maxLogoutTokenAge)
	if exp := c.Expiration.AsTime(); !exp.IsZero() && exp.Before(until) {
		until = exp
	}
	until = until.Add(clockLeeway)
	if time.Now().After(until) {
		return nil, time.Time{}, errors.New("expired")
	}
	return c, until, nil
}

// parseLogoutToken checks a logout token's signature and claims, but for its age.
func (l *Login) parseLogoutToken(ctx context.Context, token string) (*oidc.LogoutTokenClaims, error) {
	party, err := l.rp(ctx)
	if err != nil {
		return nil, err
	}
	algs := make([]jose.SignatureAlgorithm, len(l.cfg.SignAlgs))
	for i, a := range l.cfg.SignAlgs {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	jws, err := jose.ParseSigned(token, algs)
	if err != nil {
		return nil, errors.New("not a signed JWT with an accepted algorithm")
	}
	payload, err := party.IDTokenVerifier().KeySet.VerifySignature(ctx, jws)
	if err != nil {
		return nil, errors.New("bad signature")
	}
	var c oidc.LogoutTokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, errors.New("bad claims")
	}
	now := time.Now()
	switch {
	case c.Issuer != party.Issuer():
		return nil, errors.New("wrong issuer")
	case !slices.Contains([]string(c.Audience), l.cfg.ClientID):
		return nil, errors.New("wrong audience")
	case c.IssuedAt.AsTime().IsZero():
		// iat is REQUIRED (Back-Channel Logout §2.4) and validated as in ID tokens, whose
		// verifier refuses a token without one.
		return nil, errors.New("no iat")
	case c.IssuedAt.AsTime().After(now.Add(clockLeeway)):
		return nil, errors.New("issued in the future")
	case c.JWTID == "":
		// REQUIRED (§2.4): without it a replay could not be told from a new logout.
		return nil, errors.New("no jti")
	case len(c.JWTID) > store.MaxJTILength:
		return nil, errors.New("jti too long")
	case !isObject(c.Events[backchannelEvent]):
		// §2.4: a member of events named after the back-channel logout event, whose value is
		// a JSON object ({} usually).
		return nil, errors.New("no back-channel logout event")
	case c.SessionID == "" && c.Subject == "":
		return nil, errors.New("neither sid nor sub")
	case c.Claims["nonce"] != nil:
		return nil, errors.New("a logout token has no nonce")
	}
	return &c, nil
}

// fail ends a login that cannot succeed: logged for operators with the reason, and shown to
// the person as a reason code (on LOGIN_REDIRECT_URL_FAILURE or a small page), never details.
func (l *Login) fail(w http.ResponseWriter, r *http.Request, reason string, err error) {
	if reason == "internal" {
		l.log.ErrorContext(r.Context(), "login failed", "reason", reason, "err", err)
	} else {
		l.log.WarnContext(r.Context(), "login refused", "reason", reason, "err", err)
	}
	if l.failureTarget != nil {
		u := *l.failureTarget
		q := u.Query()
		q.Set("reason", reason)
		u.RawQuery = q.Encode()
		// Checked again as it will be sent, reason included; reasons are our own words.
		if target, err := configuredTarget(l.public, u.String()); err == nil {
			redirect(w, target, http.StatusFound)
			return
		}
	}
	page(w, http.StatusUnauthorized, "Login failed", "The login could not be completed (reason: "+reason+"). Please try again.")
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto">
<h1>{{.Title}}</h1><p>{{.Message}}</p><p><a href="/auth/login">Log in</a></p></body></html>
`))

var redirectTemplate = template.Must(template.New("redirect").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Logging out</title>
<meta http-equiv="refresh" content="0;url={{.}}"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto">
<p>Logging out… <a href="{{.}}">Continue</a></p></body></html>
`))

var confirmTemplate = template.Must(template.New("confirm").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Log out</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto">
<h1>Log out</h1><p>Another site sent you here to log out.</p>
<form method="post" action="{{.}}"><button type="submit">Log out</button></form></body></html>
`))

// confirmPage asks to confirm a logout with a button that posts it to action.
func confirmPage(w http.ResponseWriter, action string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	confirmTemplate.Execute(w, action)
}

// redirectPage sends the browser on to target with a page of its own.
func redirectPage(w http.ResponseWriter, target string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusOK)
	redirectTemplate.Execute(w, target)
}

// page answers with a small self-contained HTML page.
func page(w http.ResponseWriter, status int, title, message string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	pageTemplate.Execute(w, struct{ Title, Message string }{title, message})
}
