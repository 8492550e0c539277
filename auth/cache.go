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
// no token, and the least recently used entry goes first when it is full. Good tokens and
// refusals live in two caches of their own sizes: anyone can make up tokens, and a flood of
// them fills the refusals' cache only, never pushing out the partners' good tokens.
// Concurrent requests with the same token wait for one resolution.
type tokenCache struct {
	entries  *lru.Cache[[sha256.Size]byte, cacheEntry] // principals
	refusals *lru.Cache[[sha256.Size]byte, cacheEntry]
	flight   singleflight.Group
	metrics  Metrics
}

type cacheEntry struct {
	principal Principal
	refusal   *refusal // nil when principal is good
	expires   time.Time
}

func newTokenCache(size, negativeSize int, m Metrics) (*tokenCache, error) {
	entries, err := lru.New[[sha256.Size]byte, cacheEntry](size)
	if err != nil {
		return nil, err
	}
	refusals, err := lru.New[[sha256.Size]byte, cacheEntry](negativeSize)
	if err != nil {
		return nil, err
	}
	if m == nil {
		m = noMetrics{}
	}
	return &tokenCache{entries: entries, refusals: refusals, metrics: m}, nil
}

func (c *tokenCache) get(key [sha256.Size]byte) (cacheEntry, bool) {
	for _, entries := range [...]*lru.Cache[[sha256.Size]byte, cacheEntry]{c.entries, c.refusals} {
		e, ok := entries.Get(key)
		if !ok {
			continue
		}
		if !time.Now().Before(e.expires) {
			entries.Remove(key)
			return cacheEntry{}, false
		}
		return e, true
	}
	return cacheEntry{}, false
}

// resolve returns the cached entry for token, or runs fn once for all concurrent callers and
// keeps its answer when it has an expiry in the future (refusals that say nothing about the
// token, such as an unreachable server or a rate limit, have none).
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
		switch {
		case !time.Now().Before(e.expires):
		case e.refusal != nil:
			c.refusals.Add(key, e)
		default:
			c.entries.Add(key, e)
		}
		return e, nil
	})
	return v.(cacheEntry)
}
