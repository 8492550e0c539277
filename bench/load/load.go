// Package load is the benchmark's closed-loop HTTP load generator: a fixed number of
// connections, each sending its next request as soon as the previous answer is read, first for a
// warm-up whose answers are thrown away, then for a measured window whose latencies go into a
// histogram. It knows nothing of GraphQL or of the server under test, and imports none of our
// packages.
package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Request is one prepared request: the same bytes are sent every time it is picked.
type Request struct {
	Path   string
	Header http.Header
	Body   []byte
	Key    int // what the workload's Check may need to know which parameters this was
}

// Config describes one run.
type Config struct {
	BaseURL  string // scheme://host:port of the server
	Conns    int    // concurrent connections, each a closed loop
	Warmup   time.Duration
	Duration time.Duration
	Requests []Request // picked at random, deterministically per connection: see Run
	Seed     uint64
	// Check judges an answer with status 200; a non-nil error counts the request as failed.
	// Nil accepts every 200.
	Check func(r *Request, body []byte) error
	// OnStart and OnEnd run when the measured window opens and closes, so that the caller can
	// read counters (statements, allocations) over exactly that window.
	OnStart, OnEnd func()
}

// Result is what a run measured, over its window only.
type Result struct {
	Conns    int
	Requests int64 // answered with success within the window
	Errors   int64 // failed (status, transport or Check) within the window
	Elapsed  time.Duration
	Latency  *Histogram // of the successful requests
	FirstErr error      // the first failure, for the report
}

// Throughput is successful requests per second.
func (r Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Run sends requests until the warm-up and the window have passed, or ctx ends. Connection c
// picks its requests with a PCG seeded by (Seed, c), so two runs with the same Config send the
// same sequence on each connection.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Conns < 1 || len(cfg.Requests) == 0 || cfg.Duration <= 0 {
		return Result{}, errors.New("load: need at least one connection, one request and a duration")
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        cfg.Conns,
		MaxIdleConnsPerHost: cfg.Conns,
		MaxConnsPerHost:     cfg.Conns,
		DisableCompression:  true,
		IdleConnTimeout:     time.Minute,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	// phase: 0 warm-up, 1 measured, 2 done. A request counts when it starts and ends in phase 1.
	var phase atomic.Int32
	var start, end time.Time
	workers := make([]*worker, cfg.Conns)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for c := range workers {
		w := &worker{cfg: &cfg, client: client, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(c))), hist: NewHistogram()}
		workers[c] = w
		wg.Add(1)
		go func() { defer wg.Done(); w.loop(ctx, &phase) }()
	}
	timer := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	ok := timer(cfg.Warmup)
	if ok {
		if cfg.OnStart != nil {
			cfg.OnStart()
		}
		start = time.Now()
		phase.Store(1)
		ok = timer(cfg.Duration)
		phase.Store(2)
		end = time.Now()
		if cfg.OnEnd != nil {
			cfg.OnEnd()
		}
	}
	if !ok {
		cancel() // the caller gave up: what is in flight is cut
	}
	// Else the requests in flight finish (uncounted) before Run returns: cut, they would make
	// the server cancel their statements, which costs PostgreSQL a backend of its own for each
	// cancel request, at every end of a run (and runs take turns in short slices).
	wg.Wait()
	if !ok {
		return Result{}, ctx.Err()
	}
	res := Result{Conns: cfg.Conns, Elapsed: end.Sub(start), Latency: NewHistogram()}
	for _, w := range workers {
		res.Requests += w.ok
		res.Errors += w.failed
		res.Latency.Merge(w.hist)
		if res.FirstErr == nil {
			res.FirstErr = w.firstErr
		}
	}
	return res, nil
}

type worker struct {
	cfg      *Config
	client   *http.Client
	rng      *rand.Rand
	hist     *Histogram
	ok       int64
	failed   int64
	firstErr error
	buf      bytes.Buffer
}

func (w *worker) loop(ctx context.Context, phase *atomic.Int32) {
	for ctx.Err() == nil && phase.Load() != 2 {
		r := &w.cfg.Requests[w.rng.IntN(len(w.cfg.Requests))]
		began := phase.Load()
		t0 := time.Now()
		err := w.do(ctx, r)
		d := time.Since(t0)
		if began != 1 || phase.Load() != 1 {
			continue // warm-up, or it straddles the end of the window
		}
		if err != nil {
			w.failed++
			if w.firstErr == nil {
				w.firstErr = err
			}
			continue
		}
		w.ok++
		w.hist.Record(d)
	}
}

func (w *worker) do(ctx context.Context, r *Request) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.BaseURL+r.Path, bytes.NewReader(r.Body))
	if err != nil {
		return err
	}
	for k, v := range r.Header {
		req.Header[k] = v
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	w.buf.Reset()
	if _, err := io.Copy(&w.buf, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %.200s", resp.StatusCode, w.buf.Bytes())
	}
	if w.cfg.Check != nil {
		return w.cfg.Check(r, w.buf.Bytes())
	}
	return nil
}
