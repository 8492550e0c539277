// Package probe lets the benchmark look inside the processes it measures: imported for its side
// effect, it serves net/http/pprof and the Go runtime's allocation counters on a loopback port
// when BENCH_PROBE_FILE names a file, and writes the port's address there. The server gets it
// only in the benchmark's build (see overlay/overlay.go); the floor imports it directly. It imports none
// of our packages.
package probe

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
)

// Stats are the counters the benchmark reads before and after a measured window.
type Stats struct {
	Mallocs    uint64 // cumulative heap objects allocated
	TotalAlloc uint64 // cumulative bytes allocated
	NumGC      uint32
	HeapInuse  uint64
	Sys        uint64
}

// StatsPath is where a probe serves Stats as JSON.
const StatsPath = "/debug/bench/stats"

// The probe reads its one setting here rather than through the server's configuration: it is
// not part of the server, and exists only in binaries built for the benchmark.
func init() {
	if file := os.Getenv("BENCH_PROBE_FILE"); file != "" {
		if err := serve(file); err != nil {
			fmt.Fprintln(os.Stderr, "bench probe:", err)
			os.Exit(2)
		}
	}
}

func serve(file string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc(StatsPath, func(w http.ResponseWriter, _ *http.Request) {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(Stats{Mallocs: m.Mallocs, TotalAlloc: m.TotalAlloc, NumGC: m.NumGC, HeapInuse: m.HeapInuse, Sys: m.Sys})
	})
	go http.Serve(ln, mux)
	// Written whole under a temporary name, so that the reader never sees half an address.
	if err := os.WriteFile(file+".tmp", []byte(ln.Addr().String()), 0o600); err != nil {
		return err
	}
	return os.Rename(file+".tmp", file)
}
