package ratelimit

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
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

// Shared keeps the limiters' buckets in Redis or Valkey (REDIS_URL), where every
// instance counts against the same ones. The buckets are GCRA (redis_rate), which is a token
// bucket written as the time at which it is full again: n/period allows n at once, then one
// every period/n, as the buckets in memory do.
//
// When Redis cannot be reached, the server keeps serving: each instance falls back to its own
// buckets in memory (so a caller may then get the limit once per instance), logs it at most once
// a minute, reports each decision made so to its fallback function (the metrics count them in
// people_rate_limit_redis_fallbacks_total), and goes
// back to Redis as soon as a call succeeds again.
type Shared struct {
	client   *redis.Client
	gcra     *redis_rate.Limiter
	log      *slog.Logger
	fallback func()
	retryAt  atomic.Int64 // UnixNano before which Redis is not tried; 0 while it answers
	loggedAt atomic.Int64 // UnixNano of the last log line about a failure
}

// NewShared connects to the Redis of url lazily: nothing is dialled before the first request
// that needs it. fallback is called for each decision made in memory because Redis could not
// be asked. The error, if any, may quote url: do not log it.
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
	c := redis.NewClient(opt)
	return &Shared{client: c, gcra: redis_rate.NewLimiter(c), log: log, fallback: fallback}, nil
}

// Close lets go of the connections; nil closes nothing.
func (s *Shared) Close() error {
	if s == nil {
		return nil
	}
	return s.client.Close()
}

// redisKey names a bucket: rule names are unique across the limiters, and redis_rate puts its
// own prefix (rate:) before it.
func redisKey(rule, key string) string { return "people:" + rule + ":" + key }

func gcraLimit(r Rate) redis_rate.Limit {
	return redis_rate.Limit{Rate: r.N, Burst: r.N, Period: r.Period}
}

// allow is Limiter.Allow in Redis. Each rule is a call of its own: when one refuses, the
// tokens the rules before it took are given back, so that a refusal spends nothing, as in
// memory. ok is false when Redis could not be asked: the caller decides in memory.
func (s *Shared) allow(rules []Rule, key string) (wait time.Duration, rule string, ok bool) {
	if !s.try() {
		return 0, "", false
	}
	ctx := context.Background() // the client's timeouts bound the call, whatever the request's deadline
	for i, r := range rules {
		res, err := s.gcra.Allow(ctx, redisKey(r.Name, key), gcraLimit(r.Rate))
		if err != nil {
			s.failed(err)
			return 0, "", false
		}
		if res.Allowed == 0 {
			s.answered()
			for _, prev := range rules[:i] {
				s.gcra.AllowN(ctx, redisKey(prev.Name, key), gcraLimit(prev.Rate), -1)
			}
			return max(res.RetryAfter, time.Millisecond), r.Name, true
		}
	}
	s.answered()
	return 0, "", true
}

// refund is Limiter.Refund in Redis; false when Redis could not be asked.
func (s *Shared) refund(rules []Rule, key string) bool {
	if !s.try() {
		return false
	}
	for _, r := range rules {
		if _, err := s.gcra.AllowN(context.Background(), redisKey(r.Name, key), gcraLimit(r.Rate), -1); err != nil {
			s.failed(err)
			return false
		}
	}
	return true
}

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

func (s *Shared) failed(err error) {
	now := time.Now().UnixNano()
	s.retryAt.Store(now + int64(redisRetryInterval))
	s.fallback()
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
