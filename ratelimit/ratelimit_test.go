package ratelimit

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeClock is a limiter's time, moved by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock           { return &fakeClock{time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }

func allowed(l *Limiter, key string) bool { w, _ := l.Allow(key); return w == 0 }

func TestLimiterBurstAndSustained(t *testing.T) {
	c := newFakeClock()
	l := New(c.now, Rule{"burst", Rate{3, time.Minute}}, Rule{"sustained", Rate{5, time.Hour}})
	for i := range 3 {
		if !allowed(l, "user:a") {
			t.Fatalf("request %d of a burst of 3 refused", i+1)
		}
	}
	if w, rule := l.Allow("user:a"); rule != "burst" || w != 20*time.Second {
		t.Errorf("4th request at once: wait %v by %q, want 20s by burst (3 a minute: one token every 20s)", w, rule)
	}
	if !allowed(l, "user:b") {
		t.Error("another caller was refused: limits are per key")
	}
	c.add(20 * time.Second)
	if !allowed(l, "user:a") {
		t.Fatal("refused once the burst bucket refilled a token")
	}
	c.add(40 * time.Second)
	if !allowed(l, "user:a") {
		t.Fatal("5th request refused: the sustained bucket still had one")
	}
	// 5 spent in a minute: the hourly bucket (5 an hour, one every 12 minutes) is empty,
	// though the burst bucket has refilled.
	if w, rule := l.Allow("user:a"); rule != "sustained" || w <= 10*time.Minute || w > 12*time.Minute {
		t.Errorf("6th request: wait %v by %q, want about 11 minutes by sustained", w, rule)
	}
	// A refusal spends nothing: after the wait, exactly one more request passes.
	c.add(11 * time.Minute)
	if !allowed(l, "user:a") {
		t.Error("refused after the sustained wait")
	}
	if allowed(l, "user:a") {
		t.Error("a second request passed: refusals must not have spent tokens, and this one has none")
	}
}

func TestLimiterOff(t *testing.T) {
	if l := New(time.Now, Rule{"burst", Rate{}}); l != nil {
		t.Fatalf("New with every rule off = %v, want nil", l)
	}
	var l *Limiter
	if !allowed(l, "x") {
		t.Error("a nil limiter refused")
	}
}

func TestRetryAfter(t *testing.T) {
	for d, want := range map[time.Duration]int{time.Millisecond: 1, time.Second: 1, 1001 * time.Millisecond: 2, 20 * time.Second: 20} {
		if got := RetryAfter(d); got != want {
			t.Errorf("RetryAfter(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestAddrKey(t *testing.T) {
	got := []string{
		AddrKey(netip.MustParseAddr("203.0.113.7")),
		AddrKey(netip.MustParseAddr("2001:db8:1:2:aaaa::1")),
		AddrKey(netip.MustParseAddr("2001:db8:1:2:bbbb::2")),
		AddrKey(netip.Addr{}),
	}
	want := []string{"ip:203.0.113.7", "ip:2001:db8:1:2::/64", "ip:2001:db8:1:2::/64", "ip:unknown"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("AddrKey (-want +got):\n%s", diff)
	}
}
