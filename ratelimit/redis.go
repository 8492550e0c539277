package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"
)

// redisTimeout bounds one call to Redis, unless REDIS_URL says otherwise (dial_timeout,
// read_timeout...): a rate limit sits on the path of every request, so a slow Redis must not
// make the server slow for long.
const redisTimeout = 500 * time.Millisecond

// redisRetryInterval is how long the limiters keep to memory after Redis failed, before one
// request tries it again: a Redis that is down costs one failed call per interval per
// instance, not one per request.
const redisRetryInterval = time.Second

// redisLogInterval spaces the log lines about Redis being unreachable.
const redisLogInterval = time.Minute

// maxBatch bounds the decisions sent to Redis in one call.
const maxBatch = 128

// maxInFlight bounds the calls to Redis on their way at once, per instance: the decisions
// asked meanwhile wait, and go together in the next call.
const maxInFlight = 2

// deferDelay is how long a decision that no request waits for (spend) may wait to go to Redis
// with the others of its instance.
const deferDelay = 5 * time.Millisecond

// Shared keeps the limiters' buckets in Redis or Valkey (REDIS_URL), where every
// instance counts against the same ones. The buckets are GCRA, a token bucket written as the
// time at which it is full again: n/period allows n at once, then one every period/n, as the
// buckets in memory do.
//
// A decision costs Redis no round trip of its own: every decision asked while maxInFlight
// calls are on their way goes in the next call, and those no request waits for (spend) go
// together every deferDelay; a call is one script that decides its decisions in turn
// (gcraScript). All of a decision's rules are decided together there, and a refusal writes
// nothing, so that it spends nothing, as in memory.
//
// When Redis cannot be reached, the server keeps serving: each instance falls back to its own
// buckets in memory (so a caller may then get the limit once per instance), logs it at most once
// a minute, reports each decision made so to its fallback function (the metrics count them in
// people_rate_limit_redis_fallbacks_total), and goes
// back to Redis as soon as a call succeeds again.
type Shared struct {
	client   *redis.Client
	log      *slog.Logger
	fallback func()
	retryAt  atomic.Int64 // UnixNano before which Redis is not tried; 0 while it answers
	loggedAt atomic.Int64 // UnixNano of the last log line about a failure

	mu       sync.Mutex
	inFlight int         // calls to Redis on their way
	queue    []*decision // asked while maxInFlight calls were on their way
	deferred []*decision // spent, to send within deferDelay
}

// decision is one Allow or Refund waiting for Redis.
type decision struct {
	bucket *sharedBucket
	key    string
	cost   int // 1 takes a token of each rule, -1 gives one back
	// next receives true once the decision is made (wait, rule, ok), or false when it is this
	// decision's turn to send the queue to Redis.
	next chan bool
	// done receives the answer of a decision that no request waits for (spend).
	done func(wait time.Duration, spare int64, ok bool)

	wait  time.Duration
	rule  string
	spare int64 // when it passes: the tokens left beyond the margin
	ok    bool  // Redis answered
}

// sharedBucket is how a limiter's rules are kept in Redis: one key per caller, the rules'
// names and the caller's key, holding the time at which each rule's bucket is full again, and
// the script's arguments for the rules, made once.
type sharedBucket struct {
	rules  []Rule
	prefix string
	args   []any // len(rules), then each rule's N and period in seconds
}

func newSharedBucket(rules []Rule) *sharedBucket {
	names := make([]string, len(rules))
	args := []any{len(rules)}
	for i, r := range rules {
		names[i] = r.Name
		args = append(args, r.Rate.N, strconv.FormatFloat(r.Rate.Period.Seconds(), 'f', -1, 64))
	}
	return &sharedBucket{rules: rules, prefix: "rate:people:" + strings.Join(names, "+") + ":", args: args}
}

// NewShared connects to the Redis of url lazily: nothing is dialled before the first request
// that needs it. fallback is called for each decision made in memory because Redis could not
// be asked. The error, if any, may quote url: do not log it.
//
// The script reads and writes the buckets of many callers at once, so url names one Redis
// server (or a Sentinel-managed primary), not a Redis Cluster.
func NewShared(url string, fallback func(), log *slog.Logger) (*Shared, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	for _, d := range []*time.Duration{&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.PoolTimeout} {
		if *d == 0 {
			*d = redisTimeout
		}
	}
	if opt.MaxRetries == 0 {
		opt.MaxRetries = 1 // for a pooled connection that a restarted Redis closed; go-redis's default is 3
	}
	opt.DialerRetries = 1 // a refused dial is retried by the next request, a second later (redisRetryInterval)
	// go-redis logs each failed dial to stderr through a logger of its own (its only one, for
	// the whole process): failures are ours to say, once a minute (failed).
	redis.SetLogger(&logging.VoidLogger{})
	return &Shared{client: redis.NewClient(opt), log: log, fallback: fallback}, nil
}

