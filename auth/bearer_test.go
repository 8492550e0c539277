package auth_test

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/auth/oidctest"
	"lasuite.fr/people/store"
	"lasuite.fr/people/store/storetest"
)

// TestBearerTokens runs good and bad tokens, and good and bad introspection answers, through the
// middleware and the GraphQL handler, in both introspection modes.
func TestBearerTokens(t *testing.T) {
	t.Parallel()
	envs := map[string]*rsEnv{
		auth.BackendJSON: newRSEnv(t, auth.BackendJSON),
		auth.BackendJWT:  newRSEnv(t, auth.BackendJWT),
	}
	slow := map[string]*rsEnv{ // for the timeout: a short one, so that the test is quick
		auth.BackendJSON: newRSEnv(t, auth.BackendJSON, func(c *auth.ResourceServerConfig) { c.Timeout = 300 * time.Millisecond }),
		auth.BackendJWT:  newRSEnv(t, auth.BackendJWT, func(c *auth.ResourceServerConfig) { c.Timeout = 300 * time.Millisecond }),
	}
	both := []string{auth.BackendJSON, auth.BackendJWT}
	jwtOnly := []string{auth.BackendJWT}
	now := time.Now()
	oneMiB := bytes.Repeat([]byte("a"), 1<<20+1)

	tests := []struct {
		name     string
		backends []string
		token    oidctest.Token            // changes to the token minted for a known user
		header   func(token string) string // the Authorization header; nil: Bearer <token>
		inactive bool                      // the user is inactive
		slow     bool                      // use the environment with a short timeout
		status   int
		err      string // error= of WWW-Authenticate; "" for 200 and 503
	}{
		{name: "good token", backends: both, status: http.StatusOK},
		{name: "good token, strict base64", backends: both, status: http.StatusOK,
			header: func(tok string) string { return "Bearer " + base64.StdEncoding.EncodeToString([]byte(tok)) }},
		{name: "good token, lower-case scheme", backends: both, status: http.StatusOK,
			header: func(tok string) string { return "bearer " + tok }},
		{name: "JWE header with iss and aud, as node oidc-provider", backends: jwtOnly, status: http.StatusOK,
			token: oidctest.Token{Fault: &oidctest.Fault{JWEHeaders: map[string]any{"iss": "{issuer}", "aud": "{client}"}}}},

		{name: "garbage token", backends: both, status: 401, err: "invalid_token",
			header: func(string) string { return "Bearer garbage-" + storetest.Unique() }},
		{name: "garbage header", backends: both, status: 401, err: "invalid_request",
			header: func(tok string) string { return "garbage" + tok }},
		{name: "another scheme", backends: both, status: 401, err: "invalid_request",
			header: func(tok string) string { return "Basic " + tok }},
		{name: "empty token", backends: both, status: 401, err: "invalid_request",
			header: func(string) string { return "Bearer " }},
		{name: "no token", backends: both, status: 401, err: "invalid_request",
			header: func(string) string { return "Bearer" }},
		{name: "two spaces", backends: both, status: 401, err: "invalid_request",
			header: func(tok string) string { return "Bearer  " + tok }},
		{name: "control character", backends: both, status: 401, err: "invalid_request",
			header: func(tok string) string { return "Bearer " + tok + "\x01" }},
		{name: "lenient base64: stray character", backends: both, status: 401, err: "invalid_token",
			header: func(tok string) string {
				b := base64.StdEncoding.EncodeToString([]byte(tok))
				return "Bearer " + b[:8] + "!" + b[8:]
			}},
		{name: "lenient base64: no padding", backends: both, status: 401, err: "invalid_token",
			header: func(tok string) string { return "Bearer " + base64.RawStdEncoding.EncodeToString([]byte(tok)) }},
		// Tokens that are strict base64 themselves, but not of printable text: used as sent.
		{name: "strict base64 of binary, used as sent", backends: both, status: http.StatusOK,
			token: oidctest.Token{Value: base64.StdEncoding.EncodeToString([]byte("\x00\x01tok\xc3\xa9"))}},
		{name: "strict base64 of invalid UTF-8, used as sent", backends: both, status: http.StatusOK,
			token: oidctest.Token{Value: base64.StdEncoding.EncodeToString([]byte("tok\xff\xfe-utf8"))}},
		{name: "strict base64 of text with a space, used as sent", backends: both, status: http.StatusOK,
			token: oidctest.Token{Value: base64.StdEncoding.EncodeToString([]byte("tok with spaces"))}},

		{name: "alg none", backends: jwtOnly, status: 401, err: "invalid_token",
			token: oidctest.Token{Fault: &oidctest.Fault{SigningAlg: "none"}}},
		{name: "HS256 keyed with the public key", backends: jwtOnly, status: 401, err: "invalid_token",
			token: oidctest.Token{Fault: &oidctest.Fault{SigningAlg: "HS256"}}},
		{name: "unknown kid", backends: jwtOnly, status: 401, err: "invalid_token",
			token: oidctest.Token{Fault: &oidctest.Fault{UnknownKey: true}}},
		{name: "wrong iss", backends: jwtOnly, status: 401, err: "invalid_token",
			token: oidctest.Token{Fault: &oidctest.Fault{Outer: map[string]any{"iss": "https://evil.test"}}}},
		{name: "wrong iss in JSON", backends: []string{auth.BackendJSON}, status: 401, err: "invalid_token",
			token: oidctest.Token{Claims: map[string]any{"iss": "https://evil.test"}}},
		{name: "no iss in JSON (GitLab)", backends: []string{auth.BackendJSON}, status: http.StatusOK,
			token: oidctest.Token{Claims: map[string]any{"iss": nil}}},
		{name: "wrong iss in JWE header", backends: jwtOnly, status: 401, err: "invalid_token",
			token: oidctest.Token{Fault: &oidctest.Fault{JWEHeaders: map[string]any{"iss": "https://evil.test"}}}},
		{name: "wrong aud", backends: jwtOnly, status: 401, err: "invalid_token",
			token: oidctest.Token{Fault: &oidctest.Fault{Outer: map[string]any{"aud": "someone-else"}}}},
		{name: "wrong aud in JWE header", backends: jwtOnly, status: 401, err: "invalid_token",
			token: oidctest.Token{Fault: &oidctest.Fault{JWEHeaders: map[string]any{"aud": "someone-else"}}}},
		{name: "expired, as the server says", backends: both, status: 401, err: "invalid_token",
			token: oidctest.Token{Expiry: now.Add(-time.Minute)}},
		{name: "expired, though the server says active", backends: both, status: 401, err: "invalid_token",
			token: oidctest.Token{Claims: map[string]any{"exp": now.Add(-time.Minute).Unix()}}},
		{name: "answer expired", backends: jwtOnly, status: 401, err: "invalid_token",
			token: oidctest.Token{Fault: &oidctest.Fault{Outer: map[string]any{"exp": now.Add(-time.Hour).Unix()}}}},
		{name: "iat in the future", backends: jwtOnly, status: 401, err: "invalid_token",
			token: oidctest.Token{Fault: &oidctest.Fault{Outer: map[string]any{"iat": now.Add(time.Hour).Unix()}}}},
		{name: "iat 30 s ahead, within the clock skew", backends: jwtOnly, status: http.StatusOK,
			token: oidctest.Token{Fault: &oidctest.Fault{Outer: map[string]any{"iat": now.Add(30 * time.Second).Unix()}}}},
		{name: "no token_introspection", backends: jwtOnly, status: 401, err: "invalid_token",
			token: oidctest.Token{Fault: &oidctest.Fault{Outer: map[string]any{"token_introspection": nil}}}},
		{name: "active false", backends: both, status: 401, err: "invalid_token",
			token: oidctest.Token{Claims: map[string]any{"active": false}}},
		{name: "active as a string", backends: both, status: 401, err: "invalid_token",
			token: oidctest.Token{Claims: map[string]any{"active": "true"}}},
		{name: "no scope", backends: both, status: 403, err: "insufficient_scope",
			token: oidctest.Token{Claims: map[string]any{"scope": nil}}},
		{name: "wrong scope", backends: both, status: 403, err: "insufficient_scope",
			token: oidctest.Token{Scope: "openid email"}},
		{name: "no sub", backends: both, status: 401, err: "invalid_token",
			token: oidctest.Token{Claims: map[string]any{"sub": nil}}},
		{name: "empty audience claim", backends: both, status: 401, err: "invalid_token",
			token: oidctest.Token{Claims: map[string]any{"aud": ""}}},
		{name: "no audience claim", backends: both, status: 401, err: "invalid_token",
			token: oidctest.Token{Claims: map[string]any{"aud": nil}}},
		{name: "two services in the audience", backends: both, status: 401, err: "invalid_token",
			token: oidctest.Token{Claims: map[string]any{"aud": []string{"docs", "meet"}}}},
		{name: "tampered ciphertext", backends: jwtOnly, status: 401, err: "invalid_token",
			token: oidctest.Token{Fault: &oidctest.Fault{Tamper: true}}},
		{name: "disallowed alg RSA1_5", backends: jwtOnly, status: 401, err: "invalid_token",
			token: oidctest.Token{Fault: &oidctest.Fault{KeyAlgorithm: jose.RSA1_5}}},
		{name: "disallowed enc A128GCM", backends: jwtOnly, status: 401, err: "invalid_token",
			token: oidctest.Token{Fault: &oidctest.Fault{ContentEncryption: jose.A128GCM}}},
		{name: "signed but not encrypted", backends: jwtOnly, status: 401, err: "invalid_token",
			token: oidctest.Token{Fault: &oidctest.Fault{Unencrypted: true}}},
		{name: "body that is not a JWT", backends: jwtOnly, status: 401, err: "invalid_token",
			token: oidctest.Token{Fault: &oidctest.Fault{Body: []byte(`{"active":true,"sub":"x","aud":"docs","scope":"groups"}`)}}},
		{name: "body that is not JSON", backends: []string{auth.BackendJSON}, status: 401, err: "invalid_token",
			token: oidctest.Token{Fault: &oidctest.Fault{Body: []byte(`<html>hello</html>`)}}},
		{name: "answer over 1 MiB", backends: both, status: 401, err: "invalid_token",
			token: oidctest.Token{Fault: &oidctest.Fault{Body: oneMiB}}},
		{name: "server answers 500", backends: both, status: 503,
			token: oidctest.Token{Fault: &oidctest.Fault{Status: 500}}},
		{name: "server answers 429", backends: both, status: 503,
			token: oidctest.Token{Fault: &oidctest.Fault{Status: 429}}},
		{name: "server times out", backends: both, status: 503, slow: true,
			token: oidctest.Token{Fault: &oidctest.Fault{Delay: 5 * time.Second}}},
		{name: "server answers 401", backends: both, status: 401, err: "invalid_token",
			token: oidctest.Token{Fault: &oidctest.Fault{Status: 401}}},
		{name: "server answers 400", backends: both, status: 401, err: "invalid_token",
			token: oidctest.Token{Fault: &oidctest.Fault{Status: 400}}},

		{name: "unknown subject", backends: both, status: 401, err: "invalid_token",
			token: oidctest.Token{Subject: "nobody-" + storetest.Unique()}},
		{name: "inactive user", backends: both, status: 401, err: "invalid_token", inactive: true},
	}
	for _, tt := range tests {
		for _, backend := range tt.backends {
			t.Run(backend+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				e := envs[backend]
				if tt.slow {
					e = slow[backend]
				}
				// A resource server of its own, on the same authorization server and database:
				// its logs are this case's alone, so "no log line says why" means this case's.
				e = newRSEnvWith(t, e.as, e.cfg)
				var opts []storetest.UserOpt
				if tt.inactive {
					opts = append(opts, storetest.Inactive())
				}
				u, sub := e.user(t, opts...)
				tok := tt.token
				tok.Subject = cmp.Or(tok.Subject, sub)
				tok.ClientID = cmp.Or(tok.ClientID, "docs-"+storetest.Unique())
				if tok.Fault != nil && tok.Fault.JWEHeaders != nil {
					f := *tok.Fault // shared by both backends' runs
					f.JWEHeaders = rsExpand(f.JWEHeaders, e.as)
					tok.Fault = &f
				}
				token := e.as.Mint(tok)
				header := "Bearer " + token
				if tt.header != nil {
					header = tt.header(token)
				}

				a := e.do(t, header, `{ me { id } }`, nil)

				if a.status != tt.status {
					t.Fatalf("status = %d, want %d; body %s", a.status, tt.status, a.body)
				}
				www := a.header.Get("WWW-Authenticate")
				switch {
				case tt.status == http.StatusOK:
					var out struct{ Me struct{ ID string } }
					if err := json.Unmarshal(a.Data, &out); err != nil || out.Me.ID != u.ID.String() {
						t.Errorf("me = %s, want %s", a.Data, u.ID)
					}
				case tt.status == http.StatusServiceUnavailable:
					if a.header.Get("Retry-After") == "" || www != "" {
						t.Errorf("503 with Retry-After %q and WWW-Authenticate %q, want a Retry-After and no challenge", a.header.Get("Retry-After"), www)
					}
				case !strings.HasPrefix(www, `Bearer error="`+tt.err+`"`):
					t.Errorf("WWW-Authenticate = %q, want Bearer error=%q", www, tt.err)
				}
				wantCode := map[int]string{200: "", 401: "UNAUTHENTICATED", 403: "FORBIDDEN", 503: "UNAVAILABLE"}[tt.status]
				if a.code() != wantCode {
					t.Errorf("extensions.code = %q, want %q (body %s)", a.code(), wantCode, a.body)
				}
				if tt.status == http.StatusForbidden && !strings.Contains(www, `scope="groups"`) {
					t.Errorf("WWW-Authenticate = %q, want the scope that would do", www)
				}
				secrets := []string{token, e.as.ClientSecret}
				if sent := strings.TrimSpace(strings.TrimPrefix(header, "Bearer ")); len(sent) > 8 {
					secrets = append(secrets, sent) // as sent: base64 or garbage
				}
				for _, secret := range secrets {
					if strings.Contains(a.body, secret) {
						t.Errorf("the body holds the token or the client secret: %s", a.body)
					}
					if strings.Contains(e.logs.String(), secret) {
						t.Errorf("the logs hold the token or the client secret")
					}
				}
				if tt.status != http.StatusOK && !strings.Contains(e.logs.String(), "bearer token") {
					t.Errorf("no log line says why the token was refused")
				}
			})
		}
	}
}

