package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/auth/oidctest"
	"lasuite.fr/people/store/storetest"
)

// TestServePartnerREST: the server mounts People's partner REST API behind the bearer
// middleware of /graphql (here in RFC 9701 mode, as with ProConnect), with absolute URLs under
// PUBLIC_URL, and logs its requests with the caller as it logs GraphQL's.
func TestServePartnerREST(t *testing.T) {
	key := rsaKeyPEM(t)
	keys, err := auth.ParseDecryptionKeys(key, "RSA-OAEP")
	if err != nil {
		t.Fatal(err)
	}
	pub := keys.PublicKeys().Keys[0]
	as := oidctest.NewServer(t, oidctest.Options{EncryptionKey: &pub})
	vars := bearerEnv(as, key)
	vars["PUBLIC_URL"] = "https://people.example.test"
	srv, logs := bearerServer(t, vars)
	s := storetest.Open(t)
	u := storetest.User(t, s, storetest.Organization(t, s))
	storetest.MustExec(t, s.DB(), "INSERT INTO user_identities (user_id, issuer, subject) VALUES (?, ?, ?)", u.ID, as.URL, u.Sub)
	tok := as.Mint(oidctest.Token{Subject: u.Sub, ClientID: "docs"})

	get := func(path, authz string) (int, http.Header, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return resp.StatusCode, resp.Header, v
	}
	status, h, v := get("/resource-server/v1.0/scim/Me/", "Bearer "+tok)
	meta, _ := v["meta"].(map[string]any)
	if status != http.StatusOK || h.Get("Content-Type") != "application/json+scim" || v["id"] != u.ID.String() ||
		meta["location"] != "https://people.example.test/resource-server/v1.0/scim/Me/" {
		t.Errorf("SCIM /Me: %d %q %v", status, h.Get("Content-Type"), v)
	}
	status, _, v = get("/resource-server/v1.0/teams/", "Bearer "+tok)
	if status != http.StatusOK || v["count"] != float64(0) {
		t.Errorf("teams: %d %v", status, v)
	}
	status, h, v = get("/resource-server/v1.0/teams/", "")
	if status != http.StatusUnauthorized || v["detail"] != "Authentication credentials were not provided." || h.Get("WWW-Authenticate") != `Bearer realm="api"` {
		t.Errorf("teams without a token: %d %v", status, v)
	}
	status, _, v = get("/resource-server/v1.0/teams/", "Bearer not-a-token")
	if status != http.StatusUnauthorized || v["detail"] == nil {
		t.Errorf("teams with a bad token: %d %v", status, v)
	}
	if status, _, v = get("/resource-server/v1.0/openapi.json", ""); status != http.StatusOK || v["openapi"] != "3.0.3" {
		t.Errorf("openapi.json: %d", status)
	}
	if !strings.Contains(logs.String(), `"path":"/resource-server/v1.0/teams/","status":200,`) || !strings.Contains(logs.String(), `"principal":"bearer"`) {
		t.Errorf("request log lines:\n%s", logs)
	}
	if strings.Contains(logs.String(), tok) {
		t.Error("the token is in the logs")
	}
}
