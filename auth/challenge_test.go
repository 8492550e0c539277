package auth_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/auth/oidctest"
	"lasuite.fr/people/store/storetest"
)

// TestBearerMissingHeader: a request without Authorization is anonymous; it becomes 401 only
// when an operation needs a caller and none came (no session either).
func TestBearerMissingHeader(t *testing.T) {
	t.Parallel()
	e := newRSEnv(t, auth.BackendJSON)
	u, _ := e.user(t)

	a := e.do(t, "", `{ config { release } }`, nil)
	if a.status != http.StatusOK || a.header.Get("WWW-Authenticate") != "" || len(a.Errors) > 0 {
		t.Errorf("public field: status %d, WWW-Authenticate %q, errors %+v; want 200", a.status, a.header.Get("WWW-Authenticate"), a.Errors)
	}
	for _, q := range []string{`{ me { id } }`, `{ config { release } me { id } }`, `mutation { deleteTeam(input: {id: "00000000-0000-0000-0000-000000000001"}) { deletedId } }`} {
		a := e.do(t, "", q, nil)
		if a.status != http.StatusUnauthorized || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), `Bearer error="invalid_request"`) || a.code() != "UNAUTHENTICATED" {
			t.Errorf("%s: status %d, WWW-Authenticate %q, code %q; want 401 invalid_request UNAUTHENTICATED", q, a.status, a.header.Get("WWW-Authenticate"), a.code())
		}
	}

	// A caller found another way (the session middleware runs inside this one) is not challenged.
	as := func(p auth.Principal) *rsEnv {
		return &rsEnv{as: e.as, s: e.s, logs: e.logs, h: e.rs.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			e.api.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
		}))}
	}
	session := as(auth.Principal{UserID: u.ID, Method: auth.MethodSession})
	if a := session.do(t, "", `{ me { id } }`, nil); a.status != http.StatusOK || len(a.Errors) > 0 {
		t.Errorf("with a session: status %d, errors %+v; want 200", a.status, a.Errors)
	}
	// A session caller on a field bearer tokens may not use: FORBIDDEN stays a 200 GraphQL error.
	bearer := as(auth.Principal{UserID: u.ID, Method: auth.MethodBearer})
	if a := bearer.do(t, "", `{ users { totalCount } }`, nil); a.status != http.StatusOK || a.code() != "FORBIDDEN" {
		t.Errorf("wrong method: status %d, code %q; want 200 FORBIDDEN", a.status, a.code())
	}
}

func TestBearerNotConfigured(t *testing.T) {
	t.Parallel()
	as := oidctest.NewServer(t, oidctest.Options{})
	for name, cfg := range map[string]auth.ResourceServerConfig{
		"nothing":          {},
		"no secret":        {Issuer: as.URL, IntrospectionURL: as.IntrospectionURL(), ClientID: as.ClientID},
		"no introspection": {Issuer: as.URL, ClientID: as.ClientID, ClientSecret: as.ClientSecret},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newRSEnvWith(t, as, cfg)
			tok := as.Mint(oidctest.Token{Subject: "x", ClientID: "docs"})
			a := e.do(t, "Bearer "+tok, `{ me { id } }`, nil)
			www := a.header.Get("WWW-Authenticate")
			if a.status != http.StatusUnauthorized || !strings.HasPrefix(www, `Bearer error="invalid_token"`) || !strings.Contains(www, "not configured") {
				t.Errorf("status %d, WWW-Authenticate %q; want 401 invalid_token, not configured", a.status, www)
			}
			if n := as.Introspections(); n != 0 {
				t.Errorf("introspections = %d, want 0", n)
			}
			// Anonymous requests are served as usual.
			if a := e.do(t, "", `{ config { release } }`, nil); a.status != http.StatusOK {
				t.Errorf("anonymous: status %d, want 200", a.status)
			}
		})
	}
}

func TestBearerClientAuthentication(t *testing.T) {
	t.Parallel()
	keys, err := auth.ParseDecryptionKeys(rsKeyPEM(), "RSA-OAEP")
	if err != nil {
		t.Fatal(err)
	}
	pub := keys.PublicKeys().Keys[0]
	for _, method := range []string{auth.ClientSecretPost, auth.ClientSecretBasic} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			// A secret with characters that the basic scheme must form-encode.
			as := oidctest.NewServer(t, oidctest.Options{ClientID: "people:rs", ClientSecret: "s3cr:t/+%= " + storetest.Unique(), ClientAuthMethod: method, EncryptionKey: &pub})
			cfg := auth.ResourceServerConfig{Issuer: as.URL, IntrospectionURL: as.IntrospectionURL(), JWKSURL: as.JWKSURL(),
				ClientID: as.ClientID, ClientSecret: as.ClientSecret, ClientAuthMethod: method, Backend: auth.BackendJWT, DecryptionKeys: keys}
			e := newRSEnvWith(t, as, cfg)
			_, sub := e.user(t)
			e.mustStatus(t, as.Mint(oidctest.Token{Subject: sub, ClientID: "docs"}), http.StatusOK)

			cfg.ClientSecret = "wrong"
			wrong := newRSEnvWith(t, as, cfg)
			a := wrong.do(t, "Bearer "+as.Mint(oidctest.Token{Subject: sub, ClientID: "docs"}), `{ me { id } }`, nil)
			if a.status != http.StatusUnauthorized || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), `Bearer error="invalid_token"`) {
				t.Errorf("wrong client secret: status %d, WWW-Authenticate %q; want 401 invalid_token", a.status, a.header.Get("WWW-Authenticate"))
			}
			if !strings.Contains(wrong.logs.String(), `"level":"ERROR"`) || strings.Contains(wrong.logs.String(), as.ClientSecret) {
				t.Errorf("wrong client secret: want an error for operators, without the secret; logs: %s", wrong.logs)
			}
		})
	}
}

