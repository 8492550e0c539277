package main

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// maxLimiterKeys bounds the callers a limiter remembers. The least recently seen goes first;
// one evicted while its bucket was low gets a full one back, which only a flood of new callers
// can cause, and which then limits that flood as well.
const maxLimiterKeys = 50_000

// limiter keeps token buckets per caller: one bucket for each rule, all of which must hold a
// token for a request to pass, and none of which is spent when one refuses. A bucket holds up
// to N tokens and gains N per Period, so a caller may send N requests at once, then one every
// Period/N: People's throttle rates, as a token bucket rather than DRF's sliding window.
//
// With shared (REDIS_URL), the buckets live in Redis, so that every instance counts against the
// same ones; the buckets in memory then only serve while Redis cannot be reached.
type limiter struct {
	rules  []limitRule
	keys   *lru.Cache[string, *buckets]
	now    func() time.Time
	shared *sharedBuckets // nil: memory only
}

// limitRule is a named rate; the name labels refusals in the metrics.
type limitRule struct {
	name string
	rate rate
}

type buckets struct {
	mu     sync.Mutex
	tokens []float64
	at     time.Time // when tokens were last brought up to date
}

// newLimiter returns nil when every rule is off: a nil limiter allows everything.
func newLimiter(now func() time.Time, rules ...limitRule) *limiter {
	var on []limitRule
	for _, r := range rules {
		if !r.rate.Off() {
			on = append(on, r)
		}
	}
	if len(on) == 0 {
		return nil
	}
	keys, _ := lru.New[string, *buckets](maxLimiterKeys) // only a size below 1 fails
	return &limiter{rules: on, keys: keys, now: now}
}

// sharing keeps l's buckets in shared (nil: in memory), and returns l.
func (l *limiter) sharing(shared *sharedBuckets) *limiter {
	if l != nil {
		l.shared = shared
	}
	return l
}

// allow spends one token of each of key's buckets, or, when one of them is empty, spends
// nothing and returns how long until every bucket holds a token again, and the rule that
// refused (the one that takes longest to refill).
func (l *limiter) allow(key string) (wait time.Duration, rule string) {
	if l == nil {
		return 0, ""
	}
	if l.shared != nil {
		if wait, rule, ok := l.shared.allow(l.rules, key); ok {
			return wait, rule
		}
	}
	b, ok := l.keys.Get(key)
	if !ok {
		b = &buckets{tokens: make([]float64, len(l.rules)), at: l.now()}
		for i, r := range l.rules {
			b.tokens[i] = float64(r.rate.N)
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
		perSecond := float64(r.rate.N) / r.rate.Period.Seconds()
		b.tokens[i] = math.Min(float64(r.rate.N), b.tokens[i]+elapsed*perSecond)
		if b.tokens[i] < 1 {
			if w := time.Duration((1 - b.tokens[i]) / perSecond * float64(time.Second)); w > wait {
				wait, rule = w, r.name
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

// refund gives back the token that allow took from each of key's buckets, when a later limit
// refused the request after all.
func (l *limiter) refund(key string) {
	if l == nil {
		return
	}
	if l.shared != nil && l.shared.refund(l.rules, key) {
		return
	}
	b, ok := l.keys.Peek(key)
	if !ok {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, r := range l.rules {
		b.tokens[i] = math.Min(float64(r.rate.N), b.tokens[i]+1)
	}
}

// Spend implements auth.Budget.
func (l *limiter) Spend(key string) time.Duration {
	wait, _ := l.allow(key)
	return wait
}

// retryAfter is the Retry-After of a refusal: whole seconds, rounded up, at least 1.
func retryAfter(wait time.Duration) int {
	return max(1, int(math.Ceil(wait.Seconds())))
}

// clientAddr is the address of the client that sent r. The peer is the client, unless it is
// one of the trusted proxies: then X-Forwarded-For is read from the right, past every trusted
// proxy, to the first address that is not one. Entries further left were written by the
// client, which may put anything there. Invalid when the peer's address cannot be read.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	addr := peerAddr(r)
	if !addr.IsValid() || !contains(trusted, addr) {
		return addr
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return addr // garbage from the client: the last proxy is all we know
			}
			addr = hop.Unmap()
			if !contains(trusted, addr) {
				return addr
			}
		}
	}
	return addr
}

// peerAddr is the address at the other end of r's connection.
func peerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

func contains(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// addrKey is the limiter key of an anonymous client: its IPv4 address, or its IPv6 /64, since
// one host usually holds a whole /64 and could otherwise change address at every request.
func addrKey(a netip.Addr) string {
	if !a.IsValid() {
		return "ip:unknown"
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		return "ip:" + p.String()
	}
	return "ip:" + a.String()
}
