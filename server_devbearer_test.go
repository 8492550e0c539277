package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/store/storetest"
)

// TestServeBearerJWTWithDevelopmentProvider is make token's path with OIDC_RS_BACKEND=jwt: the
// development provider answers the server's introspection with RFC 9701 JWTs, signed with a key
// of its JWKS and encrypted to the key the server publishes at /jwks, which the server makes
// at start unless OIDC_RS_PRIVATE_KEY_STR gives one.
func TestServeBearerJWTWithDevelopmentProvider(t *testing.T) {
	configured := rsaKeyPEM(t)
	tests := []struct {
		name string
		env  map[string]string
		alg  string // of the key at /jwks
	}{
		{"a key made at start", nil, "RSA-OAEP"},
		{"the configured key", map[string]string{"OIDC_RS_PRIVATE_KEY_STR": configured}, "RSA-OAEP"},
		{"an EC key made at start", map[string]string{"OIDC_RS_ENCRYPTION_ALGO": "ECDH-ES+A256KW"}, "ECDH-ES+A256KW"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// PUBLIC_URL must be where the server listens, as it introspects at its own
			// provider: the port is chosen first (see startDemoServer).
			addr := freeLoopbackAddr(t)
			vars := map[string]string{"ENVIRONMENT": "development", "LISTEN_ADDR": addr, "PUBLIC_URL": "http://" + addr,
				"OIDC_RS_BACKEND": "jwt"}
			for k, v := range tt.env {
				vars[k] = v
			}
			base := startServer(t, storetest.URL(t), vars)

			_, jwks := get(t, base+"/jwks")
			var set struct{ Keys []map[string]any }
			if err := json.Unmarshal([]byte(jwks), &set); err != nil || len(set.Keys) != 1 || set.Keys[0]["alg"] != tt.alg || set.Keys[0]["use"] != "enc" {
				t.Fatalf("/jwks = %s, want one %s key", jwks, tt.alg)
			}
			if tt.env["OIDC_RS_PRIVATE_KEY_STR"] != "" {
				keys, err := auth.ParseDecryptionKeys(configured, "RSA-OAEP")
				if err != nil {
					t.Fatal(err)
				}
				if set.Keys[0]["kid"] != keys.PublicKeys().Keys[0].KeyID {
					t.Errorf("/jwks kid = %v, want the configured key's", set.Keys[0]["kid"])
				}
			}

			s := storetest.Open(t)
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
			status, _, body := postGraphQL(t, base, "Bearer "+strings.TrimSpace(string(b)), `{ me { email } }`)
			var out struct {
				Data struct{ Me struct{ Email string } }
			}
			if json.Unmarshal([]byte(body), &out); status != http.StatusOK || out.Data.Me.Email != u.Email {
				t.Errorf("me with a minted token: %d %s, want %s", status, body, u.Email)
			}
		})
	}
}

// TestDevelopmentJWTBackendConfig: in development without OIDC_OP_URL, OIDC_RS_BACKEND=jwt
// needs no key nor JWKS endpoint; anywhere else it still does.
func TestDevelopmentJWTBackendConfig(t *testing.T) {
	dev := map[string]string{"DATABASE_URL": "postgres://u:p@127.0.0.1/db", "ENVIRONMENT": "development", "OIDC_RS_BACKEND": "jwt"}
	c, err := parseConfig(env(dev))
	if err != nil || !strings.Contains(c.Bearer.PrivateKey.reveal(), "PRIVATE KEY") {
		t.Errorf("development, jwt, no key: parseConfig() = %v, want a key made for the run", err)
	}
	dev["OIDC_RS_ENCRYPTION_ALGO"] = "RSA1_5"
	if _, err := parseConfig(env(dev)); err == nil || !strings.Contains(err.Error(), "OIDC_RS_PRIVATE_KEY_STR") {
		t.Errorf("development, jwt, RSA1_5: parseConfig() = %v, want an error naming OIDC_RS_PRIVATE_KEY_STR", err)
	}
	prod := map[string]string{"DATABASE_URL": "postgres://u:p@127.0.0.1/db", "ENVIRONMENT": "production", "OIDC_RS_BACKEND": "jwt"}
	if _, err := parseConfig(env(prod)); err == nil || !strings.Contains(err.Error(), "OIDC_RS_PRIVATE_KEY_STR") || !strings.Contains(err.Error(), "OIDC_OP_JWKS_ENDPOINT") {
		t.Errorf("production, jwt, no key: parseConfig() = %v, want errors naming OIDC_RS_PRIVATE_KEY_STR and OIDC_OP_JWKS_ENDPOINT", err)
	}
}
