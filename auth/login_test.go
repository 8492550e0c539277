package auth_test

// Tests of the relying party against a fake OpenID provider with knobs: each test decides
// what the ID token says and how it is signed, how userinfo answers, and whether the provider
// is up, then drives /auth/login through a cookie-keeping client, over the real store, real
// sessions and the real GraphQL handler. The development provider (oidc_test.go) only ever
// issues well-formed tokens; these tests are about the ones the relying party must refuse.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"maps"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/graph"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// How the fake provider signs a JWT.
const (
	signRS256        = ""                  // RS256 with the published RSA key
	signES256        = "ES256"             // ES256 with the published P-256 key
	signNone         = "none"              // alg none, no signature
	signHS256Public  = "HS256 public key"  // HS256 keyed with the published RSA key's PEM, kid of the RSA key
	signStranger     = "stranger"          // RS256 with a key not in the JWKS, under its own kid
	signStrangerKid  = "stranger, our kid" // RS256 with a key not in the JWKS, claiming the published kid
	signTampered     = "tampered"          // RS256, then the payload replaced
	signRandomKid    = "random kid"        // RS256 with a key not in the JWKS, under a new random kid
	backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"
)

// How the fake provider answers userinfo.
const (
	userinfoJSON  = ""           // application/json
	userinfoJWT   = "jwt"        // application/jwt, signed as the knob UserinfoSign says
	userinfoError = "status 500" // a server error
)

// opKnobs say what the fake provider answers to the next login.
type opKnobs struct {
	Sub string
	// IDToken overrides or adds ID token claims; a nil value removes the claim.
	IDToken map[string]any
	Sign    string // one of the sign constants, for the ID token
	// Userinfo are the userinfo claims besides sub; a "sub" here overrides the ID token's.
	Userinfo     map[string]any
	UserinfoAs   string // userinfoJSON, userinfoJWT or userinfoError
	UserinfoSign string // for userinfoJWT: one of the sign constants
}

// opKeys are the provider's published keys and one it does not publish.
type opKeys struct {
	rsa, ec, stranger jose.JSONWebKey // private keys, with their kid
	rsaPEM            []byte          // the published RSA public key as PEM, the secret of the HS256 confusion
}

// fakeOPKeys are made once for the package: RSA key generation is slow under -race, and the
// keys are never changed.
var fakeOPKeys = sync.OnceValues(func() (*opKeys, error) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	sk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	if err != nil {
		return nil, err
	}
	return &opKeys{
		rsa:      jose.JSONWebKey{Key: rk, KeyID: "rsa-1", Algorithm: "RS256", Use: "sig"},
		ec:       jose.JSONWebKey{Key: ek, KeyID: "ec-1", Algorithm: "ES256", Use: "sig"},
		stranger: jose.JSONWebKey{Key: sk, KeyID: "stranger-1", Algorithm: "RS256", Use: "sig"},
		rsaPEM:   pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
	}, nil
})

// fakeOP is an OpenID provider in an httptest.Server whose answers follow its knobs. It
// checks what the relying party sends (client credentials, redirect URI, PKCE) and records
// the requests, so that tests can assert on them.
type fakeOP struct {
	t                                   testing.TB
	srv                                 *httptest.Server
	keys                                *opKeys
	clientID, clientSecret, redirectURI string
	down                                atomic.Bool // every request fails as a dropped connection
	noDiscovery                         atomic.Bool // the discovery document is 404
	discoveries                         atomic.Int32
	jwksFetches                         atomic.Int32

	mu         sync.Mutex
	knobs      opKnobs
	grants     map[string]*opGrant // by code
	access     map[string]opKnobs  // access token → the knobs of its grant
	authReqs   []url.Values
	tokenReqs  []opTokenRequest
	endSession []url.Values
	secrets    []string // codes, access and ID tokens handed out: never in the logs
}

type opGrant struct {
	auth  url.Values // the authorization request
	knobs opKnobs    // as they were at that request, for logins that finish concurrently
	used  bool
}

type opTokenRequest struct {
	form       url.Values
	clientAuth string // "basic" or "post"
	refused    string // why the token endpoint refused it; "" when it answered tokens
}

func newFakeOP(t testing.TB, redirectURI string) *fakeOP {
	t.Helper()
	keys, err := fakeOPKeys()
	if err != nil {
		t.Fatal(err)
	}
	op := &fakeOP{t: t, keys: keys, clientID: "people-" + storetest.Unique(), clientSecret: randomString(),
		redirectURI: redirectURI, grants: map[string]*opGrant{}, access: map[string]opKnobs{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", op.discovery)
	mux.HandleFunc("GET /jwks", op.jwks)
	mux.HandleFunc("GET /authorize", op.authorize)
	mux.HandleFunc("POST /token", op.token)
	mux.HandleFunc("GET /userinfo", op.userinfo)
	mux.HandleFunc("GET /logout", op.logout)
	op.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if op.down.Load() {
			panic(http.ErrAbortHandler) // the connection drops without an answer
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(op.srv.Close)
	return op
}

func (op *fakeOP) issuer() string { return op.srv.URL }

func (op *fakeOP) set(k opKnobs) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.knobs = k
}

func (op *fakeOP) handedOut(s ...string) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.secrets = append(op.secrets, s...)
}

func (op *fakeOP) discovery(w http.ResponseWriter, r *http.Request) {
	op.discoveries.Add(1)
	if op.noDiscovery.Load() {
		http.NotFound(w, r)
		return
	}
	writeJSON(w, map[string]any{
		"issuer":                                op.issuer(),
		"authorization_endpoint":                op.issuer() + "/authorize",
		"token_endpoint":                        op.issuer() + "/token",
		"userinfo_endpoint":                     op.issuer() + "/userinfo",
		"jwks_uri":                              op.issuer() + "/jwks",
		"end_session_endpoint":                  op.issuer() + "/logout",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"backchannel_logout_supported":          true,
		"backchannel_logout_session_supported":  true,
	})
}

func (op *fakeOP) jwks(w http.ResponseWriter, r *http.Request) {
	op.jwksFetches.Add(1)
	writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{op.keys.rsa.Public(), op.keys.ec.Public()}})
}

// authorize answers at once, as if the person had logged in: back to redirect_uri with a code
// and the request's state.
func (op *fakeOP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	op.mu.Lock()
	op.authReqs = append(op.authReqs, q)
	op.mu.Unlock()
	if q.Get("client_id") != op.clientID || q.Get("redirect_uri") != op.redirectURI || q.Get("response_type") != "code" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	code := randomString()
	op.mu.Lock()
	op.grants[code] = &opGrant{auth: q, knobs: op.knobs}
	op.secrets = append(op.secrets, code)
	op.mu.Unlock()
	back, _ := url.Parse(op.redirectURI)
	bq := url.Values{"code": {code}, "state": {q.Get("state")}}
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// token exchanges a code, once, for the client that asked for it with the PKCE verifier of
// its challenge.
func (op *fakeOP) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := opTokenRequest{form: r.PostForm, clientAuth: "post"}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		req.clientAuth = "basic"
		id, _ = url.QueryUnescape(u)
		secret, _ = url.QueryUnescape(p)
	}
	refuse := func(status int, code, why string) {
		req.refused = why
		op.mu.Lock()
		op.tokenReqs = append(op.tokenReqs, req)
		op.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": code})
	}
	if id != op.clientID || secret != op.clientSecret {
		refuse(http.StatusUnauthorized, "invalid_client", "client authentication")
		return
	}
	op.mu.Lock()
	g := op.grants[r.PostForm.Get("code")]
	used := g != nil && g.used
	if g != nil {
		g.used = true
	}
	op.mu.Unlock()
	switch {
	case r.PostForm.Get("grant_type") != "authorization_code":
		refuse(http.StatusBadRequest, "unsupported_grant_type", "grant type")
		return
	case g == nil || used:
		refuse(http.StatusBadRequest, "invalid_grant", "unknown or used code")
		return
	case r.PostForm.Get("redirect_uri") != op.redirectURI:
		refuse(http.StatusBadRequest, "invalid_grant", "redirect_uri")
		return
	case g.auth.Get("code_challenge_method") != "S256" || g.auth.Get("code_challenge") == "" ||
		s256(r.PostForm.Get("code_verifier")) != g.auth.Get("code_challenge"):
		refuse(http.StatusBadRequest, "invalid_grant", "PKCE verifier")
		return
	}
	k := g.knobs
	now := time.Now()
	claims := map[string]any{
		"iss": op.issuer(), "sub": k.Sub, "aud": []string{op.clientID},
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "auth_time": now.Unix(),
		"nonce": g.auth.Get("nonce"),
	}
	for name, v := range k.IDToken {
		if v == nil {
			delete(claims, name)
		} else {
			claims[name] = v
		}
	}
	idToken, err := op.sign(claims, k.Sign)
	if err != nil {
		op.t.Errorf("sign ID token: %v", err)
		http.Error(w, "", http.StatusInternalServerError)
		return
	}
	accessToken := randomString()
	op.mu.Lock()
	op.tokenReqs = append(op.tokenReqs, req)
	op.access[accessToken] = k
	op.secrets = append(op.secrets, accessToken, idToken)
	op.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, map[string]any{"access_token": accessToken, "token_type": "Bearer", "expires_in": 300, "id_token": idToken})
}

