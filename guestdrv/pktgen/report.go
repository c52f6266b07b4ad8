package pktgen

import (
	"fmt"
	"strings"
	"time"
)

// Report is one of Run's per-second lines: what moved in the last
// interval, and the totals so far. Packets are the frames the mode counts:
// sent for tx and ping, received for rx, echoed for pong. Bytes are frame
// bytes without FCS, preamble or inter-frame gap.
type Report struct {
	Elapsed  time.Duration // since the run started
	Interval time.Duration
	Packets  uint64 // in the interval
	Bytes    uint64
	PPS, BPS float64 // packets and bits per second over the interval

	TotalPackets, TotalBytes uint64
}

// String formats a report like pkt-gen's per-second lines:
// "12.345 Mpps 6.3 Gbps (123456 pkts 7.9 MB in 1.000 s)".
func (r Report) String() string {
	return fmt.Sprintf("%s %s (%d pkts %s in %.3f s)",
		si(r.PPS, 3, "pps"), si(r.BPS, 1, "bps"), r.Packets, bytesSI(r.Bytes), r.Interval.Seconds())
}

// RTT summarises ping's round-trip times (time.Duration is nanoseconds).
// P50 and P99 are accurate to about 3%.
type RTT struct {
	Min time.Duration `json:"min_ns"`
	Avg time.Duration `json:"avg_ns"`
	Max time.Duration `json:"max_ns"`
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
}

// Summary is the whole run.
type Summary struct {
	Mode    Mode          `json:"mode"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// Packets and Bytes count what the mode counts (see Report); PPS and
	// BPS are their average rates.
	Packets uint64  `json:"packets"`
	Bytes   uint64  `json:"bytes"`
	PPS     float64 `json:"pps"`
	BPS     float64 `json:"bps"`

	// Received counts frames taken off the RX rings (rx, ping, pong).
	Received uint64 `json:"received"`
	// Bad counts received frames that are not whole pktgen frames (wrong
	// magic, length or IPv4 checksum) or whose slot names no valid buffer.
	Bad uint64 `json:"bad"`
	// Lost counts, for rx, sequence numbers skipped and never seen later;
	// for ping, rounds with no echo within Config.Timeout.
	Lost uint64 `json:"lost"`
	// Reordered and Duplicated (rx) count frames older than the newest
	// seen: first arrivals and repeats.
	Reordered  uint64 `json:"reordered"`
	Duplicated uint64 `json:"duplicated"`
	// RTT is ping's round-trip time over the answered rounds (Packets -
	// Lost).
	RTT RTT `json:"rtt"`
}

// String is a one-line summary with the fields that matter for the mode.
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d pkts %s in %.3f s, %s %s", s.Mode, s.Packets, bytesSI(s.Bytes),
		s.Elapsed.Seconds(), si(s.PPS, 3, "pps"), si(s.BPS, 1, "bps"))
	switch s.Mode {
	case RX:
		fmt.Fprintf(&b, "; %d bad, %d lost, %d reordered, %d duplicated", s.Bad, s.Lost, s.Reordered, s.Duplicated)
	case Ping:
		fmt.Fprintf(&b, "; %d answered, %d lost, %d bad; rtt min/avg/max/p50/p99 %v/%v/%v/%v/%v",
			s.Packets-s.Lost, s.Lost, s.Bad, s.RTT.Min, s.RTT.Avg, s.RTT.Max, s.RTT.P50, s.RTT.P99)
	case Pong:
		fmt.Fprintf(&b, "; %d received, %d bad", s.Received, s.Bad)
	}
	return b.String()
}

// si scales v to K, M, G or T and prints it with prec decimals and unit.
func si(v float64, prec int, unit string) string {
	prefix := ""
	for _, p := range []string{"K", "M", "G", "T"} {
		if v < 1000 {
			break
		}
		v /= 1000
		prefix = p
	}
	return fmt.Sprintf("%.*f %s%s", prec, v, prefix, unit)
}

// bytesSI prints a byte count: exact below 1000, else one decimal with a
// decimal (SI) prefix, as pkt-gen does.
func bytesSI(n uint64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	return si(float64(n), 1, "B")
}