// Close lets go of the connections; nil closes nothing.
func (s *Shared) Close() error {
	if s == nil {
		return nil
	}
	return s.client.Close()
}

// allow is Limiter.Allow in Redis. ok is false when Redis could not be asked: the caller
// decides in memory.
func (s *Shared) allow(b *sharedBucket, key string) (wait time.Duration, rule string, spare int64, ok bool) {
	if !s.try() {
		return 0, "", 0, false
	}
	d := &decision{bucket: b, key: key, cost: 1, next: make(chan bool, 1)}
	s.decide(d)
	return d.wait, d.rule, d.spare, d.ok
}

// spend is allow for a request admitted already: the decision goes to Redis with the others
// spent within deferDelay, in a call of their own, and done gets its answer (ok false when
// Redis could not be asked) in that call's goroutine.
func (s *Shared) spend(b *sharedBucket, key string, done func(wait time.Duration, spare int64, ok bool)) {
	if !s.try() {
		done(0, 0, false)
		return
	}
	d := &decision{bucket: b, key: key, cost: 1, done: done}
	s.mu.Lock()
	s.deferred = append(s.deferred, d)
	n := len(s.deferred)
	s.mu.Unlock()
	switch n {
	case 1:
		time.AfterFunc(deferDelay, s.sendDeferred)
	case maxBatch:
		go s.sendDeferred()
	}
}

// sendDeferred sends the decisions spent so far, maxBatch a call, and hands each its answer.
func (s *Shared) sendDeferred() {
	for {
		s.mu.Lock()
		batch := s.deferred
		if len(batch) > maxBatch {
			batch = slices.Clone(batch[:maxBatch])
			s.deferred = dropFirst(s.deferred, maxBatch)
		} else {
			s.deferred = nil
		}
		more := len(s.deferred) > 0
		s.mu.Unlock()
		if len(batch) > 0 {
			s.send(batch)
			for _, d := range batch {
				d.done(d.wait, d.spare, d.ok)
			}
		}
		if !more {
			return
		}
	}
}

// refund is Limiter.Refund in Redis; false when Redis could not be asked.
func (s *Shared) refund(b *sharedBucket, key string) bool {
	if !s.try() {
		return false
	}
	d := &decision{bucket: b, key: key, cost: -1, next: make(chan bool, 1)}
	s.decide(d)
	return d.ok
}

// decide returns once Redis has decided d, or could not. A decision asked while fewer than
// maxInFlight calls are on their way sends one at once, with the decisions queued meanwhile (up
// to maxBatch in all); otherwise it is queued. When a call returns with decisions still
// queued, the first of them takes its place and sends the next call, so that a queued
// decision waits for at most one call before its own.
func (s *Shared) decide(d *decision) {
	s.mu.Lock()
	if s.inFlight < maxInFlight {
		s.inFlight++
	} else {
		s.queue = append(s.queue, d)
		s.mu.Unlock()
		if <-d.next {
			return // decided in another's call
		}
		s.mu.Lock() // d was taken out of the queue to send the next call, in the place of the last
	}
	n := min(len(s.queue), maxBatch-1)
	batch := make([]*decision, 0, n+1)
	batch = append(append(batch, d), s.queue[:n]...)
	s.queue = dropFirst(s.queue, n)
	s.mu.Unlock()

	s.send(batch)
	for _, b := range batch[1:] {
		b.next <- true
	}

	s.mu.Lock()
	if len(s.queue) == 0 {
		s.inFlight--
		s.mu.Unlock()
		return
	}
	heir := s.queue[0]
	s.queue = dropFirst(s.queue, 1)
	s.mu.Unlock()
	heir.next <- false
}

// dropFirst is q without its first n decisions, in q's array, whose tail it clears so as not
// to hold the decisions moved down.
func dropFirst(q []*decision, n int) []*decision {
	rest := append(q[:0], q[n:]...)
	clear(q[len(rest):])
	return rest
}

