package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"lasuite.fr/people/store/demo"
	"lasuite.fr/people/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// TestHarness runs the whole benchmark on a tiny data set for a second per run: the builds,
// the seed, both processes, the check that the floor answers as the server does, every
// workload, and the report. The numbers mean nothing here; make bench gives the real ones.
func TestHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server and the floor")
	}
	c := config{
		DatabaseURL: storetest.URL(t),
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
		"W3 floor": true, "W3 server": true, "W4 server": true}
	for _, r := range rep.runs {
		delete(want, r.workload+" "+r.target)
		if r.res.Requests == 0 || r.res.Errors > 0 || r.allocs <= 0 {
			t.Errorf("%s %s: %d requests, %d errors, %.0f allocs per request", r.target, r.workload, r.res.Requests, r.res.Errors, r.allocs)
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
	for _, s := range []string{"| workload | target |", "| W4 | server | 2 |", "same answers as the floor"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, out.String())
		}
	}
}