func (op *fakeOP) userinfo(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	op.mu.Lock()
	k, known := op.access[token]
	op.mu.Unlock()
	if !ok || !known {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "", http.StatusUnauthorized)
		return
	}
	claims := map[string]any{"sub": k.Sub}
	maps.Copy(claims, k.Userinfo)
	switch k.UserinfoAs {
	case userinfoError:
		http.Error(w, "internal error", http.StatusInternalServerError)
	case userinfoJWT:
		claims["iss"], claims["aud"] = op.issuer(), op.clientID
		token, err := op.sign(claims, k.UserinfoSign)
		if err != nil {
			op.t.Errorf("sign userinfo: %v", err)
			http.Error(w, "", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/jwt")
		io.WriteString(w, token)
	default:
		writeJSON(w, claims)
	}
}

func (op *fakeOP) logout(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	op.mu.Lock()
	op.endSession = append(op.endSession, q)
	op.mu.Unlock()
	back, err := url.Parse(q.Get("post_logout_redirect_uri"))
	if err != nil || q.Get("post_logout_redirect_uri") == "" {
		io.WriteString(w, "logged out")
		return
	}
	back.RawQuery = url.Values{"state": {q.Get("state")}}.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// sign makes a JWT of claims as how says. It runs in handlers too, so it returns its error
// rather than end the test from another goroutine.
func (op *fakeOP) sign(claims map[string]any, how string) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	if how == signNone {
		enc := base64.RawURLEncoding
		return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString(payload) + ".", nil
	}
	key := jose.SigningKey{Algorithm: jose.RS256, Key: op.keys.rsa}
	switch how {
	case signES256:
		key = jose.SigningKey{Algorithm: jose.ES256, Key: op.keys.ec}
	case signHS256Public:
		key = jose.SigningKey{Algorithm: jose.HS256, Key: op.keys.rsaPEM}
	case signStranger:
		key = jose.SigningKey{Algorithm: jose.RS256, Key: op.keys.stranger}
	case signStrangerKid:
		key = jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: op.keys.stranger.Key, KeyID: op.keys.rsa.KeyID}}
	case signRandomKid:
		key = jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: op.keys.stranger.Key, KeyID: "kid-" + randomString()}}
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if how == signHS256Public {
		opts = opts.WithHeader("kid", op.keys.rsa.KeyID)
	}
	signer, err := jose.NewSigner(key, opts)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		return "", err
	}
	if how == signTampered {
		parts := strings.Split(token, ".")
		forged := maps.Clone(claims)
		forged["email"] = "attacker@evil.example"
		body, err := json.Marshal(forged)
		if err != nil {
			return "", err
		}
		parts[1] = base64.RawURLEncoding.EncodeToString(body)
		token = strings.Join(parts, ".")
	}
	return token, nil
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func randomString() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// loginRig is the relying party as server.go wires it (login handlers, sessions, the GraphQL
// API) in front of a fakeOP. At the end of the test it checks that no token, code or cookie
// value it saw reached the logs.
type loginRig struct {
	url       string
	s         *store.Store
	op        *fakeOP
	logs      *logBuffer
	cfg       auth.LoginConfig  // as the login was made, for other instances
	transport http.RoundTripper // the browsers'

	mu      sync.Mutex
	cookies []string // every cookie value the browsers sent or received
}

func newLoginRig(t *testing.T, tweak func(*auth.LoginConfig)) *loginRig {
	t.Helper()
	return newRig(t, false, tweak)
}

// newRig is newLoginRig, over HTTPS with Secure (__Host-) cookies when secure, as production.
func newRig(t *testing.T, secure bool, tweak func(*auth.LoginConfig)) *loginRig {
	t.Helper()
	s := storetest.Open(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	if secure {
		base = "https://" + ln.Addr().String()
	}
	op := newFakeOP(t, base+"/auth/callback")
	logs := &logBuffer{}
	// Debug, to hold the library's own logging to the same rule.
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sessions := auth.NewSessions(s, auth.SessionOptions{PublicOrigin: base, CookieSecure: secure}, log)
	cfg := auth.LoginConfig{
		Issuer: op.issuer(), ClientID: op.clientID, ClientSecret: op.clientSecret, PublicURL: base, CookieSecure: secure,
		Scopes:     []string{"openid", "email", "given_name", "usual_name", "siret"},
		NameFields: []string{"given_name", "usual_name"}, RegistrationIDClaim: "siret",
		SecretKey:    []byte(strings.Repeat("s", 32)),
		Provisioning: store.LoginOptions{FallbackToEmail: true, CreateUser: true, RegistrationIDPattern: store.SIRETPattern},
		HTTPClient:   &http.Client{Timeout: 5 * time.Second},
	}
	if tweak != nil {
		tweak(&cfg)
	}
	login, err := auth.NewLogin(cfg, s, sessions, log)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	login.Mount(mux)
	api := graph.NewHandler(s, graph.Options{Settings: graph.Settings{Features: graph.Features{TeamsDisplay: true}}})
	mux.Handle("/graphql", sessions.CORS(sessions.Middleware(sessions.CSRF(api))))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "landed on "+r.URL.RequestURI()) })
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: mux}}
	transport := http.DefaultTransport
	if secure {
		srv.StartTLS()
		transport = srv.Client().Transport // trusts the test certificate; plain HTTP to the provider
	} else {
		srv.Start()
	}
	r := &loginRig{url: base, s: s, op: op, logs: logs, cfg: cfg, transport: transport}
	t.Cleanup(func() {
		srv.Close()
		if !t.Failed() {
			r.checkLogs(t)
		}
	})
	return r
}

// checkLogs fails the test when a code, token or cookie value is in the logs. A JWT is looked
// for whole and by its payload and signature, which are each unique.
func (r *loginRig) checkLogs(t *testing.T) {
	t.Helper()
	logs := r.logs.String()
	r.op.mu.Lock()
	secrets := slices.Clone(r.op.secrets)
	r.op.mu.Unlock()
	r.mu.Lock()
	secrets = append(secrets, r.cookies...)
	r.mu.Unlock()
	for _, s := range secrets {
		parts := []string{s}
		if p := strings.Split(s, "."); len(p) == 3 {
			parts = append(parts, p[1], p[2])
		}
		for _, p := range parts {
			if len(p) >= 16 && strings.Contains(logs, p) {
				t.Errorf("a secret handed out in the login reached the logs (%.12s…):\n%s", p, logs)
				return
			}
		}
	}
}

// cookieRecorder notes the value of every cookie a browser sends or receives.
type cookieRecorder struct {
	rig  *loginRig
	next http.RoundTripper
}

func (c cookieRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var seen []string
	for _, ck := range req.Cookies() {
		seen = append(seen, ck.Value)
	}
	resp, err := c.next.RoundTrip(req)
	if err == nil {
		for _, ck := range resp.Cookies() {
			seen = append(seen, ck.Value)
		}
	}
	c.rig.mu.Lock()
	for _, v := range seen {
		if v != "" {
			c.rig.cookies = append(c.rig.cookies, v)
		}
	}
	c.rig.mu.Unlock()
	return resp, err
}

