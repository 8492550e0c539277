package auth

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/golang-lru/v2/simplelru"

	"lasuite.fr/people/store"
)

// CredentialCacheOptions configure a CredentialCache.
type CredentialCacheOptions struct {
	// TTL is the longest an answer of the database is reused (SESSION_CACHE_TTL); 0 or less
	// turns the cache off, and every request reads the database.
	TTL time.Duration
	// Size bounds the sessions remembered, and apart the bearer tokens' users; 0 means 10000.
	Size    int
	Metrics Metrics // counts hits, misses and bypasses; nil counts nothing
}

// CredentialCache remembers that a session cookie, or the user of a bearer token, passed the
// database's checks (store.SessionByToken, store.UserIsActive), so that most authenticated
// requests run no statement just to authenticate. A revocation still takes effect on every
// instance as soon as the database announces it (migration 0007's triggers, store.Revocations),
// whoever made it: an announcement drops what it names, and the instance that logs a session
// out forgets it before answering. So the cache:
//
//   - keeps positive answers only, at most TTL, and a session no longer than its expires_at;
//   - answers only while the listener listens: before it connects, and from a lost connection
//     until it listens again (which drops everything), every check goes to the database;
//   - never keeps an answer read before a revocation that it has already processed (gen);
//   - holds no cookie or token: sessions are keyed by the cookie's SHA-256, users by their id.
//
// A nil *CredentialCache caches nothing.
type CredentialCache struct {
	ttl       time.Duration
	listening func() bool
	metrics   Metrics

	mu sync.Mutex
	// gen counts revocations (announced or local). An answer of the database is kept only if
	// gen has not moved since before it was read: else a revocation processed meanwhile may
	// concern it, and keeping it would undo the revocation.
	gen      uint64
	sessions *simplelru.LRU[[sha256.Size]byte, cachedSession]
	byUser   map[uuid.UUID]map[[sha256.Size]byte]struct{} // the sessions cached for each user
	users    *simplelru.LRU[uuid.UUID, time.Time]         // active users, by when they were read
}

// cachedSession is what Sessions.Middleware uses of a session.
type cachedSession struct {
	id, userID uuid.UUID
	lastSeen   time.Time
	// expires is the session's absolute end. The database's clock set it and judges it there;
	// here the instance's clock does, so a skew between the two moves the end by as much, and
	// by no more than the TTL, after which the database judges again.
	expires time.Time
	fetched time.Time // when the database said so (monotonic clock)
}

// Outcomes of a cached credential check, as Metrics.CredentialChecked receives them.
const (
	CredentialHit    = "hit"    // answered from the cache
	CredentialMiss   = "miss"   // not cached, or no longer valid: read from the database
	CredentialBypass = "bypass" // the revocation listener is not listening: read from the database
)

// Kinds of credential checks, as Metrics.CredentialChecked receives them.
const (
	CredentialSession = "session" // a session cookie
	CredentialBearer  = "bearer"  // whether a bearer token's user is active
)

// NewCredentialCache returns a cache that listens to rev, which the caller runs; nil (no cache)
// when o.TTL is 0 or rev is nil.
func NewCredentialCache(rev *store.Revocations, o CredentialCacheOptions) *CredentialCache {
	if o.TTL <= 0 || rev == nil {
		return nil
	}
	if o.Size <= 0 {
		o.Size = 10000
	}
	if o.Metrics == nil {
		o.Metrics = noMetrics{}
	}
	c := &CredentialCache{ttl: o.TTL, listening: rev.Listening, metrics: o.Metrics,
		byUser: map[uuid.UUID]map[[sha256.Size]byte]struct{}{}}
	// Only a size below 1 is an error.
	c.sessions, _ = simplelru.NewLRU(o.Size, c.evicted)
	c.users, _ = simplelru.NewLRU[uuid.UUID, time.Time](o.Size, nil)
	rev.Subscribe(c.revoke)
	return c
}

// evicted keeps byUser in step with sessions, whatever removed the entry; c.mu is held.
func (c *CredentialCache) evicted(hash [sha256.Size]byte, s cachedSession) {
	if m := c.byUser[s.userID]; m != nil {
		delete(m, hash)
		if len(m) == 0 {
			delete(c.byUser, s.userID)
		}
	}
}

