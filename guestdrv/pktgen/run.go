package pktgen

import (
	"context"
	"fmt"
	"time"

	"github.com/ptbhyve/ptbhyve/guestdrv"
)

// Run drives the rings in c.Mode until c.Count frames, c.Duration or the
// context ends, calling report (if not nil) about once a second. The end
// of the context is a normal end of the run, not an error; errors are
// broken rings or a bad configuration.
func Run(ctx context.Context, r guestdrv.Rings, c Config, report func(Report)) (Summary, error) {
	needTx, needRx := c.Mode != RX, c.Mode != TX
	if (needTx && r.NumTx() == 0) || (needRx && r.NumRx() == 0) {
		return Summary{}, fmt.Errorf("pktgen: %s needs TX and/or RX rings; the device has %d TX and %d RX: check the device's ring configuration", c.Mode, r.NumTx(), r.NumRx())
	}
	// The buffer size bounds the frame size; it is constant per region.
	bufSize := r.RxRing(0).Header().BufSize
	if needTx {
		bufSize = r.TxRing(0).Header().BufSize
	}
	c, err := c.withDefaults(int(bufSize))
	if err != nil {
		return Summary{}, err
	}
	x := newRunner(ctx, r, c, report)
	switch c.Mode {
	case TX:
		err = x.tx()
	case RX:
		err = x.rx()
	case Ping:
		err = x.ping()
	case Pong:
		err = x.pong()
	}
	return x.summary(time.Now()), err
}

const (
	// waitSlice bounds a sleep in Rings.Wait, so the end of the context
	// is noticed within it even when no traffic wakes the loop.
	waitSlice = 50 * time.Millisecond
	// reportEvery is the interval between reports, as pkt-gen's.
	reportEvery = time.Second
)

// runner is the state every mode shares: the counters, the report clock
// and the ways a run ends.
type runner struct {
	r      guestdrv.Rings
	c      Config
	done   <-chan struct{}
	report func(Report)
	pace   pacer
	timer  *time.Timer // for pacing sleeps; made on first use

	start, end time.Time // end is zero without a Duration
	lastReport time.Time
	lastP      uint64
	lastB      uint64

	sum Summary
}

func newRunner(ctx context.Context, r guestdrv.Rings, c Config, report func(Report)) *runner {
	now := time.Now()
	x := &runner{r: r, c: c, done: ctx.Done(), report: report, start: now, lastReport: now,
		pace: newPacer(c.Rate, c.Burst, now)}
	if c.Duration > 0 {
		x.end = now.Add(c.Duration)
	}
	x.sum.Mode = c.Mode
	return x
}

// count adds frames to the mode's packet and byte counters.
func (x *runner) count(packets, bytes uint64) {
	x.sum.Packets += packets
	x.sum.Bytes += bytes
}

// cancelled reports whether the context has ended.
func (x *runner) cancelled() bool {
	select {
	case <-x.done:
		return true
	default:
		return false
	}
}

// finished reports whether the run should stop: context, duration or
// count.
func (x *runner) finished(now time.Time) bool {
	return x.cancelled() || (!x.end.IsZero() && !now.Before(x.end)) ||
		(x.c.Count > 0 && x.sum.Packets >= x.c.Count)
}

// remaining is how many more frames the count allows, at most limit.
func (x *runner) remaining(limit int) int {
	if x.c.Count == 0 {
		return limit
	}
	return int(min(uint64(limit), x.c.Count-min(x.sum.Packets, x.c.Count)))
}

// tick emits a report when a second has passed since the last one.
func (x *runner) tick(now time.Time) {
	if x.report == nil {
		return
	}
	iv := now.Sub(x.lastReport)
	if iv < reportEvery {
		return
	}
	p, b := x.sum.Packets-x.lastP, x.sum.Bytes-x.lastB
	x.report(Report{Elapsed: now.Sub(x.start), Interval: iv, Packets: p, Bytes: b,
		PPS: float64(p) / iv.Seconds(), BPS: float64(b) * 8 / iv.Seconds(),
		TotalPackets: x.sum.Packets, TotalBytes: x.sum.Bytes})
	x.lastReport, x.lastP, x.lastB = now, x.sum.Packets, x.sum.Bytes
}

// nap is how long the loop may sleep at now without missing a report or
// the end of the run, at most limit.
func (x *runner) nap(now time.Time, limit time.Duration) time.Duration {
	d := limit
	if x.report != nil {
		d = min(d, x.lastReport.Add(reportEvery).Sub(now))
	}
	if !x.end.IsZero() {
		d = min(d, x.end.Sub(now))
	}
	return max(d, 0)
}

// wait sleeps in Rings.Wait until a ring may have news, for at most
// limit; the caller syncs afterwards.
func (x *runner) wait(now time.Time, limit time.Duration) error {
	d := x.nap(now, min(limit, waitSlice))
	if d == 0 {
		return nil
	}
	if err := x.r.Wait(d); err != nil {
		return fmt.Errorf("pktgen: %s: wait for the rings: %w", x.c.Mode, err)
	}
	return nil
}

// sleep waits until t (pacing), the context ends, or a report or the end
// of the run is due.
func (x *runner) sleep(now, t time.Time) {
	d := x.nap(now, t.Sub(now))
	if d <= 0 {
		return
	}
	if x.timer == nil {
		x.timer = time.NewTimer(d)
	} else {
		x.timer.Reset(d)
	}
	select {
	case <-x.timer.C:
	case <-x.done:
		x.timer.Stop()
	}
}

func (x *runner) summary(now time.Time) Summary {
	s := x.sum
	s.Elapsed = now.Sub(x.start)
	if sec := s.Elapsed.Seconds(); sec > 0 {
		s.PPS = float64(s.Packets) / sec
		s.BPS = float64(s.Bytes) * 8 / sec
	}
	return s
}
