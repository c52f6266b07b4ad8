package pktgen

import (
	"math/bits"
	"time"
)

// rttHist keeps round-trip times in a log-linear histogram: 32 linear
// sub-buckets per power of two, so percentiles are within about 3% in
// fixed space however long ping runs.
type rttHist struct {
	n             uint64
	sum, min, max time.Duration
	buckets       [64 * subBuckets]uint64
}

const subBits = 5
const subBuckets = 1 << subBits

func bucketOf(d time.Duration) int {
	v := uint64(max(d, 0))
	if v < subBuckets {
		return int(v)
	}
	exp := bits.Len64(v) - subBits // >= 1
	return exp*subBuckets + int(v>>(exp-1)) - subBuckets
}

// upper is the largest value bucket b holds.
func upper(b int) time.Duration {
	if b < subBuckets {
		return time.Duration(b)
	}
	exp, sub := b/subBuckets, b%subBuckets
	return time.Duration((uint64(subBuckets+sub+1) << (exp - 1)) - 1)
}

func (h *rttHist) add(d time.Duration) {
	if h.n == 0 || d < h.min {
		h.min = d
	}
	h.max = max(h.max, d)
	h.n++
	h.sum += d
	h.buckets[bucketOf(d)]++
}

// quantile is the upper edge of the bucket holding the q-th sample,
// clamped to the observed range.
func (h *rttHist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n-1)) + 1
	var seen uint64
	for b, c := range h.buckets {
		if seen += c; seen >= rank {
			return min(max(upper(b), h.min), h.max)
		}
	}
	return h.max
}

func (h *rttHist) rtt() RTT {
	if h.n == 0 {
		return RTT{}
	}
	return RTT{Min: h.min, Avg: h.sum / time.Duration(h.n), Max: h.max,
		P50: h.quantile(0.50), P99: h.quantile(0.99)}
}
