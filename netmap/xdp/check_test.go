//go:build linux

package xdp

import (
	"fmt"

	"github.com/ptbhyve/ptbhyve/netmap"
)

// checkOwnership verifies the buffer invariant: every buffer of the pool
// is in exactly one place. TX slots in flight hold buffers on the TX ring;
// the other TX slots and the RX slots the application owns hold
// application buffers, each named once; and FILL (with the kernel) holds
// one buffer more than each RX ring has kernel-owned slots.
func checkOwnership(p *Port) error {
	var count [3]int
	for idx := uint32(2); idx < uint32(len(p.owner)); idx++ {
		count[p.owner[idx]]++
	}
	wantFill, wantTx := 0, 0
	named := map[uint32]string{}
	name := func(idx uint32, where string, want uint8) error {
		if !p.region.ValidBuf(idx) {
			return fmt.Errorf("%s names invalid buffer %d", where, idx)
		}
		if p.owner[idx] != want {
			return fmt.Errorf("%s holds buffer %d in state %d, want %d", where, idx, p.owner[idx], want)
		}
		if prev, dup := named[idx]; dup {
			return fmt.Errorf("buffer %d is in both %s and %s", idx, prev, where)
		}
		named[idx] = where
		return nil
	}
	for i, k := range p.tx {
		inFlight := netmap.Dist(k.Ring.Next(k.HwTail), k.HwCur, k.N)
		wantTx += int(inFlight)
		for j := range k.N {
			st := ownApp
			if netmap.Dist(k.Ring.Next(k.HwTail), j, k.N) < inFlight {
				st = ownTx
			}
			if err := name(k.Ring.Slot(j).BufIdx, fmt.Sprintf("tx%d slot %d", i, j), st); err != nil {
				return err
			}
		}
	}
	for i, k := range p.rx {
		held := netmap.Dist(k.HwCur, k.HwTail, k.N)
		wantFill += int(k.N - held)
		for j := k.HwCur; j != k.HwTail; j = k.Ring.Next(j) {
			if err := name(k.Ring.Slot(j).BufIdx, fmt.Sprintf("rx%d slot %d", i, j), ownApp); err != nil {
				return err
			}
		}
	}
	if count[ownFill] != wantFill || count[ownTx] != wantTx {
		return fmt.Errorf("%d buffers on FILL and %d on TX; the rings account for %d and %d", count[ownFill], count[ownTx], wantFill, wantTx)
	}
	// Kernel-owned RX slots name stale buffers (on FILL, or since delivered
	// to another slot) and are not counted: application buffers are exactly
	// those named by TX slots not in flight and application-owned RX slots.
	if count[ownApp] != len(named)-wantTx {
		return fmt.Errorf("%d application buffers but %d named by application slots: a buffer leaked", count[ownApp], len(named)-wantTx)
	}
	return nil
}
