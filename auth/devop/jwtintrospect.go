package devop

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// mediaTypeIntrospectionJWT is what a client puts in Accept to get an RFC 9701 answer, and the
// answer's Content-Type; without its "application/" prefix, it is the JWS typ (RFC 9701 5).
const mediaTypeIntrospectionJWT = "application/token-introspection+jwt"

// Encryption is a client's registration for encrypted introspection answers (RFC 9701 6):
// introspection_encrypted_response_alg and _enc, and its public keys (jwks). The server wires
// People's resource server so: its /jwks keys, OIDC_RS_ENCRYPTION_ALGO and _ENCODING.
type Encryption struct {
	Keys jose.JSONWebKeySet // public keys; the first one fit for Alg (use "enc" or none) is used
	Alg  string             // JWE alg; default: that key's alg, else RSA-OAEP or ECDH-ES by key type
	Enc  string             // JWE enc; default A128CBC-HS256, RFC 9701's
}

// recipient is an Encryption resolved to one key, checked when New runs.
type recipient struct {
	key jose.JSONWebKey
	alg jose.KeyAlgorithm
	enc jose.ContentEncryption
}

// keyAlgorithms are the JWE key algorithms the provider encrypts with, by key type: the ones
// People's resource server accepts. RSA1_5 (padding oracle) and the symmetric ones are not.
var keyAlgorithms = map[jose.KeyAlgorithm]string{
	jose.RSA_OAEP: "RSA", jose.RSA_OAEP_256: "RSA",
	jose.ECDH_ES: "EC", jose.ECDH_ES_A128KW: "EC", jose.ECDH_ES_A192KW: "EC", jose.ECDH_ES_A256KW: "EC",
}

var contentEncryptions = []jose.ContentEncryption{
	jose.A128GCM, jose.A192GCM, jose.A256GCM, jose.A128CBC_HS256, jose.A192CBC_HS384, jose.A256CBC_HS512,
}

func (e *Encryption) recipient() (recipient, error) {
	enc := jose.ContentEncryption(cmp.Or(e.Enc, string(jose.A128CBC_HS256)))
	if !slices.Contains(contentEncryptions, enc) {
		return recipient{}, fmt.Errorf("unsupported content encryption %q", e.Enc)
	}
	if _, ok := keyAlgorithms[jose.KeyAlgorithm(e.Alg)]; e.Alg != "" && !ok {
		return recipient{}, fmt.Errorf("unsupported key algorithm %q: use RSA-OAEP, RSA-OAEP-256 or ECDH-ES(+A*KW)", e.Alg)
	}
	for _, k := range e.Keys.Keys {
		kty := keyType(k.Key)
		alg := jose.KeyAlgorithm(cmp.Or(e.Alg, k.Algorithm, map[string]string{"RSA": "RSA-OAEP", "EC": "ECDH-ES"}[kty]))
		if (k.Use != "" && k.Use != "enc") || !k.Valid() || (k.Algorithm != "" && k.Algorithm != string(alg)) ||
			kty == "" || keyAlgorithms[alg] != kty {
			continue
		}
		return recipient{key: k.Public(), alg: alg, enc: enc}, nil
	}
	return recipient{}, fmt.Errorf("no encryption key fits %s", cmp.Or(e.Alg, "RSA-OAEP or ECDH-ES"))
}

func keyType(key any) string {
	switch key.(type) {
	case *rsa.PublicKey, *rsa.PrivateKey:
		return "RSA"
	case *ecdsa.PublicKey, *ecdsa.PrivateKey:
		return "EC"
	}
	return ""
}

// callerKey holds a *caller in an introspection request's context: server.Introspect fills it
// once the client has authenticated.
type callerKey struct{}

type caller struct{ clientID string }

// introspectionJWT serves the introspection endpoint (next, zitadel's, which answers RFC 7662
// JSON only) and turns its answer into RFC 9701's for a client that asks for one with Accept:
// a JWT signed by the provider, with iss, aud (that client), iat, and token_introspection (the
// RFC 7662 object as is), then encrypted to the client's key when it registered one. Refusals
// keep their JSON form, as RFC 9701 leaves them to RFC 7662.
func (p *Provider) introspectionJWT(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Accept")
		if !acceptsIntrospectionJWT(r.Header) {
			next.ServeHTTP(w, r)
			return
		}
		c, answer := &caller{}, &bufferedResponse{header: http.Header{}}
		next.ServeHTTP(answer, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
		if answer.status != http.StatusOK || c.clientID == "" {
			answer.copyTo(w)
			return
		}
		jwt, err := p.introspectionAnswer(c.clientID, answer.body.Bytes())
		if err != nil {
			p.log.ErrorContext(r.Context(), "dev oidc: introspection answer as a JWT", "client_id", c.clientID, "err", err)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"error":"server_error"}`)
			return
		}
		w.Header().Set("Content-Type", mediaTypeIntrospectionJWT)
		io.WriteString(w, jwt)
	})
}

// acceptsIntrospectionJWT reports whether Accept lists the RFC 9701 media type (with q above 0).
func acceptsIntrospectionJWT(h http.Header) bool {
	for _, v := range h.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || mt != mediaTypeIntrospectionJWT {
				continue
			}
			if q, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(q, 64); err != nil || f <= 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}

// introspectionAnswer signs, and encrypts for clientID when it registered a key, the RFC 7662
// object that zitadel answered.
func (p *Provider) introspectionAnswer(clientID string, object []byte) (string, error) {
	object = bytes.TrimSpace(object)
	if !bytes.HasPrefix(object, []byte("{")) || !json.Valid(object) {
		return "", errors.New("the introspection answer is not a JSON object")
	}
	payload, err := json.Marshal(map[string]any{
		"iss": p.issuer, "aud": clientID, "iat": time.Now().Unix(), "token_introspection": json.RawMessage(object),
	})
	if err != nil {
		return "", err
	}
	key := p.storage.introspectionKey
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: key.alg, Key: jose.JSONWebKey{Key: key.key, KeyID: key.id}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(strings.TrimPrefix(mediaTypeIntrospectionJWT, "application/"))))
	if err != nil {
		return "", fmt.Errorf("signer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	signed, err := jws.CompactSerialize()
	c := p.storage.clients[clientID]
	if err != nil || c == nil || c.recipient == nil {
		return signed, err
	}
	rc := c.recipient
	encrypter, err := jose.NewEncrypter(rc.enc, jose.Recipient{Algorithm: rc.alg, Key: rc.key.Key, KeyID: rc.key.KeyID},
		(&jose.EncrypterOptions{}).WithContentType("JWT"))
	if err != nil {
		return "", fmt.Errorf("encrypter: %w", err)
	}
	jwe, err := encrypter.Encrypt([]byte(signed))
	if err != nil {
		return "", fmt.Errorf("encrypt: %w", err)
	}
	return jwe.CompactSerialize()
}

// bufferedResponse keeps an answer of zitadel's, which introspectionJWT may replace.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) Write(data []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(data)
}

func (b *bufferedResponse) copyTo(w http.ResponseWriter) {
	maps.Copy(w.Header(), b.header)
	w.WriteHeader(cmp.Or(b.status, http.StatusOK))
	w.Write(b.body.Bytes())
}
