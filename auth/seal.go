package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"time"
)

// sealer encrypts and authenticates small values kept in the browser between two requests
// (the state, nonce and PKCE verifier of a login in progress), so that the server keeps no
// state for logins that are never finished and a client can neither read nor forge them.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte, purpose string) (*sealer, error) {
	if len(key) < 32 {
		return nil, errors.New("secret key must have at least 32 bytes")
	}
	k := sha256.Sum256(append([]byte("people/"+purpose+"/"), key...))
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

type sealed[T any] struct {
	Value   T     `json:"v"`
	Expires int64 `json:"e"`
}

func seal[T any](s *sealer, v T, ttl time.Duration) (string, error) {
	plain, err := json.Marshal(sealed[T]{Value: v, Expires: time.Now().Add(ttl).Unix()})
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, nil)), nil
}

var errSealed = errors.New("invalid or expired value")

func open[T any](s *sealer, text string) (T, error) {
	var zero T
	raw, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return zero, errSealed
	}
	plain, err := s.aead.Open(nil, raw[:s.aead.NonceSize()], raw[s.aead.NonceSize():], nil)
	if err != nil {
		return zero, errSealed
	}
	var v sealed[T]
	if err := json.Unmarshal(plain, &v); err != nil || time.Now().Unix() > v.Expires {
		return zero, errSealed
	}
	return v.Value, nil
}

// randomToken returns n random bytes, base64url-encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
