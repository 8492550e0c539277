package devop_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"

	"lasuite.fr/people/auth/devop"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/demo"
	"lasuite.fr/people/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

const (
	redirectURI   = "http://rp.test/auth/callback"
	logoutURI     = "http://rp.test/auth/logout/callback"
	e2eOwnerEmail = demo.E2EOwnerSub + "@example.com"
)

var demoOnce sync.Once

// demoStore is the package's database with a small demo data set: the e2e users, the
// organizations' administrators and a few generated users.
func demoStore(t *testing.T) *store.Store {
	t.Helper()
	s := storetest.Open(t)
	var err error
	demoOnce.Do(func() {
		_, err = demo.Load(context.Background(), s.DB(), demo.Options{Users: 30, Teams: -1, Contacts: -1, PublicContacts: -1})
	})
	if err != nil {
		t.Fatalf("load demo data: %v", err)
	}
	return s
}

// env is a provider served on 127.0.0.1 at /dev-oidc, and a client that does not follow
// redirects, so that a test sees each step of a browser's journey.
type env struct {
	p       *devop.Provider
	srv     *httptest.Server
	browser *http.Client
}

func newEnv(t *testing.T, edit func(*devop.Options)) *env {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	o := devop.Options{
		Issuer:         "http://" + srv.Listener.Addr().String() + devop.Path,
		Users:          demoStore(t),
		RPClient:       devop.Client{ID: "people", RedirectURIs: []string{redirectURI}, PostLogoutRedirectURIs: []string{logoutURI}},
		PartnerClients: []devop.Client{{ID: "docs"}, {ID: "meet"}},
		Development:    true,
	}
	if edit != nil {
		edit(&o)
	}
	p, err := devop.New(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(devop.Path+"/", p.Handler())
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &env{p: p, srv: srv, browser: browser}
}

// relyingParty is zitadel's relying party for client c, configured by discovery, checking nonce.
func (e *env) relyingParty(t *testing.T, c devop.Client, nonce string) rp.RelyingParty {
	t.Helper()
	scopes := []string{"openid", "email", "given_name", "usual_name", "siret", "idp_id"}
	r, err := rp.NewRelyingPartyOIDC(t.Context(), e.p.Issuer(), c.ID, c.Secret, redirectURI, scopes,
		rp.WithVerifierOpts(rp.WithNonce(func(context.Context) string { return nonce })))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (e *env) get(t *testing.T, u string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (e *env) postForm(t *testing.T, u string, form url.Values, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func location(t *testing.T, resp *http.Response, wantStatus int) *url.URL {
	t.Helper()
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL, resp.StatusCode, wantStatus, body(t, resp))
	}
	u, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

var authRequestIDField = regexp.MustCompile(`name="id" value="([^"]+)"`)

// signIn follows a browser from the authorization URL through the login page, where it picks
// sub, to the redirect back to the client, and returns that redirect's query.
func (e *env) signIn(t *testing.T, authURL, sub string) url.Values {
	t.Helper()
	loginURL := location(t, e.get(t, authURL), http.StatusFound)
	if !strings.HasPrefix(loginURL.String(), e.p.Issuer()+"/login?") {
		t.Fatalf("authorize redirects to %s, want the login page under the issuer", loginURL)
	}
	page := e.get(t, loginURL.String())
	html := body(t, page)
	if page.StatusCode != http.StatusOK {
		t.Fatalf("login page: %d %s", page.StatusCode, html)
	}
	m := authRequestIDField.FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("login page has no auth request id: %s", html)
	}
	callback := location(t, e.postForm(t, e.p.Issuer()+"/login", url.Values{"id": {m[1]}, "sub": {sub}},
		"Origin", e.srv.URL, "Sec-Fetch-Site", "same-origin"), http.StatusSeeOther)
	if !strings.HasPrefix(callback.String(), e.p.Issuer()+"/authorize/callback?") {
		t.Fatalf("login redirects to %s, want the callback under the issuer", callback)
	}
	back := location(t, e.get(t, callback.String()), http.StatusFound)
	if got := back.Scheme + "://" + back.Host + back.Path; got != redirectURI {
		t.Fatalf("callback redirects to %s, want %s", back, redirectURI)
	}
	return back.Query()
}

const verifier = "a-code-verifier-of-at-least-forty-three-characters-long"

func pkce() rp.AuthURLOpt { return rp.WithCodeChallenge(oidc.NewSHACodeChallenge(verifier)) }

func nonceParam(nonce string) rp.AuthURLOpt { return rp.AuthURLOpt(rp.WithURLParam("nonce", nonce)) }

// e2eOwnerClaims are the userinfo claims of the demo's e2e owner for relyingParty's scopes.
func e2eOwnerClaims(t *testing.T) map[string]any {
	t.Helper()
	var siret string
	err := demoStore(t).DB().NewRaw(`SELECT registration_id FROM organization_registration_ids
		WHERE organization_id = (SELECT organization_id FROM users WHERE sub = ?) ORDER BY created_at, id LIMIT 1`, demo.E2EOwnerSub).
		Scan(t.Context(), &siret)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"sub": demo.E2EOwnerSub, "email": e2eOwnerEmail, "given_name": "E2E",
		"usual_name": "Team Owner", "siret": siret, "idp_id": "dev"}
}

func TestDiscoveryCarriesTheIssuerPath(t *testing.T) {
	e := newEnv(t, nil)
	resp := e.get(t, e.p.Issuer()+"/.well-known/openid-configuration")
	var d map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d["issuer"] != e.p.Issuer() {
		t.Errorf("issuer = %v, want %s", d["issuer"], e.p.Issuer())
	}
	ep := e.p.Endpoints()
	want := map[string]string{
		"authorization_endpoint": ep.Authorization, "token_endpoint": ep.Token, "userinfo_endpoint": ep.Userinfo,
		"jwks_uri": ep.JWKS, "end_session_endpoint": ep.EndSession, "introspection_endpoint": ep.Introspection,
		"revocation_endpoint": ep.Revocation,
	}
	for k, v := range want {
		if d[k] != v || !strings.HasPrefix(v, e.p.Issuer()+"/") {
			t.Errorf("%s = %v, Endpoints() says %s; both must be under the issuer %s", k, d[k], v, e.p.Issuer())
		}
	}
	if diff := cmp.Diff([]any{"S256"}, d["code_challenge_methods_supported"]); diff != "" {
		t.Errorf("code_challenge_methods_supported (-want +got):\n%s", diff)
	}
	if _, ok := d["device_authorization_endpoint"]; ok {
		t.Error("discovery lists a device authorization endpoint the provider does not serve")
	}
	keys := e.get(t, ep.JWKS)
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(keys.Body).Decode(&set); err != nil || len(set.Keys) != 2 ||
		!set.Keys[0].IsPublic() || set.Keys[0].Algorithm != "RS256" || !set.Keys[1].IsPublic() || set.Keys[1].Algorithm != "ES256" {
		t.Errorf("JWKS = %+v (%v), want a public RS256 key (ID tokens), then a public ES256 key (introspection answers)", set, err)
	}
}

func TestCodeFlow(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(o *devop.Options) { o.SigningAlg = alg })
			relying := e.relyingParty(t, e.p.RPClient(), "n-0S6_WzA2Mj")
			q := e.signIn(t, rp.AuthURL("st-1", relying, pkce(), nonceParam("n-0S6_WzA2Mj")), demo.E2EOwnerSub)
			if q.Get("state") != "st-1" || q.Get("code") == "" {
				t.Fatalf("redirect query = %v, want a code and state st-1", q)
			}
			tokens, err := rp.CodeExchange[*oidc.IDTokenClaims](t.Context(), q.Get("code"), relying, rp.WithCodeVerifier(verifier))
			if err != nil {
				t.Fatalf("code exchange: %v", err)
			}
			if c := tokens.IDTokenClaims; c.Subject != demo.E2EOwnerSub || c.Issuer != e.p.Issuer() || c.Nonce != "n-0S6_WzA2Mj" ||
				c.SignatureAlg != jose.SignatureAlgorithm(alg) || c.Email != "" {
				t.Errorf("ID token claims: sub %q iss %q nonce %q alg %q email %q; want the e2e owner's, from %s, signed %s, without user claims",
					c.Subject, c.Issuer, c.Nonce, c.SignatureAlg, c.Email, e.p.Issuer(), alg)
			}
			info, err := rp.Userinfo[*oidc.UserInfo](t.Context(), tokens.AccessToken, "Bearer", demo.E2EOwnerSub, relying)
			if err != nil {
				t.Fatalf("userinfo: %v", err)
			}
			got, _ := json.Marshal(info)
			var claims map[string]any
			json.Unmarshal(got, &claims)
			if diff := cmp.Diff(e2eOwnerClaims(t), claims); diff != "" {
				t.Errorf("userinfo (-want +got):\n%s", diff)
			}

			_, err = rp.CodeExchange[*oidc.IDTokenClaims](t.Context(), q.Get("code"), relying, rp.WithCodeVerifier(verifier))
			if !isOAuthError(err, "invalid_grant") {
				t.Errorf("replayed code: err = %v, want invalid_grant", err)
			}
		})
	}
}