// browser is a cookie-keeping client that follows redirects between the relying party and
// the provider (both on loopback) and stops at any other site, such as the failure URL.
// logOut posts the logout form as the browser c, from the server's own origin, and returns the
// answer and its body.
func (r *loginRig) logOut(t *testing.T, c *http.Client) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.url+"/auth/logout", nil)
	req.Header.Set("Origin", r.url)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body
}

func (r *loginRig) browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Transport: cookieRecorder{rig: r, next: r.transport},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Hostname() != "127.0.0.1" {
				return http.ErrUseLastResponse
			}
			return nil
		}}
}

// landing is where a login ended.
type landing struct {
	status   int
	body     string
	location string // a redirect to another site, not followed
}

// logIn has the provider answer as k says and runs the whole flow in c.
func (r *loginRig) logIn(t *testing.T, c *http.Client, k opKnobs) landing {
	t.Helper()
	r.op.set(k)
	resp, err := c.Get(r.url + "/auth/login?next=/home")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return landing{status: resp.StatusCode, body: string(body), location: resp.Header.Get("Location")}
}

// mustLand fails unless the login landed on next.
func mustLand(t *testing.T, l landing) {
	t.Helper()
	if l.status != http.StatusOK || l.body != "landed on /home" {
		t.Fatalf("login ended with %d %q (location %q), want it to land on /home", l.status, l.body, l.location)
	}
}

// mustRefuse fails unless the login ended on the failure page with reason.
func mustRefuse(t *testing.T, l landing, reason string) {
	t.Helper()
	if l.status != http.StatusUnauthorized || !strings.Contains(l.body, "(reason: "+reason+")") {
		t.Fatalf("login ended with %d %q, want the failure page with reason %s", l.status, l.body, reason)
	}
}

// gql runs query with c's cookie and decodes data into out; it returns the first error code.
func (r *loginRig) gql(t *testing.T, c *http.Client, query string, out any) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": query})
	req, _ := http.NewRequest(http.MethodPost, r.url+"/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", r.url)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res struct {
		Data   json.RawMessage
		Errors []struct{ Extensions struct{ Code string } }
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatalf("graphql answered %d: %v", resp.StatusCode, err)
	}
	if len(res.Errors) > 0 {
		return res.Errors[0].Extensions.Code
	}
	if err := json.Unmarshal(res.Data, out); err != nil {
		t.Fatal(err)
	}
	return ""
}

type meAnswer struct {
	Me struct {
		ID, Email, Name string
		Organization    *struct{ Name string }
	}
}

// me is { me { … } } with c's cookie; it fails the test when the session does not work.
func (r *loginRig) me(t *testing.T, c *http.Client) meAnswer {
	t.Helper()
	var out meAnswer
	if code := r.gql(t, c, `{ me { id email name organization { name } } }`, &out); code != "" {
		t.Fatalf("me answered %s, want the logged-in user", code)
	}
	return out
}

// mustBeAnonymous fails when c's cookies open a session.
func (r *loginRig) mustBeAnonymous(t *testing.T, c *http.Client) {
	t.Helper()
	var out meAnswer
	if code := r.gql(t, c, `{ me { id } }`, &out); code != "UNAUTHENTICATED" {
		t.Fatalf("me answered %q (user %s), want UNAUTHENTICATED: a session is open", code, out.Me.ID)
	}
	for _, ck := range c.Jar.Cookies(mustParse(t, r.url+"/graphql")) {
		if strings.Contains(ck.Name, "people_session") {
			t.Fatalf("the browser holds a session cookie %s", ck.Name)
		}
	}
}

// withCookies is a fresh client holding c's current cookies for the API: the old cookie, kept
// to try again after a logout.
func (r *loginRig) withCookies(t *testing.T, c *http.Client) *http.Client {
	t.Helper()
	u := mustParse(t, r.url+"/graphql")
	fresh := r.browser(t)
	fresh.Jar.SetCookies(u, c.Jar.Cookies(u))
	return fresh
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// scalar reads one value with SQL.
func scalar[T any](t *testing.T, s *store.Store, query string, args ...any) T {
	t.Helper()
	var v T
	if err := s.DB().QueryRowContext(t.Context(), query, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v
}

// person is a user as the provider knows them: a fresh sub and email.
func person() (sub, email string) {
	tok := storetest.Unique()
	return "op-sub-" + tok, "person-" + tok + "@example.test"
}

func freshSIRET() string { return fmt.Sprintf("%014d", mathrand.Int64N(1e14)) }

func TestLoginWithFakeProvider(t *testing.T) {
	t.Parallel()
	r := newLoginRig(t, nil)
	u := storetest.User(t, r.s, storetest.Organization(t, r.s))
	sub, _ := person()
	storetest.MustExec(t, r.s.DB(), "INSERT INTO user_identities (user_id, issuer, subject) VALUES (?, ?, ?)", u.ID, r.op.issuer(), sub)
	c := r.browser(t)
	r.mustBeAnonymous(t, c)
	mustLand(t, r.logIn(t, c, opKnobs{Sub: sub, Userinfo: map[string]any{"email": u.Email, "given_name": "Anne", "usual_name": "Martin"}}))
	me := r.me(t, c)
	if me.Me.ID != u.ID.String() || me.Me.Email != u.Email || me.Me.Name != "Anne Martin" || me.Me.Organization == nil {
		t.Errorf("me = %+v, want %s named Anne Martin in an organization", me.Me, u.ID)
	}
}

func TestLoginIDTokenChecks(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tests := []struct {
		name  string
		k     opKnobs
		tweak func(*auth.LoginConfig)
		ok    bool
	}{
		{name: "wrong nonce", k: opKnobs{IDToken: map[string]any{"nonce": "forged"}}},
		{name: "no nonce", k: opKnobs{IDToken: map[string]any{"nonce": nil}}},
		{name: "wrong audience", k: opKnobs{IDToken: map[string]any{"aud": []string{"another-client"}}}},
		{name: "wrong issuer", k: opKnobs{IDToken: map[string]any{"iss": "https://evil.example"}}},
		{name: "expired", k: opKnobs{IDToken: map[string]any{"iat": now.Add(-time.Hour).Unix(), "exp": now.Add(-time.Minute).Unix()}}},
		{name: "issued an hour ahead", k: opKnobs{IDToken: map[string]any{"iat": now.Add(time.Hour).Unix(), "exp": now.Add(2 * time.Hour).Unix()}}},
		{name: "alg none", k: opKnobs{Sign: signNone}},
		{name: "HS256 keyed with the RSA public key", k: opKnobs{Sign: signHS256Public}},
		{name: "key not in the JWKS", k: opKnobs{Sign: signStranger}},
		{name: "key not in the JWKS under the published kid", k: opKnobs{Sign: signStrangerKid}},
		{name: "tampered payload", k: opKnobs{Sign: signTampered}},
		{name: "ES256 when only RS256 is accepted", k: opKnobs{Sign: signES256}},
		{name: "RS256 when only ES256 is accepted", k: opKnobs{}, tweak: func(c *auth.LoginConfig) { c.SignAlgs = []string{"ES256"} }},
		{name: "ES256 accepted when configured", k: opKnobs{Sign: signES256}, tweak: func(c *auth.LoginConfig) { c.SignAlgs = []string{"ES256"} }, ok: true},
		{name: "RS256 accepted by default", k: opKnobs{}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newLoginRig(t, tt.tweak)
			sub, email := person()
			tt.k.Sub, tt.k.Userinfo = sub, map[string]any{"email": email}
			c := r.browser(t)
			l := r.logIn(t, c, tt.k)
			if tt.ok {
				mustLand(t, l)
				if me := r.me(t, c); me.Me.Email != email {
					t.Errorf("me.email = %q, want %q", me.Me.Email, email)
				}
				return
			}
			mustRefuse(t, l, "invalid_token")
			r.mustBeAnonymous(t, c)
			if n := scalar[int](t, r.s, "SELECT count(*) FROM users WHERE email = ?", email); n != 0 {
				t.Errorf("a refused login created %d users", n)
			}
		})
	}
}

func TestLoginUserinfoChecks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		format string // UserinfoFormat
		as     string
		sign   string
		sub    string // "" is the ID token's
		ok     bool
	}{
		{name: "JSON", as: userinfoJSON, ok: true},
		{name: "JWT by content type", as: userinfoJWT, ok: true},
		{name: "JWT when configured", format: "jwt", as: userinfoJWT, ok: true},
		{name: "JWT signed ES256 when only RS256 is accepted", format: "jwt", as: userinfoJWT, sign: signES256},
		{name: "JSON when configured", format: "json", ok: true},
		{name: "sub differs", sub: "someone-else"},
		{name: "JWT sub differs", as: userinfoJWT, sub: "someone-else"},
		{name: "JWT with a bad signature", as: userinfoJWT, sign: signTampered},
		{name: "JWT signed by a key not in the JWKS", as: userinfoJWT, sign: signStrangerKid},
		{name: "JWT alg none", as: userinfoJWT, sign: signNone},
		{name: "JWT HS256 keyed with the RSA public key", as: userinfoJWT, sign: signHS256Public},
		{name: "JSON when jwt is configured", format: "jwt"},
		{name: "JWT when json is configured", format: "json", as: userinfoJWT},
		{name: "status 500", as: userinfoError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newLoginRig(t, func(c *auth.LoginConfig) { c.UserinfoFormat = tt.format })
			sub, email := person()
			info := map[string]any{"email": email, "given_name": "Jeanne", "usual_name": "Roux"}
			if tt.sub != "" {
				info["sub"] = tt.sub
			}
			c := r.browser(t)
			l := r.logIn(t, c, opKnobs{Sub: sub, Userinfo: info, UserinfoAs: tt.as, UserinfoSign: tt.sign})
			if !tt.ok {
				mustRefuse(t, l, "invalid_userinfo")
				r.mustBeAnonymous(t, c)
				return
			}
			mustLand(t, l)
			if me := r.me(t, c); me.Me.Email != email || me.Me.Name != "Jeanne Roux" {
				t.Errorf("me = %+v, want the userinfo's email and name", me.Me)
			}
		})
	}
}

