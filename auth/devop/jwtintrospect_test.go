package devop_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/zitadel/oidc/v3/pkg/client/rp"

	"lasuite.fr/people/auth/devop"
)

const introspectionJWT = "application/token-introspection+jwt"

// rsKey is a resource server's encryption key pair, published as /jwks publishes it.
func rsKey(t *testing.T) (*rsa.PrivateKey, jose.JSONWebKey) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k, jose.JSONWebKey{Key: &k.PublicKey, KeyID: "rs-key-1", Algorithm: "RSA-OAEP", Use: "enc"}
}

func ecPublicKey(t *testing.T, use string) jose.JSONWebKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return jose.JSONWebKey{Key: &k.PublicKey, KeyID: "ec-" + use, Use: use}
}

// introspectJWT asks for an RFC 9701 answer, as People's resource server does in jwt mode.
func (e *env) introspectJWT(t *testing.T, c devop.Client, token, accept string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.p.Endpoints().Introspection,
		strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", accept)
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Content-Type"), body(t, resp)
}

// verified checks a signed answer against the provider's JWKS (ES256 only, typ
// token-introspection+jwt) and returns its claims.
func (e *env) verified(t *testing.T, compact string) map[string]any {
	t.Helper()
	jws, err := jose.ParseSigned(compact, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("the answer is not a JWS with ES256: %v", err)
	}
	if typ := jws.Signatures[0].Protected.ExtraHeaders["typ"]; typ != "token-introspection+jwt" {
		t.Errorf("JWS typ = %v, want token-introspection+jwt", typ)
	}
	payload, err := rp.NewRemoteKeySet(http.DefaultClient, e.p.Endpoints().JWKS).VerifySignature(t.Context(), jws)
	if err != nil {
		t.Fatalf("the answer's signature does not verify with the provider's JWKS: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func TestIntrospectionAsJWT(t *testing.T) {
	private, public := rsKey(t)
	e := newEnv(t, func(o *devop.Options) {
		// A signing key first: it must be passed over for the encryption key.
		o.RPClient.IntrospectionEncryption = &devop.Encryption{
			Keys: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{ecPublicKey(t, "sig"), public}}, Enc: "A256GCM"}
	})
	status, token := e.mint(t, url.Values{"user": {e2eOwnerEmail}, "client_id": {"docs"}})
	if status != http.StatusOK {
		t.Fatalf("mint: %d %s", status, token)
	}
	people, docs := e.p.RPClient(), e.p.PartnerClients()[0]

	// open decrypts an answer to People as its resource server would: only RSA-OAEP and A256GCM.
	open := func(t *testing.T, answer string) map[string]any {
		t.Helper()
		jwe, err := jose.ParseEncryptedCompact(answer, []jose.KeyAlgorithm{jose.RSA_OAEP}, []jose.ContentEncryption{jose.A256GCM})
		if err != nil {
			t.Fatalf("the answer is not a JWE with RSA-OAEP and A256GCM: %v", err)
		}
		if jwe.Header.KeyID != public.KeyID || jwe.Header.ExtraHeaders["cty"] != "JWT" {
			t.Errorf("JWE kid %q cty %v, want %q JWT", jwe.Header.KeyID, jwe.Header.ExtraHeaders["cty"], public.KeyID)
		}
		plain, err := jwe.Decrypt(private)
		if err != nil {
			t.Fatalf("decrypt: %v", err)
		}
		return e.verified(t, string(plain))
	}

	t.Run("People's resource server", func(t *testing.T) {
		status, contentType, answer := e.introspectJWT(t, people, token, introspectionJWT)
		if status != http.StatusOK || contentType != introspectionJWT {
			t.Fatalf("introspection: %d %s %s, want 200 %s", status, contentType, answer, introspectionJWT)
		}
		claims := open(t, answer)
		iat, _ := claims["iat"].(float64)
		if d := time.Since(time.Unix(int64(iat), 0)); d < -time.Minute || d > time.Minute {
			t.Errorf("iat = %v, want now", claims["iat"])
		}
		_, object := e.introspect(t, people, token, true)
		want := map[string]any{"iss": e.p.Issuer(), "aud": "people", "iat": iat, "token_introspection": object}
		if diff := cmp.Diff(want, claims); diff != "" {
			t.Errorf("claims (-want +got):\n%s", diff)
		}
		if object["active"] != true || object["sub"] == nil || object["scope"] != "openid email groups" {
			t.Errorf("token_introspection = %v, want the token's RFC 7662 answer", object)
		}
	})

	t.Run("an unknown token", func(t *testing.T) {
		status, _, answer := e.introspectJWT(t, people, "not-a-token", "application/json;q=0.5, "+introspectionJWT)
		if status != http.StatusOK {
			t.Fatalf("introspection: %d %s", status, answer)
		}
		if got := open(t, answer)["token_introspection"]; !cmp.Equal(got, map[string]any{"active": false}) {
			t.Errorf("token_introspection = %v, want only active: false", got)
		}
	})

	t.Run("a partner without encryption gets a signed answer", func(t *testing.T) {
		status, contentType, answer := e.introspectJWT(t, docs, token, introspectionJWT)
		if status != http.StatusOK || contentType != introspectionJWT || strings.Count(answer, ".") != 2 {
			t.Fatalf("introspection: %d %s %s, want a JWS", status, contentType, answer)
		}
		claims := e.verified(t, answer)
		if object, _ := claims["token_introspection"].(map[string]any); claims["aud"] != "docs" || object["active"] != true {
			t.Errorf("claims = %v, want aud docs and an active token", claims)
		}
	})

	t.Run("a refusal stays JSON", func(t *testing.T) {
		status, contentType, answer := e.introspectJWT(t, devop.Client{ID: "people", Secret: "wrong"}, token, introspectionJWT)
		if status != http.StatusUnauthorized || contentType != "application/json" || !strings.Contains(answer, "invalid_client") {
			t.Errorf("wrong secret: %d %s %s, want 401 JSON invalid_client", status, contentType, answer)
		}
	})

	t.Run("JSON unless asked", func(t *testing.T) {
		for _, accept := range []string{"application/json", introspectionJWT + ";q=0", ""} {
			status, contentType, answer := e.introspectJWT(t, people, token, accept)
			if status != http.StatusOK || contentType != "application/json" || !strings.Contains(answer, `"active":true`) {
				t.Errorf("Accept %q: %d %s %s, want RFC 7662 JSON", accept, status, contentType, answer)
			}
		}
	})
}

// TestIntrospectionKeyIsSharedWhenAlgorithmsAgree: with ES256 ID tokens, the provider has one
// key, which signs introspection answers too.
func TestIntrospectionKeyIsSharedWhenAlgorithmsAgree(t *testing.T) {
	e := newEnv(t, func(o *devop.Options) { o.SigningAlg = "ES256" })
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(e.get(t, e.p.Endpoints().JWKS).Body).Decode(&set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("JWKS = %+v (%v), want one key", set, err)
	}
	_, token := e.mint(t, url.Values{"user": {e2eOwnerEmail}, "client_id": {"docs"}})
	_, _, answer := e.introspectJWT(t, e.p.RPClient(), token, introspectionJWT)
	if claims := e.verified(t, answer); claims["aud"] != "people" {
		t.Errorf("claims = %v", claims)
	}
}

func TestNewRefusesBadIntrospectionEncryption(t *testing.T) {
	s := demoStore(t)
	_, rsaPublic := rsKey(t)
	rsaBare := rsaPublic
	rsaBare.Algorithm, rsaBare.Use = "", ""
	ec := ecPublicKey(t, "enc")
	tests := map[string]devop.Encryption{
		"RSA1_5":                {Keys: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{rsaBare}}, Alg: "RSA1_5"},
		"a symmetric algorithm": {Keys: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{rsaBare}}, Alg: "A256KW"},
		"unknown content enc":   {Keys: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{rsaPublic}}, Enc: "A512GCM"},
		"no keys":               {Alg: "RSA-OAEP"},
		"a signing key only":    {Keys: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{ecPublicKey(t, "sig")}}},
		"a key of another type": {Keys: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{ec}}, Alg: "RSA-OAEP"},
		"a key for another alg": {Keys: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{rsaPublic}}, Alg: "RSA-OAEP-256"},
		"unknown signing alg":   {}, // with IntrospectionSigningAlg HS256, below
		"ECDH-ES on an RSA key": {Keys: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{rsaBare}}, Alg: "ECDH-ES"},
		"RSA-OAEP on an EC key": {Keys: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{ec}}, Alg: "RSA-OAEP-256"},
	}
	for name, enc := range tests {
		o := devop.Options{Issuer: "http://localhost/x", Users: s, RPClient: devop.Client{ID: "people", IntrospectionEncryption: &enc}}
		if name == "unknown signing alg" {
			o.RPClient.IntrospectionEncryption, o.IntrospectionSigningAlg = nil, "HS256"
		}
		if _, err := devop.New(t.Context(), o); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	for name, enc := range map[string]devop.Encryption{
		"RSA key, default alg":   {Keys: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{rsaBare}}},
		"EC key, default alg":    {Keys: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{ec}}},
		"EC key, ECDH-ES+A256KW": {Keys: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{ec}}, Alg: "ECDH-ES+A256KW", Enc: "A256GCM"},
	} {
		o := devop.Options{Issuer: "http://localhost/x", Users: s, RPClient: devop.Client{ID: "people", IntrospectionEncryption: &enc}}
		if _, err := devop.New(t.Context(), o); err != nil {
			t.Errorf("%s: New = %v", name, err)
		}
	}
}
