package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
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

// Shared keeps the limiters' buckets in Redis or Valkey (REDIS_URL), where every
// instance counts against the same ones. The buckets are GCRA, a token bucket written as the
// time at which it is full again: n/period allows n at once, then one every period/n, as the
// buckets in memory do.
//
// A decision costs Redis no round trip of its own: every decision asked while one call is on
// its way goes in the next call, one script that decides them all in turn (gcraScript). All of
// a decision's rules are decided together there, and a refusal writes nothing, so that it
// spends nothing, as in memory.
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

	mu      sync.Mutex
	queue   []*decision // asked, not yet sent
	sending bool        // a decision leads the calls to Redis: it sends the queue
	batch   []*decision // the leader's, reused
}

// decision is one Allow or Refund waiting for Redis.
type decision struct {
	rules []Rule
	key   string
	cost  int // 1 takes a token of each bucket, -1 gives one back
	// next receives true once the decision is made (wait, rule, ok), or false when it is this
	// decision's turn to send the queue to Redis.
	next chan bool

	wait time.Duration
	rule string
	ok   bool // Redis answered
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

// redisKey names a bucket: rule names are unique across the limiters. The prefix is that of
// the redis_rate library, which kept the buckets before, in the same format: instances of
// either version share them.
func redisKey(rule, key string) string { return "rate:people:" + rule + ":" + key }

// allow is Limiter.Allow in Redis. ok is false when Redis could not be asked: the caller
// decides in memory.
func (s *Shared) allow(rules []Rule, key string) (wait time.Duration, rule string, ok bool) {
	if !s.try() {
		return 0, "", false
	}
	d := &decision{rules: rules, key: key, cost: 1, next: make(chan bool, 1)}
	s.decide(d)
	return d.wait, d.rule, d.ok
}

// refund is Limiter.Refund in Redis; false when Redis could not be asked.
func (s *Shared) refund(rules []Rule, key string) bool {
	if !s.try() {
		return false
	}
	d := &decision{rules: rules, key: key, cost: -1, next: make(chan bool, 1)}
	s.decide(d)
	return d.ok
}

// decide queues d and returns once Redis has decided it, or could not. The first decision
// queued while no call is on its way leads: it sends the queue (up to maxBatch) in one call,
// hands every decision its answer, and passes the lead to the first of those queued meanwhile,
// so that no request sends more than one call, and no decision waits for more than the call
// on its way and its own.
func (s *Shared) decide(d *decision) {
	s.mu.Lock()
	s.queue = append(s.queue, d)
	lead := !s.sending
	s.sending = true
	s.mu.Unlock()
	if !lead && <-d.next {
		return // decided by another's call
	}
	// d leads, and is the first of the queue: the queue is only emptied by its leader, and a
	// decision leads when it was queued first or is the first left behind.
	s.mu.Lock()
	queued := len(s.queue)
	n := min(queued, maxBatch)
	batch := append(s.batch[:0], s.queue[:n]...)
	s.queue = append(s.queue[:0], s.queue[n:]...)
	clear(s.queue[len(s.queue):queued]) // let go of the decisions moved down
	s.mu.Unlock()

	s.send(batch)
	for _, b := range batch {
		if b != d {
			b.next <- true
		}
	}

	s.mu.Lock()
	clear(batch)
	s.batch = batch[:0]
	var heir *decision
	if len(s.queue) > 0 {
		heir = s.queue[0]
	} else {
		s.sending = false
	}
	s.mu.Unlock()
	if heir != nil {
		heir.next <- false
	}
}

// send decides batch in one call of gcraScript.
func (s *Shared) send(batch []*decision) {
	keys := make([]string, 0, 2*len(batch))
	args := make([]any, 1, 1+6*len(batch))
	args[0] = len(batch)
	for _, d := range batch {
		args = append(args, d.cost, len(d.rules))
		for _, r := range d.rules {
			keys = append(keys, redisKey(r.Name, d.key))
			args = append(args, r.Rate.N, strconv.FormatFloat(r.Rate.Period.Seconds(), 'f', -1, 64))
		}
	}
	// The client's timeouts bound the call, whatever the requests' deadlines.
	res, err := gcraScript.Run(context.Background(), s.client, keys, args...).Int64Slice()
	if err == nil && len(res) != 2*len(batch) {
		err = fmt.Errorf("rate limit script answered %d values for %d decisions", len(res), len(batch))
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
		if r := res[2*i]; r > 0 {
			d.rule = d.rules[r-1].Name
			d.wait = max(time.Duration(res[2*i+1])*time.Microsecond, time.Millisecond)
		}
	}
}

// gcraScript decides a batch of decisions, each over its own rules, at one instant (the server's
// clock). It is the GCRA of redis_rate (after Pavel Pravosud's redis-gcra, MIT), extended to
// several buckets decided together:
//
//	KEYS: each decision's buckets, one per rule, decision after decision
//	ARGV: the number of decisions; then for each, its cost (1 or -1) and number of rules, then
//	      for each rule N and the period in seconds
//
// It answers two integers per decision: 0 and 0 when it passes (its tokens spent, or given
// back), else the rule that refused (1-based: the one that takes longest to refill) and how
// long until every bucket holds a token, in microseconds; a refusal writes nothing. A bucket
// is the time at which it is full again (its TAT), as seconds since 2017 to keep a double's
// precision to the microsecond, and expires then.
var gcraScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call("TIME")
local now = (t[1] - 1483228800) + (t[2] / 1000000)
local out = {}
local k, a = 0, 2
for _ = 1, tonumber(ARGV[1]) do
  local cost, n = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 2
  local tats, refused, wait = {}, 0, 0
  for r = 1, n do
    local count, period = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
    a = a + 2
    local tat = math.max(tonumber(redis.call("GET", KEYS[k + r])) or now, now)
    local new_tat = tat + cost * period / count
    local late = new_tat - period - now
    if late > wait then
      refused, wait = r, late
    end
    tats[r] = new_tat
  end
  if refused == 0 then
    for r = 1, n do
      local ttl = tats[r] - now
      if ttl > 0 then
        redis.call("SET", KEYS[k + r], tats[r], "EX", math.ceil(ttl))
      else
        redis.call("DEL", KEYS[k + r])
      end
    end
  end
  out[#out + 1] = refused
  out[#out + 1] = math.ceil(wait * 1000000)
  k = k + n
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