// The relying party sends an S256 challenge, then the matching verifier with its client
// credentials; nonce and state are fresh at every login.
func TestLoginPKCEAndParameters(t *testing.T) {
	t.Parallel()
	r := newLoginRig(t, func(c *auth.LoginConfig) { c.ExtraParams = map[string]string{"acr_values": "eidas1"} })
	for range 2 {
		sub, email := person()
		// The level asked for, as the provider answers (TestLoginRequiresRequestedACR: or not).
		k := opKnobs{Sub: sub, IDToken: map[string]any{"acr": "eidas1"}, Userinfo: map[string]any{"email": email}}
		mustLand(t, r.logIn(t, r.browser(t), k))
	}
	r.op.mu.Lock()
	defer r.op.mu.Unlock()
	if len(r.op.authReqs) != 2 || len(r.op.tokenReqs) != 2 {
		t.Fatalf("%d authorization and %d token requests, want 2 each", len(r.op.authReqs), len(r.op.tokenReqs))
	}
	for i, q := range r.op.authReqs {
		if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 {
			t.Errorf("authorization request %d: code_challenge %q method %q, want S256", i, q.Get("code_challenge"), q.Get("code_challenge_method"))
		}
		if q.Get("acr_values") != "eidas1" {
			t.Errorf("authorization request %d: acr_values = %q, want eidas1", i, q.Get("acr_values"))
		}
		if q.Get("nonce") == "" || q.Get("state") == "" || q.Get("state") == q.Get("nonce") {
			t.Errorf("authorization request %d: nonce %q, state %q", i, q.Get("nonce"), q.Get("state"))
		}
		if scopes := strings.Fields(q.Get("scope")); !strings.Contains(" "+q.Get("scope")+" ", " openid ") || len(scopes) != 5 {
			t.Errorf("authorization request %d: scope %q", i, q.Get("scope"))
		}
		tr := r.op.tokenReqs[i]
		if tr.refused != "" || tr.form.Get("code_verifier") == "" || s256(tr.form.Get("code_verifier")) != q.Get("code_challenge") {
			t.Errorf("token request %d: verifier %q for challenge %q (refused: %q)", i, tr.form.Get("code_verifier"), q.Get("code_challenge"), tr.refused)
		}
		if tr.form.Get("client_secret") != "" && tr.clientAuth == "basic" {
			t.Errorf("token request %d: the client secret went both in the header and the body", i)
		}
	}
	if a, b := r.op.authReqs[0], r.op.authReqs[1]; a.Get("nonce") == b.Get("nonce") || a.Get("state") == b.Get("state") || a.Get("code_challenge") == b.Get("code_challenge") {
		t.Errorf("two logins reused a nonce, state or challenge")
	}
}