// revoke drops what rev names; it is subscribed to the listener.
func (c *CredentialCache) revoke(rev store.Revocation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	switch {
	case rev.All:
		c.sessions.Purge()
		c.users.Purge()
	case len(rev.TokenHash) == sha256.Size:
		c.sessions.Remove([sha256.Size]byte(rev.TokenHash))
	case rev.UserID != uuid.Nil:
		c.users.Remove(rev.UserID)
		for h := range c.byUser[rev.UserID] {
			c.sessions.Remove(h) // evicted edits the map: ranging over it meanwhile is allowed
		}
	default: // an announcement this cache does not understand: be safe
		c.sessions.Purge()
		c.users.Purge()
	}
}

// generation is read before the database, and given back to putSession or putActive.
func (c *CredentialCache) generation() uint64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// session returns the cached session under hash, if it may still be trusted.
func (c *CredentialCache) session(hash []byte) (cachedSession, bool) {
	if c == nil {
		return cachedSession{}, false
	}
	if !c.listening() {
		c.metrics.CredentialChecked(CredentialSession, CredentialBypass)
		return cachedSession{}, false
	}
	key := [sha256.Size]byte(hash)
	c.mu.Lock()
	s, ok := c.sessions.Get(key)
	now := time.Now()
	if ok && (!now.Before(s.expires) || now.Sub(s.fetched) >= c.ttl) {
		c.sessions.Remove(key)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		c.metrics.CredentialChecked(CredentialSession, CredentialMiss)
		return cachedSession{}, false
	}
	c.metrics.CredentialChecked(CredentialSession, CredentialHit)
	return s, true
}

// putSession keeps ses, read from the database after generation returned gen, unless a
// revocation came in between; it returns what the middleware uses of ses either way.
func (c *CredentialCache) putSession(gen uint64, hash []byte, ses *store.Session) cachedSession {
	s := cachedSession{id: ses.ID, userID: ses.UserID, lastSeen: ses.LastSeenAt, expires: ses.ExpiresAt, fetched: time.Now()}
	if c == nil || !c.listening() {
		return s
	}
	key := [sha256.Size]byte(hash)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return s
	}
	if old, ok := c.sessions.Peek(key); ok && old.userID != s.userID {
		c.sessions.Remove(key)
	}
	c.sessions.Add(key, s)
	if c.byUser[s.userID] == nil {
		c.byUser[s.userID] = map[[sha256.Size]byte]struct{}{}
	}
	c.byUser[s.userID][key] = struct{}{}
	return s
}

// touched records that the session under hash was written as seen at at, if it is cached.
func (c *CredentialCache) touched(hash []byte, at time.Time) {
	if c == nil {
		return
	}
	key := [sha256.Size]byte(hash)
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.sessions.Peek(key); ok {
		s.lastSeen = at
		c.sessions.Add(key, s)
	}
}

// forgetSessions drops sessions this instance has just deleted, without waiting for the
// database's announcement.
func (c *CredentialCache) forgetSessions(hashes ...[]byte) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, h := range hashes {
		if len(h) == sha256.Size {
			c.sessions.Remove([sha256.Size]byte(h))
		}
	}
}

// active reports whether the user is cached as active.
func (c *CredentialCache) active(user uuid.UUID) bool {
	if c == nil {
		return false
	}
	if !c.listening() {
		c.metrics.CredentialChecked(CredentialBearer, CredentialBypass)
		return false
	}
	c.mu.Lock()
	fetched, ok := c.users.Get(user)
	if ok && time.Since(fetched) >= c.ttl {
		c.users.Remove(user)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		c.metrics.CredentialChecked(CredentialBearer, CredentialMiss)
		return false
	}
	c.metrics.CredentialChecked(CredentialBearer, CredentialHit)
	return true
}

// putActive records that the database found user active after generation returned gen.
func (c *CredentialCache) putActive(gen uint64, user uuid.UUID) {
	if c == nil || !c.listening() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen {
		c.users.Add(user, time.Now())
	}
}
