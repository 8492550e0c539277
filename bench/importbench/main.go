// Command importbench is make bench-import: it generates a People database of the issue's
// size (100,000 users, 20,000 teams, 300,000 team accesses, 200,000 contacts) on a PostgreSQL
// server, imports it into a freshly migrated database with peopleimport, as `people
// import-people` does, and prints the import's time (the target: under two minutes on the
// 2-core machine). Both databases are dropped at the end.
//
//	go run ./bench/importbench -database-url URL [-users N -teams N -accesses N -contacts N] [-rerun]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"lasuite.fr/people/migrations"
	"lasuite.fr/people/peopleimport"
	"lasuite.fr/people/peopleimport/peopletest"
	"lasuite.fr/people/store"
)

func main() {
	admin := flag.String("database-url", os.Getenv("DATABASE_URL"), "PostgreSQL server where the benchmark may CREATE DATABASE")
	var size peopletest.Size
	flag.IntVar(&size.Users, "users", 100000, "People users")
	flag.IntVar(&size.Teams, "teams", 20000, "People teams")
	flag.IntVar(&size.Accesses, "accesses", 300000, "People team accesses")
	flag.IntVar(&size.Contacts, "contacts", 200000, "People contacts (a profile contact per user, then private ones)")
	rerun := flag.Bool("rerun", false, "also time a second import of the same data (nothing to change)")
	flag.Parse()
	if *admin == "" {
		fmt.Fprintln(os.Stderr, "importbench: -database-url (or DATABASE_URL) is needed")
		os.Exit(2)
	}
	if err := run(context.Background(), *admin, size, *rerun); err != nil {
		fmt.Fprintln(os.Stderr, "importbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, admin string, size peopletest.Size, rerun bool) error {
	const srcName, dstName = "people_import_bench_src", "people_import_bench_dst"
	for _, n := range []string{srcName, dstName} {
		if err := peopletest.DropDatabase(ctx, admin, n); err != nil {
			return err
		}
		defer peopletest.DropDatabase(context.Background(), admin, n) //nolint:errcheck // best effort
	}
	src, err := peopletest.CreateDatabase(ctx, admin, srcName)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := peopletest.Load(ctx, src, peopletest.Schema); err != nil {
		return fmt.Errorf("load People's schema: %w", err)
	}
	if err := peopletest.Generate(ctx, src, size); err != nil {
		return fmt.Errorf("generate People data: %w", err)
	}
	if err := peopletest.Load(ctx, src, "VACUUM ANALYZE"); err != nil {
		return err
	}
	fmt.Printf("generated %+v in %.1fs\n", size, time.Since(t0).Seconds())
	dst, err := peopletest.CreateDatabase(ctx, admin, dstName)
	if err != nil {
		return err
	}
	s, err := store.Open(ctx, dst, store.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := migrations.Up(ctx, s.DB().DB); err != nil {
		return err
	}
	runs := 1
	if rerun {
		runs = 2
	}
	for i := range runs {
		t := time.Now()
		rep, err := peopleimport.Run(ctx, s, peopleimport.Options{From: src, Issuer: "https://bench.example", Progress: os.Stderr})
		if err != nil {
			return err
		}
		if err := rep.WriteSummary(os.Stdout); err != nil {
			return err
		}
		label := "import"
		if i > 0 {
			label = "re-run"
		}
		fmt.Printf("%s: %.1fs (target: under 120s)\n", label, time.Since(t).Seconds())
	}
	return nil
}