func TestLoginProvisioning(t *testing.T) {
	t.Parallel()

	t.Run("email fallback links new subs to the existing user", func(t *testing.T) {
		t.Parallel()
		r := newLoginRig(t, nil)
		u := storetest.User(t, r.s, storetest.Organization(t, r.s))
		subA, _ := person()
		subB, _ := person()
		for _, sub := range []string{subA, subB, subA} {
			c := r.browser(t)
			mustLand(t, r.logIn(t, c, opKnobs{Sub: sub, Userinfo: map[string]any{"email": strings.ToUpper(u.Email[:1]) + u.Email[1:]}}))
			if me := r.me(t, c); me.Me.ID != u.ID.String() {
				t.Errorf("sub %s logged in as %s, want the existing user %s", sub, me.Me.ID, u.ID)
			}
		}
		if n := scalar[int](t, r.s, "SELECT count(*) FROM user_identities WHERE user_id = ? AND issuer = ? AND subject IN (?, ?)", u.ID, r.op.issuer(), subA, subB); n != 2 {
			t.Errorf("%d identities linked, want both subs", n)
		}
		if n := scalar[int](t, r.s, "SELECT count(*) FROM users WHERE lower(email) = lower(?)", u.Email); n != 1 {
			t.Errorf("%d users with the email, want 1", n)
		}
	})

	t.Run("ambiguous email refused", func(t *testing.T) {
		t.Parallel()
		r := newLoginRig(t, nil)
		org := storetest.Organization(t, r.s)
		_, email := person()
		storetest.User(t, r.s, org, storetest.WithEmail(email))
		storetest.User(t, r.s, org, storetest.WithEmail(strings.ToUpper(email[:6])+email[6:]))
		sub, _ := person()
		c := r.browser(t)
		mustRefuse(t, r.logIn(t, c, opKnobs{Sub: sub, Userinfo: map[string]any{"email": email}}), store.ReasonAmbiguousEmail)
		r.mustBeAnonymous(t, c)
		if !strings.Contains(r.logs.String(), "reason="+store.ReasonAmbiguousEmail) {
			t.Errorf("the refusal was not logged:\n%s", r.logs.String())
		}
		if n := scalar[int](t, r.s, "SELECT count(*) FROM user_identities WHERE subject = ?", sub); n != 0 {
			t.Errorf("the refused sub was linked %d times", n)
		}
	})

	t.Run("inactive user refused, by subject and by email", func(t *testing.T) {
		t.Parallel()
		r := newLoginRig(t, nil)
		org := storetest.Organization(t, r.s)
		known := storetest.User(t, r.s, org, storetest.Inactive())
		sub, _ := person()
		storetest.MustExec(t, r.s.DB(), "INSERT INTO user_identities (user_id, issuer, subject) VALUES (?, ?, ?)", known.ID, r.op.issuer(), sub)
		byEmail := storetest.User(t, r.s, org, storetest.Inactive())
		newSub, _ := person()
		for _, k := range []opKnobs{
			{Sub: sub, Userinfo: map[string]any{"email": known.Email}},
			{Sub: newSub, Userinfo: map[string]any{"email": byEmail.Email}},
		} {
			c := r.browser(t)
			mustRefuse(t, r.logIn(t, c, k), store.ReasonInactiveUser)
			r.mustBeAnonymous(t, c)
		}
		if n := scalar[int](t, r.s, "SELECT count(*) FROM user_identities WHERE subject = ?", newSub); n != 0 {
			t.Errorf("the inactive user's new sub was linked")
		}
		if n := scalar[int](t, r.s, "SELECT count(*) FROM users WHERE id IN (?, ?) AND last_login_at IS NOT NULL", known.ID, byEmail.ID); n != 0 {
			t.Errorf("a refused login set last_login_at")
		}
	})

	t.Run("no user creation", func(t *testing.T) {
		t.Parallel()
		r := newLoginRig(t, func(c *auth.LoginConfig) { c.Provisioning.CreateUser = false })
		sub, email := person()
		c := r.browser(t)
		mustRefuse(t, r.logIn(t, c, opKnobs{Sub: sub, Userinfo: map[string]any{"email": email}}), store.ReasonUserCreationDisabled)
		r.mustBeAnonymous(t, c)
		if n := scalar[int](t, r.s, "SELECT count(*) FROM users WHERE email = ?", email); n != 0 {
			t.Errorf("%d users created", n)
		}
		// A known user still logs in.
		u := storetest.User(t, r.s, storetest.Organization(t, r.s))
		mustLand(t, r.logIn(t, c, opKnobs{Sub: sub + "-known", Userinfo: map[string]any{"email": u.Email}}))
		if me := r.me(t, c); me.Me.ID != u.ID.String() {
			t.Errorf("logged in as %s, want %s", me.Me.ID, u.ID)
		}
	})

	t.Run("organization created from the siret claim", func(t *testing.T) {
		t.Parallel()
		r := newLoginRig(t, nil)
		// A domain of its own: a known domain would find its organization, as in People.
		sub, email := "op-"+storetest.Unique(), "paul@siret-"+storetest.Unique()+".test"
		siret := freshSIRET()
		c := r.browser(t)
		mustLand(t, r.logIn(t, c, opKnobs{Sub: sub, Userinfo: map[string]any{"email": email, "siret": siret, "given_name": "Paul"}}))
		me := r.me(t, c)
		if me.Me.Email != email || me.Me.Name != "Paul" || me.Me.Organization == nil || me.Me.Organization.Name != siret {
			t.Fatalf("me = %+v (organization %+v), want a new user in a new organization named %s", me.Me, me.Me.Organization, siret)
		}
		if n := scalar[int](t, r.s, `SELECT count(*) FROM organization_registration_ids ori JOIN users u ON u.organization_id = ori.organization_id
			WHERE ori.registration_id = ? AND u.id = ?`, siret, me.Me.ID); n != 1 {
			t.Errorf("the user's organization does not hold the siret")
		}
		if n := scalar[int](t, r.s, "SELECT count(*) FROM contacts WHERE owner_id = ? AND user_id = ? AND data->'emails'->0->>'value' = ?", me.Me.ID, me.Me.ID, email); n != 1 {
			t.Errorf("%d profile contacts, want 1", n)
		}
		if n := scalar[int](t, r.s, "SELECT count(*) FROM organization_accesses WHERE user_id = ?", me.Me.ID); n != 0 {
			t.Errorf("the first user of the organization was given %d organization accesses", n)
		}
	})

	t.Run("existing organization found by its siret", func(t *testing.T) {
		t.Parallel()
		r := newLoginRig(t, nil)
		org := storetest.Organization(t, r.s)
		siret := freshSIRET()
		storetest.MustExec(t, r.s.DB(), "INSERT INTO organization_registration_ids (organization_id, registration_id) VALUES (?, ?)", org, siret)
		sub, email := person()
		c := r.browser(t)
		mustLand(t, r.logIn(t, c, opKnobs{Sub: sub, Userinfo: map[string]any{"email": email, "siret": siret}}))
		me := r.me(t, c)
		if got := scalar[uuid.UUID](t, r.s, "SELECT organization_id FROM users WHERE id = ?", me.Me.ID); got != org {
			t.Errorf("new user in organization %s, want %s", got, org)
		}
	})

	t.Run("organization by email domain", func(t *testing.T) {
		t.Parallel()
		r := newLoginRig(t, nil)
		domain := "new-" + storetest.Unique() + ".test"
		c := r.browser(t)
		mustLand(t, r.logIn(t, c, opKnobs{Sub: "op-" + storetest.Unique(), Userinfo: map[string]any{"email": "first@" + domain}}))
		first := r.me(t, c)
		if first.Me.Organization == nil || first.Me.Organization.Name != domain {
			t.Fatalf("me = %+v, want a new organization named %s", first.Me, domain)
		}
		// A second person from the domain joins it.
		c = r.browser(t)
		mustLand(t, r.logIn(t, c, opKnobs{Sub: "op-" + storetest.Unique(), Userinfo: map[string]any{"email": "second@" + domain}}))
		second := r.me(t, c)
		if second.Me.ID == first.Me.ID || scalar[int](t, r.s, "SELECT count(DISTINCT organization_id) FROM users WHERE id IN (?, ?)", first.Me.ID, second.Me.ID) != 1 {
			t.Errorf("two users of %s are not in one organization", domain)
		}
		if n := scalar[int](t, r.s, "SELECT count(*) FROM organization_domains WHERE domain = ?", domain); n != 1 {
			t.Errorf("%d organizations hold the domain", n)
		}
	})

	t.Run("invitations become team accesses, expired ones stay", func(t *testing.T) {
		t.Parallel()
		r := newLoginRig(t, nil)
		org := storetest.Organization(t, r.s)
		issuer := storetest.User(t, r.s, org)
		valid := storetest.Team(t, r.s, org, "Valid "+storetest.Unique())
		expired := storetest.Team(t, r.s, org, "Expired "+storetest.Unique())
		storetest.Access(t, r.s, valid, issuer.ID, store.RoleOwner)
		storetest.Access(t, r.s, expired, issuer.ID, store.RoleOwner)
		sub, email := person()
		storetest.MustExec(t, r.s.DB(), "INSERT INTO invitations (email, team_id, role, issuer_id) VALUES (?, ?, 'administrator', ?)", strings.ToUpper(email[:6])+email[6:], valid, issuer.ID)
		storetest.MustExec(t, r.s.DB(), "INSERT INTO invitations (email, team_id, role, issuer_id, created_at) VALUES (?, ?, 'member', ?, now() - interval '8 days')", email, expired, issuer.ID)
		c := r.browser(t)
		mustLand(t, r.logIn(t, c, opKnobs{Sub: sub, Userinfo: map[string]any{"email": email}}))
		var teams struct {
			Teams struct{ Nodes []struct{ ID, Role string } }
		}
		if code := r.gql(t, c, `{ teams { nodes { id role } } }`, &teams); code != "" {
			t.Fatalf("teams answered %s", code)
		}
		if len(teams.Teams.Nodes) != 1 || teams.Teams.Nodes[0].ID != valid.String() || teams.Teams.Nodes[0].Role != "ADMINISTRATOR" {
			t.Errorf("teams = %+v, want only %s as ADMINISTRATOR", teams.Teams.Nodes, valid)
		}
		if n := scalar[int](t, r.s, "SELECT count(*) FROM invitations WHERE team_id = ?", valid); n != 0 {
			t.Errorf("the accepted invitation is still there")
		}
		if n := scalar[int](t, r.s, "SELECT count(*) FROM invitations WHERE team_id = ?", expired); n != 1 {
			t.Errorf("the expired invitation is gone")
		}
	})
}

