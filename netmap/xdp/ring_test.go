//go:build linux

package xdp

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// memRing is a ring over plain memory, laid out as the kernel lays it out,
// so the index arithmetic can be tested without a socket.
func memRing(n uint32, start uint32) (*ring, *ring) {
	b := make([]byte, 320+int(n)*16)
	off := unix.XDPRingOffset{Producer: 0, Consumer: 128, Flags: 196, Desc: 320}
	mk := func() *ring {
		r := &ring{mem: b, prod: (*uint32)(unsafe.Pointer(&b[off.Producer])), cons: (*uint32)(unsafe.Pointer(&b[off.Consumer])),
			flags: (*uint32)(unsafe.Pointer(&b[off.Flags])), descs: unsafe.Pointer(&b[off.Desc]), mask: n - 1, size: n}
		r.cachedProd, r.cachedCons = start, start
		return r
	}
	p, c := mk(), mk()
	*p.prod, *p.cons = start, start
	return p, c
}

// A producer and a consumer move entries through a ring whose indexes wrap
// past 2^32, the free-running counters the kernel uses.
func TestRingIndexes(t *testing.T) {
	for _, start := range []uint32{0, 1<<32 - 5} {
		prod, cons := memRing(8, start)
		next, want := uint64(0), uint64(0)
		for round := 0; round < 20; round++ {
			f := prod.free(8)
			if f > 8 {
				t.Fatalf("start %#x: free %d exceeds the ring", start, f)
			}
			put := min(f, uint32(round%5+1))
			for j := range put {
				*prod.addr(prod.cachedProd + j) = next
				next++
			}
			prod.submit(put)
			n := cons.avail()
			take := min(n, uint32(round%3+1))
			for j := range take {
				if v := *cons.addr(cons.cachedCons + j); v != want {
					t.Fatalf("start %#x: consumed %d, want %d", start, v, want)
				}
				want++
			}
			cons.release(take)
		}
		for n := cons.avail(); n > 0; n = cons.avail() {
			for j := range n {
				if v := *cons.addr(cons.cachedCons + j); v != want {
					t.Fatalf("start %#x: drained %d, want %d", start, v, want)
				}
				want++
			}
			cons.release(n)
		}
		if want != next || prod.free(8) != 8 {
			t.Fatalf("start %#x: produced %d consumed %d, free %d", start, next, want, prod.free(8))
		}
	}
	p, _ := memRing(8, 0)
	if p.needWakeup() {
		t.Error("need_wakeup set on a fresh ring")
	}
	*p.flags = unix.XDP_RING_NEED_WAKEUP
	if !p.needWakeup() {
		t.Error("need_wakeup not seen")
	}
	if d := p.desc(9); uintptr(unsafe.Pointer(d)) != uintptr(p.descs)+16 {
		t.Error("desc index not masked")
	}
}
