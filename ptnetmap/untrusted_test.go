package ptnetmap

import (
	"fmt"
	"testing"
	"time"
	"unsafe"

	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/netmap/pipe"
)

// ABI pins of research §5 and §5.5.
func TestDeviceABI(t *testing.T) {
	var a Atok
	var k Ktoa
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(nm_csb_atok)", unsafe.Sizeof(a), 64},
		{"atok.head", unsafe.Offsetof(a.head), 0},
		{"atok.cur", unsafe.Offsetof(a.cur), 4},
		{"atok.appl_need_kick", unsafe.Offsetof(a.applNeedKick), 8},
		{"atok.sync_flags", unsafe.Offsetof(a.syncFlags), 12},
		{"sizeof(nm_csb_ktoa)", unsafe.Sizeof(k), 64},
		{"ktoa.hwcur", unsafe.Offsetof(k.hwcur), 0},
		{"ktoa.hwtail", unsafe.Offsetof(k.hwtail), 4},
		{"ktoa.kern_need_kick", unsafe.Offsetof(k.kernNeedKick), 8},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	for _, c := range []struct {
		name      string
		got, want uint32
	}{
		{"vendor", PCIVendorID, 0x1b36}, {"memdev id", MemdevDeviceID, 0x000c}, {"ptnet id", PtnetDeviceID, 0x000d},
		{"PTFEAT", RegPtfeat, 0}, {"PTCTL", RegPtctl, 4}, {"MAC_LO", RegMacLo, 8}, {"MAC_HI", RegMacHi, 12},
		{"CSBBAH", RegCSBBAH, 16}, {"CSBBAL", RegCSBBAL, 20}, {"NIFP_OFS", RegNifpOfs, 24},
		{"NUM_TX_RINGS", RegNumTxRings, 28}, {"NUM_RX_RINGS", RegNumRxRings, 32}, {"NUM_TX_SLOTS", RegNumTxSlots, 36},
		{"NUM_RX_SLOTS", RegNumRxSlots, 40}, {"VNET_HDR_LEN", RegVnetHdrLen, 44}, {"HOSTMEMID", RegHostMemID, 48},
		{"CSB_GH_BAH", RegCSBGHBAH, 52}, {"CSB_GH_BAL", RegCSBGHBAL, 56}, {"CSB_HG_BAH", RegCSBHGBAH, 60},
		{"CSB_HG_BAL", RegCSBHGBAL, 64}, {"END", RegPtnetEnd, 68}, {"KICK 0", KickReg(0), 128}, {"KICK 31", KickReg(31), 252},
		{"MEMSIZE_LO", RegMemsizeLo, 0}, {"MEMSIZE_HI", RegMemsizeHi, 4}, {"MEMID", RegMemID, 8},
		{"IF_POOL_OFS", RegIfPoolOfs, 64}, {"IF_POOL_OBJNUM", RegIfPoolObjNum, 68}, {"IF_POOL_OBJSZ", RegIfPoolObjSz, 72},
		{"RING_POOL_OFS", RegRingPoolOfs, 76}, {"RING_POOL_OBJNUM", RegRingPoolObjNum, 80}, {"RING_POOL_OBJSZ", RegRingPoolObjSz, 84},
		{"BUF_POOL_OFS", RegBufPoolOfs, 88}, {"BUF_POOL_OBJNUM", RegBufPoolObjNum, 92}, {"BUF_POOL_OBJSZ", RegBufPoolObjSz, 96},
		{"MDEV END", RegMemdevEnd, 100}, {"CREATE", PtctlCreate, 1}, {"DELETE", PtctlDelete, 2}, {"F_VNET_HDR", FeatureVnetHdr, 1},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}

type countIrq struct{ n []int }

func (c *countIrq) Interrupt(v int) { c.n[v]++ }

// fuzzEnv is a pipe pair whose two bindings are driven by hand: no loop
// goroutine, so every step is deterministic.
type fuzzEnv struct {
	att  [2]*Attachment
	csb  [2]CSB
	port [2]*pipe.Endpoint
	irq  countIrq
}

var envSeq int

func newFuzzEnv(t testing.TB, slots uint32) *fuzzEnv {
	envSeq++
	key := fmt.Sprintf("fuzz-%d-%d", time.Now().UnixNano(), envSeq)
	e := &fuzzEnv{irq: countIrq{n: make([]int, 2)}}
	l, err := NewLoop(LoopConfig{CPU: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.wake.Close() })
	for i, master := range []bool{true, false} {
		p, err := pipe.Open(key, master, pipe.Config{Slots: slots})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		e.port[i] = p
		mem := make([]byte, 2*4*CSBEntrySize+64)
		off := (64 - int(uintptr(unsafe.Pointer(&mem[0]))%64)) % 64
		e.csb[i] = CSBFromBytes(mem[off:], mem[off+2*CSBEntrySize:], 2)
		e.att[i], err = l.Attach(Binding{Port: p, CSB: e.csb[i], Kicks: newEvents(t, 2), Irq: &e.irq})
		if err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// check asserts what must hold whatever the guest wrote: every index the
// host keeps or publishes lies inside its ring.
func (e *fuzzEnv) check(t testing.TB) {
	for d, a := range e.att {
		for i, k := range a.rings {
			for _, v := range []uint32{k.HwCur, k.HwTail, k.RHead, k.RCur, k.RTail} {
				if v >= k.N {
					t.Fatalf("device %d ring %d: host index %d outside %d slots (%+v)", d, i, v, k.N, *k)
				}
			}
			tail, cur := ApplRead(&e.csb[d].Ktoa[i])
			if tail >= k.N || cur >= k.N {
				t.Fatalf("device %d ring %d: published hwcur/hwtail %d/%d outside %d slots", d, i, cur, tail, k.N)
			}
		}
	}
}

func TestUntrustedGuest(t *testing.T) {
	const n = 8
	cases := []struct {
		name   string
		attack func(e *fuzzEnv)
		ring   int // which ring of device 0 must have been reset
	}{
		{"TX head out of range", func(e *fuzzEnv) { ApplWrite(&e.csb[0].Atok[0], 100, 100) }, 0},
		{"TX head past tail", func(e *fuzzEnv) { ApplWrite(&e.csb[0].Atok[0], n-1, 0); ApplWrite(&e.csb[0].Atok[0], 0, 0) }, -1},
		{"TX cur behind head", func(e *fuzzEnv) { ApplWrite(&e.csb[0].Atok[0], 1, 3) }, 0},
		{"RX head beyond delivered", func(e *fuzzEnv) { ApplWrite(&e.csb[0].Atok[1], 4, 4) }, 1},
		{"reserved buffer", func(e *fuzzEnv) {
			e.port[0].If().TxRing(0).Slot(0).BufIdx = 1
			ApplWrite(&e.csb[0].Atok[0], 1, 1)
		}, 0},
		{"buffer past the pool", func(e *fuzzEnv) {
			e.port[0].If().TxRing(0).Slot(0).BufIdx = 1 << 30
			ApplWrite(&e.csb[0].Atok[0], 1, 1)
		}, 0},
		{"length past the buffer", func(e *fuzzEnv) {
			e.port[0].If().TxRing(0).Slot(0).Len = 4000
			ApplWrite(&e.csb[0].Atok[0], 1, 1)
		}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newFuzzEnv(t, n)
			c.attack(e)
			for range 3 { // the same garbage is counted once
				for i := range 2 {
					if _, err := e.att[0].ringWork(i); err != nil {
						t.Fatal(err)
					}
				}
			}
			e.check(t)
			st := e.att[0].Stats()
			for i := range 2 {
				want := uint64(0)
				if i == c.ring {
					want = 1
				}
				if st[i].Resets != want {
					t.Errorf("ring %d resets = %d, want %d", i, st[i].Resets, want)
				}
			}
			// The peer saw nothing.
			for i := range 2 {
				e.att[1].ringWork(i)
			}
			if tail, _ := ApplRead(&e.csb[1].Ktoa[1]); tail != 0 {
				t.Errorf("peer received %d slots from a bad sender", tail)
			}
		})
	}
}

// FuzzSyncLoop drives the host sync loop with arbitrary CSB and slot
// contents from a guest, interleaved with host passes. The host must never
// panic, never index outside a ring, and never publish an index outside one.
func FuzzSyncLoop(f *testing.F) {
	f.Add([]byte{0, 0, 3, 3, 2, 0, 0, 0, 2, 1, 1, 0})
	f.Add([]byte{0, 0, 200, 1, 2, 0, 0, 0})
	f.Add([]byte{1, 0, 0, 1, 0, 0, 5, 5, 2, 0, 0, 0, 2, 1, 1, 0, 0, 1, 3, 3, 2, 1, 1, 0})
	f.Add([]byte{4, 0, 1, 0, 0, 0, 7, 7, 2, 0, 0, 0, 3, 0, 0, 0, 2, 1, 1, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		const n = 8
		e := newFuzzEnv(t, n)
		for ; len(ops) >= 4; ops = ops[4:] {
			op, a, b, c := ops[0], ops[1], ops[2], ops[3]
			d := int(a & 1)
			ring := int(a>>1) & 1
			switch op % 5 {
			case 0: // the guest publishes any head and cur
				ApplWrite(&e.csb[d].Atok[ring], uint32(c)%(2*n), uint32(b)%(2*n))
			case 1: // the guest writes any slot
				var r netmap.Ring
				if ring == 0 {
					r = e.port[d].If().TxRing(0)
				} else {
					r = e.port[d].If().RxRing(0)
				}
				s := r.Slot(uint32(b) % n)
				switch c % 4 {
				case 0:
					s.BufIdx = uint32(c)
				case 1:
					s.BufIdx = uint32(c) << 24
				case 2:
					s.Len = uint16(c) << 5
				case 3:
					s.Flags = uint16(c)
				}
			case 2: // a host pass over one ring
				if _, err := e.att[d].ringWork(ring); err != nil {
					t.Fatal(err)
				}
				e.check(t)
			case 3: // the guest asks for interrupts or not
				e.csb[d].Atok[ring].SetApplNeedKick(b&1 == 1)
			case 4: // the guest writes the shared ring header too
				r := e.port[d].If().TxRing(0)
				r.SetHead(uint32(b))
				r.SetTail(uint32(c))
			}
		}
		for d := range 2 {
			for i := range 2 {
				if _, err := e.att[d].ringWork(i); err != nil {
					t.Fatal(err)
				}
			}
		}
		e.check(t)
	})
}

func TestFlatMemoryBounds(t *testing.T) {
	m := FlatMemory(make([]byte, 4096))
	for _, c := range []struct {
		gpa, size uint64
		ok        bool
	}{{0, 4096, true}, {4032, 64, true}, {4033, 64, false}, {1 << 63, 64, false}, {4096, 0, true}, {4097, 0, false}} {
		b, err := m.Slice(c.gpa, c.size)
		if (err == nil) != c.ok || (err == nil && uint64(len(b)) != c.size) {
			t.Errorf("Slice(%#x, %d) = %d bytes, %v", c.gpa, c.size, len(b), err)
		}
		if err == nil && cap(b) != len(b) {
			t.Errorf("Slice(%#x, %d) lets an append reach past the slice", c.gpa, c.size)
		}
	}
}
