package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"lasuite.fr/people/store"
	"lasuite.fr/people/store/demo"
)

// Targets of issue 6.
const (
	minThroughputRatio = 0.60 // W1–W3: at least this share of the floor's requests per second
	maxP99Ratio        = 2.0  // W1–W3: p99 at most this multiple of the floor's
	maxBearerGap       = 0.10 // W4: within this share of W1
	maxRSS             = 150 << 20
)

type sweepRun struct {
	teams, members int
	run            runResult
}

type report struct {
	config            config
	data              demo.Stats
	started           time.Time
	machine, postgres string
	statements        bool // counted
	notes             []string
	runs              []runResult
	sweep             []sweepRun
	soakConns         int
	rss, peakRSS      int64
}

// machine describes the computer and the database server, for the README.
func machine(ctx context.Context, s *store.Store) (string, string) {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "MemTotal:"), "%d", &kb)
		mem = fmt.Sprintf(", %.1f GiB RAM", float64(kb)/(1<<20))
	}
	var pg string
	if err := s.DB().QueryRowContext(ctx, "SHOW server_version").Scan(&pg); err != nil {
		pg = "?"
	}
	return fmt.Sprintf("%d cores (nproc), %s%s, %s", runtime.NumCPU(), model, mem, runtime.Version()), "PostgreSQL " + pg
}

func (r *report) find(workload, target string, conns int) (runResult, bool) {
	for _, x := range r.runs {
		if x.workload == workload && x.target == target && x.conns == conns {
			return x, true
		}
	}
	return runResult{}, false
}

// behind names the pooler a target runs behind, for the report's lines: "" for the direct server.
func behind(target string) string {
	switch target {
	case pooledName:
		return " behind PgBouncer"
	case redisName:
		return " with rate limits in Redis"
	}
	return ""
}

func mark(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗"
}

