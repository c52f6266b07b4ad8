package pktgen

import (
	"encoding/hex"
	"testing"
	"time"
)

// The textbook header (RFC 1071 examples, Wikipedia's IPv4 checksum
// walk-through) checksums to 0xb861, and to 0 once filled in.
func TestIPChecksum(t *testing.T) {
	h, _ := hex.DecodeString("450000730000400040110000c0a80001c0a800c7")
	if got := ipChecksum(h); got != 0xb861 {
		t.Fatalf("checksum %#04x, want 0xb861", got)
	}
	h[10], h[11] = 0xb8, 0x61
	if got := ipChecksum(h); got != 0 {
		t.Fatalf("checksum over a valid header %#04x, want 0", got)
	}
}

func TestFrameRoundTrip(t *testing.T) {
	for _, size := range []int{60, 61, 1514, 9000} {
		c, err := Config{Size: size}.withDefaults(9000)
		if err != nil {
			t.Fatal(err)
		}
		f := template(c)
		stamp(f, 1<<40+7, 123456789)
		seq, ts, ok := parse(f)
		if !ok || seq != 1<<40+7 || ts != 123456789 {
			t.Errorf("size %d: parse = %d, %d, %v", size, seq, ts, ok)
		}
		swapMACs(f)
		if f[0] != 0x02 || f[6] != 0xff {
			t.Errorf("size %d: MACs not swapped: % x", size, f[:12])
		}
	}
}

func TestSeqTracker(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		seqs                  []uint64
		lost, reordered, dups uint64
	}{
		{"in order", []uint64{0, 1, 2, 3}, 0, 0, 0},
		{"starts late", []uint64{100, 101}, 0, 0, 0},
		{"gap", []uint64{0, 1, 4, 5}, 2, 0, 0},
		{"swap", []uint64{0, 2, 1, 3}, 0, 1, 0},
		{"duplicate", []uint64{0, 1, 1, 2}, 0, 0, 1},
		{"late duplicate", []uint64{0, 2, 1, 1}, 0, 1, 1},
		{"older than window", []uint64{0, window + 10, 3}, window + 9, 1, 0},
		{"late after a long gap", []uint64{0, 1, window + 1, 1 + window/2}, window - 2, 1, 0},
		{"duplicate after a long gap", []uint64{0, 1, window, 1}, window - 2, 0, 1},
	} {
		var s seqTracker
		for _, q := range tc.seqs {
			s.add(q)
		}
		if s.lost != tc.lost || s.reordered != tc.reordered || s.duplicated != tc.dups {
			t.Errorf("%s: lost %d reordered %d duplicated %d; want %d %d %d", tc.name,
				s.lost, s.reordered, s.duplicated, tc.lost, tc.reordered, tc.dups)
		}
	}
}

func TestRTTHist(t *testing.T) {
	var h rttHist
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	r := h.rtt()
	if r.Min != time.Microsecond || r.Max != time.Millisecond || r.Avg != 500500*time.Nanosecond {
		t.Errorf("min/avg/max %v/%v/%v", r.Min, r.Avg, r.Max)
	}
	for _, q := range []struct {
		got, want time.Duration
	}{{r.P50, 500 * time.Microsecond}, {r.P99, 990 * time.Microsecond}} {
		if q.got < q.want || float64(q.got) > float64(q.want)*1.04 {
			t.Errorf("percentile %v, want within 4%% above %v", q.got, q.want)
		}
	}
	for _, d := range []time.Duration{0, 1, 31, 32, 33, 63, 64, 1000, 1 << 40} {
		if b := bucketOf(d); upper(b) < d || (b > 0 && upper(b-1) >= d) {
			t.Errorf("%d lands in bucket %d, which holds up to %d", d, b, upper(b))
		}
	}
}
