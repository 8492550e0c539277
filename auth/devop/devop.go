// Package devop is the development OpenID Provider of `make run`: discovery, JWKS, the
// authorization code flow with PKCE behind a login page that lists demo users (no password),
// userinfo (JSON, or a signed JWT for clients configured so, as ProConnect answers), end session,
// token introspection (RFC 7662, and RFC 9701's signed and encrypted JWT for a client that asks
// for it, as ProConnect answers People) and, for `make token`, access tokens minted without a
// browser.
// It is built on zitadel/oidc's op package, with its tokens, codes and keys in memory: a restart
// signs everybody out.
//
// Anyone who reaches it signs in as anyone, so server.go mounts it only in development, when no
// real provider is configured (OIDC_OP_URL unset), and on a loopback address unless
// DEV_OIDC_ALLOW_REMOTE says otherwise (CheckListenAddr). It imports store for the people it
// signs in (and store/demo for the names of the e2e users it lists first); nothing imports it
// but main.
package devop

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"lasuite.fr/people/store"
)

// Directory is where the provider finds the people it signs in; *store.Store is one.
type Directory interface {
	DevUsers(ctx context.Context, f store.DevUserFilter) ([]store.DevUser, error)
}

// Client is an OAuth client registered with the provider. Every client is confidential
// (client_secret_basic or client_secret_post) and must use PKCE with S256.
type Client struct {
	ID     string
	Secret string // New generates one when empty

	RedirectURIs           []string // exact matches only
	PostLogoutRedirectURIs []string
	UserinfoJWT            bool // answer userinfo as a signed JWT (application/jwt), as ProConnect does
	// IntrospectionEncryption is the client's registration for RFC 9701: its introspection
	// answers in JWT form are encrypted so. Without it they are signed only, which RFC 9701
	// allows and People's resource server refuses.
	IntrospectionEncryption *Encryption
}

// Options configure New.
type Options struct {
	// Issuer is the provider's URL, such as http://localhost:8071/dev-oidc. Its path is where
	// Handler expects to be mounted; every endpoint and redirect is under it.
	Issuer string
	Users  Directory

	// RPClient is People itself: it logs users in, and as the resource server of the partner
	// services it may introspect every token (OIDC_RS_CLIENT_ID and _SECRET are its own).
	RPClient Client
	// PartnerClients are the services (docs, meet) whose access tokens People receives; each may
	// introspect only its own tokens.
	PartnerClients []Client

	SigningAlg string // "RS256" (default) or "ES256": ID tokens and signed userinfo
	// IntrospectionSigningAlg signs RFC 9701 introspection answers: "ES256" (default, as
	// ProConnect's and OIDC_RS_SIGNING_ALGO's) or "RS256". Its key is SigningAlg's when they
	// are the same algorithm, else a second key, published next to it.
	IntrospectionSigningAlg string
	Development             bool // POST <issuer>/dev/token answers only when true
	Log                     *slog.Logger
}

// Provider is a running development OpenID Provider.
type Provider struct {
	issuer      string
	path        string // the issuer's path, "" or "/dev-oidc"
	rp          Client
	partners    []Client
	development bool
	log         *slog.Logger
	storage     *storage
	op          *op.Provider
	handler     http.Handler
}

// Endpoints are the absolute URLs of the provider's endpoints, for a relying party configured
// without discovery (the server cannot fetch its own discovery document before it serves).
type Endpoints struct {
	Discovery, Authorization, Token, Userinfo, JWKS, EndSession, Introspection, Revocation string
	DevToken                                                                               string // POST user=<email>&client_id=<partner>: an access token, in development only
}