func isOAuthError(err error, code string) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == code
}

func TestUserinfoAsSignedJWT(t *testing.T) {
	e := newEnv(t, func(o *devop.Options) { o.RPClient.UserinfoJWT = true; o.SigningAlg = "ES256" })
	relying := e.relyingParty(t, e.p.RPClient(), "nonce-jwt")
	q := e.signIn(t, rp.AuthURL("st", relying, pkce(), nonceParam("nonce-jwt")), demo.E2EOwnerSub)
	tokens, err := rp.CodeExchange[*oidc.IDTokenClaims](t.Context(), q.Get("code"), relying, rp.WithCodeVerifier(verifier))
	if err != nil {
		t.Fatal(err)
	}
	resp := e.get(t, e.p.Endpoints().Userinfo, "Authorization", "Bearer "+tokens.AccessToken)
	raw := body(t, resp)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "application/jwt" {
		t.Fatalf("userinfo: %d %s %s, want 200 application/jwt", resp.StatusCode, ct, raw)
	}
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := rp.NewRemoteKeySet(http.DefaultClient, e.p.Endpoints().JWKS).VerifySignature(t.Context(), jws)
	if err != nil {
		t.Fatalf("userinfo signature: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	want := e2eOwnerClaims(t)
	want["iss"], want["aud"] = e.p.Issuer(), "people"
	if diff := cmp.Diff(want, claims); diff != "" {
		t.Errorf("signed userinfo (-want +got):\n%s", diff)
	}
}

func TestPKCE(t *testing.T) {
	e := newEnv(t, nil)
	relying := e.relyingParty(t, e.p.RPClient(), "n")

	t.Run("authorization without a challenge is refused", func(t *testing.T) {
		back := location(t, e.get(t, rp.AuthURL("st-2", relying, nonceParam("n"))), http.StatusFound)
		if q := back.Query(); !strings.HasPrefix(back.String(), redirectURI) || q.Get("error") != "invalid_request" || q.Get("state") != "st-2" {
			t.Errorf("authorize without PKCE redirects to %s, want %s?error=invalid_request&state=st-2", back, redirectURI)
		}
	})
	t.Run("plain challenge is refused", func(t *testing.T) {
		u := rp.AuthURL("st-3", relying, nonceParam("n"), rp.AuthURLOpt(rp.WithURLParam("code_challenge", verifier)),
			rp.AuthURLOpt(rp.WithURLParam("code_challenge_method", "plain")))
		back := location(t, e.get(t, u), http.StatusFound)
		if back.Query().Get("error") == "" || back.Query().Get("code") != "" {
			t.Errorf("authorize with a plain challenge redirects to %s, want an error", back)
		}
	})
	for _, tt := range []struct{ name, verifier string }{{"token request without the verifier", ""}, {"wrong verifier", verifier + "x"}} {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			q := e.signIn(t, rp.AuthURL("st", relying, pkce(), nonceParam("n")), demo.E2EMemberSub)
			var opts []rp.CodeExchangeOpt
			if tt.verifier != "" {
				opts = append(opts, rp.WithCodeVerifier(tt.verifier))
			}
			if _, err := rp.CodeExchange[*oidc.IDTokenClaims](t.Context(), q.Get("code"), relying, opts...); err == nil {
				t.Error("code exchange succeeded")
			}
		})
	}
}

