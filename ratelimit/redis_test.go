package ratelimit

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// testRedis is the Redis server of make test (.ci/rediscluster). Tests that need one fail
// without it, rather than skip, as those that need PostgreSQL do.
func testRedis(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("TEST_REDIS_URL")
	if u == "" {
		tb.Fatal("TEST_REDIS_URL is not set: run make test, or start a Redis server with " +
			"`export TEST_REDIS_URL=$(.ci/rediscluster start /tmp/people-redis)` and run the tests again")
	}
	return u
}

// sharedLimiter is a limiter of rules kept in the test Redis, with the number of decisions
// made in memory because Redis could not be asked.
func sharedLimiter(t *testing.T, url string, rules ...Rule) (*Limiter, *Shared, *atomic.Int64) {
	t.Helper()
	var fallbacks atomic.Int64
	s, err := NewShared(url, func() { fallbacks.Add(1) }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return New(time.Now, rules...).Share(s), s, &fallbacks
}

// callerKey is a caller of its own: the test Redis is shared by every package's tests and
// every run.
func callerKey() string { return "test:" + rand.Text() }

// calls counts the commands a client sends, by name.
type calls struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *calls) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *calls) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.mu.Lock()
		c.n[cmd.Name()]++
		c.mu.Unlock()
		return next(ctx, cmd)
	}
}
func (c *calls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.mu.Lock()
		c.n["pipeline"]++
		c.mu.Unlock()
		return next(ctx, cmds)
	}
}

func (c *calls) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.n {
		n += v
	}
	return n
}

func countCalls(s *Shared) *calls {
	c := &calls{n: map[string]int{}}
	s.client.AddHook(c)
	return c
}

