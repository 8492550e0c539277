package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/auth/oidctest"
	"lasuite.fr/people/store/storetest"
)

func rsaKeyPEM(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// bearerEnv is what a deployment sets to accept ProConnect's tokens; SECRET_KEY and
// OIDC_RP_CLIENT_SECRET are there for the browser sign-in, which the same OIDC_OP_URL turns on.
func bearerEnv(as *oidctest.Server, key string) map[string]string {
	return map[string]string{
		"DATABASE_URL": "postgres://u:p@127.0.0.1/db", "OIDC_OP_URL": as.URL,
		"OIDC_OP_INTROSPECTION_ENDPOINT": as.IntrospectionURL(), "OIDC_OP_JWKS_ENDPOINT": as.JWKSURL(),
		"OIDC_RS_CLIENT_ID": as.ClientID, "OIDC_RS_CLIENT_SECRET": as.ClientSecret,
		"OIDC_RS_BACKEND": "jwt", "OIDC_RS_PRIVATE_KEY_STR": key,
		"SECRET_KEY": strings.Repeat("k", 40), "OIDC_RP_CLIENT_SECRET": "rp-secret",
	}
}

func TestBearerConfig(t *testing.T) {
	key := rsaKeyPEM(t)
	as := oidctest.NewServer(t, oidctest.Options{ClientSecret: "rs-secret-" + storetest.Unique()})
	c, err := parseConfig(env(bearerEnv(as, key)))
	if err != nil {
		t.Fatal(err)
	}
	if b := c.Bearer; !b.Enabled(c) || b.Backend != "jwt" || b.ClientAuthMethod != "client_secret_post" || b.EncryptionAlgo != "RSA-OAEP" ||
		b.EncryptionEncoding != "A256GCM" || b.SigningAlgo != "ES256" || strings.Join(b.Scopes, ",") != "groups" || b.AudienceClaim != "aud" ||
		!c.Login.FallbackToEmail || b.Timeout.Seconds() != 5 || b.CacheTTL.Seconds() != 60 {
		t.Errorf("settings = %+v", b)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", c)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "config", c)
	fmt.Fprintf(&buf, "%v %+v %#v", c, c, c)
	if strings.Contains(buf.String(), as.ClientSecret) || strings.Contains(buf.String(), strings.Split(key, "\n")[1]) {
		t.Error("the client secret or the private key leaked through a printed Config")
	}

	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"jwt without a key":   {map[string]string{"OIDC_RS_PRIVATE_KEY_STR": ""}, "OIDC_RS_PRIVATE_KEY_STR"},
		"broken key":          {map[string]string{"OIDC_RS_PRIVATE_KEY_STR": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}, "OIDC_RS_PRIVATE_KEY_STR"},
		"key for another alg": {map[string]string{"OIDC_RS_ENCRYPTION_ALGO": "ECDH-ES"}, "OIDC_RS_PRIVATE_KEY_STR"},
		"RSA1_5":              {map[string]string{"OIDC_RS_ENCRYPTION_ALGO": "RSA1_5"}, "OIDC_RS_PRIVATE_KEY_STR"},
		"jwt without JWKS":    {map[string]string{"OIDC_OP_JWKS_ENDPOINT": ""}, "OIDC_OP_JWKS_ENDPOINT"},
		"unknown backend":     {map[string]string{"OIDC_RS_BACKEND": "xml"}, "OIDC_RS_BACKEND"},
		"unknown client auth": {map[string]string{"OIDC_RS_CLIENT_AUTH_METHOD": "private_key_jwt"}, "OIDC_RS_CLIENT_AUTH_METHOD"},
		"bad timeout":         {map[string]string{"OIDC_TIMEOUT": "soon"}, "OIDC_TIMEOUT"},
		"bad cache TTL":       {map[string]string{"OIDC_RS_INTROSPECTION_CACHE_TTL": "-1s"}, "OIDC_RS_INTROSPECTION_CACHE_TTL"},
	} {
		vars := bearerEnv(as, key)
		for k, v := range tc.env {
			vars[k] = v
		}
		_, err := parseConfig(env(vars))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: parseConfig() = %v, want an error naming %s", name, err, tc.want)
		} else if strings.Contains(err.Error(), "AAAA") || strings.Contains(err.Error(), strings.Split(key, "\n")[1]) {
			t.Errorf("%s: the error quotes the key: %v", name, err)
		}
	}
	// The server refuses to start, before it listens.
	vars := bearerEnv(as, "not a key")
	vars["LISTEN_ADDR"] = "127.0.0.1:0"
	if err := run(t.Context(), nil, env(vars), io.Discard, nil); err == nil || !strings.Contains(err.Error(), "OIDC_RS_PRIVATE_KEY_STR") {
		t.Errorf("run() with a broken key = %v, want a refusal naming OIDC_RS_PRIVATE_KEY_STR", err)
	}
}

