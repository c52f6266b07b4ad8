package pktgen

import (
	"fmt"
	"time"
)

// pong copies every received frame into a TX slot with the MAC addresses
// swapped. It copies rather than swapping buffer indexes between the
// rings, because a guest port's RX and TX buffers need not be
// interchangeable. Received frames that are not pktgen's are echoed too,
// and counted bad.
func (x *runner) pong() error {
	for {
		now := time.Now()
		x.tick(now)
		if err := x.r.RxSync(); err != nil {
			return fmt.Errorf("pktgen: pong: sync: %w", err)
		}
		if x.finished(now) {
			return nil
		}
		moved, err := x.echo()
		if err != nil {
			return err
		}
		if err := x.r.TxSync(); err != nil {
			return fmt.Errorf("pktgen: pong: sync: %w", err)
		}
		if moved == 0 {
			if err := x.wait(now, waitSlice); err != nil {
				return err
			}
		}
	}
}

// echo moves what RX ring i holds to TX ring i (mod the TX rings), as far
// as TX space and the count allow, and returns how many RX slots it took.
func (x *runner) echo() (int, error) {
	moved := 0
	for i := range x.r.NumRx() {
		rx, tx := x.r.RxRing(i), x.r.TxRing(i%x.r.NumTx())
		rh, th := rx.Head(), tx.Head()
		k := min(int(rx.Space()), int(tx.Space()), int(rx.NumSlots())-1, x.remaining(int(rx.NumSlots())))
		for range k {
			rs := rx.Slot(rh)
			rh = rx.Next(rh)
			x.sum.Received++
			src := x.r.Buf(rs.BufIdx)
			l := int(rs.Len)
			if l > len(src) || l < 12 {
				x.sum.Bad++ // nothing whole to echo
				continue
			}
			src = src[:l]
			if _, _, ok := parse(src); !ok {
				x.sum.Bad++
			}
			ts := tx.Slot(th)
			dst := x.r.Buf(ts.BufIdx)
			if len(dst) < l {
				return moved, fmt.Errorf("pktgen: pong: TX ring %d slot %d names buffer %d of %d bytes, too small for a %d-byte echo: the device's ring is corrupt", i%x.r.NumTx(), th, ts.BufIdx, len(dst), l)
			}
			copy(dst, src)
			swapMACs(dst)
			ts.Len, ts.Flags = uint16(l), 0
			th = tx.Next(th)
			x.count(1, uint64(l))
		}
		rx.Advance(rh)
		tx.Advance(th)
		moved += k
	}
	return moved, nil
}
