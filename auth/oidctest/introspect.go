package oidctest

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Token is an access token the server issued to a service (a client) for a user.
type Token struct {
	Value    string    // the token itself; default "at-" and random characters
	Subject  string    // sub
	ClientID string    // the service it was issued to: aud and client_id of the answer
	Scope    string    // space-separated; default "openid groups"
	Email    string    // the email claim, when not empty
	Expiry   time.Time // default an hour after minting; from then on the token is inactive
	// Claims change the introspection object (after active, sub, aud... are set): a value
	// replaces the claim, nil removes it.
	Claims map[string]any
	// Fault makes the answers about this token misbehave.
	Fault *Fault

	issued  time.Time
	revoked bool
}

// Fault makes the introspection endpoint misbehave. Delay, Status and Body apply in both modes;
// the other fields change RFC 9701 answers (Accept: application/token-introspection+jwt).
type Fault struct {
	Delay  time.Duration // wait this long first (less if the client gives up)
	Status int           // answer this status with a JSON error
	Body   []byte        // answer these bytes with status 200
	// Arrived, when set, is sent a value as each request reaches the fault, before Delay and
	// Release: a test learns that its calls are under way without sleeping.
	Arrived chan<- struct{}
	// Release, when set, holds each request until it is closed (or the client gives up).
	Release <-chan struct{}

	Outer             map[string]any         // change claims of the signed answer (iss, aud, iat, exp, token_introspection); nil removes
	SigningAlg        string                 // "none" (no signature) or "HS256" (an HMAC keyed with the public key's PEM) instead of ES256
	UnknownKey        bool                   // sign with a key that is not published
	KeyAlgorithm      jose.KeyAlgorithm      // encrypt with this key algorithm (such as RSA1_5) instead of the usual one
	ContentEncryption jose.ContentEncryption // encrypt with this content encryption instead of the usual one
	JWEHeaders        map[string]any         // more protected JWE headers, such as iss and aud as node oidc-provider sets them
	Tamper            bool                   // flip a bit of the ciphertext
	Unencrypted       bool                   // answer the signed JWT alone
}