// bearerServer serves newMux like serve does, for the settings of vars.
func bearerServer(t *testing.T, vars map[string]string) (*httptest.Server, *lockedBuffer) {
	t.Helper()
	cfg, err := parseConfig(env(vars))
	if err != nil {
		t.Fatal(err)
	}
	logs := new(lockedBuffer) // the server logs each request after answering it
	log := newLogger(cfg, logs)
	s := storetest.Open(t)
	o := newOps(cfg, s.DB().DB, nil, log)
	t.Cleanup(func() { o.Close() })
	rs, err := newResourceServer(cfg, s, nil, nil, o, log)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(o.Middleware(newMux(cfg, s, newSessions(cfg, s, nil, log), rs, o, log)))
	t.Cleanup(srv.Close)
	return srv, logs
}

func postGraphQL(t *testing.T, base, authz, query string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/graphql", strings.NewReader(`{"query":`+fmt.Sprintf("%q", query)+`}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestServeBearer runs a ProConnect-like deployment: RFC 9701 answers, keys at /jwks.
func TestServeBearer(t *testing.T) {
	key := rsaKeyPEM(t)
	keys, err := auth.ParseDecryptionKeys(key, "RSA-OAEP")
	if err != nil {
		t.Fatal(err)
	}
	pub := keys.PublicKeys().Keys[0]
	as := oidctest.NewServer(t, oidctest.Options{EncryptionKey: &pub})
	srv, logs := bearerServer(t, bearerEnv(as, key))

	for _, path := range []string{"/jwks", "/api/v1.0/jwks"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var set struct{ Keys []map[string]any }
		json.NewDecoder(resp.Body).Decode(&set)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") == "" || len(set.Keys) != 1 ||
			set.Keys[0]["kid"] != pub.KeyID || set.Keys[0]["use"] != "enc" || set.Keys[0]["alg"] != "RSA-OAEP" || set.Keys[0]["d"] != nil {
			t.Errorf("GET %s: %d, Cache-Control %q, keys %v", path, resp.StatusCode, resp.Header.Get("Cache-Control"), set.Keys)
		}
	}

	s := storetest.Open(t)
	u := storetest.User(t, s, storetest.Organization(t, s))
	storetest.MustExec(t, s.DB(), "INSERT INTO user_identities (user_id, issuer, subject) VALUES (?, ?, ?)", u.ID, as.URL, u.Sub)
	tok := as.Mint(oidctest.Token{Subject: u.Sub, ClientID: "docs"})
	status, _, body := postGraphQL(t, srv.URL, "Bearer "+tok, `{ me { id } }`)
	if status != http.StatusOK || !strings.Contains(body, u.ID.String()) {
		t.Errorf("me with a token: %d %s", status, body)
	}
	status, h, body := postGraphQL(t, srv.URL, "", `{ me { id } }`)
	if status != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), `Bearer error="invalid_request"`) || !strings.Contains(body, "UNAUTHENTICATED") {
		t.Errorf("me without a token: %d %q %s", status, h.Get("WWW-Authenticate"), body)
	}
	if strings.Contains(logs.String(), tok) {
		t.Error("the token is in the logs")
	}
}

func TestServeBearerNotConfigured(t *testing.T) {
	srv, _ := bearerServer(t, map[string]string{"DATABASE_URL": "postgres://u:p@127.0.0.1/db"})
	status, h, _ := postGraphQL(t, srv.URL, "Bearer some-token", `{ me { id } }`)
	if status != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), "not configured") {
		t.Errorf("bearer without a resource server: %d %q, want 401 invalid_token not configured", status, h.Get("WWW-Authenticate"))
	}
	resp, err := http.Get(srv.URL + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != `{"keys":[]}` {
		t.Errorf("/jwks without a key: %d %s", resp.StatusCode, b)
	}
}

// TestServeBearerWithDevelopmentProvider is make token's path: a token minted by the development
// provider for a partner service, accepted by the same server.
func TestServeBearerWithDevelopmentProvider(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	cfg, err := parseConfig(env(map[string]string{"DATABASE_URL": "postgres://u:p@127.0.0.1/db", "ENVIRONMENT": "development",
		"LISTEN_ADDR": ln.Addr().String(), "PUBLIC_URL": base}))
	if err != nil {
		t.Fatal(err)
	}
	s := storetest.Open(t)
	log := slog.New(slog.DiscardHandler)
	dev, err := newDevOIDC(t.Context(), cfg, s, log)
	if err != nil || dev == nil {
		t.Fatalf("newDevOIDC = %v, %v", dev, err)
	}
	o := newOps(cfg, s.DB().DB, nil, log)
	rs, err := newResourceServer(cfg, s, dev, nil, o, log)
	if err != nil {
		t.Fatal(err)
	}
	mux := newMux(cfg, s, newSessions(cfg, s, nil, log), rs, o, log)
	mux.Handle("/dev-oidc/", dev.Handler())
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)

	u := storetest.User(t, s, storetest.Organization(t, s))
	resp, err := http.PostForm(base+"/dev-oidc/dev/token", url.Values{"user": {u.Email}, "client_id": {"docs"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mint: %d %s", resp.StatusCode, b)
	}
	status, _, body := postGraphQL(t, base, "Bearer "+strings.TrimSpace(string(b)), `{ me { id } }`)
	var out struct {
		Data struct{ Me struct{ ID uuid.UUID } }
	}
	if json.Unmarshal([]byte(body), &out); status != http.StatusOK || out.Data.Me.ID != u.ID {
		t.Errorf("me with a minted token: %d %s, want user %s", status, body, u.ID)
	}
}
