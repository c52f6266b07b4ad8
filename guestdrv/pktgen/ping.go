package pktgen

import (
	"fmt"
	"time"
)

// ping sends one frame at a time on TX ring 0 and waits for the echo
// carrying its sequence number; the RTT is measured on this side's
// monotonic clock. Echoes of earlier, timed-out rounds are skipped.
func (x *runner) ping() error {
	tmpl := template(x.c)
	var hist rttHist
	defer func() { x.sum.RTT = hist.rtt() }()
	ring := x.r.TxRing(0)
	for {
		now := time.Now()
		x.tick(now)
		if x.finished(now) {
			return nil
		}
		if x.pace.allowed(now, x.sum.Packets, 1) == 0 {
			x.sleep(now, x.pace.next(x.sum.Packets))
			continue
		}
		if ring.Space() == 0 {
			if err := x.r.TxSync(); err != nil {
				return fmt.Errorf("pktgen: ping: sync: %w", err)
			}
			if ring.Space() == 0 {
				if err := x.wait(now, waitSlice); err != nil {
					return err
				}
			}
			continue
		}
		// Rounds are numbered by how many went before.
		seq := x.sum.Packets
		if _, err := x.fill(tmpl, 1, &seq, now.UnixNano()); err != nil {
			return err
		}
		sent := time.Now()
		if err := x.r.TxSync(); err != nil {
			return fmt.Errorf("pktgen: ping: sync: %w", err)
		}
		arrived, answered, err := x.awaitEcho(x.sum.Packets, sent.Add(x.c.Timeout))
		if err != nil || x.cancelled() && !answered {
			return err // an interrupted round counts neither way
		}
		x.count(1, uint64(len(tmpl)))
		if answered {
			hist.add(arrived.Sub(sent))
		} else {
			x.sum.Lost++
		}
	}
}

// awaitEcho drains the RX rings until the echo of seq arrives (returning
// its arrival time), the deadline passes or the context ends.
func (x *runner) awaitEcho(seq uint64, deadline time.Time) (time.Time, bool, error) {
	for {
		if err := x.r.RxSync(); err != nil {
			return time.Time{}, false, fmt.Errorf("pktgen: ping: sync: %w", err)
		}
		now := time.Now()
		found := false
		for i := range x.r.NumRx() {
			ring := x.r.RxRing(i)
			h := ring.Head()
			for range min(ring.Space(), ring.NumSlots()-1) {
				s := ring.Slot(h)
				buf := x.r.Buf(s.BufIdx)
				buf = buf[:min(int(s.Len), len(buf))]
				x.sum.Received++
				got, _, ok := parse(buf)
				if !ok {
					x.sum.Bad++
				}
				found = found || ok && got == seq
				h = ring.Next(h)
			}
			ring.Advance(h)
		}
		if found {
			return now, true, nil
		}
		if !now.Before(deadline) || x.cancelled() {
			return time.Time{}, false, nil
		}
		// Only the deadline and the context end a round; reports are
		// late while a round waits, as pkt-gen's are.
		if err := x.r.Wait(min(waitSlice, deadline.Sub(now))); err != nil {
			return time.Time{}, false, fmt.Errorf("pktgen: ping: wait for the echo: %w", err)
		}
	}
}
