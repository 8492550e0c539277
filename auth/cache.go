package auth

import (
	"crypto/sha256"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
)

// tokenCache remembers what a bearer token resolved to: a principal until min(token exp, ttl),
// or a refusal for a few seconds, so that a client retrying a bad token does not reach the
// authorization server each time. Entries are keyed by the token's SHA-256, so the cache holds
// no token, and the least recently used entry goes first when it is full. Concurrent requests
// with the same token wait for one resolution.
type tokenCache struct {
	entries *lru.Cache[[sha256.Size]byte, cacheEntry]
	flight  singleflight.Group
	metrics Metrics
}

type cacheEntry struct {
	principal Principal
	refusal   *refusal // nil when principal is good
	expires   time.Time
}

func newTokenCache(size int, m Metrics) (*tokenCache, error) {
	entries, err := lru.New[[sha256.Size]byte, cacheEntry](size)
	if err != nil {
		return nil, err
	}
	if m == nil {
		m = noMetrics{}
	}
	return &tokenCache{entries: entries, metrics: m}, nil
}

func (c *tokenCache) get(key [sha256.Size]byte) (cacheEntry, bool) {
	e, ok := c.entries.Get(key)
	if ok && !time.Now().Before(e.expires) {
		c.entries.Remove(key)
		return cacheEntry{}, false
	}
	return e, ok
}

// resolve returns the cached entry for token, or runs fn once for all concurrent callers and
// keeps its answer when it has an expiry in the future (refusals that say nothing about the
// token, such as an unreachable server, have none).
func (c *tokenCache) resolve(token string, fn func() cacheEntry) cacheEntry {
	key := sha256.Sum256([]byte(token))
	if e, ok := c.get(key); ok {
		c.metrics.TokenCached()
		return e
	}
	v, _, _ := c.flight.Do(string(key[:]), func() (any, error) {
		if e, ok := c.get(key); ok {
			return e, nil // a flight that ended while this caller was on its way
		}
		e := fn()
		if time.Now().Before(e.expires) {
			c.entries.Add(key, e)
		}
		return e, nil
	})
	return v.(cacheEntry)
}
