package bounce

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/netmap/pipe"
)

// FuzzBounce plays a hostile guest: every step writes a slot of a ring
// with any buffer index, length and flags, moves head and cur anywhere,
// and syncs as the host loop does (prologue, sync, reset on ErrBadSlot),
// while the other end of the pipe sends and drains. The port must never
// panic, touch memory outside its region (the guard bytes around it), or
// leave a ring in a state the prologue refuses from its own indexes.
func FuzzBounce(f *testing.F) {
	f.Add([]byte{0, 0, 5, 0, 0, 0, 60, 0, 0, 1, 1})
	f.Add([]byte{1, 3, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0x20, 0x40})
	f.Fuzz(func(t *testing.T, in []byte) {
		guard := 4096
		mem := make([]byte, 1<<20+2*guard)
		for i := range guard {
			mem[i], mem[len(mem)-1-i] = 0xa5, 0xa5
		}
		p, b := newBounce(t, pipe.Config{Slots: 64}, Config{Mem: mem[guard : len(mem)-guard], Slots: 64})
		for len(in) >= 11 {
			step := in[:11]
			in = in[11:]
			k := p.TxRings()[0]
			if step[0]&1 == 1 {
				k = p.RxRings()[0]
			}
			s := k.Ring.Slot(uint32(step[1]) % k.N)
			s.BufIdx = binary.LittleEndian.Uint32(step[2:])
			s.Len = binary.LittleEndian.Uint16(step[6:])
			s.Flags = uint16(step[8])
			k.Ring.SetHead(uint32(step[9]) % (k.N + 2))
			k.Ring.SetCur(uint32(step[10]) % (k.N + 2))
			if !k.Prologue(k.Ring.Head(), k.Ring.Cur()) {
				k.Reinit()
				continue
			}
			var err error
			if k.Tx {
				err = p.TxSync(0, 0)
			} else {
				err = p.RxSync(0, 0)
			}
			switch {
			case errors.Is(err, netmap.ErrBadSlot):
				k.Reinit()
			case err != nil:
				t.Fatal(err)
			}
			k.Finalize()
			if !k.Prologue(k.RHead, k.RCur) {
				t.Fatalf("ring left inconsistent: head %d cur %d hwcur %d hwtail %d", k.RHead, k.RCur, k.HwCur, k.HwTail)
			}
			// The pipe's far end drains and sends one frame per step.
			netmap.RxSync(b)
			rx := b.If().RxRing(0)
			rx.Advance(rx.Tail())
			tx := b.If().TxRing(0)
			if tx.Space() > 0 {
				tx.Slot(tx.Head()).Len = 60
				tx.Advance(tx.Next(tx.Head()))
			}
			netmap.TxSync(b)
		}
		for i := range guard {
			if mem[i] != 0xa5 || mem[len(mem)-1-i] != 0xa5 {
				t.Fatalf("guard byte %d around the region was overwritten", i)
			}
		}
	})
}