func TestWrongClientSecretIsRefused(t *testing.T) {
	e := newEnv(t, nil)
	c := e.p.RPClient()
	relying := e.relyingParty(t, c, "n")
	q := e.signIn(t, rp.AuthURL("st", relying, pkce(), nonceParam("n")), demo.E2EOwnerSub)
	c.Secret += "x"
	wrong := e.relyingParty(t, c, "n")
	_, err := rp.CodeExchange[*oidc.IDTokenClaims](t.Context(), q.Get("code"), wrong, rp.WithCodeVerifier(verifier))
	if err == nil {
		t.Fatal("code exchange with a wrong secret succeeded")
	}
	// The right client can still use the code: a failed client authentication does not burn it.
	if _, err := rp.CodeExchange[*oidc.IDTokenClaims](t.Context(), q.Get("code"), relying, rp.WithCodeVerifier(verifier)); err != nil {
		t.Errorf("code exchange by the right client after a wrong one: %v", err)
	}
}

func TestEndSession(t *testing.T) {
	e := newEnv(t, nil)
	relying := e.relyingParty(t, e.p.RPClient(), "n")
	q := e.signIn(t, rp.AuthURL("st", relying, pkce(), nonceParam("n")), demo.E2EOwnerSub)
	tokens, err := rp.CodeExchange[*oidc.IDTokenClaims](t.Context(), q.Get("code"), relying, rp.WithCodeVerifier(verifier))
	if err != nil {
		t.Fatal(err)
	}
	endSession := func(post string) *http.Response {
		return e.get(t, e.p.Endpoints().EndSession+"?"+url.Values{"id_token_hint": {tokens.IDToken},
			"post_logout_redirect_uri": {post}, "state": {"logout-state"}}.Encode())
	}

	if resp := endSession("http://evil.test/"); resp.StatusCode < 400 {
		t.Errorf("end session to an unregistered URI: status %d (Location %q), want a refusal", resp.StatusCode, resp.Header.Get("Location"))
	}
	back := location(t, endSession(logoutURI), http.StatusFound)
	if back.Query().Get("state") != "logout-state" || !strings.HasPrefix(back.String(), logoutURI+"?") {
		t.Errorf("end session redirects to %s, want %s?state=logout-state", back, logoutURI)
	}
	if resp := e.get(t, e.p.Endpoints().Userinfo, "Authorization", "Bearer "+tokens.AccessToken); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("userinfo after end session: status %d, want 401", resp.StatusCode)
	}
	plain := location(t, e.get(t, e.p.Endpoints().EndSession), http.StatusFound)
	if plain.String() != e.p.Issuer()+"/logged-out" {
		t.Errorf("end session without a client redirects to %s, want the provider's logged-out page", plain)
	}
}