// write prints the report as Markdown, ready for the README.
func (r *report) write(w io.Writer) {
	c := r.config
	fmt.Fprintf(w, "Run on %s: %s; %s. The server, PostgreSQL and the load generator share the machine.\n\n",
		r.started.Format("2006-01-02"), r.machine, r.postgres)
	fmt.Fprintf(w, "Data: %d users, %d organizations, %d teams, %d team accesses, %d contacts (seed %d). "+
		"Each run: %v measured in %d slices taken in turns with the floor's (floor, server, server, floor, floor…; "+
		"W1 and W4 alike), after %v of warm-up (%v for the later slices); %d parameter sets per workload.\n\n",
		r.data.Users, r.data.Organizations, r.data.Teams, r.data.TeamAccesses, r.data.Contacts, c.Data.Seed, c.Duration, 2*turnRounds,
		c.Warmup, min(settle, c.Warmup), c.Params)
	for _, x := range r.runs {
		if x.target == redisName {
			fmt.Fprintf(w, "Target %s: the same server with its rate limits on (1,000,000/second, so none refuses) and kept in Redis "+
				"(REDIS_URL), taking its turns with the others: W2's operations ask Redis, W1, W3 and W4's do not (People throttles neither teams nor tokens' teams).\n\n", redisName)
			break
		}
	}
	for _, x := range r.runs {
		if x.target == pooledName {
			fmt.Fprintf(w, "Target %s: the same server behind PgBouncer in transaction mode (DATABASE_POOLER=transaction, "+
				"no named prepared statements), taking its turns with the floor and the direct server; PgBouncer's own CPU is in neither CPU column.\n\n", pooledName)
			break
		}
	}
	fmt.Fprintln(w, "| workload | target | conns | req/s | p50 ms | p99 ms | SQL/req | allocs/req | CPU µs/req | PostgreSQL CPU µs/req | req/s ÷ floor | p99 ÷ floor |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	// The floor's rows first, then the server's, each by workload and concurrency.
	slices.SortStableFunc(r.runs, func(a, b runResult) int {
		return cmp.Or(cmp.Compare(a.target, b.target), cmp.Compare(a.workload, b.workload), cmp.Compare(a.conns, b.conns))
	})
	for _, x := range r.runs {
		stmts := "–"
		if x.statements >= 0 {
			stmts = fmt.Sprintf("%.2f", x.statements)
		}
		ratio, p99 := "", ""
		if f, ok := r.find(x.workload, "floor", x.conns); ok && x.target != "floor" {
			ratio = fmt.Sprintf("%.2f", x.res.Throughput()/f.res.Throughput())
			p99 = fmt.Sprintf("%.2f", float64(x.res.Latency.Quantile(0.99))/float64(f.res.Latency.Quantile(0.99)))
		}
		pg := "–"
		if x.pgCPU > 0 {
			pg = fmt.Sprintf("%.0f", us(x.pgCPU))
		}
		fmt.Fprintf(w, "| %s | %s | %d | %.0f | %.2f | %.2f | %s | %.0f | %.0f | %s | %s | %s |\n",
			x.workload, x.target, x.conns, x.res.Throughput(), ms(x.res.Latency.Quantile(0.5)), ms(x.res.Latency.Quantile(0.99)),
			stmts, x.allocs, us(x.cpu), pg, ratio, p99)
	}
	fmt.Fprintln(w, "\nTargets:")
	fmt.Fprintln(w)
	for _, x := range r.runs {
		f, ok := r.find(x.workload, "floor", x.conns)
		if x.target == "floor" || !ok {
			continue
		}
		tr := x.res.Throughput() / f.res.Throughput()
		pr := float64(x.res.Latency.Quantile(0.99)) / float64(f.res.Latency.Quantile(0.99))
		fmt.Fprintf(w, "- %s %s%s at %d connections: %.0f %% of the floor's throughput (target ≥ %.0f %%) %s; p99 %.2f× the floor's (target ≤ %.0f×) %s\n",
			mark(tr >= minThroughputRatio && pr <= maxP99Ratio), x.workload, behind(x.target), x.conns, 100*tr, 100*minThroughputRatio, mark(tr >= minThroughputRatio), pr, maxP99Ratio, mark(pr <= maxP99Ratio))
	}
	for _, target := range []string{"server", pooledName, redisName} {
		for _, n := range c.Conns {
			w1, ok1 := r.find("W1", target, n)
			w4, ok4 := r.find("W4", target, n)
			if !ok1 || !ok4 {
				continue
			}
			gap := w4.res.Throughput()/w1.res.Throughput() - 1
			fmt.Fprintf(w, "- %s W4%s at %d connections: %.0f req/s, %+.1f %% against W1's %.0f (target: within %.0f %%)\n",
				mark(gap >= -maxBearerGap && gap <= maxBearerGap), behind(target), n, w4.res.Throughput(), 100*gap, w1.res.Throughput(), 100*maxBearerGap)
		}
	}
	// Behind PgBouncer each hot read is parsed and planned again (no named prepared
	// statements), and with Redis every throttled operation asks it: what that costs, against
	// the direct server measured in the same turns.
	for _, x := range r.runs {
		d, ok := r.find(x.workload, "server", x.conns)
		if (x.target != pooledName && x.target != redisName) || !ok {
			continue
		}
		fmt.Fprintf(w, "- %s%s at %d connections: %.0f %% of the direct server's throughput, p99 %.2f× its, %.0f against %.0f PostgreSQL CPU µs/req\n",
			x.workload, behind(x.target), x.conns, 100*x.res.Throughput()/d.res.Throughput(),
			float64(x.res.Latency.Quantile(0.99))/float64(d.res.Latency.Quantile(0.99)), us(x.pgCPU), us(d.pgCPU))
	}
	if len(r.sweep) > 0 {
		same := true
		var parts []string
		for _, s := range r.sweep {
			parts = append(parts, fmt.Sprintf("teams(first: %d) × accesses(first: %d): %.2f", s.teams, s.members, s.run.statements))
			same = same && s.run.statements-r.sweep[0].run.statements < 0.05 && r.sweep[0].run.statements-s.run.statements < 0.05
		}
		fmt.Fprintf(w, "- %s SQL statements per W1 request by page size, for the 50 users with the most teams: %s\n", mark(same), strings.Join(parts, "; "))
	} else if !r.statements {
		fmt.Fprintln(w, "- statements not counted: pg_stat_statements is not loaded (run with -pgcluster)")
	}
	if r.soakConns > 0 {
		fmt.Fprintf(w, "- %s server RSS after %v at %d connections (all workloads mixed): %.0f MB, peak %.0f MB (target < %d MB)\n",
			mark(r.rss < maxRSS), c.Soak, r.soakConns, float64(r.rss)/(1<<20), float64(r.peakRSS)/(1<<20), maxRSS>>20)
	}
	fmt.Fprintln(w)
	for _, n := range r.notes {
		fmt.Fprintln(w, "- "+n)
	}
	if r.statements {
		fmt.Fprintln(w, "\nStatements are counted by pg_stat_statements over each measured window; a session's last_seen_at is written at most once a minute, which adds a few hundredths to the session workloads.")
	}
}