// age moves key's buckets in l d into the past, as if d had gone by: a bucket is the time at
// which it is full again.
func age(t *testing.T, l *Limiter, key string, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	k := l.bucket.prefix + key
	v, err := l.shared.client.Get(ctx, k).Result()
	if err == redis.Nil {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	tats := strings.Split(v, ",")
	for i, tat := range tats {
		f, err := strconv.ParseFloat(tat, 64)
		if err != nil {
			t.Fatalf("bucket %s = %q", k, v)
		}
		tats[i] = strconv.FormatFloat(f-d.Seconds(), 'f', -1, 64)
	}
	if err := l.shared.client.Set(ctx, k, strings.Join(tats, ","), time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
}

// bucketValue is key's buckets in l, as Redis holds them.
func bucketValue(t *testing.T, l *Limiter, key string) string {
	t.Helper()
	v, err := l.shared.client.Get(context.Background(), l.bucket.prefix+key).Result()
	if err != nil && err != redis.Nil {
		t.Fatal(err)
	}
	return v
}

// TestSharedDecidesAsMemory runs TestLimiterBurstAndSustained's story on buckets in Redis,
// where time goes by as the buckets are aged: the same requests pass, the same rule refuses
// with the same wait, and a refusal spends nothing.
func TestSharedDecidesAsMemory(t *testing.T) {
	rules := []Rule{{"burst", Rate{3, time.Minute}}, {"sustained", Rate{5, time.Hour}}}
	l, _, fallbacks := sharedLimiter(t, testRedis(t), rules...)
	a, b := callerKey(), callerKey()
	// within wants a wait of want, less the real time a test takes (Redis's clock moves on).
	within := func(what string, got time.Duration, rule string, wantRule string, want time.Duration) {
		t.Helper()
		if rule != wantRule || got > want || got < want-5*time.Second {
			t.Errorf("%s: wait %v by %q, want %v by %q", what, got, rule, want, wantRule)
		}
	}
	for i := range 3 {
		if w, rule := l.Allow(a); w != 0 {
			t.Fatalf("request %d of a burst of 3 refused by %q (%v)", i+1, rule, w)
		}
	}
	w, rule := l.Allow(a)
	within("4th request at once", w, rule, "burst", 20*time.Second)
	if !allowed(l, b) {
		t.Error("another caller was refused: limits are per key")
	}
	age(t, l, a, 20*time.Second)
	if !allowed(l, a) {
		t.Fatal("refused once the burst bucket refilled a token")
	}
	age(t, l, a, 40*time.Second)
	if !allowed(l, a) {
		t.Fatal("5th request refused: the sustained bucket still had one")
	}
	// 5 spent in a minute: the burst bucket has refilled, the hourly one (one every 12 minutes)
	// is empty for 11 more minutes. The refusal is the sustained rule's, and writes neither
	// bucket.
	before := bucketValue(t, l, a)
	w, rule = l.Allow(a)
	within("6th request", w, rule, "sustained", 11*time.Minute)
	if before == "" {
		t.Fatal("no bucket in Redis after 5 requests")
	}
	if after := bucketValue(t, l, a); after != before {
		t.Errorf("a refusal changed the buckets: %q, then %q", before, after)
	}
	age(t, l, a, 11*time.Minute)
	if !allowed(l, a) {
		t.Error("refused after the sustained wait")
	}
	if allowed(l, a) {
		t.Error("a second request passed: refusals must not have spent tokens, and this one has none")
	}
	if n := fallbacks.Load(); n != 0 {
		t.Errorf("%d decisions made in memory with Redis up", n)
	}
}

// TestSharedRefund: a refund gives back one token of each bucket, never more than a full
// bucket holds.
func TestSharedRefund(t *testing.T) {
	l, _, _ := sharedLimiter(t, testRedis(t), Rule{"burst", Rate{3, time.Minute}}, Rule{"sustained", Rate{100, time.Hour}})
	a := callerKey()
	l.Refund(a) // a full bucket stays full
	for i := range 3 {
		if !allowed(l, a) {
			t.Fatalf("request %d of a burst of 3 refused", i+1)
		}
	}
	if allowed(l, a) {
		t.Fatal("4th request passed: a refund made a full bucket hold more than 3")
	}
	l.Refund(a)
	if !allowed(l, a) {
		t.Fatal("refused after a refund")
	}
	if allowed(l, a) {
		t.Fatal("two requests passed after one refund")
	}
}

// TestSharedOneCallPerDecision: a decision over two rules costs one command, and concurrent
// decisions share calls without ever passing more requests than the bucket holds, on two
// instances at once.
func TestSharedOneCallPerDecision(t *testing.T) {
	url := testRedis(t)
	rules := []Rule{{"burst", Rate{100, time.Hour}}, {"sustained", Rate{1000, time.Hour}}}
	l1, s1, fb1 := sharedLimiter(t, url, rules...)
	l2, s2, fb2 := sharedLimiter(t, url, rules...)
	l1.Allow(callerKey()) // loads the script
	c1, c2 := countCalls(s1), countCalls(s2)
	for i := range 5 {
		l1.Allow(callerKey())
		if n := c1.total(); n != i+1 {
			t.Fatalf("after %d decisions over 2 rules: %d commands to Redis (%v), want one a decision", i+1, n, c1.n)
		}
	}

	key := callerKey()
	var passed atomic.Int64
	var wg sync.WaitGroup
	const workers, each = 32, 10
	for w := range 2 * workers {
		l := l1
		if w%2 == 1 {
			l = l2
		}
		wg.Go(func() {
			for range each {
				if allowed(l, key) {
					passed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := passed.Load(); n != 100 {
		t.Errorf("%d of %d concurrent requests passed, want exactly the bucket's 100", n, 2*workers*each)
	}
	n := c1.total() - 5 + c2.total()
	if n > 2*workers*each {
		t.Errorf("%d commands for %d decisions: more than one a decision", n, 2*workers*each)
	}
	t.Logf("%d decisions in %d calls to Redis", 2*workers*each, n)
	if f := fb1.Load() + fb2.Load(); f != 0 {
		t.Errorf("%d decisions made in memory with Redis up", f)
	}
}

// TestSharedRedisUnreachable: with no Redis at the address, every decision is made in
// memory and counted once as such, concurrent ones included, and the limits still hold there.
func TestSharedRedisUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	l, _, fallbacks := sharedLimiter(t, "redis://"+addr, Rule{"burst", Rate{10, time.Minute}})
	key := callerKey()
	var passed atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if allowed(l, key) {
				passed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := passed.Load(); n != 10 {
		t.Errorf("%d of 20 requests passed in memory, want the bucket's 10", n)
	}
	if n := fallbacks.Load(); n != 20 {
		t.Errorf("%d decisions counted as made in memory, want 20", n)
	}
}

// BenchmarkSharedAllow: decisions over two rules from b.N parallel callers, with the time
// Redis spends in the script per decision (from INFO commandstats: the whole server's, so
// run it alone) and the calls per decision.
func BenchmarkSharedAllow(b *testing.B) {
	url := testRedis(b)
	var fallbacks atomic.Int64
	s, err := NewShared(url, func() { fallbacks.Add(1) }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	l := New(time.Now, Rule{"burst", Rate{1_000_000, time.Second}}, Rule{"sustained", Rate{1_000_000, time.Second}}).Share(s)
	l.Allow(callerKey()) // loads the script
	stats := func() (calls, usec float64) {
		info, err := s.client.Info(context.Background(), "commandstats").Result()
		if err != nil {
			b.Fatal(err)
		}
		for _, line := range strings.Split(info, "\n") {
			if !strings.HasPrefix(line, "cmdstat_evalsha:") {
				continue
			}
			for _, f := range strings.Split(strings.TrimSpace(strings.TrimPrefix(line, "cmdstat_evalsha:")), ",") {
				k, v, _ := strings.Cut(f, "=")
				switch k {
				case "calls":
					calls, _ = strconv.ParseFloat(v, 64)
				case "usec":
					usec, _ = strconv.ParseFloat(v, 64)
				}
			}
		}
		return calls, usec
	}
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = callerKey()
	}
	c0, u0 := stats()
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Allow(keys[next.Add(1)%int64(len(keys))])
		}
	})
	b.StopTimer()
	c1, u1 := stats()
	b.ReportMetric((u1-u0)/float64(b.N), "redis-µs/op")
	b.ReportMetric((c1-c0)/float64(b.N), "calls/op")
	if f := fallbacks.Load(); f != 0 {
		b.Fatalf("%d decisions made in memory", f)
	}
}

// TestBegin: with Redis, Begin answers later, as Allow would; a caller Redis refused is
// decided at once for distrustFor (or its wait, if longer), then later again. In memory,
// Begin decides at once.
func TestBegin(t *testing.T) {
	c := newFakeClock()
	rules := []Rule{{"burst", Rate{2, time.Minute}}}
	s, err := NewShared(testRedis(t), func() { t.Error("a decision made in memory with Redis up") }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l := New(c.now, rules...).Share(s)
	a := callerKey()
	for i := range 2 {
		wait, _, later := l.Begin(a)
		if wait != 0 || later == nil {
			t.Fatalf("Begin %d: wait %v, later %v; want an answer later", i+1, wait, later != nil)
		}
		if wait, rule := later(); wait != 0 {
			t.Fatalf("request %d of a burst of 2 refused later by %q", i+1, rule)
		}
	}
	wait, _, later := l.Begin(a)
	if later == nil {
		t.Fatal("3rd request: no answer later, though Redis had not refused the caller yet")
	}
	if wait, rule := later(); rule != "burst" || wait <= 25*time.Second || wait > 30*time.Second {
		t.Fatalf("3rd request: later answered %v by %q, want about 30s by burst", wait, rule)
	}
	// Refused: decided at once for a minute.
	wait, rule, later := l.Begin(a)
	if later != nil || rule != "burst" || wait <= 0 {
		t.Errorf("after a refusal: wait %v by %q, later %v; want a refusal at once", wait, rule, later != nil)
	}
	// A minute later, less a second: the bucket has refilled (aged, as Redis's clock has not
	// moved), and the caller is still decided at once.
	c.add(distrustFor - time.Second)
	age(t, l, a, distrustFor)
	if wait, _, later := l.Begin(a); later != nil || wait != 0 {
		t.Errorf("a minute is not over since the refusal: wait %v, later %v; want a pass at once", wait, later != nil)
	}
	c.add(time.Second)
	if _, _, later := l.Begin(a); later == nil {
		t.Error("a minute after the refusal, Begin still decides at once")
	} else if wait, rule := later(); wait != 0 {
		t.Errorf("refused by %q after the bucket refilled", rule)
	}
	if _, _, later := l.Begin(callerKey()); later == nil {
		t.Error("another caller is decided at once")
	} else {
		later()
	}

	m := New(c.now, rules...)
	if wait, _, later := m.Begin(a); wait != 0 || later != nil {
		t.Errorf("in memory: Begin = %v, later %v; want a decision at once", wait, later != nil)
	}
}

// TestBeginAtOnce: a caller far from its limit is admitted at once while Redis spends its
// tokens in the background, and no more requests pass than the bucket holds, but for the one
// being spent when it empties: the last quarter is always decided by Redis.
func TestBeginAtOnce(t *testing.T) {
	l, _, fallbacks := sharedLimiter(t, testRedis(t), Rule{"daily", Rate{100, 24 * time.Hour}})
	a := callerKey()
	passed, atOnce := 0, 0
	for range 300 {
		wait, _, later := l.Begin(a)
		switch {
		case later != nil:
			if w, _ := later(); w == 0 {
				passed++
			}
		case wait == 0:
			passed++
			atOnce++
		}
	}
	if passed < 100 || passed > 101 {
		t.Errorf("%d of 300 requests passed, want the bucket's 100, and one more at most", passed)
	}
	// After the first answer (99 left), at most the 74 beyond the margin of 25 pass at once.
	if atOnce == 0 || atOnce > 74 {
		t.Errorf("%d requests admitted at once, want some, and at most 74", atOnce)
	}
	if n := fallbacks.Load(); n != 0 {
		t.Errorf("%d decisions made in memory with Redis up", n)
	}
	t.Logf("%d of 100 admitted at once", atOnce)
}

// TestSpareBeyondTheMargin: what Begin may admit at once is what Redis says is left beyond a
// quarter of the bucket (at least 3 tokens), every rule considered.
func TestSpareBeyondTheMargin(t *testing.T) {
	l, _, _ := sharedLimiter(t, testRedis(t), Rule{"a", Rate{100, 24 * time.Hour}}, Rule{"b", Rate{8, 24 * time.Hour}})
	spare := func(key string) int64 {
		st, ok := l.standings.Get(key)
		if !ok {
			return 0
		}
		return st.spare
	}
	k := callerKey()
	l.Allow(k)
	if got := spare(k); got != 4 {
		t.Errorf("after 1 request: spare %d, want 4 (b: 7 left, margin 3)", got)
	}
	m := New(time.Now, Rule{"a", Rate{100, 24 * time.Hour}}).Share(l.shared)
	m.Allow(k)
	st, _ := m.standings.Get(k)
	if st == nil || st.spare != 74 {
		t.Errorf("after 1 request of 100: spare %+v, want 74 (99 left, margin 25)", st)
	}
	for range 80 {
		m.Allow(k)
	}
	if st, _ := m.standings.Get(k); st == nil || st.spare != 0 {
		t.Errorf("after 81 requests of 100: spare %+v, want 0 (19 left, within the margin)", st)
	}
}

// TestBeginAtOnceConcurrently: with many requests of one caller at once, what is admitted
// without waiting passes the bucket by one request at most, the one being decided when the
// bucket empties.
func TestBeginAtOnceConcurrently(t *testing.T) {
	l, _, _ := sharedLimiter(t, testRedis(t), Rule{"daily", Rate{100, 24 * time.Hour}})
	a := callerKey()
	l.Allow(a) // 99 left, 74 beyond the margin
	var passed atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 10 {
				wait, _, later := l.Begin(a)
				if later != nil {
					wait, _ = later()
				}
				if wait == 0 {
					passed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := passed.Load(); n < 99 || n > 100 {
		t.Errorf("%d of 320 requests passed, want the 99 tokens left, and one more at most", n)
	}
}

// TestSpendTogether: the tokens of requests admitted at once go to Redis together, in far fewer
// calls than requests (at most maxBatch a call), and their answers are learnt.
func TestSpendTogether(t *testing.T) {
	l, s, fallbacks := sharedLimiter(t, testRedis(t), Rule{"daily", Rate{100, 24 * time.Hour}})
	keys := make([]string, 2*maxBatch+20)
	for i := range keys {
		keys[i] = callerKey()
		l.Allow(keys[i]) // 99 left, 74 beyond the margin
	}
	c := countCalls(s)
	for _, k := range keys {
		if wait, _, later := l.Begin(k); wait != 0 || later != nil {
			t.Fatalf("Begin: wait %v, later %v; want an admission at once", wait, later != nil)
		}
	}
	for _, k := range keys {
		for deadline := time.Now().Add(10 * time.Second); ; {
			l.mu.Lock()
			st, _ := l.standings.Get(k)
			pending, spare := st.pending, st.spare
			l.mu.Unlock()
			if !pending {
				if spare != 73 {
					t.Errorf("after 2 requests of 100: spare %d, want 73 (98 left, margin 25)", spare)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("a token spent at once was not answered within 10s")
			}
			time.Sleep(time.Millisecond) // the batch leaves on a timer: nothing to wait on
		}
	}
	if n := c.total(); n >= len(keys) {
		t.Errorf("%d calls to Redis for %d tokens spent at once, want them together", n, len(keys))
	}
	if n := fallbacks.Load(); n != 0 {
		t.Errorf("%d decisions made in memory with Redis up", n)
	}
}