// A staff user made by create-staff before anyone logged in as them: their first login, by
// the provider's own subject and the email in any case, is that user, staff from the start;
// the placeholder subject create-staff stored is no identity.
func TestLoginStaffCreatedAhead(t *testing.T) {
	t.Parallel()
	r := newLoginRig(t, nil)
	_, email := person()
	u, created, err := r.s.CreateStaff(t.Context(), store.StaffRequest{Email: email, Name: "Camille"}, store.DefaultLoginOptions())
	if err != nil || !created {
		t.Fatalf("CreateStaff() = %+v, %v, %v", u, created, err)
	}

	// The placeholder, as a subject with another email, is someone else.
	c := r.browser(t)
	_, otherEmail := person()
	mustLand(t, r.logIn(t, c, opKnobs{Sub: u.Sub, Userinfo: map[string]any{"email": otherEmail}}))
	if me := r.me(t, c); me.Me.ID == u.ID.String() {
		t.Errorf("a login by the placeholder subject reached the staff user")
	}

	sub, _ := person()
	c = r.browser(t)
	mustLand(t, r.logIn(t, c, opKnobs{Sub: sub, Userinfo: map[string]any{"email": strings.ToUpper(email), "given_name": "Camille", "usual_name": "Martin"}}))
	var out struct {
		Me struct {
			ID, Name     string
			IsStaff      bool
			Organization *struct{ Name string }
		}
		AdminUsers struct{ Nodes []struct{ ID string } }
	}
	if code := r.gql(t, c, `{ me { id name isStaff organization { name } } adminUsers(search: "`+email+`") { nodes { id } } }`, &out); code != "" {
		t.Fatalf("me and adminUsers answered %s, want the staff user's session", code)
	}
	if out.Me.ID != u.ID.String() || !out.Me.IsStaff || out.Me.Name != "Camille Martin" || out.Me.Organization == nil {
		t.Errorf("me = %+v, want %s, staff, named by the provider, in an organization", out.Me, u.ID)
	}
	if len(out.AdminUsers.Nodes) != 1 || out.AdminUsers.Nodes[0].ID != u.ID.String() {
		t.Errorf("adminUsers = %+v, want the staff user", out.AdminUsers.Nodes)
	}
	if n := scalar[int](t, r.s, "SELECT count(*) FROM user_identities WHERE user_id = ? AND issuer = ? AND subject = ?", u.ID, r.op.issuer(), sub); n != 1 {
		t.Errorf("the provider's subject is not linked to the staff user")
	}
	if n := scalar[int](t, r.s, "SELECT count(*) FROM user_identities WHERE user_id = ?", u.ID); n != 1 {
		t.Errorf("%d identities, want only the provider's subject", n)
	}
	// The next login needs no email: the subject is linked.
	c = r.browser(t)
	mustLand(t, r.logIn(t, c, opKnobs{Sub: sub}))
	if me := r.me(t, c); me.Me.ID != u.ID.String() {
		t.Errorf("second login as %s, want %s", me.Me.ID, u.ID)
	}
}

func TestLoginFailureRedirect(t *testing.T) {
	t.Parallel()
	r := newLoginRig(t, func(c *auth.LoginConfig) {
		c.FailureRedirect = "https://front.example/login-failed"
		c.Provisioning.CreateUser = false
	})
	for _, tt := range []struct {
		name, reason string
		k            opKnobs
	}{
		{"bad ID token", "invalid_token", opKnobs{IDToken: map[string]any{"nonce": "forged"}}},
		{"bad userinfo", "invalid_userinfo", opKnobs{UserinfoAs: userinfoError}},
		{"refused user", store.ReasonUserCreationDisabled, opKnobs{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sub, email := person()
			tt.k.Sub, tt.k.Userinfo = sub, map[string]any{"email": email}
			c := r.browser(t)
			l := r.logIn(t, c, tt.k)
			if want := "https://front.example/login-failed?reason=" + tt.reason; l.status != http.StatusFound || l.location != want {
				t.Errorf("refusal answered %d to %q, want a redirect to %s", l.status, l.location, want)
			}
			r.mustBeAnonymous(t, c)
		})
	}
}

func TestLoginProviderDownAtFirstLogin(t *testing.T) {
	t.Parallel()
	r := newLoginRig(t, nil)
	r.op.down.Store(true)
	c := r.browser(t)
	mustRefuse(t, r.logIn(t, c, opKnobs{}), "provider_unavailable")
	r.mustBeAnonymous(t, c)
	r.op.down.Store(false)
	sub, email := person()
	mustLand(t, r.logIn(t, c, opKnobs{Sub: sub, Userinfo: map[string]any{"email": email}}))
	if me := r.me(t, c); me.Me.Email != email {
		t.Errorf("me.email = %q, want %q", me.Me.Email, email)
	}
}

