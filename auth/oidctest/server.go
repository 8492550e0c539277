// Package oidctest is an in-process authorization server for tests, as net/http/httptest is an
// in-process HTTP server: it publishes signing keys (JWKS), lets a test mint, expire and revoke
// access tokens, answers token introspection as RFC 7662 JSON or RFC 9701 signed-then-encrypted
// JWT, counts the calls it gets, and misbehaves on request (see Fault). Its keys are made by the
// test run; nothing is read from disk or the network. It imports no package of this module.
package oidctest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// Paths of the server's endpoints, below its URL.
const (
	JWKSPath          = "/jwks"
	IntrospectionPath = "/introspect"
)

// Options configure NewServer. The zero value gives a server for JSON introspection only.
type Options struct {
	ClientID     string // the resource server's client id at this server; default "people"
	ClientSecret string // its secret; default a random one
	// ClientAuthMethod is the only client authentication the introspection endpoint accepts:
	// "client_secret_post" (default) or "client_secret_basic".
	ClientAuthMethod string
	// EncryptionKey is the resource server's public key, as its /jwks serves it: needed for
	// RFC 9701 answers, which are encrypted to it with KeyAlgorithm and ContentEncryption
	// (default RSA-OAEP and A256GCM).
	EncryptionKey     *jose.JSONWebKey
	KeyAlgorithm      jose.KeyAlgorithm
	ContentEncryption jose.ContentEncryption
}

// Server is a running authorization server. Its URL is the issuer.
type Server struct {
	URL          string
	ClientID     string
	ClientSecret string

	tb   testing.TB
	opts Options
	srv  *httptest.Server

	mu        sync.Mutex
	signing   *signingKey   // signs answers
	published []*signingKey // served at JWKSPath
	tokens    map[string]*Token
	fault     *Fault // for every introspection, when set

	introspections, jwksFetches atomic.Int64
}

type signingKey struct {
	kid string
	key *ecdsa.PrivateKey
}

// NewServer starts a server on 127.0.0.1, closed when the test ends.
func NewServer(tb testing.TB, o Options) *Server {
	tb.Helper()
	if o.ClientID == "" {
		o.ClientID = "people"
	}
	if o.ClientSecret == "" {
		o.ClientSecret = "secret-" + random(16)
	}
	if o.ClientAuthMethod == "" {
		o.ClientAuthMethod = "client_secret_post"
	}
	if o.KeyAlgorithm == "" {
		o.KeyAlgorithm = jose.RSA_OAEP
	}
	if o.ContentEncryption == "" {
		o.ContentEncryption = jose.A256GCM
	}
	s := &Server{ClientID: o.ClientID, ClientSecret: o.ClientSecret, tb: tb, opts: o, tokens: map[string]*Token{}}
	s.signing = newSigningKey(tb)
	s.published = []*signingKey{s.signing}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+JWKSPath, s.serveJWKS)
	mux.HandleFunc("POST "+IntrospectionPath, s.serveIntrospection)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	tb.Cleanup(s.srv.Close)
	return s
}

// Close stops the server before the test ends, as an outage would.
func (s *Server) Close() { s.srv.Close() }

// JWKSURL is the URL of the published signing keys.
func (s *Server) JWKSURL() string { return s.URL + JWKSPath }

// IntrospectionURL is the URL of the introspection endpoint.
func (s *Server) IntrospectionURL() string { return s.URL + IntrospectionPath }

// Introspections is how many introspection requests the server got.
func (s *Server) Introspections() int64 { return s.introspections.Load() }

// JWKSFetches is how many times its key set was fetched.
func (s *Server) JWKSFetches() int64 { return s.jwksFetches.Load() }

// RotateSigningKey makes a new signing key, signs with it from now on and publishes it alone,
// as a server does once the old key is withdrawn. It returns the new key id.
func (s *Server) RotateSigningKey() string {
	k := newSigningKey(s.tb)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signing, s.published = k, []*signingKey{k}
	return k.kid
}

// SigningKeyID is the kid of the current signing key.
func (s *Server) SigningKeyID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signing.kid
}

// SetFault makes every introspection misbehave as f says (nil: behave), whatever the token.
func (s *Server) SetFault(f *Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

func (s *Server) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	s.jwksFetches.Add(1)
	s.mu.Lock()
	set := jose.JSONWebKeySet{}
	for _, k := range s.published {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.key.Public(), KeyID: k.kid, Algorithm: string(jose.ES256), Use: "sig"})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, "application/jwk-set+json", set)
}

func newSigningKey(tb testing.TB) *signingKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("oidctest: make signing key: %v", err)
	}
	return &signingKey{kid: "sig-" + random(6), key: key}
}

func random(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