// New makes a provider with fresh keys and, for clients that have none, fresh secrets.
func New(ctx context.Context, o Options) (*Provider, error) {
	u, err := url.Parse(o.Issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("dev oidc: issuer %q is not an http(s) URL without query", o.Issuer)
	}
	if o.Users == nil {
		return nil, errors.New("dev oidc: no user directory")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	issuer := strings.TrimSuffix(o.Issuer, "/")
	p := &Provider{issuer: issuer, path: strings.TrimSuffix(u.EscapedPath(), "/"), development: o.Development, log: o.Log}

	seen := map[string]bool{}
	recipients := map[string]recipient{}
	for i, c := range append([]Client{o.RPClient}, o.PartnerClients...) {
		if c.ID == "" || seen[c.ID] {
			return nil, fmt.Errorf("dev oidc: client ids must be set and unique (%q)", c.ID)
		}
		seen[c.ID] = true
		if c.Secret == "" {
			c.Secret = randomString(32)
		}
		if c.IntrospectionEncryption != nil {
			r, err := c.IntrospectionEncryption.recipient()
			if err != nil {
				return nil, fmt.Errorf("dev oidc: client %q: introspection encryption: %w", c.ID, err)
			}
			recipients[c.ID] = r
		}
		c = cloneClient(c)
		if i == 0 {
			p.rp = c
		} else {
			p.partners = append(p.partners, c)
		}
	}
	key, err := newSigningKey(o.SigningAlg)
	if err != nil {
		return nil, err
	}
	introspectionKey := key
	if alg := cmp.Or(o.IntrospectionSigningAlg, "ES256"); alg != string(key.alg) {
		if introspectionKey, err = newSigningKey(alg); err != nil {
			return nil, err
		}
	}
	p.storage = newStorage(o.Users, key, introspectionKey, issuer, p.rp, p.partners)
	for id, r := range recipients {
		p.storage.clients[id].recipient = &r
	}
	if p.op, p.handler, err = p.newOP(); err != nil {
		return nil, err
	}
	o.Log.WarnContext(ctx, "development OpenID provider enabled: anyone who reaches it signs in as any active user, without a password",
		"issuer", issuer, "rp_client_id", p.rp.ID, "signing_alg", string(key.alg))
	return p, nil
}

// Handler serves the provider's endpoints under the issuer's path: mount it there, as in
// mux.Handle("/dev-oidc/", p.Handler()).
func (p *Provider) Handler() http.Handler { return p.handler }

// Issuer is the provider's issuer URL, as it appears in its tokens and discovery document.
func (p *Provider) Issuer() string { return p.issuer }

// RPClient is People's client, with its secret.
func (p *Provider) RPClient() Client { return cloneClient(p.rp) }

// PartnerClients are the partner services' clients, with their secrets.
func (p *Provider) PartnerClients() []Client {
	out := make([]Client, len(p.partners))
	for i, c := range p.partners {
		out[i] = cloneClient(c)
	}
	return out
}

// Endpoints returns the provider's endpoint URLs, as its discovery document lists them.
func (p *Provider) Endpoints() Endpoints {
	return Endpoints{
		Discovery:     p.issuer + "/.well-known/openid-configuration",
		Authorization: p.issuer + "/" + pathAuthorize,
		Token:         p.issuer + "/" + pathToken,
		Userinfo:      p.issuer + "/" + pathUserinfo,
		JWKS:          p.issuer + "/" + pathKeys,
		EndSession:    p.issuer + "/" + pathEndSession,
		Introspection: p.issuer + "/" + pathIntrospect,
		Revocation:    p.issuer + "/" + pathRevoke,
		DevToken:      p.issuer + "/" + pathDevToken,
	}
}

func cloneClient(c Client) Client {
	c.RedirectURIs, c.PostLogoutRedirectURIs = slices.Clone(c.RedirectURIs), slices.Clone(c.PostLogoutRedirectURIs)
	if e := c.IntrospectionEncryption; e != nil {
		c.IntrospectionEncryption = &Encryption{Keys: jose.JSONWebKeySet{Keys: slices.Clone(e.Keys.Keys)}, Alg: e.Alg, Enc: e.Enc}
	}
	return c
}

// randomString returns n random bytes, base64url-encoded: secrets, ids and codes.
func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand documents it)
	return base64.RawURLEncoding.EncodeToString(b)
}