// mint asks the dev token endpoint for a token, as make token does.
func (e *env) mint(t *testing.T, form url.Values, header ...string) (int, string) {
	t.Helper()
	resp := e.postForm(t, e.p.Endpoints().DevToken, form, header...)
	return resp.StatusCode, strings.TrimSpace(body(t, resp))
}

func (e *env) introspect(t *testing.T, c devop.Client, token string, basic bool) (int, map[string]any) {
	t.Helper()
	form := url.Values{"token": {token}}
	if !basic {
		form.Set("client_id", c.ID)
		form.Set("client_secret", c.Secret)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.p.Endpoints().Introspection, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if basic {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]any
	json.NewDecoder(resp.Body).Decode(&got)
	return resp.StatusCode, got
}

func TestIntrospection(t *testing.T) {
	e := newEnv(t, nil)
	status, token := e.mint(t, url.Values{"user": {strings.ToUpper(e2eOwnerEmail)}, "client_id": {"docs"}})
	if status != http.StatusOK || token == "" {
		t.Fatalf("mint: %d %q", status, token)
	}
	people := e.p.RPClient()
	partners := map[string]devop.Client{}
	for _, c := range e.p.PartnerClients() {
		partners[c.ID] = c
	}

	for _, basic := range []bool{false, true} {
		status, got := e.introspect(t, people, token, basic)
		if status != http.StatusOK {
			t.Fatalf("introspection (basic %v): status %d", basic, status)
		}
		for _, k := range []string{"exp", "iat", "jti"} {
			if _, ok := got[k]; !ok {
				t.Errorf("introspection has no %s", k)
			}
			delete(got, k)
		}
		want := map[string]any{"active": true, "sub": demo.E2EOwnerSub, "aud": []any{"docs"}, "client_id": "docs",
			"scope": "openid email groups", "email": e2eOwnerEmail, "iss": e.p.Issuer(), "token_type": "Bearer"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("introspection by People, basic %v (-want +got):\n%s", basic, diff)
		}
	}

	tests := []struct {
		name   string
		client devop.Client
		token  string
		status int
		active bool
	}{
		{"the partner itself", partners["docs"], token, http.StatusOK, true},
		{"another partner", partners["meet"], token, http.StatusOK, false},
		{"garbage token", people, "not-a-token", http.StatusOK, false},
		{"ID-token-shaped garbage", people, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", http.StatusOK, false},
		{"wrong secret", devop.Client{ID: "people", Secret: "wrong"}, token, http.StatusUnauthorized, false},
		{"unknown client", devop.Client{ID: "nobody", Secret: "x"}, token, http.StatusUnauthorized, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, got := e.introspect(t, tt.client, tt.token, false)
			if status != tt.status || (status == http.StatusOK && got["active"] != tt.active) {
				t.Errorf("introspection: status %d active %v, want %d %v (%v)", status, got["active"], tt.status, tt.active, got)
			}
			if !tt.active && got["sub"] != nil {
				t.Errorf("an inactive answer tells the sub: %v", got)
			}
		})
	}
}

func TestMint(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name   string
		form   url.Values
		header []string
		status int
	}{
		{"ok", url.Values{"user": {e2eOwnerEmail}, "client_id": {"meet"}}, nil, http.StatusOK},
		{"ok with scopes", url.Values{"user": {e2eOwnerEmail}, "client_id": {"meet"}, "scope": {"openid groups"}}, nil, http.StatusOK},
		{"People is not a partner", url.Values{"user": {e2eOwnerEmail}, "client_id": {"people"}}, nil, http.StatusBadRequest},
		{"unknown client", url.Values{"user": {e2eOwnerEmail}, "client_id": {"nobody"}}, nil, http.StatusBadRequest},
		{"unknown scope", url.Values{"user": {e2eOwnerEmail}, "client_id": {"docs"}, "scope": {"openid admin"}}, nil, http.StatusBadRequest},
		{"unknown user", url.Values{"user": {"nobody@example.com"}, "client_id": {"docs"}}, nil, http.StatusNotFound},
		{"no user", url.Values{"client_id": {"docs"}}, nil, http.StatusBadRequest},
		{"NUL in the email", url.Values{"user": {"a\x00@example.com"}, "client_id": {"docs"}}, nil, http.StatusNotFound},
		{"a browser", url.Values{"user": {e2eOwnerEmail}, "client_id": {"docs"}}, []string{"Origin", "http://evil.test"}, http.StatusForbidden},
		{"a browser, same site", url.Values{"user": {e2eOwnerEmail}, "client_id": {"docs"}}, []string{"Sec-Fetch-Site", "same-origin"}, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, text := e.mint(t, tt.form, tt.header...); status != tt.status {
				t.Errorf("mint: %d %q, want %d", status, text, tt.status)
			}
		})
	}
	if resp := e.get(t, e.p.Endpoints().DevToken+"?user="+url.QueryEscape(e2eOwnerEmail)+"&client_id=docs"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("mint over GET: status %d, want 405", resp.StatusCode)
	}

	prod := newEnv(t, func(o *devop.Options) { o.Development = false })
	if status, text := prod.mint(t, url.Values{"user": {e2eOwnerEmail}, "client_id": {"docs"}}); status != http.StatusForbidden {
		t.Errorf("mint outside development: %d %q, want 403", status, text)
	}
}

