package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/google/uuid"
)

// Stored forms of a webhook secret (team_webhooks.secret and its deliveries' copies):
//
//	v1:<key id>:<base64url(nonce, AES-256-GCM ciphertext and tag)>  sealed under a key
//	plain:<secret>                                                    in clear: rows that migration 0009
//	                                                                  tagged, or an operator's INSERT
//
// The secret is sealed with the webhook's id as additional data, so a sealed value copied
// onto another webhook does not open. The key id names the key (a hash of it, not the key),
// so that the values sealed under an old key can be found in SQL and sealed again.
const (
	sealedPrefix = "v1:"
	plainPrefix  = "plain:"
)

// builtinSecretKey seals webhook secrets when no key is given (development without SECRET_KEY,
// tests, tools): anyone with the source can open what it sealed, so it protects nothing, and it
// stays a fallback when keys are given, so that setting SECRET_KEY later re-seals those values.
const builtinSecretKey = "lasuite.fr/people built-in key: set SECRET_KEY to protect webhook secrets"

var errSecretUnreadable = errors.New("webhook secret sealed under an unknown key or damaged")

type sealKey struct {
	id   string
	aead cipher.AEAD
}

// secretBox seals webhook secrets under the first key and opens them with any.
type secretBox struct {
	keys []sealKey
}

func newSecretBox(keys [][]byte) *secretBox {
	keys = append(keys[:len(keys):len(keys)], []byte(builtinSecretKey))
	b := &secretBox{}
	seen := map[string]bool{}
	for _, k := range keys {
		// HKDF with a purpose label: SECRET_KEY also seals the login cookie (auth), and
		// this key must be useless for that and the other way round.
		derived, err := hkdf.Key(sha256.New, k, nil, "people/webhook-secret/v1", 32)
		if err != nil {
			panic(err) // only for a length over 255 hash sizes
		}
		block, _ := aes.NewCipher(derived) // 32 bytes: cannot fail
		aead, _ := cipher.NewGCM(block)
		sum := sha256.Sum256(append([]byte("people/webhook-secret/key-id/"), derived...))
		id := hex.EncodeToString(sum[:4])
		if !seen[id] {
			seen[id] = true
			b.keys = append(b.keys, sealKey{id: id, aead: aead})
		}
	}
	return b
}

// currentPrefix starts every value sealed under the current key.
func (b *secretBox) currentPrefix() string { return sealedPrefix + b.keys[0].id + ":" }

// seal returns the stored form of secret, for the webhook webhookID; "" stays "".
func (b *secretBox) seal(secret string, webhookID uuid.UUID) string {
	if secret == "" {
		return ""
	}
	k := b.keys[0]
	nonce := make([]byte, k.aead.NonceSize())
	rand.Read(nonce) // never fails (crypto/rand)
	return b.currentPrefix() + base64.RawURLEncoding.EncodeToString(k.aead.Seal(nonce, nonce, []byte(secret), webhookID[:]))
}

// open returns the secret of a stored value; "" stays "".
func (b *secretBox) open(stored string, webhookID uuid.UUID) (string, error) {
	switch {
	case stored == "":
		return "", nil
	case strings.HasPrefix(stored, plainPrefix):
		return stored[len(plainPrefix):], nil
	case !strings.HasPrefix(stored, sealedPrefix):
		return "", errSecretUnreadable
	}
	id, text, ok := strings.Cut(stored[len(sealedPrefix):], ":")
	if !ok {
		return "", errSecretUnreadable
	}
	for _, k := range b.keys {
		if k.id != id {
			continue
		}
		raw, err := base64.RawURLEncoding.DecodeString(text)
		if err != nil || len(raw) < k.aead.NonceSize() {
			return "", errSecretUnreadable
		}
		plain, err := k.aead.Open(nil, raw[:k.aead.NonceSize()], raw[k.aead.NonceSize():], webhookID[:])
		if err != nil {
			return "", errSecretUnreadable
		}
		return string(plain), nil
	}
	return "", errSecretUnreadable
}

// SealWebhookSecret returns the stored form of a webhook's secret under the current key, as
// the store writes it: for writers of team_webhooks outside the store (people import-people),
// which must never store a secret in clear. "" stays "".
func (s *Store) SealWebhookSecret(secret string, webhookID uuid.UUID) string {
	return s.secrets.seal(secret, webhookID)
}

// WebhookSecretIs reports whether stored, a stored form of the webhook's secret, opens to
// secret: sealing draws a fresh nonce, so comparing stored forms cannot tell an unchanged
// secret from a new one.
func (s *Store) WebhookSecretIs(stored, secret string, webhookID uuid.UUID) bool {
	plain, err := s.secrets.open(stored, webhookID)
	return err == nil && plain == secret
}
