package pktgen

import "time"

// pacer is a token bucket at rate packets per second that never discards
// tokens: after a stall (a full ring, a slow sleep) the sender catches up
// in bursts, so the average over the run stays at the rate. It never lets
// more than rate × elapsed packets out.
type pacer struct {
	rate  uint64 // 0: unpaced
	start time.Time
	// step is how many tokens to wait for before sending again: about a
	// millisecond's worth, so a paced sender sleeps at most ~1000 times a
	// second instead of once per packet.
	step uint64
}

func newPacer(rate uint64, burst int, start time.Time) pacer {
	return pacer{rate: rate, start: start, step: max(1, min(rate/1000, uint64(burst)))}
}

// allowed is how many of want more packets may go at now, sent having
// gone already.
func (p pacer) allowed(now time.Time, sent uint64, want int) int {
	if p.rate == 0 {
		return want
	}
	tokens := uint64(now.Sub(p.start).Seconds() * float64(p.rate))
	if tokens <= sent {
		return 0
	}
	return int(min(tokens-sent, uint64(want)))
}

// next is when enough tokens for the next step will be there.
func (p pacer) next(sent uint64) time.Time {
	ns := float64(sent+p.step) / float64(p.rate) * 1e9
	return p.start.Add(time.Duration(ns))
}
