package pktgen

import (
	"fmt"
	"time"
)

// drainTimeout bounds how long tx waits, after its last frame, for the
// device to report every queued slot transmitted.
const drainTimeout = time.Second

// tx fills TX slots from the template in bursts, one TxSync per burst,
// and sleeps in Wait only when every TX ring is full.
func (x *runner) tx() error {
	tmpl := template(x.c)
	var seq uint64
	for {
		now := time.Now()
		x.tick(now)
		if x.finished(now) {
			break
		}
		want := x.remaining(x.c.Burst)
		n := x.pace.allowed(now, x.sum.Packets, want)
		if n == 0 {
			x.sleep(now, x.pace.next(x.sum.Packets))
			continue
		}
		sent, err := x.fill(tmpl, n, &seq, now.UnixNano())
		if err != nil {
			return err
		}
		x.count(uint64(sent), uint64(sent)*uint64(len(tmpl)))
		if err := x.r.TxSync(); err != nil {
			return fmt.Errorf("pktgen: tx: sync: %w", err)
		}
		if sent == 0 && x.txSpace() == 0 {
			if err := x.wait(now, waitSlice); err != nil {
				return err
			}
		}
	}
	return x.drain()
}

// fill queues up to n frames across the TX rings, numbering them from
// *seq, and returns how many it queued.
func (x *runner) fill(tmpl []byte, n int, seq *uint64, ts int64) (int, error) {
	sent := 0
	for i := 0; i < x.r.NumTx() && sent < n; i++ {
		ring := x.r.TxRing(i)
		h := ring.Head()
		k := min(int(ring.Space()), n-sent, int(ring.NumSlots())-1)
		for range k {
			s := ring.Slot(h)
			buf := x.r.Buf(s.BufIdx)
			if len(buf) < len(tmpl) {
				return sent, fmt.Errorf("pktgen: TX ring %d slot %d names buffer %d of %d bytes, too small for a %d-byte frame: the device's ring is corrupt", i, h, s.BufIdx, len(buf), len(tmpl))
			}
			copy(buf, tmpl)
			stamp(buf, *seq, ts)
			s.Len, s.Flags = uint16(len(tmpl)), 0
			*seq++
			h = ring.Next(h)
		}
		ring.Advance(h)
		sent += k
	}
	return sent, nil
}

// txSpace is the free slots over all TX rings.
func (x *runner) txSpace() uint32 {
	var n uint32
	for i := range x.r.NumTx() {
		n += x.r.TxRing(i).Space()
	}
	return n
}

// drain waits until the device has transmitted every queued slot, so the
// elapsed time covers delivery, as pkt-gen's does; it gives up after
// drainTimeout or when the context ends.
func (x *runner) drain() error {
	limit := time.Now().Add(drainTimeout)
	for !x.cancelled() {
		pending := false
		for i := range x.r.NumTx() {
			pending = pending || x.r.TxRing(i).TxPending()
		}
		now := time.Now()
		if !pending || now.After(limit) {
			return nil
		}
		if err := x.r.Wait(min(waitSlice, limit.Sub(now))); err != nil {
			return fmt.Errorf("pktgen: tx: wait for the last frames to go out: %w", err)
		}
		if err := x.r.TxSync(); err != nil {
			return fmt.Errorf("pktgen: tx: sync: %w", err)
		}
	}
	return nil
}
