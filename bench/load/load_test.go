package load

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	h := NewHistogram()
	for us := 1; us <= 100000; us++ { // 1 µs to 100 ms, evenly
		h.Record(time.Duration(us) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0.001, 100 * time.Microsecond}} {
		got := h.Quantile(tc.q)
		if diff := float64(got-tc.want) / float64(tc.want); diff > 0.008 || diff < -0.008 {
			t.Errorf("Quantile(%v) = %v, want %v ± 0.8 %%", tc.q, got, tc.want)
		}
	}
	if h.Count() != 100000 || h.Max() != 100*time.Millisecond {
		t.Errorf("Count() = %d, Max() = %v", h.Count(), h.Max())
	}
}

func TestBucketBounds(t *testing.T) {
	for _, us := range []int64{0, 1, 255, 256, 257, 511, 512, 1000, 123456, 1 << 40} {
		lo, hi := bounds(bucket(us))
		if us < lo || us >= hi {
			t.Errorf("%d µs falls in bucket [%d, %d)", us, lo, hi)
		}
	}
}

func TestRun(t *testing.T) {
	var served, started atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if r.URL.Path == "/bad" {
			w.Write([]byte(`{"errors":[]}`))
			return
		}
		w.Write([]byte(`{"data":{}}`))
	}))
	defer srv.Close()
	res, err := Run(t.Context(), Config{
		BaseURL: srv.URL, Conns: 4, Warmup: 100 * time.Millisecond, Duration: 300 * time.Millisecond,
		Requests: []Request{{Path: "/ok"}, {Path: "/bad", Key: 1}},
		Check: func(r *Request, body []byte) error {
			if r.Key == 1 {
				return errors.New("bad")
			}
			return nil
		},
		OnStart: func() { started.Store(served.Load()) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors == 0 || res.FirstErr == nil || res.Latency.Count() != res.Requests {
		t.Errorf("result = %+v, want successes, failures and a latency per success", res)
	}
	if got := res.Requests + res.Errors; got > served.Load()-started.Load() {
		t.Errorf("counted %d requests in the window, but the server answered %d after it opened", got, served.Load()-started.Load())
	}
	if tp := res.Throughput(); tp <= 0 || res.Elapsed < 300*time.Millisecond {
		t.Errorf("throughput %v over %v", tp, res.Elapsed)
	}
}

// The requests in flight when the window closes finish: none is cut, so the server never
// cancels a statement because a run ended.
func TestRunLetsRequestsInFlightFinish(t *testing.T) {
	var cut, done atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(30 * time.Millisecond):
			done.Add(1)
			w.Write([]byte(`{"data":{}}`))
		case <-r.Context().Done():
			cut.Add(1)
		}
	}))
	defer srv.Close()
	res, err := Run(t.Context(), Config{BaseURL: srv.URL, Conns: 8, Warmup: 50 * time.Millisecond, Duration: 200 * time.Millisecond,
		Requests: []Request{{Path: "/slow"}}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Close() // waits for the handlers
	if cut.Load() != 0 {
		t.Errorf("%d requests cut at the end of the run", cut.Load())
	}
	if res.Requests == 0 || done.Load() <= res.Requests {
		t.Errorf("%d requests counted, %d served: want the warm-up's and the last ones served but not counted", res.Requests, done.Load())
	}
}
