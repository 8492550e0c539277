package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"lasuite.fr/people/auth/oidctest"
	"lasuite.fr/people/bench/load"
	"lasuite.fr/people/store"
)

// publicURL is the server's public origin in the benchmark: the Origin its browser requests
// carry.
const publicURL = "https://people.bench.test"

// run is the whole benchmark; progress goes to log, the result comes back as a report.
func run(ctx context.Context, c config, log io.Writer) (*report, error) {
	say := func(format string, args ...any) { fmt.Fprintf(log, "bench: "+format+"\n", args...) }
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.Work, 0o755); err != nil {
		return nil, err
	}
	if c.PGCluster != "" {
		if err := enableStatementStats(ctx, root, c.PGCluster, c.AdminURL, say); err != nil {
			return nil, err
		}
	}
	if c.DatabaseURL == "" {
		if c.DatabaseURL, err = freshDatabase(ctx, c.AdminURL, c.DBName, c.Keep); err != nil {
			return nil, err
		}
	}

	// The builds take a core for a while: overlap them with the seeding, which waits on
	// PostgreSQL.
	type built struct {
		server, floor string
		err           error
	}
	builds := make(chan built, 1)
	go func() {
		var b built
		b.server, b.floor, b.err = build(ctx, root, c.Work)
		builds <- b
	}()

	// The authorization server of W4's tokens lives here, in the harness; the demo users'
	// identities name it as their issuer, as they would name ProConnect.
	tb := &harnessTB{}
	defer tb.cleanup()
	as := oidctest.NewServer(tb, oidctest.Options{ClientSecret: "bench-introspection-secret"})
	c.Data.Issuer = as.URL

	s, err := store.Open(ctx, c.DatabaseURL, store.Options{MaxConns: 4})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	say("seeding %d users, %d organizations, %d teams (up to %d members), %d contacts", c.Data.Users, c.Data.Organizations, c.Data.Teams, c.Data.MaxTeamSize, c.Data.Contacts)
	t0 := time.Now()
	stats, err := seed(ctx, s, c.Data)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	say("seeded in %v: %+v", time.Since(t0).Round(time.Millisecond), stats)
	pop, err := loadPopulation(ctx, s)
	if err != nil {
		return nil, err
	}
	ps := drawParams(pop, c.Params, c.Data.Seed)
	cookies, err := openSessions(ctx, s, as.URL, append(ps.callers(), busiest(pop, 50)...))
	if err != nil {
		return nil, fmt.Errorf("open sessions: %w", err)
	}
	var ws []workload
	for _, w := range makeWorkloads(ps, cookies, publicURL, as) {
		if slices.Contains(c.Workloads, w.name) {
			ws = append(ws, w)
		}
	}
	counter, err := newStatementCounter(ctx, c.DatabaseURL)
	if err != nil {
		return nil, err
	}
	defer counter.close()

	b := <-builds
	if b.err != nil {
		return nil, b.err
	}
	serverDSN := c.DatabaseURL
	if c.ServerDSN != "" {
		serverDSN += "&" + c.ServerDSN
	}
	startServer := func() (*proc, error) {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		return start(ctx, c.Work, "server", b.server, addr, serverEnv(serverDSN, addr, as), "serve")
	}
	startFloor := func() (*proc, error) {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		return start(ctx, c.Work, "floor", b.floor, addr, []string{"DATABASE_URL=" + c.DatabaseURL}, "-listen", addr, "-cookie", cookieName)
	}
	srv, err := startServer()
	if err != nil {
		return nil, err
	}
	defer func() { srv.stop() }()
	var also []*proc // the server behind PgBouncer, with -pooler-url
	if c.PoolerURL != "" {
		pooled, err := startPooled(ctx, c, s, b.server, serverDSN, as)
		if err != nil {
			return nil, err
		}
		defer func() { pooled.stop() }()
		also = append(also, pooled)
	}
	if c.RedisURL != "" {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		limited, err := start(ctx, c.Work, redisName, b.server, addr, redisEnv(serverEnv(serverDSN, addr, as), c.RedisURL), "serve")
		if err != nil {
			return nil, err
		}
		defer func() { limited.stop() }()
		also = append(also, limited)
	}
	flr, err := startFloor()
	if err != nil {
		return nil, err
	}
	defer func() { flr.stop() }()

	rep := &report{config: c, data: stats, started: time.Now(), statements: counter.ok}
	rep.machine, rep.postgres = machine(ctx, s)
	if rep.notes, err = verify(srv.base, flr.base, ws, 50); err != nil {
		return nil, err
	}
	for _, p := range also {
		if _, err := verify(p.base, flr.base, ws, 50); err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		rep.notes = append(rep.notes, "the server"+behind(p.name)+" gives the same answers as the floor too")
	}
	// Floor and server take turns on each workload and concurrency, in slices of the measured
	// window (floor, server, server, floor, floor, server…; W1 with W4: floor, W4, W1, W1, W4,
	// floor…; turns), so that a drift of the shared machine's speed during the run (other
	// tenants, the clock) weighs on each alike and the ratios compare like with like. Measured
	// one after the other minutes apart, the floor's own rate moved by a quarter between runs.
	// The process not measured is paused (SIGSTOP): it takes no CPU, and its background work
	// (mail, webhooks) counts in none of the other's statements.
	if err := srv.pause(); err != nil {
		return nil, err
	}
	if err := flr.pause(); err != nil {
		return nil, err
	}
	for _, p := range also {
		if err := p.pause(); err != nil {
			return nil, err
		}
	}
	m := &measurer{cfg: c, counter: counter, pg: newPGCPU(ctx, counter.db), log: say}
	for _, g := range turnGroups(ws, srv, flr, also...) {
		for _, n := range c.Conns {
			runs, err := m.turns(ctx, g, n)
			if err != nil {
				return nil, err
			}
			rep.runs = append(rep.runs, runs...)
		}
	}
	flr.stop()
	for _, p := range also {
		p.stop()
	}
	if err := srv.resume(); err != nil {
		return nil, err
	}
	if counter.ok {
		for _, sz := range sweep(busiest(pop, 50), cookies, publicURL) {
			r, err := m.measure(ctx, srv, fmt.Sprintf("W1 %d×%d", sz.teams, sz.members), "server", sz.requests, 4)
			if err != nil {
				return nil, err
			}
			m.logRun(r)
			rep.sweep = append(rep.sweep, sweepRun{teams: sz.teams, members: sz.members, run: r})
		}
	}
	if c.Soak > 0 {
		var mix []load.Request
		for _, w := range ws {
			mix = append(mix, w.server...)
		}
		n := slices.Max(c.Conns)
		say("memory: %v at %d connections, all workloads mixed", c.Soak, n)
		soak := c
		soak.Duration, soak.Warmup = c.Soak, 0
		sm := &measurer{cfg: soak, pg: m.pg, log: say}
		r, err := sm.measure(ctx, srv, "mix", "server", mix, n)
		if err != nil {
			return nil, err
		}
		sm.logRun(r)
		rep.soakConns = n
		if rep.rss, rep.peakRSS, err = srv.memory(); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// serverEnv configures the server as a production deployment behind ProConnect: bearer tokens
// introspected at as (JSON), kept in the cache for the whole run, and no rate limits: the
// benchmark sends hundreds of requests a second per caller, all from one address.
func serverEnv(dbURL, addr string, as *oidctest.Server) []string {
	return []string{
		"ENVIRONMENT=production", "LISTEN_ADDR=" + addr, "DATABASE_URL=" + dbURL, "DATABASE_MAX_CONNS=20",
		"PUBLIC_URL=" + publicURL, "MIGRATE=false",
		"OIDC_OP_URL=" + as.URL, "OIDC_OP_INTROSPECTION_ENDPOINT=" + as.IntrospectionURL(),
		"OIDC_RS_CLIENT_ID=" + as.ClientID, "OIDC_RS_CLIENT_SECRET=" + as.ClientSecret,
		"OIDC_RS_INTROSPECTION_CACHE_TTL=3600",
		"OIDC_RP_CLIENT_SECRET=bench-rp-secret", "SECRET_KEY=" + strings.Repeat("b", 40),
		"BURST_THROTTLE_RATES=off", "SUSTAINED_THROTTLE_RATES=off", "ANON_THROTTLE_RATES=off",
		// W4's thousand callers' tokens are introspected from one address, at once when the
		// run starts: the budget that guards the authorization server from unknown tokens
		// would refuse most of them.
		"INTROSPECTION_RATE_LIMIT=off", "INTROSPECTION_MAX_CONCURRENCY=10000",
	}
}

// redisName is the target of the server whose rate limits are on and kept in Redis.
const redisName = "redis"

// redisEnv turns env's rate limits on, every bucket in the Redis server at url: limits far
// above the load, so that every throttled operation (W2's users, and none of W1, W3 and W4's
// teams) asks Redis and none is refused.
func redisEnv(env []string, url string) []string {
	return append(env, "REDIS_URL="+url, "BURST_THROTTLE_RATES=1000000/second",
		"SUSTAINED_THROTTLE_RATES=1000000/second", "ANON_THROTTLE_RATES=1000000/second")
}

// pooledName is the target of the server behind PgBouncer in the report.
const pooledName = "pgbouncer"

// startPooled starts a second server over the same database, through the PgBouncer of
// c.PoolerURL in transaction mode (DATABASE_POOLER=transaction), its revocation listener
// connected directly (DATABASE_LISTEN_URL). The pooler cannot pass statement_timeout, so the
// database gets the server's default (10s) as an operator would set it; the direct server sets
// the same as a startup parameter.
func startPooled(ctx context.Context, c config, s *store.Store, bin, serverDSN string, as *oidctest.Server) (*proc, error) {
	var name string
	if err := s.DB().QueryRowContext(ctx, "SELECT current_database()").Scan(&name); err != nil {
		return nil, err
	}
	if _, err := s.DB().ExecContext(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" SET statement_timeout = '10s'"); err != nil {
		return nil, fmt.Errorf("set the database's statement_timeout for the pooler: %w", err)
	}
	pooled, err := withPath(c.PoolerURL, name)
	if err != nil {
		return nil, err
	}
	if _, query, ok := strings.Cut(serverDSN, "?"); ok { // -server-dsn's parameters, sslmode…
		pooled = strings.SplitN(pooled, "?", 2)[0] + "?" + query
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	env := append(serverEnv(pooled, addr, as), "DATABASE_POOLER=transaction", "DATABASE_LISTEN_URL="+c.DatabaseURL)
	return start(ctx, c.Work, pooledName, bin, addr, env, "serve")
}

// withPath is the postgres:// URL u naming the database name instead of its own.
func withPath(u, name string) (string, error) {
	p, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("-pooler-url is not a postgres:// URL")
	}
	p.Path = "/" + name
	return p.String(), nil
}

// measurer runs one workload at one concurrency and reads the counters around its window.
type measurer struct {
	cfg     config
	counter *statementCounter
	pg      pgCPU
	log     func(string, ...any)
	slice   int // of a run taken in turns, for the profiles' names
}

// run is one measured run.
type runResult struct {
	workload, target string
	conns            int
	res              load.Result
	statements       float64       // per request; -1 when not counted
	allocs           float64       // per request
	cpu              time.Duration // of the process under test, per request
	pgCPU            time.Duration // of PostgreSQL, per request; 0 when unknown
	top              []queryCalls  // the statements of the window, most called first
}

func (m *measurer) measure(ctx context.Context, p *proc, workload, target string, reqs []load.Request, conns int) (runResult, error) {
	out := runResult{workload: workload, target: target, conns: conns, statements: -1}
	var (
		st0, st1   statSnapshot
		al0, al1   uint64
		cpu0, cpu1 time.Duration
		pg0, pg1   time.Duration
		errs       []error
		profiled   sync.WaitGroup
	)
	read := func(stmts *statSnapshot, allocs *uint64, cpu *time.Duration) {
		if m.counter != nil && m.counter.ok {
			var err error
			if *stmts, err = m.counter.snapshot(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		st, err := p.stats()
		if err != nil {
			errs = append(errs, err)
		}
		*allocs = st.Mallocs
		if *cpu, err = p.cpu(); err != nil {
			errs = append(errs, err)
		}
	}
	res, err := load.Run(ctx, load.Config{
		BaseURL: p.base, Conns: conns, Warmup: m.cfg.Warmup, Duration: m.cfg.Duration,
		Requests: reqs, Seed: m.cfg.Data.Seed, Check: noErrors,
		OnStart: func() {
			read(&st0, &al0, &cpu0)
			pg0 = m.pg.read()
			if m.cfg.Profile && target != "floor" {
				profiled.Add(1)
				go func() {
					defer profiled.Done()
					file := filepath.Join(m.cfg.Work, fmt.Sprintf("cpu-%s-%s-%d-%d.pprof", target, strings.ReplaceAll(workload, " ", "-"), conns, m.slice))
					if err := p.profile(ctx, m.cfg.Duration, file); err != nil {
						m.log("profile: %v", err)
					}
				}()
			}
		},
		// PostgreSQL's CPU is read before the statement counters at the end, as after them at
		// the start: reading pg_stat_statements costs the server tens of milliseconds.
		OnEnd: func() { pg1 = m.pg.read(); read(&st1, &al1, &cpu1) },
	})
	profiled.Wait()
	if err != nil {
		return out, err
	}
	if len(errs) > 0 {
		return out, errs[0]
	}
	out.res = res
	if res.Requests == 0 {
		return out, fmt.Errorf("%s %s at %d connections: no request succeeded: %v", target, workload, conns, res.FirstErr)
	}
	if res.Errors > 0 {
		return out, fmt.Errorf("%s %s at %d connections: %d requests failed, first: %v", target, workload, conns, res.Errors, res.FirstErr)
	}
	n := float64(res.Requests)
	if m.counter != nil && m.counter.ok {
		out.statements = float64(st1.total-st0.total) / n
		out.top = st1.since(st0)
	}
	out.allocs = float64(al1-al0) / n
	out.cpu = (cpu1 - cpu0) / time.Duration(res.Requests)
	out.pgCPU = (pg1 - pg0) / time.Duration(res.Requests)
	return out, nil
}

// logRun prints a run's line, and with -v its statements.
func (m *measurer) logRun(r runResult) {
	m.log("%-6s %-10s %3d conns: %7.0f req/s  p50 %6.2f ms  p99 %6.2f ms  %5.2f stmts/req  %6.0f allocs/req  CPU %5.0f µs/req  PostgreSQL %5.0f µs/req",
		r.target, r.workload, r.conns, r.res.Throughput(), ms(r.res.Latency.Quantile(0.5)), ms(r.res.Latency.Quantile(0.99)), r.statements, r.allocs,
		us(r.cpu), us(r.pgCPU))
	if m.cfg.Verbose {
		for _, q := range r.top[:min(len(r.top), 6)] {
			m.log("    %8d × %.140s", q.calls, strings.Join(strings.Fields(q.query), " "))
		}
	}
}

// turn is one of the runs that take turns: a workload's requests to the floor or the server.
type turn struct {
	p                *proc
	workload, target string
	reqs             []load.Request
}

// turnGroups are the runs that take turns: each workload's floor and server runs, and W4 (no
// floor: W1 with a bearer token) with W1's, whose rate it is compared with. Each server of also
// (the server behind PgBouncer) takes its turns as srv does, under its own name as the target.
func turnGroups(ws []workload, srv, flr *proc, also ...*proc) [][]turn {
	var groups [][]turn
	at := map[string]int{} // group of each workload
	for _, w := range ws {
		var g []turn
		if len(w.floor) > 0 {
			g = append(g, turn{flr, w.name, "floor", w.floor})
		}
		g = append(g, turn{srv, w.name, "server", w.server})
		for _, p := range also {
			g = append(g, turn{p, w.name, p.name, w.server})
		}
		if i, ok := at[w.like]; ok && w.like != "" {
			groups[i] = append(groups[i], g...)
			continue
		}
		at[w.name] = len(groups)
		groups = append(groups, g)
	}
	return groups
}

// turnRounds is how many times the runs of a group take turns: each run's window is cut into
// 2×turnRounds slices, taken in the order g, g reversed, g, g reversed… Slices of a few seconds
// follow the shared machine's drift closer than halves of the window did (make bench's ratios
// still moved by a tenth between runs with halves).
const turnRounds = 4

// settle is the warm-up of a run's later slices: the process is warm already (paused, not
// stopped), only the load generator's new connections have to settle.
const settle = 500 * time.Millisecond

// turns measures the runs of g at conns connections in slices (turnRounds); the process of
// each slice runs while the others stay paused.
func (m *measurer) turns(ctx context.Context, g []turn, conns int) ([]runResult, error) {
	sum := make([]runResult, len(g))
	for k, i := range turnOrder(len(g), 2*turnRounds) {
		t := g[i]
		slice := *m
		slice.cfg.Duration = m.cfg.Duration / (2 * turnRounds)
		if k >= len(g) { // this run's process is warm
			slice.cfg.Warmup = min(settle, m.cfg.Warmup)
		}
		slice.slice = k / len(g)
		if err := t.p.resume(); err != nil {
			return nil, err
		}
		r, err := slice.measure(ctx, t.p, t.workload, t.target, t.reqs, conns)
		if perr := t.p.pause(); err == nil {
			err = perr
		}
		if err != nil {
			return nil, err
		}
		if k < len(g) {
			sum[i] = r
		} else {
			sum[i] = sum[i].add(r)
		}
	}
	for _, r := range sum {
		m.logRun(r)
	}
	return sum, nil
}

// turnOrder is the order in which n runs take their slices turns: 0…n-1, then n-1…0, and so
// on, each run slices times.
func turnOrder(n, slices int) []int {
	var order []int
	for round := range slices {
		for k := range n {
			if round%2 == 1 {
				k = n - 1 - k
			}
			order = append(order, k)
		}
	}
	return order
}

// add is the run made of r and o, one after the other: counts add up, and the per-request
// figures are weighed by each one's requests.
func (r runResult) add(o runResult) runResult {
	n, on := float64(r.res.Requests), float64(o.res.Requests)
	weigh := func(a, b float64) float64 { return (a*n + b*on) / (n + on) }
	out := r
	out.res.Requests += o.res.Requests
	out.res.Errors += o.res.Errors
	out.res.Elapsed += o.res.Elapsed
	out.res.Latency = load.NewHistogram()
	out.res.Latency.Merge(r.res.Latency)
	out.res.Latency.Merge(o.res.Latency)
	if r.statements >= 0 && o.statements >= 0 {
		out.statements = weigh(r.statements, o.statements)
	}
	out.allocs = weigh(r.allocs, o.allocs)
	out.cpu = time.Duration(weigh(float64(r.cpu), float64(o.cpu)))
	out.pgCPU = time.Duration(weigh(float64(r.pgCPU), float64(o.pgCPU)))
	calls := map[string]int64{}
	for _, q := range append(slices.Clone(r.top), o.top...) {
		calls[q.query] += q.calls
	}
	out.top = nil
	for q, c := range calls {
		out.top = append(out.top, queryCalls{query: q, calls: c})
	}
	slices.SortFunc(out.top, func(a, b queryCalls) int { return int(b.calls - a.calls) })
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// harnessTB is the testing.TB that oidctest asks for, outside a test: the harness is a command,
// and oidctest calls only the methods defined here (the embedded nil TB is never reached).
type harnessTB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
}

func (t *harnessTB) Helper() {}

func (t *harnessTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *harnessTB) cleanup() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, f := range slices.Backward(t.cleanups) {
		f()
	}
}

func (t *harnessTB) Errorf(format string, args ...any) {
	panic(fmt.Sprintf("authorization server: "+format, args...))
}

func (t *harnessTB) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("authorization server: "+format, args...))
}

