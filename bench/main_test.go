package main

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"lasuite.fr/people/bench/load"
	"lasuite.fr/people/store/demo"
	"lasuite.fr/people/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// TestHarness runs the whole benchmark on a tiny data set for a second per run: the builds,
// the seed, the processes (the server directly and behind the test PgBouncer), the check that
// the floor answers as the servers do, every workload, and the report. The numbers mean nothing here; make bench gives the real ones.
func TestHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server and the floor")
	}
	redis := os.Getenv("TEST_REDIS_URL")
	if redis == "" {
		t.Fatal("TEST_REDIS_URL is not set: run make test, or start a Redis server with " +
			"`export TEST_REDIS_URL=$(.ci/rediscluster start /tmp/people-redis)`")
	}
	c := config{
		DatabaseURL: storetest.URL(t),
		RedisURL:    redis,
		PoolerURL:   storetest.PoolerURL(t, storetest.URL(t)),
		Work:        t.TempDir(),
		Data:        demo.Options{Users: 300, Organizations: 4, Teams: 60, MaxTeamSize: 12, Contacts: 100, Seed: 1},
		Params:      30,
		Conns:       []int{2},
		Warmup:      200 * time.Millisecond,
		Duration:    time.Second,
		Soak:        time.Second,
		Workloads:   []string{"W1", "W2", "W3", "W4"},
	}
	var progress bytes.Buffer
	rep, err := run(t.Context(), c, &progress)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, progress.String())
	}
	want := map[string]bool{"W1 floor": true, "W1 server": true, "W2 floor": true, "W2 server": true,
		"W3 floor": true, "W3 server": true, "W4 server": true,
		"W1 pgbouncer": true, "W2 pgbouncer": true, "W3 pgbouncer": true, "W4 pgbouncer": true,
		"W1 redis": true, "W2 redis": true, "W3 redis": true, "W4 redis": true}
	for _, r := range rep.runs {
		delete(want, r.workload+" "+r.target)
		if r.res.Requests == 0 || r.res.Errors > 0 || r.allocs <= 0 {
			t.Errorf("%s %s: %d requests, %d errors, %.0f allocs per request", r.target, r.workload, r.res.Requests, r.res.Errors, r.allocs)
		}
		// Slices of the window, taken in turns, add up to it: each lasts at least its share
		// (timers never fire early). How much longer is the machine's business, not a test's.
		if r.res.Elapsed < c.Duration {
			t.Errorf("%s %s: measured for %v, want the whole window of %v", r.target, r.workload, r.res.Elapsed, c.Duration)
		}
	}
	if len(want) > 0 {
		t.Errorf("runs missing: %v", want)
	}
	if rep.rss <= 0 {
		t.Errorf("server RSS not read")
	}
	var out bytes.Buffer
	rep.write(&out)
	for _, s := range []string{"| workload | target |", "| W4 | server | 2 |", "same answers as the floor", "| W4 | pgbouncer | 2 |",
		"W1 behind PgBouncer at 2 connections: ", "| W2 | redis | 2 |", "W2 with rate limits in Redis at 2 connections: "} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, out.String())
		}
	}
}

// W4 takes turns with W1 (its rate is compared with W1's), every other workload with its floor.
func TestTurnGroups(t *testing.T) {
	srv, flr := &proc{name: "server"}, &proc{name: "floor"}
	ws := []workload{
		{name: "W1", floor: []load.Request{{}}, server: []load.Request{{}}},
		{name: "W2", floor: []load.Request{{}}, server: []load.Request{{}}},
		{name: "W4", like: "W1", server: []load.Request{{}}},
	}
	var got []string
	for _, g := range turnGroups(ws, srv, flr) {
		var names []string
		for _, x := range g {
			names = append(names, x.workload+" "+x.target+" "+x.p.name)
		}
		got = append(got, strings.Join(names, ", "))
	}
	want := []string{"W1 floor floor, W1 server server, W4 server server", "W2 floor floor, W2 server server"}
	if !slices.Equal(got, want) {
		t.Errorf("groups %q, want %q", got, want)
	}
}

// Runs take their slices in turns, back and forth: drift weighs on each alike.
func TestTurnOrder(t *testing.T) {
	if got, want := turnOrder(3, 4), []int{0, 1, 2, 2, 1, 0, 0, 1, 2, 2, 1, 0}; !slices.Equal(got, want) {
		t.Errorf("turnOrder(3, 4) = %v, want %v", got, want)
	}
	if got, want := turnOrder(2, 2), []int{0, 1, 1, 0}; !slices.Equal(got, want) {
		t.Errorf("turnOrder(2, 2) = %v, want %v", got, want)
	}
}

// Two halves add up to one run: counts summed, per-request figures weighed by requests.
func TestRunAdd(t *testing.T) {
	h1, h2 := load.NewHistogram(), load.NewHistogram()
	for range 100 {
		h1.Record(time.Millisecond)
	}
	for range 300 {
		h2.Record(3 * time.Millisecond)
	}
	a := runResult{statements: 1, allocs: 100, cpu: 100 * time.Microsecond, pgCPU: 50 * time.Microsecond,
		res: load.Result{Requests: 100, Elapsed: time.Second, Latency: h1}, top: []queryCalls{{"SELECT 1", 100}}}
	b := runResult{statements: 2, allocs: 200, cpu: 300 * time.Microsecond, pgCPU: 10 * time.Microsecond,
		res: load.Result{Requests: 300, Elapsed: time.Second, Latency: h2}, top: []queryCalls{{"SELECT 2", 500}, {"SELECT 1", 100}}}
	s := a.add(b)
	if s.res.Requests != 400 || s.res.Elapsed != 2*time.Second || s.res.Throughput() != 200 || s.res.Latency.Count() != 400 {
		t.Errorf("sum %+v", s.res)
	}
	if s.statements != 1.75 || s.allocs != 175 || s.cpu != 250*time.Microsecond || s.pgCPU != 20*time.Microsecond {
		t.Errorf("per request: %.2f statements, %.0f allocs, CPU %v, PostgreSQL %v", s.statements, s.allocs, s.cpu, s.pgCPU)
	}
	if want := []queryCalls{{"SELECT 2", 500}, {"SELECT 1", 200}}; !slices.Equal(s.top, want) {
		t.Errorf("statements %+v, want %+v", s.top, want)
	}
	if p50 := s.res.Latency.Quantile(0.5); p50 < 2*time.Millisecond {
		t.Errorf("p50 %v: the halves' latencies are not merged", p50)
	}
	if a.res.Latency.Count() != 100 {
		t.Errorf("add changed its receiver's histogram")
	}
}
