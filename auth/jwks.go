package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// errUnknownKey means that no published key of the authorization server has the kid of a
// signature, even after fetching the key set again.
var errUnknownKey = errors.New("unknown signing key")

// remoteKeys caches the authorization server's signing keys (OIDC_OP_JWKS_ENDPOINT). People
// fetches them for every request; here they are fetched once, again when a signature names a kid
// we do not know (a rotation, at most once per minRefresh so that forged kids cannot make us
// hammer the server), and again when older than maxAge (so that a withdrawn key stops working).
type remoteKeys struct {
	url        string
	client     *http.Client
	minRefresh time.Duration
	maxAge     time.Duration

	flight  singleflight.Group
	mu      sync.Mutex
	set     []jose.JSONWebKey
	fetched time.Time
}

// maxJWKS bounds the key set document.
const maxJWKS = 1 << 20

// verificationKeys returns the published signing keys that may have made a signature with kid
// and alg (all of them when kid is empty). Failing to fetch is errUnavailable.
func (k *remoteKeys) verificationKeys(ctx context.Context, kid, alg string) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	set, fetched := k.set, k.fetched
	k.mu.Unlock()
	age := time.Since(fetched)
	if !fetched.IsZero() && age < k.maxAge {
		if keys := matchKeys(set, kid, alg); len(keys) > 0 {
			return keys, nil
		}
		if age < k.minRefresh {
			return nil, errUnknownKey
		}
	}
	fresh, err := k.refresh(ctx)
	if err != nil {
		if keys := matchKeys(set, kid, alg); len(keys) > 0 {
			return keys, nil // too old, but the server is away: better than refusing everyone
		}
		return nil, err
	}
	if keys := matchKeys(fresh, kid, alg); len(keys) > 0 {
		return keys, nil
	}
	return nil, errUnknownKey
}

// refresh fetches the key set; concurrent callers share one request.
func (k *remoteKeys) refresh(ctx context.Context) ([]jose.JSONWebKey, error) {
	v, err, _ := k.flight.Do("", func() (any, error) {
		set, err := k.fetch(context.WithoutCancel(ctx))
		if err != nil {
			return nil, err
		}
		k.mu.Lock()
		k.set, k.fetched = set, time.Now()
		k.mu.Unlock()
		return set, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]jose.JSONWebKey), nil
}

func (k *remoteKeys) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: jwks request: %v", errUnavailable, err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: fetch jwks: %v", errUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: jwks endpoint answered %d", errUnavailable, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKS+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read jwks: %v", errUnavailable, err)
	}
	if len(body) > maxJWKS {
		return nil, fmt.Errorf("%w: jwks larger than %d bytes", errUnavailable, maxJWKS)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("%w: jwks is not a key set", errUnavailable)
	}
	// One key of a type go-jose does not know must not hide the others.
	var set []jose.JSONWebKey
	for _, raw := range doc.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(raw); err == nil && key.Valid() {
			set = append(set, key.Public())
		}
	}
	return set, nil
}

func matchKeys(set []jose.JSONWebKey, kid, alg string) []jose.JSONWebKey {
	var keys []jose.JSONWebKey
	for _, key := range set {
		if (kid == "" || key.KeyID == kid) && key.Use != "enc" && (key.Algorithm == "" || key.Algorithm == alg) && key.Key != nil {
			keys = append(keys, key)
		}
	}
	return keys
}
