package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// HTTPSettings bound the HTTP server's connections and say which proxies may name the client.
type HTTPSettings struct {
	ReadHeaderTimeout time.Duration // HTTP_READ_HEADER_TIMEOUT
	ReadTimeout       time.Duration // HTTP_READ_TIMEOUT: the whole request, body included
	// WriteTimeout (HTTP_WRITE_TIMEOUT) is also every request's deadline: a request still
	// waiting for a database connection then gives up, since its answer could not be written.
	WriteTimeout time.Duration
	IdleTimeout  time.Duration // HTTP_IDLE_TIMEOUT: a keep-alive connection between requests
	// TrustedProxies (TRUSTED_PROXIES) are the reverse proxies whose X-Forwarded-For is
	// believed. Any other peer is the client itself, whatever headers it sends.
	TrustedProxies []netip.Prefix
}

// RateLimitSettings are the token buckets of package ratelimit; a zero rate is off.
type RateLimitSettings struct {
	Burst     rate // BURST_THROTTLE_RATES: per caller, on People's throttled data
	Sustained rate // SUSTAINED_THROTTLE_RATES: the same, over a longer period
	Anonymous rate // ANON_THROTTLE_RATES: every anonymous GraphQL request, per client address
	// Service (SERVICE_THROTTLE_RATES) is a partner service's ceiling on the same data, all its
	// users together, on top of each user's Burst and Sustained; off by default.
	Service rate
	// Introspection (INTROSPECTION_RATE_LIMIT) is how many tokens that are not cached a client
	// address may have introspected; IntrospectionConcurrency (INTROSPECTION_MAX_CONCURRENCY)
	// bounds the introspections under way at once, all clients together.
	Introspection            rate
	IntrospectionConcurrency int
	// Redis (REDIS_URL, as People's) keeps every bucket in Redis or Valkey, shared by the
	// instances; empty keeps them in each instance's memory.
	Redis secret
}

func (p *parser) http(c Config) HTTPSettings {
	h := HTTPSettings{
		ReadHeaderTimeout: p.duration("HTTP_READ_HEADER_TIMEOUT", 10*time.Second),
		ReadTimeout:       p.duration("HTTP_READ_TIMEOUT", 30*time.Second),
		WriteTimeout:      p.duration("HTTP_WRITE_TIMEOUT", 60*time.Second),
		IdleTimeout:       p.duration("HTTP_IDLE_TIMEOUT", 120*time.Second),
		TrustedProxies:    p.prefixes("TRUSTED_PROXIES"),
	}
	// A statement that runs into its timeout must still leave time to answer with an error.
	if h.WriteTimeout <= c.StatementTimeout {
		p.errs = append(p.errs, fmt.Sprintf("HTTP_WRITE_TIMEOUT (%s) must be longer than DATABASE_STATEMENT_TIMEOUT (%s)", h.WriteTimeout, c.StatementTimeout))
	}
	return h
}

func (p *parser) rateLimits() RateLimitSettings {
	return RateLimitSettings{
		Burst:     p.rate("BURST_THROTTLE_RATES", "20/minute"),
		Sustained: p.rate("SUSTAINED_THROTTLE_RATES", "150/hour"),
		Anonymous: p.rate("ANON_THROTTLE_RATES", "300/minute"),
		Service:   p.rate("SERVICE_THROTTLE_RATES", "off"),

		Introspection:            p.rate("INTROSPECTION_RATE_LIMIT", "60/minute"),
		IntrospectionConcurrency: p.integer("INTROSPECTION_MAX_CONCURRENCY", 16, 1, 10000),
		Redis:                    p.redisURL("REDIS_URL"),
	}
}

// redisURL reads a redis:// or rediss:// URL (or unix://), as go-redis parses it.
func (p *parser) redisURL(key string) secret {
	v := p.str(key, "")
	if v == "" {
		return ""
	}
	if _, err := redis.ParseURL(v); err != nil {
		// Not err itself: it may quote the URL, password included.
		p.errs = append(p.errs, fmt.Sprintf("%s must be a URL such as redis://:password@redis:6379/0", key))
		return ""
	}
	return secret(v)
}

// rate is a token bucket's rule: N requests per Period, in bursts of up to N. The zero rate
// limits nothing.
type rate struct {
	N      int
	Period time.Duration
}

// Off reports whether the rate limits nothing.
func (r rate) Off() bool { return r.N == 0 }

// String writes the rate as People's settings do: 20/minute.
func (r rate) String() string {
	if r.Off() {
		return "off"
	}
	for _, name := range []string{"second", "minute", "hour", "day"} {
		if periods[name[0]] == r.Period {
			return fmt.Sprintf("%d/%s", r.N, name)
		}
	}
	return fmt.Sprintf("%d/%s", r.N, r.Period)
}

// MarshalText makes a Config logged as JSON show "20/minute" rather than two numbers.
func (r rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// periods are Django REST framework's: it reads the first letter of the period only, so
// People's "20/minute", "20/min" and "20/m" all mean a minute.
var periods = map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}

// parseRate reads People's throttle rates, "<requests>/<period>", or "off" (or "none", as
// Django's None) for no limit.
func parseRate(s string) (rate, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "off" || s == "none" {
		return rate{}, nil
	}
	num, period, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(strings.TrimSpace(num))
	period = strings.TrimSpace(period)
	if !ok || err != nil || n < 1 || period == "" || periods[period[0]] == 0 {
		return rate{}, fmt.Errorf("%q is not a rate such as 20/minute (second, minute, hour, day) or off", s)
	}
	return rate{N: n, Period: periods[period[0]]}, nil
}

func (p *parser) rate(key, def string) rate {
	r, err := parseRate(p.str(key, def))
	if err != nil {
		p.errs = append(p.errs, fmt.Sprintf("%s: %v", key, err))
		r, _ = parseRate(def)
	}
	return r
}

// prefixes reads a comma-separated list of addresses and networks (10.0.0.1, 10.0.0.0/8, ::1).
func (p *parser) prefixes(key string) []netip.Prefix {
	var out []netip.Prefix
	for _, v := range strings.Split(p.str(key, ""), ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(v)
		if err != nil {
			var a netip.Addr
			if a, err = netip.ParseAddr(v); err == nil {
				pfx = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
			}
		}
		if err != nil {
			p.errs = append(p.errs, fmt.Sprintf("%s: %q is not an address or a network such as 10.0.0.0/8", key, v))
			continue
		}
		out = append(out, pfx.Masked())
	}
	return out
}