func TestBearerServerDown(t *testing.T) {
	t.Parallel()
	e := newRSEnv(t, auth.BackendJSON)
	_, sub := e.user(t)
	tok := e.as.Mint(oidctest.Token{Subject: sub, ClientID: "docs"})
	e.as.Close()
	a := e.do(t, "Bearer "+tok, `{ me { id } }`, nil)
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" || a.code() != "UNAVAILABLE" {
		t.Errorf("status %d, Retry-After %q, code %q; want 503 with Retry-After", a.status, a.header.Get("Retry-After"), a.code())
	}
	if !strings.Contains(e.logs.String(), "authorization server is unavailable") {
		t.Errorf("no log line says the server is down: %s", e.logs)
	}
}

func TestNewResourceServerRefusesBadConfiguration(t *testing.T) {
	t.Parallel()
	keys, err := auth.ParseDecryptionKeys(rsKeyPEM(), "RSA-OAEP")
	if err != nil {
		t.Fatal(err)
	}
	base := auth.ResourceServerConfig{Issuer: "https://op.test", IntrospectionURL: "https://op.test/introspect", JWKSURL: "https://op.test/jwks",
		ClientID: "people", ClientSecret: "secret", Backend: auth.BackendJWT, DecryptionKeys: keys}
	if _, err := auth.NewResourceServer(base, nil, nil); err != nil {
		t.Fatalf("good configuration: %v", err)
	}
	for name, edit := range map[string]func(*auth.ResourceServerConfig){
		"jwt without key":         func(c *auth.ResourceServerConfig) { c.DecryptionKeys = nil },
		"jwt without JWKS":        func(c *auth.ResourceServerConfig) { c.JWKSURL = "" },
		"signing alg none":        func(c *auth.ResourceServerConfig) { c.SigningAlg = "none" },
		"signing alg HS256":       func(c *auth.ResourceServerConfig) { c.SigningAlg = "HS256" },
		"keys for another alg":    func(c *auth.ResourceServerConfig) { c.EncryptionAlg = "RSA-OAEP-256" },
		"unknown content enc":     func(c *auth.ResourceServerConfig) { c.EncryptionEnc = "A1GCM" },
		"unknown backend":         func(c *auth.ResourceServerConfig) { c.Backend = "xml" },
		"unknown client auth":     func(c *auth.ResourceServerConfig) { c.ClientAuthMethod = "private_key_jwt" },
		"json with unknown auth":  func(c *auth.ResourceServerConfig) { c.Backend, c.ClientAuthMethod = auth.BackendJSON, "none" },
		"negative cache size":     func(c *auth.ResourceServerConfig) { c.CacheSize = -1 },
		"another JWE content enc": func(c *auth.ResourceServerConfig) { c.EncryptionEnc = "dir" },
	} {
		cfg := base
		edit(&cfg)
		if _, err := auth.NewResourceServer(cfg, nil, nil); err == nil {
			t.Errorf("%s: NewResourceServer accepted it", name)
		}
	}
}

// TestBearerOnlyInTheHeader: a token in the query string (RFC 6750 §2.3) or in a cookie is not
// read: the request is anonymous, and nothing is introspected.
func TestBearerOnlyInTheHeader(t *testing.T) {
	t.Parallel()
	e := newRSEnv(t, auth.BackendJSON)
	_, sub := e.user(t)
	tok := e.as.Mint(oidctest.Token{Subject: sub, ClientID: "docs"})
	for name, r := range map[string]*http.Request{
		"query parameter": httptest.NewRequest(http.MethodPost, "/graphql?access_token="+url.QueryEscape(tok), strings.NewReader(`{"query":"{ me { id } }"}`)),
		"GET query":       httptest.NewRequest(http.MethodGet, "/graphql?access_token="+url.QueryEscape(tok)+"&query="+url.QueryEscape("{ me { id } }"), nil),
		"cookie":          httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(`{"query":"{ me { id } }"}`)),
	} {
		r.Header.Set("Content-Type", "application/json")
		for _, c := range []string{"access_token", "token", "bearer"} {
			if name == "cookie" {
				r.AddCookie(&http.Cookie{Name: c, Value: tok})
			}
		}
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), `Bearer error="invalid_request"`) ||
			!strings.Contains(w.Body.String(), "UNAUTHENTICATED") {
			t.Errorf("%s: %d %q %s, want 401 invalid_request: the token is not read there", name, w.Code, w.Header().Get("WWW-Authenticate"), w.Body)
		}
	}
	e.mustIntrospections(t, 0)
}
