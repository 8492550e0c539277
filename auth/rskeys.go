package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// DecryptionKeys are the resource server's private keys, which an authorization server uses (by
// their public half, served at /jwks) to encrypt RFC 9701 introspection answers for us. Several
// keys allow a rotation: publish the new one next to the old, wait until the authorization
// server encrypts with it, then drop the old one.
type DecryptionKeys struct {
	alg    jose.KeyAlgorithm
	keys   []jose.JSONWebKey // private, kid = RFC 7638 thumbprint, so it survives restarts
	public []byte            // the public JWKS document
}

// encryptionAlgs are the JWE key algorithms we accept, by key type. RSA1_5 is not one of them
// (padding oracle), nor are the symmetric and password-based ones, which need no public key.
var encryptionAlgs = map[jose.KeyAlgorithm]string{
	jose.RSA_OAEP: "RSA", jose.RSA_OAEP_256: "RSA",
	jose.ECDH_ES: "EC", jose.ECDH_ES_A128KW: "EC", jose.ECDH_ES_A192KW: "EC", jose.ECDH_ES_A256KW: "EC",
}

// ParseDecryptionKeys reads one or more PEM private keys (PKCS #8, PKCS #1 or SEC 1 blocks, one
// after the other) for the JWE key algorithm alg. Environment files often carry a PEM on one
// line with "\n" escapes, which are accepted too. Errors never quote the key.
func ParseDecryptionKeys(pemText, alg string) (*DecryptionKeys, error) {
	kty, ok := encryptionAlgs[jose.KeyAlgorithm(alg)]
	if !ok {
		return nil, fmt.Errorf("unsupported encryption algorithm %q", alg)
	}
	if !strings.Contains(pemText, "\n") {
		pemText = strings.ReplaceAll(pemText, `\n`, "\n")
	}
	k := &DecryptionKeys{alg: jose.KeyAlgorithm(alg)}
	rest := []byte(pemText)
	for n := 1; ; n++ {
		block, r := pem.Decode(rest)
		if block == nil {
			if strings.TrimSpace(string(rest)) != "" {
				return nil, fmt.Errorf("text that is not a PEM block after key %d", n-1)
			}
			break
		}
		rest = r
		key, err := parsePrivateKey(block)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", n, err)
		}
		if err := checkKeyType(key, kty); err != nil {
			return nil, fmt.Errorf("key %d: %w for %s", n, err, alg)
		}
		jwk := jose.JSONWebKey{Key: key, Algorithm: alg, Use: "enc"}
		tp, err := jwk.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", n, err)
		}
		jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
		for _, prev := range k.keys {
			if prev.KeyID == jwk.KeyID {
				return nil, fmt.Errorf("key %d is given twice", n)
			}
		}
		k.keys = append(k.keys, jwk)
	}
	if len(k.keys) == 0 {
		return nil, errors.New("no PEM private key found")
	}
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, len(k.keys))}
	for i, key := range k.keys {
		set.Keys[i] = key.Public()
	}
	var err error
	if k.public, err = json.Marshal(set); err != nil {
		return nil, fmt.Errorf("encode public keys: %w", err)
	}
	return k, nil
}

func parsePrivateKey(b *pem.Block) (any, error) {
	if _, encrypted := b.Headers["Proc-Type"]; encrypted {
		return nil, errors.New("encrypted PEM keys are not supported")
	}
	switch b.Type {
	case "PRIVATE KEY":
		return x509.ParsePKCS8PrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(b.Bytes)
	}
	return nil, fmt.Errorf("a %q PEM block is not a private key", b.Type)
}

func checkKeyType(key any, kty string) error {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if kty != "RSA" {
			return errors.New("an RSA key does not fit")
		}
		if k.N.BitLen() < 2048 {
			return errors.New("an RSA key shorter than 2048 bits is too weak")
		}
		return nil
	case *ecdsa.PrivateKey:
		if kty != "EC" {
			return errors.New("an EC key does not fit")
		}
		return nil
	}
	return fmt.Errorf("a %T does not fit", key)
}

// decrypt opens a JWE with the key its kid names, or with each key in turn when the kid is
// absent or unknown: the payload is signed, so trying keys cannot make a forgery pass.
func (k *DecryptionKeys) decrypt(jwe *jose.JSONWebEncryption) ([]byte, error) {
	if k == nil {
		return nil, errors.New("no decryption key")
	}
	for _, key := range k.keys {
		if key.KeyID == jwe.Header.KeyID {
			return jwe.Decrypt(key.Key)
		}
	}
	err := errors.New("no decryption key")
	for _, key := range k.keys {
		var plain []byte
		if plain, err = jwe.Decrypt(key.Key); err == nil {
			return plain, nil
		}
	}
	return nil, err
}

// ServeHTTP answers GET /jwks with the public keys (an empty set when none is configured),
// cacheable for a while: a rotation publishes the new key well before using it.
func (k *DecryptionKeys) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	body := []byte(`{"keys":[]}`)
	if k != nil {
		body = k.public
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=600")
	w.Write(body)
}

// PublicKeys returns the public half of the keys, as /jwks serves them.
func (k *DecryptionKeys) PublicKeys() jose.JSONWebKeySet {
	var set jose.JSONWebKeySet
	if k != nil {
		for _, key := range k.keys {
			set.Keys = append(set.Keys, key.Public())
		}
	}
	return set
}