// logoutToken is a back-channel logout token for the rig's client, with claims changed by
// change (a nil value removes a claim).
func (r *loginRig) logoutToken(t *testing.T, change map[string]any, how string) string {
	t.Helper()
	claims := map[string]any{
		"iss": r.op.issuer(), "aud": r.op.clientID, "iat": time.Now().Unix(), "exp": time.Now().Add(2 * time.Minute).Unix(),
		"jti":    randomString(),
		"events": map[string]any{backchannelEvent: map[string]any{}},
	}
	for k, v := range change {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	token, err := r.op.sign(claims, how)
	if err != nil {
		t.Fatal(err)
	}
	r.op.handedOut(token)
	return token
}

func (r *loginRig) backchannel(t *testing.T, token string) int {
	t.Helper()
	return r.backchannelAt(t, r.url, token)
}

// backchannelAt posts a logout token to the server at base.
func (r *loginRig) backchannelAt(t *testing.T, base, token string) int {
	t.Helper()
	resp, err := http.PostForm(base+"/auth/backchannel-logout", url.Values{"logout_token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestLoginBackchannelLogout(t *testing.T) {
	t.Parallel()

	// Two browsers of one person, each with its own provider session.
	loggedIn := func(t *testing.T, r *loginRig) (sub, sidA, sidB string, a, b *http.Client) {
		t.Helper()
		sub, email := person()
		sidA, sidB = "sid-"+storetest.Unique(), "sid-"+storetest.Unique()
		a, b = r.browser(t), r.browser(t)
		mustLand(t, r.logIn(t, a, opKnobs{Sub: sub, IDToken: map[string]any{"sid": sidA}, Userinfo: map[string]any{"email": email}}))
		mustLand(t, r.logIn(t, b, opKnobs{Sub: sub, IDToken: map[string]any{"sid": sidB}, Userinfo: map[string]any{"email": email}}))
		return sub, sidA, sidB, r.withCookies(t, a), r.withCookies(t, b)
	}

	t.Run("by sid", func(t *testing.T) {
		t.Parallel()
		r := newLoginRig(t, nil)
		sub, sidA, _, a, b := loggedIn(t, r)
		if got := scalar[int](t, r.s, "SELECT count(*) FROM sessions WHERE subject = ? AND sid = ?", sub, sidA); got != 1 {
			t.Fatalf("%d sessions hold the ID token's sid, want 1", got)
		}
		if status := r.backchannel(t, r.logoutToken(t, map[string]any{"sid": sidA}, signRS256)); status != http.StatusOK {
			t.Fatalf("logout token answered %d, want 200", status)
		}
		r.mustBeAnonymous(t, a)
		r.me(t, b) // the other provider session stays
	})

	t.Run("by sub", func(t *testing.T) {
		t.Parallel()
		r := newLoginRig(t, nil)
		sub, _, _, a, b := loggedIn(t, r)
		if status := r.backchannel(t, r.logoutToken(t, map[string]any{"sub": sub}, signRS256)); status != http.StatusOK {
			t.Fatalf("logout token answered %d, want 200", status)
		}
		r.mustBeAnonymous(t, a)
		r.mustBeAnonymous(t, b)
	})

	t.Run("by sid and sub, signed ES256 when configured", func(t *testing.T) {
		t.Parallel()
		r := newLoginRig(t, func(c *auth.LoginConfig) { c.SignAlgs = []string{"RS256", "ES256"} })
		sub, sidA, _, a, b := loggedIn(t, r)
		if status := r.backchannel(t, r.logoutToken(t, map[string]any{"sid": sidA, "sub": sub}, signES256)); status != http.StatusOK {
			t.Fatalf("logout token answered %d, want 200", status)
		}
		r.mustBeAnonymous(t, a)
		r.me(t, b)
	})

	t.Run("refused tokens end nothing", func(t *testing.T) {
		t.Parallel()
		r := newLoginRig(t, nil)
		sub, sidA, _, a, b := loggedIn(t, r)
		both := map[string]any{"sid": sidA, "sub": sub}
		with := func(extra map[string]any) map[string]any {
			m := maps.Clone(both)
			maps.Copy(m, extra)
			return m
		}
		for _, tt := range []struct {
			name   string
			claims map[string]any
			how    string
		}{
			{"tampered signature", both, signTampered},
			{"key not in the JWKS", both, signStranger},
			{"key not in the JWKS under the published kid", both, signStrangerKid},
			{"alg none", both, signNone},
			{"HS256 keyed with the RSA public key", both, signHS256Public},
			{"ES256 when only RS256 is accepted", both, signES256},
			{"wrong audience", with(map[string]any{"aud": "another-client"}), signRS256},
			{"wrong issuer", with(map[string]any{"iss": "https://evil.example"}), signRS256},
			{"no events", with(map[string]any{"events": nil}), signRS256},
			{"another event", with(map[string]any{"events": map[string]any{"http://schemas.openid.net/event/other": map[string]any{}}}), signRS256},
			{"with a nonce", with(map[string]any{"nonce": "n-1"}), signRS256},
			{"neither sid nor sub", map[string]any{}, signRS256},
			{"issued an hour ahead", with(map[string]any{"iat": time.Now().Add(time.Hour).Unix()}), signRS256},
			{"expired", with(map[string]any{"iat": time.Now().Add(-time.Hour).Unix(), "exp": time.Now().Add(-30 * time.Minute).Unix()}), signRS256},
			{"no iat", with(map[string]any{"iat": nil}), signRS256},
			{"no jti", with(map[string]any{"jti": nil}), signRS256},
			{"empty jti", with(map[string]any{"jti": ""}), signRS256},
			{"jti too long", with(map[string]any{"jti": strings.Repeat("j", 256)}), signRS256},
			{"the event not an object", with(map[string]any{"events": map[string]any{backchannelEvent: true}}), signRS256},
			{"the event null", with(map[string]any{"events": map[string]any{backchannelEvent: nil}}), signRS256},
			{"events not an object", with(map[string]any{"events": backchannelEvent}), signRS256},
			{"issued long ago, without exp", with(map[string]any{"iat": time.Now().Add(-20 * time.Minute).Unix(), "exp": nil}), signRS256},
			{"not a JWT", nil, "garbage"},
		} {
			token := "not-a-token"
			if tt.how != "garbage" {
				token = r.logoutToken(t, tt.claims, tt.how)
			}
			if status := r.backchannel(t, token); status != http.StatusBadRequest {
				t.Errorf("%s: answered %d, want 400", tt.name, status)
			}
		}
		r.me(t, a)
		r.me(t, b)
		if n := scalar[int](t, r.s, "SELECT count(*) FROM sessions WHERE subject = ?", sub); n != 2 {
			t.Errorf("%d sessions left, want 2", n)
		}
	})
}

// Logout through the provider: the browser leaves with id_token_hint and state, comes back,
// and the old cookie is useless.
func TestLoginLogoutThroughFakeProvider(t *testing.T) {
	t.Parallel()
	r := newLoginRig(t, nil)
	sub, email := person()
	c := r.browser(t)
	mustLand(t, r.logIn(t, c, opKnobs{Sub: sub, Userinfo: map[string]any{"email": email}}))
	old := r.withCookies(t, c)
	resp, body := r.logOut(t, c)
	_, after, ok := strings.Cut(string(body), `url=`)
	end, _, _ := strings.Cut(after, `"`)
	if resp.StatusCode != http.StatusOK || !ok || !strings.HasPrefix(end, r.op.issuer()+"/logout?") {
		t.Fatalf("logout answered %d %s, want a page leading to the provider", resp.StatusCode, body)
	}
	resp, err := c.Get(strings.ReplaceAll(end, "&amp;", "&"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "landed on /" {
		t.Errorf("after the provider's logout: %d %q", resp.StatusCode, body)
	}
	r.op.mu.Lock()
	q := r.op.endSession[0]
	r.op.mu.Unlock()
	if q.Get("id_token_hint") == "" || q.Get("state") == "" || q.Get("post_logout_redirect_uri") != r.url+"/auth/logout/callback" {
		t.Errorf("end session request %v", q)
	}
	r.mustBeAnonymous(t, old)
}

// The logs of logins that succeed, fail at each step, and end by back-channel hold no code,
// token or cookie value (each rig checks at its end; this one goes through every path).
func TestLoginLogsNoSecrets(t *testing.T) {
	t.Parallel()
	r := newLoginRig(t, nil)
	sub, email := person()
	info := map[string]any{"email": email}
	sid := "sid-" + storetest.Unique()
	c := r.browser(t)
	mustLand(t, r.logIn(t, c, opKnobs{Sub: sub, Userinfo: info, IDToken: map[string]any{"sid": sid}}))
	for _, k := range []opKnobs{
		{Sub: sub, Userinfo: info, IDToken: map[string]any{"nonce": "forged"}},
		{Sub: sub, Userinfo: info, Sign: signStrangerKid},
		{Sub: sub, Userinfo: info, Sign: signNone},
		{Sub: sub, Userinfo: map[string]any{"sub": "other"}},
		{Sub: sub, Userinfo: info, UserinfoAs: userinfoJWT, UserinfoSign: signTampered},
		{Sub: sub, Userinfo: info, UserinfoAs: userinfoError},
	} {
		if l := r.logIn(t, r.browser(t), k); l.status != http.StatusUnauthorized {
			t.Errorf("login answered %d, want a refusal", l.status)
		}
	}
	if status := r.backchannel(t, r.logoutToken(t, map[string]any{"sid": sid, "nonce": "x"}, signRS256)); status != http.StatusBadRequest {
		t.Errorf("bad logout token answered %d", status)
	}
	if status := r.backchannel(t, r.logoutToken(t, map[string]any{"sid": sid}, signRS256)); status != http.StatusOK {
		t.Errorf("logout token answered %d", status)
	}
	r.mustBeAnonymous(t, c)
	if !strings.Contains(r.logs.String(), "login refused") {
		t.Errorf("no refusal logged:\n%s", r.logs.String())
	}
	r.checkLogs(t)
}

// untilCallback runs a login in a new browser up to the provider's redirect back, and returns
// the browser with the callback URL it was sent to: the provider's half is done (the knobs are
// fixed in the grant), ours not yet.
func (r *loginRig) untilCallback(t *testing.T, k opKnobs) (*http.Client, string) {
	t.Helper()
	c := r.browser(t)
	follow := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == "/auth/callback" {
			return http.ErrUseLastResponse
		}
		return follow(req, via)
	}
	r.op.set(k)
	resp, err := c.Get(r.url + "/auth/login?next=/home")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c.CheckRedirect = follow
	callback := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(callback, r.url+"/auth/callback?") {
		t.Fatalf("provider answered %d to %q, want a redirect to the callback", resp.StatusCode, callback)
	}
	return c, callback
}

// Eight people of one new organization finish their first login at the same moment, through
// the whole flow: one organization is created, by its SIRET and by its mail domain, and the
// eight are in it.
func TestLoginFirstLoginRace(t *testing.T) {
	t.Parallel()
	const n = 8
	for _, by := range []string{"siret", "domain"} {
		t.Run(by, func(t *testing.T) {
			t.Parallel()
			r := newLoginRig(t, nil)
			siret, domain := freshSIRET(), "race-"+storetest.Unique()+".test"
			browsers, callbacks := make([]*http.Client, n), make([]string, n)
			for i := range n {
				info := map[string]any{"email": fmt.Sprintf("p%d@%s", i, domain)}
				if by == "siret" {
					info["siret"] = siret
				}
				browsers[i], callbacks[i] = r.untilCallback(t, opKnobs{Sub: "op-" + storetest.Unique(), Userinfo: info})
			}
			var wg sync.WaitGroup
			landed := make([]string, n)
			for i := range n {
				wg.Go(func() {
					resp, err := browsers[i].Get(callbacks[i])
					if err != nil {
						landed[i] = err.Error()
						return
					}
					defer resp.Body.Close()
					b, _ := io.ReadAll(resp.Body)
					landed[i] = fmt.Sprintf("%d %s", resp.StatusCode, b)
				})
			}
			wg.Wait()
			for i, l := range landed {
				if l != "200 landed on /home" {
					t.Errorf("login %d: %s", i, l)
				}
			}
			name := map[string]string{"siret": siret, "domain": domain}[by]
			if got := scalar[int](t, r.s, "SELECT count(*) FROM organizations WHERE name = ?", name); got != 1 {
				t.Errorf("%d organizations named %s, want 1", got, name)
			}
			if got := scalar[int](t, r.s, `SELECT count(DISTINCT organization_id) FROM users WHERE email LIKE ?`, "%@"+domain); got != 1 {
				t.Errorf("the %d people are in %d organizations, want 1", n, got)
			}
			if got := scalar[int](t, r.s, `SELECT count(*) FROM users u JOIN organizations o ON o.id = u.organization_id
				WHERE u.email LIKE ? AND o.name = ?`, "%@"+domain, name); got != n {
				t.Errorf("%d users in the organization %s, want %d", got, name, n)
			}
			for i, c := range browsers {
				if me := r.me(t, c); me.Me.Organization == nil || me.Me.Organization.Name != name {
					t.Errorf("login %d: me = %+v, want organization %s", i, me.Me, name)
				}
			}
		})
	}
}

// The provider sends the browser back to /auth/logout/callback with the state it was given: any
// other state (forged, missing, or replayed once used) lands on a page, not on
// LOGOUT_REDIRECT_URL, and the session stays ended.
func TestLoginLogoutCallbackChecksState(t *testing.T) {
	t.Parallel()
	r := newLoginRig(t, func(c *auth.LoginConfig) { c.LogoutRedirect = "https://front.example/bye" })
	logOut := func(t *testing.T) (c, old *http.Client, state string) {
		t.Helper()
		sub, email := person()
		c = r.browser(t)
		mustLand(t, r.logIn(t, c, opKnobs{Sub: sub, Userinfo: map[string]any{"email": email}}))
		old = r.withCookies(t, c)
		resp, body := r.logOut(t, c)
		_, after, _ := strings.Cut(string(body), `url=`)
		end, _, _ := strings.Cut(after, `"`)
		u, err := url.Parse(strings.ReplaceAll(end, "&amp;", "&"))
		if err != nil || u.Query().Get("state") == "" {
			t.Fatalf("logout answered %d %s, want a page leading to the provider with a state", resp.StatusCode, body)
		}
		return c, old, u.Query().Get("state")
	}
	callback := func(t *testing.T, c *http.Client, query string) (int, string) {
		t.Helper()
		resp, err := c.Get(r.url + "/auth/logout/callback" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Location")
	}

	for name, query := range map[string]func(state string) string{
		"forged state":  func(state string) string { return "?state=" + url.QueryEscape(state+"x") },
		"no state":      func(string) string { return "" },
		"another state": func(string) string { return "?state=" + randomString() },
	} {
		t.Run(name, func(t *testing.T) {
			c, old, state := logOut(t)
			if status, loc := callback(t, c, query(state)); status != http.StatusBadRequest || loc != "" {
				t.Errorf("callback answered %d to %q, want 400 and no redirect", status, loc)
			}
			r.mustBeAnonymous(t, old)
		})
	}
	t.Run("good state, once", func(t *testing.T) {
		c, old, state := logOut(t)
		if status, loc := callback(t, c, "?state="+url.QueryEscape(state)); status != http.StatusFound || loc != "https://front.example/bye" {
			t.Errorf("callback answered %d to %q, want a redirect to LOGOUT_REDIRECT_URL", status, loc)
		}
		if status, loc := callback(t, c, "?state="+url.QueryEscape(state)); status != http.StatusBadRequest || loc != "" {
			t.Errorf("replayed callback answered %d to %q, want 400", status, loc)
		}
		r.mustBeAnonymous(t, old)
	})
	t.Run("without the browser's logout cookie", func(t *testing.T) {
		_, _, state := logOut(t)
		if status, loc := callback(t, r.browser(t), "?state="+url.QueryEscape(state)); status != http.StatusBadRequest || loc != "" {
			t.Errorf("callback in another browser answered %d to %q, want 400", status, loc)
		}
	})
}

// The OIDC_OP_*_ENDPOINT variables: all of them replace discovery (a provider without one, as
// People configures it); some of them, such as OIDC_OP_JWKS_ENDPOINT that the partner services'
// JWT introspection needs too, replace only those endpoints of the discovered document.
func TestLoginExplicitEndpoints(t *testing.T) {
	t.Parallel()
	t.Run("all of them, without discovery", func(t *testing.T) {
		t.Parallel()
		var op *fakeOP
		r := newLoginRig(t, func(c *auth.LoginConfig) {
			c.Endpoints = map[string]string{
				"authorization_endpoint": c.Issuer + "/authorize", "token_endpoint": c.Issuer + "/token",
				"userinfo_endpoint": c.Issuer + "/userinfo", "jwks_uri": c.Issuer + "/jwks",
				"end_session_endpoint": c.Issuer + "/logout?from=explicit",
			}
		})
		op = r.op
		op.noDiscovery.Store(true)
		sub, email := person()
		c := r.browser(t)
		mustLand(t, r.logIn(t, c, opKnobs{Sub: sub, Userinfo: map[string]any{"email": email}}))
		if me := r.me(t, c); me.Me.Email != email {
			t.Errorf("me.email = %q, want %q", me.Me.Email, email)
		}
		_, body := r.logOut(t, c)
		if !strings.Contains(string(body), "url="+op.issuer()+"/logout?") || !strings.Contains(string(body), "from=explicit") {
			t.Errorf("logout page does not lead to the explicit end-session endpoint")
		}
		if n := op.discoveries.Load(); n != 0 {
			t.Errorf("the provider was asked for its discovery document %d times", n)
		}
	})
	t.Run("only the JWKS endpoint, with discovery", func(t *testing.T) {
		t.Parallel()
		r := newLoginRig(t, func(c *auth.LoginConfig) { c.Endpoints = map[string]string{"jwks_uri": c.Issuer + "/jwks"} })
		sub, email := person()
		c := r.browser(t)
		mustLand(t, r.logIn(t, c, opKnobs{Sub: sub, Userinfo: map[string]any{"email": email}}))
		if me := r.me(t, c); me.Me.Email != email {
			t.Errorf("me.email = %q, want %q", me.Me.Email, email)
		}
	})
	t.Run("an explicit endpoint wins over the discovered one", func(t *testing.T) {
		t.Parallel()
		r := newLoginRig(t, func(c *auth.LoginConfig) {
			c.Endpoints = map[string]string{"jwks_uri": c.Issuer + "/no-keys-here"}
		})
		sub, email := person()
		c := r.browser(t)
		mustRefuse(t, r.logIn(t, c, opKnobs{Sub: sub, Userinfo: map[string]any{"email": email}}), "invalid_token")
	})
}

// LOGIN_REDIRECT_URL is where a login without next (or with a refused next) lands; a provider
// that answers the authorization request with an error (the person declined) ends as
// provider_error.
func TestLoginRedirectAndProviderError(t *testing.T) {
	t.Parallel()
	r := newLoginRig(t, func(c *auth.LoginConfig) { c.LoginRedirect = "https://front.example/app" })
	for _, next := range []string{"", "https://evil.example/"} {
		sub, email := person()
		c := r.browser(t)
		r.op.set(opKnobs{Sub: sub, Userinfo: map[string]any{"email": email}})
		resp, err := c.Get(r.url + "/auth/login?next=" + url.QueryEscape(next))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "https://front.example/app" {
			t.Errorf("next=%q: login answered %d to %q, want LOGIN_REDIRECT_URL", next, resp.StatusCode, loc)
		}
		if me := r.me(t, c); me.Me.Email != email {
			t.Errorf("next=%q: me.email = %q, want %q", next, me.Me.Email, email)
		}
	}

	sub, email := person()
	c, callback := r.untilCallback(t, opKnobs{Sub: sub, Userinfo: map[string]any{"email": email}})
	u := mustParse(t, callback)
	u.RawQuery = url.Values{"error": {"access_denied"}, "state": {u.Query().Get("state")}}.Encode()
	resp, err := c.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	mustRefuse(t, landing{status: resp.StatusCode, body: string(body)}, "provider_error")
	r.mustBeAnonymous(t, c)
}
