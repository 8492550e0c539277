package devop

import (
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"lasuite.fr/people/auth"
	"lasuite.fr/people/store"
)

// mintScopes are the scopes of a minted token unless the request names others: what a partner
// service's token holds when it calls People (issue "Partner services").
var mintScopes = []string{oidc.ScopeOpenID, oidc.ScopeEmail, "groups"}

// mint answers POST user=<email>&client_id=<partner>[&scope=...] with an access token issued
// to that partner for that user, as text, for `make token`. It is the one way to a token
// without the login page, so on top of the provider's own mounting rules it answers only in
// development, only to a loopback peer that names a loopback host, and never to a browser.
// The host matters because of DNS rebinding: a page of another site whose name now resolves to
// 127.0.0.1 reaches a loopback peer too, but sends its own name in Host.
func (p *Provider) mint(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch {
	case !p.development:
		http.Error(w, "minting tokens without a sign-in is only for development (ENVIRONMENT=development)", http.StatusForbidden)
		return
	case !loopbackPeer(r.RemoteAddr) || !auth.LoopbackHost(r.Host):
		http.Error(w, "tokens are minted only for clients on this machine, at localhost or a loopback address", http.StatusForbidden)
		return
	case r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != "":
		http.Error(w, "this endpoint is for make token, not for browsers", http.StatusForbidden)
		return
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", "POST")
		http.Error(w, "use POST with user=<email>&client_id=<partner>", http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	email, clientID := strings.TrimSpace(r.PostFormValue("user")), r.PostFormValue("client_id")
	scopes := mintScopes
	if s := strings.Fields(r.PostFormValue("scope")); len(s) > 0 {
		scopes = s
	}
	if !slices.ContainsFunc(p.partners, func(c Client) bool { return c.ID == clientID }) {
		ids := make([]string, len(p.partners))
		for i, c := range p.partners {
			ids[i] = c.ID
		}
		http.Error(w, "client_id must be a partner service: one of "+strings.Join(ids, ", "), http.StatusBadRequest)
		return
	}
	for _, s := range scopes {
		if !slices.Contains([]string{oidc.ScopeOpenID, oidc.ScopeEmail, oidc.ScopeProfile}, s) && !slices.Contains(customScopes, s) {
			http.Error(w, "unknown scope "+s, http.StatusBadRequest)
			return
		}
	}
	if email == "" {
		http.Error(w, "user must be the email of an active user", http.StatusBadRequest)
		return
	}
	users, err := p.storage.users.DevUsers(r.Context(), store.DevUserFilter{Email: email, Limit: 2})
	if err != nil {
		p.log.ErrorContext(r.Context(), "dev oidc: find user", "err", err)
		http.Error(w, "the user could not be read: see the server's log", http.StatusInternalServerError)
		return
	}
	switch len(users) {
	case 0:
		http.Error(w, "no active user has this email", http.StatusNotFound)
		return
	case 2:
		http.Error(w, "several active users have this email", http.StatusConflict)
		return
	}
	id, _, err := p.storage.CreateAccessToken(r.Context(), &mintRequest{clientID: clientID, user: users[0], scopes: scopes})
	var token string
	if err == nil {
		token, err = op.CreateBearerToken(id, users[0].Sub, p.op.Crypto())
	}
	if err != nil {
		p.log.ErrorContext(r.Context(), "dev oidc: mint token", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	p.log.InfoContext(r.Context(), "dev oidc: token minted", "user_id", users[0].ID, "client_id", clientID)
	w.Write([]byte(token + "\n"))
}

// loopbackPeer reports whether a request's peer address is on this machine.
func loopbackPeer(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