// statementCounter reads pg_stat_statements for the benchmark's database.
type statementCounter struct {
	db *sql.DB
	ok bool // pg_stat_statements is loaded
}

type queryCalls struct {
	query string
	calls int64
}

type statSnapshot struct {
	total int64
	calls map[string]queryCalls // by queryid
}

func newStatementCounter(ctx context.Context, dbURL string) (*statementCounter, error) {
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	c := &statementCounter{db: db}
	if _, err := db.ExecContext(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err == nil {
		_, err = c.snapshot(ctx)
		c.ok = err == nil
	}
	return c, nil
}

func (c *statementCounter) close() { c.db.Close() }

// snapshot reads the calls of every statement run in this database, but its own.
func (c *statementCounter) snapshot(ctx context.Context) (statSnapshot, error) {
	s := statSnapshot{calls: map[string]queryCalls{}}
	rows, err := c.db.QueryContext(ctx, `SELECT queryid::text, query, calls FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query NOT LIKE '%pg_stat_statements%'`)
	if err != nil {
		return s, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var q queryCalls
		if err := rows.Scan(&id, &q.query, &q.calls); err != nil {
			return s, err
		}
		s.calls[id] = q
		s.total += q.calls
	}
	return s, rows.Err()
}

// since lists the statements that ran between old and s, most called first.
func (s statSnapshot) since(old statSnapshot) []queryCalls {
	var out []queryCalls
	for id, q := range s.calls {
		if d := q.calls - old.calls[id].calls; d > 0 {
			out = append(out, queryCalls{query: q.query, calls: d})
		}
	}
	slices.SortFunc(out, func(a, b queryCalls) int { return int(b.calls - a.calls) })
	return out
}
