package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/auth/oidctest"
)

func rsPEM(tb testing.TB, typ string, der []byte, err error) string {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func TestParseDecryptionKeys(t *testing.T) {
	t.Parallel()
	first := rsKeyPEM()
	second, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := rsPEM(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(second), nil)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(ec)
	sec1 := rsPEM(t, "EC PRIVATE KEY", der, err)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weakDER, err := x509.MarshalPKCS8PrivateKey(weak)
	weakPEM := rsPEM(t, "PRIVATE KEY", weakDER, err)
	pubDER, err := x509.MarshalPKIXPublicKey(second.Public())
	public := rsPEM(t, "PUBLIC KEY", pubDER, err)

	t.Run("several keys, for a rotation", func(t *testing.T) {
		keys, err := auth.ParseDecryptionKeys(first+pkcs1, "RSA-OAEP")
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		keys.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/jwks", nil))
		if ct, cc := w.Header().Get("Content-Type"), w.Header().Get("Cache-Control"); ct != "application/json" || !strings.Contains(cc, "max-age") {
			t.Errorf("Content-Type %q, Cache-Control %q", ct, cc)
		}
		var doc struct{ Keys []map[string]any }
		if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil || len(doc.Keys) != 2 {
			t.Fatalf("jwks = %s (%v), want two keys", w.Body, err)
		}
		for _, k := range doc.Keys {
			if k["use"] != "enc" || k["alg"] != "RSA-OAEP" || k["kty"] != "RSA" || k["kid"] == "" {
				t.Errorf("key %v: want use enc, alg RSA-OAEP, kty RSA and a kid", k)
			}
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
				if _, ok := k[private]; ok {
					t.Errorf("the public key set has the private parameter %q", private)
				}
			}
		}
		if doc.Keys[0]["kid"] == doc.Keys[1]["kid"] {
			t.Error("two keys with one kid")
		}
		// The kid is the key's thumbprint: the same after a restart.
		again, _ := auth.ParseDecryptionKeys(first+pkcs1, "RSA-OAEP")
		if again.PublicKeys().Keys[1].KeyID != keys.PublicKeys().Keys[1].KeyID {
			t.Error("the kid changed between two parses")
		}
	})

	t.Run("escaped newlines", func(t *testing.T) {
		if _, err := auth.ParseDecryptionKeys(strings.ReplaceAll(first, "\n", `\n`), "RSA-OAEP"); err != nil {
			t.Error(err)
		}
	})

	t.Run("EC key for ECDH-ES", func(t *testing.T) {
		keys, err := auth.ParseDecryptionKeys(sec1, "ECDH-ES+A256KW")
		if err != nil || keys.PublicKeys().Keys[0].Algorithm != "ECDH-ES+A256KW" {
			t.Errorf("keys = %+v, %v", keys.PublicKeys(), err)
		}
	})

	for name, tc := range map[string]struct{ pem, alg string }{
		"empty":                {"", "RSA-OAEP"},
		"garbage":              {"not a key", "RSA-OAEP"},
		"text after the keys":  {first + "garbage", "RSA-OAEP"},
		"public key":           {public, "RSA-OAEP"},
		"broken block":         {"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "RSA-OAEP"},
		"EC key for RSA-OAEP":  {sec1, "RSA-OAEP"},
		"RSA key for ECDH-ES":  {first, "ECDH-ES"},
		"RSA key of 1024 bits": {weakPEM, "RSA-OAEP"},
		"same key twice":       {first + first, "RSA-OAEP"},
		"RSA1_5":               {first, "RSA1_5"},
		"symmetric algorithm":  {first, "A256KW"},
	} {
		t.Run("refused/"+name, func(t *testing.T) {
			_, err := auth.ParseDecryptionKeys(tc.pem, tc.alg)
			if err == nil {
				t.Fatal("accepted")
			}
			if body := strings.Split(first, "\n")[1]; strings.Contains(err.Error(), body[:20]) {
				t.Errorf("the error quotes the key: %v", err)
			}
		})
	}

	t.Run("no key configured", func(t *testing.T) {
		var keys *auth.DecryptionKeys
		w := httptest.NewRecorder()
		keys.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/jwks", nil))
		if w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != `{"keys":[]}` {
			t.Errorf("jwks without keys = %d %s", w.Code, w.Body)
		}
	})

	// The authorization server encrypts to the new key, by its kid or without one: the
	// resource server holding both keys reads either.
	for name, kid := range map[string]bool{"chosen by kid": true, "without kid": false} {
		t.Run("decrypts with the second key, "+name, func(t *testing.T) {
			t.Parallel()
			keys, err := auth.ParseDecryptionKeys(first+pkcs1, "RSA-OAEP")
			if err != nil {
				t.Fatal(err)
			}
			pub := keys.PublicKeys().Keys[1]
			if !kid {
				pub.KeyID = ""
			}
			as := oidctest.NewServer(t, oidctest.Options{EncryptionKey: &pub})
			e := newRSEnvWith(t, as, auth.ResourceServerConfig{Issuer: as.URL, IntrospectionURL: as.IntrospectionURL(), JWKSURL: as.JWKSURL(),
				ClientID: as.ClientID, ClientSecret: as.ClientSecret, Backend: auth.BackendJWT, DecryptionKeys: keys})
			_, sub := e.user(t)
			e.mustStatus(t, as.Mint(oidctest.Token{Subject: sub, ClientID: "docs"}), http.StatusOK)
		})
	}
}