// rsExpand replaces {issuer} and {client} in header values, which the table cannot know.
func rsExpand(h map[string]any, as *oidctest.Server) map[string]any {
	out := make(map[string]any, len(h))
	for k, v := range h {
		if s, ok := v.(string); ok {
			v = strings.NewReplacer("{issuer}", as.URL, "{client}", as.ClientID).Replace(s)
		}
		out[k] = v
	}
	return out
}

// TestBearerClaimSettings: OIDC_RS_AUDIENCE_CLAIM names the claim that carries the calling
// service (client_id for Keycloak, whose aud names other things), and OIDC_RS_SCOPES the scopes
// of which a token needs one.
func TestBearerClaimSettings(t *testing.T) {
	t.Parallel()

	t.Run("audience claim client_id", func(t *testing.T) {
		t.Parallel()
		e := newRSEnv(t, auth.BackendJSON, func(c *auth.ResourceServerConfig) { c.AudienceClaim = "client_id" })
		u, sub := e.user(t)
		docs, account := "docs-"+storetest.Unique(), "account-"+storetest.Unique()
		if got := e.me(t, e.as.Mint(oidctest.Token{Subject: sub, ClientID: docs, Claims: map[string]any{"aud": account}})); got != u.ID.String() {
			t.Fatalf("me = %s, want %s", got, u.ID)
		}
		for audience, want := range map[string]int{docs: 1, account: 0} {
			var n int
			if err := e.s.DB().QueryRowContext(t.Context(), "SELECT count(*) FROM service_providers WHERE audience_id = ?", audience).Scan(&n); err != nil || n != want {
				t.Errorf("service providers for %s = %d (%v), want %d: the caller is the client_id", audience, n, err, want)
			}
		}
		a := e.do(t, "Bearer "+e.as.Mint(oidctest.Token{Subject: sub, ClientID: docs, Claims: map[string]any{"client_id": nil}}), `{ me { id } }`, nil)
		if a.status != http.StatusUnauthorized || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), `Bearer error="invalid_token"`) {
			t.Errorf("without client_id: status %d, WWW-Authenticate %q; want 401 invalid_token", a.status, a.header.Get("WWW-Authenticate"))
		}
	})

	t.Run("scopes", func(t *testing.T) {
		t.Parallel()
		e := newRSEnv(t, auth.BackendJSON, func(c *auth.ResourceServerConfig) { c.Scopes = []string{"teams", "groups:read"} })
		u, sub := e.user(t)
		a := e.do(t, "Bearer "+e.as.Mint(oidctest.Token{Subject: sub, ClientID: "docs", Scope: "openid groups"}), `{ me { id } }`, nil)
		if www := a.header.Get("WWW-Authenticate"); a.status != http.StatusForbidden || !strings.HasPrefix(www, `Bearer error="insufficient_scope"`) ||
			!strings.Contains(www, `scope="teams groups:read"`) {
			t.Errorf("default scope only: status %d, WWW-Authenticate %q; want 403 naming the configured scopes", a.status, www)
		}
		if got := e.me(t, e.as.Mint(oidctest.Token{Subject: sub, ClientID: "docs", Scope: "openid groups:read"})); got != u.ID.String() {
			t.Errorf("me = %s, want %s", got, u.ID)
		}
	})
}

