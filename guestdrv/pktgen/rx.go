package pktgen

import (
	"fmt"
	"time"
)

// rx drains every RX ring, checks each frame and tracks its sequence
// number; it sleeps in Wait only when the rings are empty after a sync.
func (x *runner) rx() error {
	var seqs seqTracker
	defer func() {
		x.sum.Lost, x.sum.Reordered, x.sum.Duplicated = seqs.lost, seqs.reordered, seqs.duplicated
	}()
	for {
		now := time.Now()
		x.tick(now)
		// The sync also hands back what the previous pass consumed, so
		// it runs before the exit check.
		if err := x.r.RxSync(); err != nil {
			return fmt.Errorf("pktgen: rx: sync: %w", err)
		}
		if x.finished(now) {
			return nil
		}
		got := 0
		for i := 0; i < x.r.NumRx(); i++ {
			ring := x.r.RxRing(i)
			h := ring.Head()
			k := min(int(ring.Space()), x.remaining(int(ring.NumSlots())-1))
			for range k {
				s := ring.Slot(h)
				buf := x.r.Buf(s.BufIdx)
				// A length past the buffer (or no buffer) is a broken
				// slot; the truncated frame fails parse.
				buf = buf[:min(int(s.Len), len(buf))]
				x.sum.Received++
				x.count(1, uint64(len(buf)))
				if seq, _, ok := parse(buf); ok {
					seqs.add(seq)
				} else {
					x.sum.Bad++
				}
				h = ring.Next(h)
			}
			ring.Advance(h)
			got += k
		}
		if got == 0 {
			if err := x.wait(now, waitSlice); err != nil {
				return err
			}
		}
	}
}