// send decides batch in one call of gcraScript.
func (s *Shared) send(batch []*decision) {
	keys := make([]string, len(batch))
	args := make([]any, 0, 16*len(batch))
	for i, d := range batch {
		keys[i] = d.bucket.prefix + d.key
		args = append(args, d.cost)
		args = append(args, d.bucket.args...)
	}
	// The client's timeouts bound the call, whatever the requests' deadlines.
	res, err := gcraScript.Run(context.Background(), s.client, keys, args...).Int64Slice()
	if err == nil && len(res) != 2*len(batch) {
		err = fmt.Errorf("rate limit script answered %d values for %d decisions", len(res), len(batch))
	}
	for i := 0; err == nil && i < len(batch); i++ {
		if r := res[2*i]; r < 0 || r > int64(len(batch[i].bucket.rules)) {
			err = fmt.Errorf("rate limit script answered rule %d", r)
		}
	}
	if err != nil {
		s.failed(err)
		for range batch {
			s.fallback() // every d.ok stays false: each is decided in memory
		}
		return
	}
	s.answered()
	for i, d := range batch {
		d.ok = true
		if r, v := res[2*i], res[2*i+1]; r > 0 {
			d.rule = d.bucket.rules[r-1].Name
			d.wait = max(time.Duration(v)*time.Microsecond, time.Millisecond)
		} else {
			d.spare = v
		}
	}
}

// gcraScript decides a batch of decisions at one instant (the server's clock), one after the
// other. Each is over the buckets of a limiter's rules, decided together. A bucket is GCRA:
// the time at which it is full again (its TAT), as in redis_rate (after Pavel Pravosud's
// redis-gcra, MIT), kept as seconds since 2017 to keep a double's precision to the
// microsecond; a caller's TATs, one per rule, are one key, which expires when they are all
// past.
//
//	KEYS: each decision's key
//	ARGV: for each decision, its cost (1 or -1), its number of rules, then each rule's N and
//	      period in seconds
//
// It answers two integers for each decision: 0 when it passes (its tokens spent, or given
// back), then how many more would pass beyond the margin of every rule (the margin: a quarter of
// N, at least 3 tokens); else the rule that refused (1-based: the one that takes longest to
// refill), then how long until every bucket holds a token, in microseconds. A refusal writes
// nothing.
var gcraScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call("TIME")
local now = (t[1] - 1483228800) + (t[2] / 1000000)
local out = {}
local a = 1
for i = 1, #KEYS do
  local cost, n = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 2
  local tats, r = {}, 0
  local old = redis.call("GET", KEYS[i])
  if old then
    for v in string.gmatch(old, "[^,]+") do
      r = r + 1
      tats[r] = tonumber(v)
    end
  end
  local refused, wait, ttl, spare = 0, 0, 0, nil
  for r = 1, n do
    local count, period = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
    a = a + 2
    local tat = math.max(tats[r] or now, now) + cost * period / count
    local late = tat - period - now
    if late > wait then
      refused, wait = r, late
    end
    local beyond = math.floor(-late * count / period) - math.max(3, math.floor(count / 4))
    if spare == nil or beyond < spare then
      spare = beyond
    end
    tats[r] = tat
    ttl = math.max(ttl, tat - now)
  end
  if refused > 0 then
    out[#out + 1] = refused
    out[#out + 1] = math.ceil(wait * 1000000)
  else
    if ttl > 0 then
      redis.call("SET", KEYS[i], table.concat(tats, ",", 1, n), "EX", math.ceil(ttl))
    else
      redis.call("DEL", KEYS[i])
    end
    out[#out + 1] = 0
    out[#out + 1] = math.max(spare or 0, 0)
  end
end
return out
`)

// try reports whether Redis should be asked: always while it answers; after a failure, by one
// request once per redisRetryInterval, the others deciding in memory meanwhile.
func (s *Shared) try() bool {
	at := s.retryAt.Load()
	if at == 0 {
		return true
	}
	now := time.Now().UnixNano()
	if now >= at && s.retryAt.CompareAndSwap(at, now+int64(redisRetryInterval)) {
		return true
	}
	s.fallback()
	return false
}

// failed notes that a call to Redis failed: the next one waits redisRetryInterval.
func (s *Shared) failed(err error) {
	now := time.Now().UnixNano()
	s.retryAt.Store(now + int64(redisRetryInterval))
	if last := s.loggedAt.Load(); now-last >= int64(redisLogInterval) && s.loggedAt.CompareAndSwap(last, now) {
		// go-redis's errors name the address, never the password.
		s.log.Error("rate limits kept in memory: redis unreachable", "err", err, "retry_every", redisRetryInterval.String())
	}
}

// answered notes that Redis answered; after a failure, it says so once.
func (s *Shared) answered() {
	if at := s.retryAt.Load(); at != 0 && s.retryAt.CompareAndSwap(at, 0) {
		s.log.Info("rate limits shared through redis again")
	}
}
