package main

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"lasuite.fr/people/store/storetest"
)

// TestDevOIDCMounting checks when the development OpenID provider answers at /dev-oidc: in
// development without OIDC_OP_URL only.
func TestDevOIDCMounting(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		mounted bool
	}{
		{"development on loopback", map[string]string{"ENVIRONMENT": "development"}, true},
		{"production", map[string]string{"ENVIRONMENT": "production"}, false},
		{"a real provider is configured", map[string]string{"ENVIRONMENT": "development", "OIDC_OP_URL": "https://op.example.com",
			"OIDC_RP_CLIENT_SECRET": "s", "SECRET_KEY": strings.Repeat("k", 32)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := startServer(t, storetest.URL(t), tt.env)
			status, body := get(t, base+"/dev-oidc/.well-known/openid-configuration")
			if mounted := status == http.StatusOK; mounted != tt.mounted {
				t.Fatalf("discovery: %d, want mounted %v", status, tt.mounted)
			}
			if tt.mounted && !strings.Contains(body, `"issuer":"http://localhost:8071/dev-oidc"`) {
				t.Errorf("discovery %s, want the issuer PUBLIC_URL/dev-oidc", body)
			}
		})
	}
}

// TestDevOIDCRefusesRemoteListenAddr checks the rule without listening on every interface.
func TestDevOIDCRefusesRemoteListenAddr(t *testing.T) {
	s := storetest.Open(t)
	for _, tt := range []struct {
		listen      string
		allowRemote bool
		mounted     bool
	}{
		{":8071", false, false},
		{"0.0.0.0:8071", false, false},
		{"192.0.2.10:8071", false, false},
		{":8071", true, true},
		{"127.0.0.1:8071", false, true},
		{"[::1]:8071", false, true},
	} {
		var logs bytes.Buffer
		cfg := Config{Environment: "development", ListenAddr: tt.listen, PublicURL: "http://localhost:8071", DevOIDCAllowRemote: tt.allowRemote}
		p, err := newDevOIDC(t.Context(), cfg, s, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if (p != nil) != tt.mounted {
			t.Errorf("LISTEN_ADDR=%s DEV_OIDC_ALLOW_REMOTE=%v: mounted %v, want %v", tt.listen, tt.allowRemote, p != nil, tt.mounted)
		}
		if !tt.mounted && !strings.Contains(logs.String(), "DEV_OIDC_ALLOW_REMOTE") {
			t.Errorf("LISTEN_ADDR=%s: the log does not say how to enable the provider: %s", tt.listen, logs.String())
		}
		if tt.mounted && !strings.Contains(logs.String(), "level=WARN") {
			t.Errorf("LISTEN_ADDR=%s: no warning at start: %s", tt.listen, logs.String())
		}
	}
}
