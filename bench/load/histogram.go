package load

import (
	"math/bits"
	"time"
)

// Histogram counts latencies in microseconds in log-linear buckets: exact below 256 µs, then
// 128 buckets per power of two, so a percentile is off by less than 0.8 %. Recording allocates
// nothing, so that the generator's own cost stays flat under load.
type Histogram struct {
	counts [64 * subBuckets]int64
	n      int64
	max    int64
}

const (
	subBits    = 7
	subBuckets = 1 << subBits // 128
)

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram { return &Histogram{} }

func bucket(us int64) int {
	if us < 2*subBuckets {
		return int(us)
	}
	shift := bits.Len64(uint64(us)) - (subBits + 1)
	return 2*subBuckets + (shift-1)*subBuckets + int(us>>shift) - subBuckets
}

// bounds returns the range [lo, hi) of bucket i, in microseconds.
func bounds(i int) (lo, hi int64) {
	if i < 2*subBuckets {
		return int64(i), int64(i) + 1
	}
	shift := (i-2*subBuckets)/subBuckets + 1
	top := int64(i-2*subBuckets)%subBuckets + subBuckets
	return top << shift, (top + 1) << shift
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	us := max(d.Microseconds(), 0)
	h.counts[bucket(us)]++
	h.n++
	h.max = max(h.max, us)
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Count is the number of recorded latencies.
func (h *Histogram) Count() int64 { return h.n }

// Max is the largest recorded latency.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) * time.Microsecond }

// Quantile returns the latency below which a fraction q (0 < q ≤ 1) of the recorded ones
// fall: the middle of its bucket, never more than Max.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen int64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			lo, hi := bounds(i)
			return time.Duration(min((lo+hi)/2, h.max)) * time.Microsecond
		}
	}
	return h.Max()
}