// TestMintRefusesRemotePeers: a token is minted for a loopback peer naming a loopback host
// only. A loopback peer naming another host is a browser whose page's name was rebound to
// 127.0.0.1 (DNS rebinding).
func TestMintRefusesRemotePeers(t *testing.T) {
	e := newEnv(t, nil)
	for _, tt := range []struct {
		remote, host string
		status       int
	}{
		{"127.0.0.1:41000", "localhost:8071", http.StatusOK},
		{"127.0.0.1:41000", "LOCALHOST", http.StatusOK},
		{"127.0.0.1:41000", "127.0.0.1:8071", http.StatusOK},
		{"127.0.0.1:41000", "127.8.9.10", http.StatusOK},
		{"[::1]:41000", "[::1]:8071", http.StatusOK},
		{"[::1]:41000", "[::1]", http.StatusOK},
		{"192.0.2.7:41000", "localhost:8071", http.StatusForbidden},
		{"127.0.0.1:41000", "evil.example:8071", http.StatusForbidden},
		{"127.0.0.1:41000", "evil.example", http.StatusForbidden},
		{"127.0.0.1:41000", "localhost.evil.example", http.StatusForbidden},
		{"127.0.0.1:41000", "127.0.0.1.nip.io", http.StatusForbidden},
		{"127.0.0.1:41000", "192.0.2.7:8071", http.StatusForbidden},
		{"127.0.0.1:41000", "[fe80::1%25lo]:8071", http.StatusForbidden},
		{"127.0.0.1:41000", "", http.StatusForbidden},
	} {
		req := httptest.NewRequest(http.MethodPost, e.p.Endpoints().DevToken,
			strings.NewReader(url.Values{"user": {e2eOwnerEmail}, "client_id": {"docs"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr, req.Host = tt.remote, tt.host
		w := httptest.NewRecorder()
		e.p.Handler().ServeHTTP(w, req)
		if w.Code != tt.status {
			t.Errorf("mint from %s to Host %q: status %d %q, want %d", tt.remote, tt.host, w.Code, w.Body, tt.status)
		}
	}
}

func TestLoginPage(t *testing.T) {
	e := newEnv(t, nil)
	relying := e.relyingParty(t, e.p.RPClient(), "n")
	start := func(t *testing.T, opts ...rp.AuthURLOpt) (loginURL, id string) {
		t.Helper()
		u := location(t, e.get(t, rp.AuthURL("st", relying, append([]rp.AuthURLOpt{pkce(), nonceParam("n")}, opts...)...)), http.StatusFound)
		return u.String(), u.Query().Get("authRequestID")
	}

	t.Run("lists the e2e users first, with headers that lock the page", func(t *testing.T) {
		loginURL, _ := start(t)
		resp := e.get(t, loginURL)
		html := body(t, resp)
		subs := regexp.MustCompile(`name="sub" value="([^"]+)"`).FindAllStringSubmatch(html, -1)
		if len(subs) < 10 || subs[0][1] != demo.E2EOwnerSub || subs[1][1] != demo.E2EAdministratorSub || subs[2][1] != demo.E2EMemberSub {
			t.Errorf("login page lists %d users starting %v, want the e2e owner, administrator and member first", len(subs), subs[:min(3, len(subs))])
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "style-src 'sha256-", "form-action 'self' http://rp.test", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("CSP %q lacks %q", csp, want)
			}
		}
		if strings.Contains(html, "<script") || strings.Contains(html, "http://") && !strings.Contains(csp, "http://") {
			t.Error("login page loads scripts or external assets")
		}
		if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("login page headers %v, want no-store and no-referrer", resp.Header)
		}
	})
	t.Run("login_hint puts that user first", func(t *testing.T) {
		admin := "admin@demo.gouv.fr"
		loginURL, _ := start(t, rp.AuthURLOpt(rp.WithURLParam("login_hint", admin)))
		html := body(t, e.get(t, loginURL))
		first := regexp.MustCompile(`class="email">([^<]+)<`).FindStringSubmatch(html)
		if first == nil || first[1] != admin {
			t.Errorf("first user listed is %v, want %s", first, admin)
		}
	})
	t.Run("a sign-in completes once", func(t *testing.T) {
		_, id := start(t)
		form := url.Values{"id": {id}, "sub": {demo.E2EOwnerSub}}
		location(t, e.postForm(t, e.p.Issuer()+"/login", form), http.StatusSeeOther)
		if resp := e.postForm(t, e.p.Issuer()+"/login", form); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("second sign-in with the same request: status %d, want 400", resp.StatusCode)
		}
	})
	refusals := []struct {
		name   string
		form   func(id string) url.Values
		header []string
		status int
	}{
		{"cross-site post", func(id string) url.Values { return url.Values{"id": {id}, "sub": {demo.E2EOwnerSub}} },
			[]string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"foreign origin", func(id string) url.Values { return url.Values{"id": {id}, "sub": {demo.E2EOwnerSub}} },
			[]string{"Origin", "http://evil.test"}, http.StatusForbidden},
		{"unknown request", func(string) url.Values { return url.Values{"id": {"forged"}, "sub": {demo.E2EOwnerSub}} }, nil, http.StatusBadRequest},
		{"unknown user", func(id string) url.Values { return url.Values{"id": {id}, "sub": {"nobody"}} }, nil, http.StatusBadRequest},
		{"no user", func(id string) url.Values { return url.Values{"id": {id}} }, nil, http.StatusBadRequest},
	}
	for _, tt := range refusals {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			_, id := start(t)
			if resp := e.postForm(t, e.p.Issuer()+"/login", tt.form(id), tt.header...); resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
	t.Run("an unknown request shows no users", func(t *testing.T) {
		resp := e.get(t, e.p.Issuer()+"/login?authRequestID=forged")
		if html := body(t, resp); resp.StatusCode != http.StatusBadRequest || strings.Contains(html, "@example.com") {
			t.Errorf("status %d, want 400 without users", resp.StatusCode)
		}
	})
	t.Run("prompt=none cannot succeed", func(t *testing.T) {
		back := location(t, e.get(t, rp.AuthURL("st", relying, pkce(), nonceParam("n"), rp.WithPrompt("none"))), http.StatusFound)
		if back.Query().Get("error") != "login_required" {
			t.Errorf("prompt=none redirects to %s, want error=login_required", back)
		}
	})
}

func TestCheckListenAddr(t *testing.T) {
	tests := []struct {
		addr        string
		allowRemote bool
		ok          bool
	}{
		{"127.0.0.1:8071", false, true},
		{"127.0.0.2:8071", false, true},
		{"[::1]:8071", false, true},
		{"localhost:8071", false, true},
		{":8071", false, false},
		{"0.0.0.0:8071", false, false},
		{"[::]:8071", false, false},
		{"192.168.1.10:8071", false, false},
		{"people.example.com:8071", false, false},
		{"8071", false, false},
		{":8071", true, true},
		{"192.168.1.10:8071", true, true},
	}
	for _, tt := range tests {
		err := devop.CheckListenAddr(tt.addr, tt.allowRemote)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, devop.ErrRemote)) {
			t.Errorf("CheckListenAddr(%q, %v) = %v, want ok %v", tt.addr, tt.allowRemote, err, tt.ok)
		}
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	s := demoStore(t)
	tests := map[string]devop.Options{
		"no issuer":         {Users: s, RPClient: devop.Client{ID: "people"}},
		"issuer with query": {Issuer: "http://localhost/x?y=1", Users: s, RPClient: devop.Client{ID: "people"}},
		"no users":          {Issuer: "http://localhost/x", RPClient: devop.Client{ID: "people"}},
		"no RP client id":   {Issuer: "http://localhost/x", Users: s},
		"duplicate client":  {Issuer: "http://localhost/x", Users: s, RPClient: devop.Client{ID: "docs"}, PartnerClients: []devop.Client{{ID: "docs"}}},
		"unknown algorithm": {Issuer: "http://localhost/x", Users: s, RPClient: devop.Client{ID: "people"}, SigningAlg: "HS256"},
	}
	for name, o := range tests {
		if _, err := devop.New(t.Context(), o); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	p, err := devop.New(t.Context(), devop.Options{Issuer: "http://localhost/x", Users: s, RPClient: devop.Client{ID: "people"},
		PartnerClients: []devop.Client{{ID: "docs", Secret: "given"}}})
	if err != nil {
		t.Fatal(err)
	}
	if p.RPClient().Secret == "" || len(p.RPClient().Secret) < 40 || p.PartnerClients()[0].Secret != "given" {
		t.Errorf("secrets: RP %q, docs %q; want a generated one and the given one", p.RPClient().Secret, p.PartnerClients()[0].Secret)
	}
}
