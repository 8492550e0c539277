// Command bench is make bench: it seeds a database with the big demo data set, starts the real
// server (built with bench/probe for allocation counters and pprof) and the floor
// (bench/floor), checks that both give the same answers, then drives each with the closed-loop
// load generator (bench/load) for workloads W1 to W4 at each concurrency, and prints a table:
// requests per second, latency percentiles, SQL statements, allocations and CPU per request,
// and the ratios to the floor against the targets of issue 6.
//
//	go run ./bench -database-url URL [-pgcluster DIR] [flags]
//
// With -pgcluster (a .ci/pgcluster directory, as make bench gives), the cluster is restarted
// with pg_stat_statements, which counts the statements; without it, that column is empty. With
// -pooler-url (a .ci/pgbouncer in front of the same server, as make bench gives), a second
// server runs behind it (DATABASE_POOLER=transaction) and takes its turns with the direct one:
// the report has both, and the ratio of the one to the other.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"lasuite.fr/people/store/demo"
)

// config is one benchmark run.
type config struct {
	AdminURL    string // a server where the role may CREATE DATABASE: the benchmark makes DBName there
	DBName      string
	DatabaseURL string // or a database to use as it is (tests)
	PGCluster   string // .ci/pgcluster directory of AdminURL's server, to load pg_stat_statements
	Work        string // builds, logs and profiles
	ServerDSN   string // more query parameters for the server's DATABASE_URL, for experiments
	PoolerURL   string // PgBouncer in transaction mode in front of AdminURL's server: also measure the server behind it
	RedisURL    string // a Redis server: also measure the server with its rate limits on, kept there
	Keep        bool   // reuse DBName as it is (the seed is idempotent), for experiments

	Data      demo.Options
	Params    int // distinct parameter sets per workload
	Conns     []int
	Warmup    time.Duration
	Duration  time.Duration
	Soak      time.Duration // the memory check at the highest concurrency; 0 skips it
	Workloads []string      // names, such as W1
	Profile   bool          // save CPU profiles of the server of each target (not the floor) for each run into Work
	Verbose   bool          // print the statements of each run
}

func main() {
	c := config{Data: demo.Options{Seed: 1}}
	flag.StringVar(&c.AdminURL, "database-url", os.Getenv("DATABASE_URL"), "PostgreSQL server where the benchmark may CREATE DATABASE")
	flag.StringVar(&c.DBName, "db", "people_bench", "database to create (dropped first if it exists)")
	flag.StringVar(&c.PGCluster, "pgcluster", "", ".ci/pgcluster directory of that server: restart it with pg_stat_statements to count statements")
	flag.StringVar(&c.Work, "work", "", "directory for builds, logs and profiles (default: a temporary one)")
	flag.IntVar(&c.Data.Users, "users", 20000, "generated users")
	flag.IntVar(&c.Data.Organizations, "orgs", 200, "organizations")
	flag.IntVar(&c.Data.Teams, "teams", 5000, "generated teams")
	flag.IntVar(&c.Data.MaxTeamSize, "max-team-size", 50, "largest team")
	flag.IntVar(&c.Data.Contacts, "contacts", 40000, "personal contacts")
	flag.Uint64Var(&c.Data.Seed, "seed", 1, "seed of the data set and of the parameters")
	flag.IntVar(&c.Params, "params", 1000, "distinct parameter sets per workload")
	conns := flag.String("conns", "16,64", "concurrencies, comma-separated")
	flag.DurationVar(&c.Warmup, "warmup", 3*time.Second, "warm-up before each measured window")
	flag.DurationVar(&c.Duration, "duration", 10*time.Second, "measured window of each run")
	flag.DurationVar(&c.Soak, "soak", 60*time.Second, "memory check: this long at the highest concurrency, then read the server's RSS")
	workloads := flag.String("workloads", "W1,W2,W3,W4", "workloads to run")
	flag.BoolVar(&c.Profile, "profile", false, "save the server's CPU profiles of each run into the work directory (one per slice: go tool pprof merges the files it is given)")
	flag.BoolVar(&c.Verbose, "v", false, "print each run's statements")
	flag.BoolVar(&c.Keep, "keep", false, "reuse the database if it exists instead of making it anew (faster experiments)")
	flag.StringVar(&c.ServerDSN, "server-dsn", "", "query parameters added to the server's DATABASE_URL, such as default_query_exec_mode=exec")
	flag.StringVar(&c.PoolerURL, "pooler-url", "", "PgBouncer in transaction mode in front of that server (.ci/pgbouncer start DIR URL, as make bench does): "+
		"also measure a server behind it (DATABASE_POOLER=transaction), in turns with the direct one")
	flag.StringVar(&c.RedisURL, "redis-url", "", "a Redis server (.ci/rediscluster start DIR, as make bench does): also measure a server "+
		"whose rate limits are on and kept there (REDIS_URL), in turns with the direct one")
	flag.Parse()
	for _, s := range strings.Split(*conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintln(os.Stderr, "bench: -conns wants positive integers")
			os.Exit(2)
		}
		c.Conns = append(c.Conns, n)
	}
	c.Workloads = strings.Split(strings.ToUpper(*workloads), ",")
	if c.AdminURL == "" {
		fmt.Fprintln(os.Stderr, "bench: set -database-url or DATABASE_URL (make bench starts a cluster and sets it)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if c.Work == "" {
		dir, err := os.MkdirTemp("", "people-bench-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer os.RemoveAll(dir)
		c.Work = dir
	}
	rep, err := run(ctx, c, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	rep.write(os.Stdout)
}
