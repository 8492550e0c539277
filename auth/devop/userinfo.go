package devop

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/crypto"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// userinfo answers the claims of an access token's user, as JSON or, for a client with
// UserinfoJWT, as a JWT signed with the provider's key and carrying iss and aud (OpenID Connect
// Core 5.3.2). It replaces zitadel's handler, which knows only JSON.
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	token, found := bearerToken(r)
	if !found && r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		token = r.PostFormValue("access_token")
	}
	if token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_request"`)
		http.Error(w, "access token missing", http.StatusUnauthorized)
		return
	}
	t, ok := p.lookup(token)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "access token invalid or expired", http.StatusUnauthorized)
		return
	}
	info := userInfo(t.user, t.scopes)
	if c := p.storage.clients[t.clientID]; c == nil || !c.UserinfoJWT {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(info)
		return
	}
	info.AppendClaims("iss", p.issuer)
	info.AppendClaims("aud", t.clientID)
	signer, err := op.SignerFromKey(p.storage.key)
	if err == nil {
		token, err = crypto.Sign(info, signer)
	}
	if err != nil {
		p.log.ErrorContext(r.Context(), "dev oidc: sign userinfo", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/jwt")
	w.Write([]byte(token))
}

// bearerToken reads the Authorization header's bearer token (RFC 6750 2.1).
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// lookup returns the live token an opaque access token stands for: zitadel encrypts
// "<token id>:<subject>" into it with the provider's key.
func (p *Provider) lookup(token string) (accessToken, bool) {
	plain, err := p.op.Crypto().Decrypt(token)
	if err != nil {
		return accessToken{}, false
	}
	id, subject, ok := strings.Cut(plain, ":")
	if !ok {
		return accessToken{}, false
	}
	return p.storage.token(id, subject)
}