// Mint issues a token and returns it (an opaque string, as ProConnect's).
func (s *Server) Mint(t Token) string {
	t.issued = time.Now()
	if t.Scope == "" {
		t.Scope = "openid groups"
	}
	if t.Expiry.IsZero() {
		t.Expiry = t.issued.Add(time.Hour)
	}
	token := t.Value
	if token == "" {
		token = "at-" + random(16)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = &t
	return token
}

// Revoke makes a token inactive.
func (s *Server) Revoke(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tokens[token]; ok {
		t.revoked = true
	}
}

// maxForm bounds an introspection request.
const maxForm = 64 << 10

func (s *Server) serveIntrospection(w http.ResponseWriter, r *http.Request) {
	s.introspections.Add(1)
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, "application/json", map[string]string{"error": "invalid_request"})
		return
	}
	if !s.clientAuthenticated(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="introspection"`)
		writeJSON(w, http.StatusUnauthorized, "application/json", map[string]string{"error": "invalid_client"})
		return
	}
	s.mu.Lock()
	var t *Token
	if known, ok := s.tokens[r.PostForm.Get("token")]; ok {
		copied := *known
		t = &copied
	}
	fault, signing := s.fault, s.signing
	s.mu.Unlock()
	if fault == nil && t != nil {
		fault = t.Fault
	}
	if fault == nil {
		fault = &Fault{}
	}
	if fault.Arrived != nil {
		select {
		case fault.Arrived <- struct{}{}:
		case <-r.Context().Done():
			return
		}
	}
	if fault.Release != nil {
		select {
		case <-fault.Release:
		case <-r.Context().Done():
			return
		}
	}
	if fault.Delay > 0 {
		select {
		case <-time.After(fault.Delay):
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case fault.Status != 0:
		writeJSON(w, fault.Status, "application/json", map[string]string{"error": "server_error"})
		return
	case fault.Body != nil:
		w.Write(fault.Body)
		return
	}
	answer := s.introspection(t)
	if !strings.Contains(r.Header.Get("Accept"), "application/token-introspection+jwt") {
		writeJSON(w, http.StatusOK, "application/json", answer)
		return
	}
	jwt, err := s.signedAnswer(answer, fault, signing)
	if err != nil {
		s.tb.Errorf("oidctest: make introspection answer: %v", err)
		http.Error(w, "oidctest failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/token-introspection+jwt")
	w.Write([]byte(jwt))
}

func (s *Server) clientAuthenticated(r *http.Request) bool {
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if s.opts.ClientAuthMethod == "client_secret_basic" {
		u, p, ok := r.BasicAuth()
		if !ok {
			return false
		}
		// RFC 6749 §2.3.1: form-encoded, then joined.
		var err1, err2 error
		id, err1 = url.QueryUnescape(u)
		secret, err2 = url.QueryUnescape(p)
		if err1 != nil || err2 != nil {
			return false
		}
	}
	return id == s.ClientID && secret == s.ClientSecret
}

// introspection is the RFC 7662 object for t (nil: a token this server never issued).
func (s *Server) introspection(t *Token) map[string]any {
	if t == nil {
		return map[string]any{"active": false}
	}
	obj := map[string]any{"active": false}
	if !t.revoked && time.Now().Before(t.Expiry) {
		obj = map[string]any{
			"active": true, "iss": s.URL, "sub": t.Subject, "aud": t.ClientID, "client_id": t.ClientID,
			"scope": t.Scope, "token_type": "Bearer", "iat": t.issued.Unix(), "exp": t.Expiry.Unix(),
		}
		if t.Email != "" {
			obj["email"] = t.Email
		}
	}
	apply(obj, t.Claims)
	return obj
}

// signedAnswer makes the RFC 9701 answer: a JWT signed by the server, encrypted to the
// resource server, unless f says otherwise.
func (s *Server) signedAnswer(obj map[string]any, f *Fault, signing *signingKey) (string, error) {
	outer := map[string]any{"iss": s.URL, "aud": s.ClientID, "iat": time.Now().Unix(), "token_introspection": obj}
	apply(outer, f.Outer)
	payload, err := json.Marshal(outer)
	if err != nil {
		return "", err
	}
	jws, err := sign(payload, f, signing, s.tb)
	if err != nil || f.Unencrypted {
		return jws, err
	}
	if s.opts.EncryptionKey == nil {
		s.tb.Errorf("oidctest: a JWT introspection answer needs Options.EncryptionKey")
		return jws, nil
	}
	alg, enc := s.opts.KeyAlgorithm, s.opts.ContentEncryption
	if f.KeyAlgorithm != "" {
		alg = f.KeyAlgorithm
	}
	if f.ContentEncryption != "" {
		enc = f.ContentEncryption
	}
	opts := (&jose.EncrypterOptions{}).WithContentType("JWT")
	for k, v := range f.JWEHeaders {
		opts = opts.WithHeader(jose.HeaderKey(k), v)
	}
	encrypter, err := jose.NewEncrypter(enc, jose.Recipient{Algorithm: alg, Key: s.opts.EncryptionKey.Key, KeyID: s.opts.EncryptionKey.KeyID}, opts)
	if err != nil {
		return "", err
	}
	jwe, err := encrypter.Encrypt([]byte(jws))
	if err != nil {
		return "", err
	}
	compact, err := jwe.CompactSerialize()
	if err != nil || !f.Tamper {
		return compact, err
	}
	parts := strings.Split(compact, ".")
	ct, err := base64.RawURLEncoding.DecodeString(parts[3])
	if err != nil {
		return "", err
	}
	ct[0] ^= 1
	parts[3] = base64.RawURLEncoding.EncodeToString(ct)
	return strings.Join(parts, "."), nil
}

func sign(payload []byte, f *Fault, signing *signingKey, tb testing.TB) (string, error) {
	headers := map[jose.HeaderKey]any{"typ": "token-introspection+jwt"}
	var key jose.SigningKey
	switch {
	case f.SigningAlg == "none":
		h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "token-introspection+jwt", "kid": signing.kid})
		return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(payload) + ".", nil
	case f.SigningAlg == "HS256":
		// The classic confusion: an HMAC keyed with the public key, which anyone has.
		der, err := x509.MarshalPKIXPublicKey(signing.key.Public())
		if err != nil {
			return "", err
		}
		key = jose.SigningKey{Algorithm: jose.HS256, Key: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}
		headers["kid"] = signing.kid
	case f.UnknownKey:
		k := newSigningKey(tb)
		key = jose.SigningKey{Algorithm: jose.ES256, Key: k.key}
		headers["kid"] = k.kid
	default:
		key = jose.SigningKey{Algorithm: jose.ES256, Key: signing.key}
		headers["kid"] = signing.kid
	}
	signer, err := jose.NewSigner(key, &jose.SignerOptions{ExtraHeaders: headers})
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// apply sets the claims of change on obj, removing those whose value is nil.
func apply(obj, change map[string]any) {
	for k, v := range maps.All(change) {
		if v == nil {
			delete(obj, k)
		} else {
			obj[k] = v
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
