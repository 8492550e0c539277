// Package ratelimit keeps token buckets per caller, in memory or, shared by every server
// instance, in Redis (REDIS_URL), falling back to memory while Redis cannot be reached. It
// knows nothing of HTTP or of who the caller is: its users name the keys (AddrKey for an
// anonymous client) and the rules.
//
// It imports none of our packages.
package ratelimit

import (
	"math"
	"net/netip"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// maxLimiterKeys bounds the callers a limiter remembers. The least recently seen goes first;
// one evicted while its bucket was low gets a full one back, which only a flood of new callers
// can cause, and which then limits that flood as well.
const maxLimiterKeys = 50_000

// Rate is a token bucket's rule: N requests per Period, in bursts of up to N. The zero Rate
// limits nothing.
type Rate struct {
	N      int
	Period time.Duration
}

// Off reports whether the rate limits nothing.
func (r Rate) Off() bool { return r.N == 0 }

// Limiter keeps token buckets per caller: one bucket for each rule, all of which must hold a
// token for a request to pass, and none of which is spent when one refuses. A bucket holds up
// to N tokens and gains N per Period, so a caller may send N requests at once, then one every
// Period/N: People's throttle rates, as a token bucket rather than DRF's sliding window.
//
// With a Shared (REDIS_URL), the buckets live in Redis, so that every instance counts against the
// same ones; the buckets in memory then only serve while Redis cannot be reached.
type Limiter struct {
	rules  []Rule
	keys   *lru.Cache[string, *buckets]
	now    func() time.Time
	shared *Shared // nil: memory only
	bucket *sharedBucket
	// standings are what Redis last said of each caller (with shared only), for Begin.
	standings *lru.Cache[string, *standing]
	mu        sync.Mutex // guards the standings' fields
}

// standing is what an instance knows of a caller's buckets in Redis.
type standing struct {
	refusedUntil time.Time // Begin decides at once until then
	// spare is how many requests Begin may still answer without waiting: the tokens Redis's
	// last answer left beyond the margin (gcraScript), less those answered so since.
	spare int64
	// pending: such a request's decision is on its way, and Begin waits for Redis meanwhile.
	pending bool
}

// distrustFor is how long after a refusal Begin decides a caller's requests before they run:
// a minute, or the caller's wait if longer.
const distrustFor = time.Minute

// Rule is a named rate; the name labels refusals in the metrics and logs, and names the
// buckets in Redis, so it is unique across the limiters that share one.
type Rule struct {
	Name string
	Rate Rate
}

type buckets struct {
	mu     sync.Mutex
	tokens []float64
	at     time.Time // when tokens were last brought up to date
}

// New returns a limiter of the rules that are not off, on the clock now, or nil when every
// rule is off: a nil *Limiter allows everything.
func New(now func() time.Time, rules ...Rule) *Limiter {
	var on []Rule
	for _, r := range rules {
		if !r.Rate.Off() {
			on = append(on, r)
		}
	}
	if len(on) == 0 {
		return nil
	}
	keys, _ := lru.New[string, *buckets](maxLimiterKeys) // only a size below 1 fails
	return &Limiter{rules: on, keys: keys, now: now}
}

// Share keeps l's buckets in shared (nil: in memory), and returns l.
func (l *Limiter) Share(shared *Shared) *Limiter {
	if l != nil && shared != nil {
		l.shared, l.bucket = shared, newSharedBucket(l.rules)
		l.standings, _ = lru.New[string, *standing](maxLimiterKeys)
	}
	return l
}

// Allow spends one token of each of key's buckets, or, when one of them is empty, spends
// nothing and returns how long until every bucket holds a token again, and the rule that
// refused (the one that takes longest to refill).
func (l *Limiter) Allow(key string) (wait time.Duration, rule string) {
	if l == nil {
		return 0, ""
	}
	if l.shared != nil {
		if wait, rule, spare, ok := l.shared.allow(l.bucket, key); ok {
			l.learn(key, wait, spare)
			return wait, rule
		}
	}
	return l.allowMemory(key)
}

// allowMemory is Allow in l's buckets in memory.
func (l *Limiter) allowMemory(key string) (wait time.Duration, rule string) {
	b, ok := l.keys.Get(key)
	if !ok {
		b = &buckets{tokens: make([]float64, len(l.rules)), at: l.now()}
		for i, r := range l.rules {
			b.tokens[i] = float64(r.Rate.N)
		}
		if prev, found, _ := l.keys.PeekOrAdd(key, b); found {
			b = prev // another request of the same caller got there first
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := l.now()
	elapsed := now.Sub(b.at).Seconds()
	if elapsed > 0 {
		b.at = now
	} else {
		elapsed = 0
	}
	for i, r := range l.rules {
		perSecond := float64(r.Rate.N) / r.Rate.Period.Seconds()
		b.tokens[i] = math.Min(float64(r.Rate.N), b.tokens[i]+elapsed*perSecond)
		if b.tokens[i] < 1 {
			if w := time.Duration((1 - b.tokens[i]) / perSecond * float64(time.Second)); w > wait {
				wait, rule = w, r.Name
			}
		}
	}
	if wait > 0 {
		return wait, rule
	}
	for i := range b.tokens {
		b.tokens[i]--
	}
	return 0, ""
}

// Begin is Allow for a request that may run before the answer, because it changes nothing
// (a read). Without Redis, Begin is Allow: a decision in memory takes no time. With Redis:
//
//   - a caller whose last answer from Redis left more than the margin of every bucket
//     (gcraScript: a quarter of it, at least 3 tokens) is admitted at once, later nil, while
//     Redis spends the token in the background, with the others spent within deferDelay; one
//     such request at a time per caller and instance, and no more than the tokens beyond the
//     margin;
//   - a caller refused by Redis less than distrustFor ago (or before the end of its wait, if
//     later) is decided at once, as Allow does, and later is nil: a caller over its limit gets
//     no work done by the request it sends then;
//   - any other caller gets later, which waits for Redis's answer: the caller runs the request
//     meanwhile and sends nothing of it before later says yes.
//
// So a caller's requests pass its limit only when more than its margin is spent while a
// request admitted at once is being decided (many requests at once, on one instance or
// several), and then by one request per instance at most: the one admitted at once.
func (l *Limiter) Begin(key string) (wait time.Duration, rule string, later func() (time.Duration, string)) {
	if l == nil {
		return 0, "", nil
	}
	if l.shared == nil {
		wait, rule = l.Allow(key)
		return wait, rule, nil
	}
	l.mu.Lock()
	st, _ := l.standings.Get(key)
	switch {
	case st != nil && l.now().Before(st.refusedUntil):
		l.mu.Unlock()
		wait, rule = l.Allow(key)
		return wait, rule, nil
	case st != nil && st.spare > 0 && !st.pending:
		st.spare--
		st.pending = true
		l.mu.Unlock()
		// The answer comes too late for this request, but is learnt for the next.
		l.shared.spend(l.bucket, key, func(wait time.Duration, spare int64, ok bool) {
			if ok {
				l.learn(key, wait, spare)
			} else {
				l.allowMemory(key)
			}
			l.mu.Lock()
			st.pending = false
			l.mu.Unlock()
		})
		return 0, "", nil
	}
	l.mu.Unlock()
	type answer struct {
		wait time.Duration
		rule string
	}
	c := make(chan answer, 1)
	go func() {
		w, r := l.Allow(key)
		c <- answer{w, r}
	}()
	return 0, "", func() (time.Duration, string) {
		a := <-c
		return a.wait, a.rule
	}
}

// learn keeps what Redis answered for key: a refusal of wait, or spare tokens beyond the margin.
func (l *Limiter) learn(key string, wait time.Duration, spare int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.standings.Get(key)
	if !ok {
		if wait == 0 && spare == 0 {
			return // nothing to remember
		}
		st = &standing{}
		l.standings.Add(key, st)
	}
	st.spare = spare
	if wait > 0 {
		st.refusedUntil = l.now().Add(max(wait, distrustFor))
	}
}

// Refund gives back the token that Allow took from each of key's buckets, when a later limit
// refused the request after all.
func (l *Limiter) Refund(key string) {
	if l == nil {
		return
	}
	if l.shared != nil && l.shared.refund(l.bucket, key) {
		return
	}
	b, ok := l.keys.Peek(key)
	if !ok {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, r := range l.rules {
		b.tokens[i] = math.Min(float64(r.Rate.N), b.tokens[i]+1)
	}
}

// Spend implements auth.Budget.
func (l *Limiter) Spend(key string) time.Duration {
	wait, _ := l.Allow(key)
	return wait
}

// RetryAfter is the Retry-After of a refusal: whole seconds, rounded up, at least 1.
func RetryAfter(wait time.Duration) int {
	return max(1, int(math.Ceil(wait.Seconds())))
}

// AddrKey is the limiter key of an anonymous client: its IPv4 address, or its IPv6 /64, since
// one host usually holds a whole /64 and could otherwise change address at every request.
func AddrKey(a netip.Addr) string {
	if !a.IsValid() {
		return "ip:unknown"
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		return "ip:" + p.String()
	}
	return "ip:" + a.String()
}