// A staff user made by create-staff ahead of their first login has users.sub set to a
// placeholder (their id) that is no identity: a partner service's token by that subject is
// nobody's, with the email fallback on or off. Their own email, when the fallback is on, is
// how they are found, as at a browser login.
func TestBearerStaffPlaceholderSubject(t *testing.T) {
	t.Parallel()
	for _, fallback := range []bool{true, false} {
		e := newRSEnv(t, auth.BackendJSON, func(c *auth.ResourceServerConfig) { c.FallbackToEmail = fallback })
		email := "staff-" + storetest.Unique() + "@example.test"
		u, created, err := e.s.CreateStaff(t.Context(), store.StaffRequest{Email: email}, store.DefaultLoginOptions())
		if err != nil || !created {
			t.Fatalf("CreateStaff() = %+v, %v, %v", u, created, err)
		}
		a := e.do(t, "Bearer "+e.as.Mint(oidctest.Token{Subject: u.Sub, ClientID: "docs"}), `{ me { id } }`, nil)
		if a.status != http.StatusUnauthorized || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), `Bearer error="invalid_token"`) {
			t.Errorf("fallback %v: a token by the placeholder subject: status %d, WWW-Authenticate %q; want 401 invalid_token",
				fallback, a.status, a.header.Get("WWW-Authenticate"))
		}
		if fallback {
			if got := e.me(t, e.as.Mint(oidctest.Token{Subject: "pairwise-" + storetest.Unique(), ClientID: "docs", Email: strings.ToUpper(email)})); got != u.ID.String() {
				t.Errorf("a token with the staff user's email: me = %s, want %s", got, u.ID)
			}
		}
	}
}
