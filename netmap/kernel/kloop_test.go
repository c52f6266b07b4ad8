//go:build linux

package kernel

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
)

// guestPort is one port served by the kernel's sync kloop, seen from the
// application ("guest") side: its shared rings and its CSB (entry 0 TX
// ring 0, entry 1 RX ring 0).
type guestPort struct {
	name   string
	f      *File
	tx, rx netmap.Ring
	region *netmap.Region
	csb    ptnetmap.CSB
	done   <-chan error
	// The guest's own view of its rings.
	txHead, rxHead uint32
}

// kloopPort registers name ring 0 NR_EXCLUSIVE, enables CSB mode and
// starts the kloop in sleep mode.
func kloopPort(fx *fixture, name string, sleepUS uint32) *guestPort {
	fx.t.Helper()
	f := fx.open()
	res := fx.register(f, name, netmap.RegOneNIC, netmap.FlagExclusive)
	mem, err := f.Mmap()
	if err != nil {
		fx.t.Fatal(err)
	}
	fx.t.Cleanup(func() { _ = f.Munmap(mem) })
	nif, err := netmap.OpenIf(mem, res.Offset)
	if err != nil {
		fx.t.Fatal(err)
	}
	pi, err := f.PoolsInfo(name, 0)
	if err != nil {
		fx.t.Fatal(err)
	}
	region, err := netmap.MapRegion(mem, netmap.PoolsInfo(pi))
	if err != nil {
		fx.t.Fatal(err)
	}
	atok, ktoa := fx.csb()
	if err := f.CSBEnable(addr(atok), addr(ktoa)); err != nil {
		fx.t.Fatal(err)
	}
	g := &guestPort{name: name, f: f, tx: nif.TxRing(0), rx: nif.RxRing(0), region: region, csb: ptnetmap.CSBFromBytes(atok, ktoa, 2)}
	g.start(fx, sleepUS)
	return g
}

func (g *guestPort) start(fx *fixture, sleepUS uint32) {
	done, _ := startKloop(fx, g.f, sleepUS, 0, nil)
	g.done = done
	fx.t.Cleanup(func() { g.stop(fx.t) })
}

// stop stops the kloop (once) and checks SyncKloopStart returned nil.
func (g *guestPort) stop(t *testing.T) {
	t.Helper()
	if g.done == nil {
		return
	}
	if err := g.f.SyncKloopStop(); err != nil {
		t.Error(err)
	}
	if err := waitDone(t, g.done); err != nil {
		t.Error(err)
	}
	g.done = nil
}

// frame is the payload of frame seq from direction dir.
func frame(dir byte, seq uint64) []byte {
	n := 60 + int(seq%200)
	b := make([]byte, n)
	binary.LittleEndian.PutUint64(b, seq)
	for i := 8; i < n; i++ {
		b[i] = dir ^ byte(seq) ^ byte(i)
	}
	return b
}

// send puts frames seq.. into the TX ring as room allows (at most max)
// and publishes them; it returns how many went.
func (g *guestPort) send(dir byte, seq uint64, max int) int {
	a, k := &g.csb.Atok[0], &g.csb.Ktoa[0]
	hwtail, _ := ptnetmap.ApplRead(k)
	n := 0
	for g.txHead != hwtail && n < max {
		s := g.tx.Slot(g.txHead)
		p := frame(dir, seq+uint64(n))
		copy(g.region.Buf(s.BufIdx), p)
		s.Len = uint16(len(p))
		g.txHead = g.tx.Next(g.txHead)
		n++
	}
	if n > 0 {
		ptnetmap.ApplWrite(a, g.txHead, g.txHead)
	}
	return n
}

// recv checks up to max received frames against seq.. and releases them.
func (g *guestPort) recv(t *testing.T, dir byte, seq uint64, max int) (int, bool) {
	a, k := &g.csb.Atok[1], &g.csb.Ktoa[1]
	hwtail, _ := ptnetmap.ApplRead(k)
	n := 0
	full := g.rx.Next(hwtail) == g.rxHead
	for g.rxHead != hwtail && n < max {
		s := g.rx.Slot(g.rxHead)
		want := frame(dir, seq+uint64(n))
		if got := g.region.Buf(s.BufIdx)[:s.Len]; string(got) != string(want) {
			t.Errorf("%s: frame %d: %d bytes %x..., want %d bytes %x...", g.name, seq+uint64(n), len(got), got[:min(12, len(got))], len(want), want[:12])
			return n, full
		}
		g.rxHead = g.rx.Next(g.rxHead)
		n++
	}
	if n > 0 {
		ptnetmap.ApplWrite(a, g.rxHead, g.rxHead)
	}
	return n, full
}

// TestKloopTraffic moves frames both ways between two wired ports, each
// served by its own kloop in sleep mode, with a guest that reads slowly
// enough for the wire's flow control to hold frames back.
func TestKloopTraffic(t *testing.T) {
	for _, tc := range []struct {
		name     string
		frames   uint64
		burst    int // frames sent per round, at most
		drain    int // frames received per round, at most
		sleepUS  uint32
		wantFull bool
	}{
		{name: "fast reader", frames: 10000, burst: 1000, drain: 1000, sleepUS: 20},
		{name: "slow reader, flow control", frames: 10000, burst: 1000, drain: 37, sleepUS: 20, wantFull: true},
		{name: "no sleep", frames: 3000, burst: 7, drain: 1000, sleepUS: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			a := kloopPort(fx, "ix2", tc.sleepUS)
			b := kloopPort(fx, "ix3", tc.sleepUS)
			var sent, got [2]uint64
			var full bool
			deadline := time.Now().Add(30 * time.Second)
			for got[0] < tc.frames || got[1] < tc.frames {
				if time.Now().After(deadline) {
					t.Fatalf("stalled: sent %v received %v", sent, got)
				}
				progress := false
				for d, pair := range [2][2]*guestPort{{a, b}, {b, a}} {
					if sent[d] < tc.frames {
						n := pair[0].send(byte(d), sent[d], int(min(uint64(tc.burst), tc.frames-sent[d])))
						sent[d] += uint64(n)
						progress = progress || n > 0
					}
					n, f := pair[1].recv(t, byte(d), got[d], tc.drain)
					if t.Failed() {
						t.FailNow()
					}
					got[d] += uint64(n)
					full = full || f
					progress = progress || n > 0
				}
				if !progress {
					time.Sleep(10 * time.Microsecond)
				}
			}
			if tc.wantFull && !full {
				t.Error("the RX ring never filled: flow control not exercised")
			}
			for _, g := range []*guestPort{a, b} {
				if s, d := fx.k.wireStats(g.name); s != tc.frames || d != 0 {
					t.Errorf("%s: %d sent, %d dropped", g.name, s, d)
				}
				// Sleep mode never asks for doorbells.
				for e := range 2 {
					if g.csb.Ktoa[e].KernNeedKick() {
						t.Errorf("%s: kern_need_kick set on entry %d", g.name, e)
					}
				}
				// No finalize in CSB mode: the shared tails are the
				// initial ones, and nothing was reinitialised.
				for _, tr := range []struct{ t, tail int }{{tTX, 255}, {tRX, 0}} {
					kr, _, _, tail := fx.k.kring(g.name, tr.t, 0)
					if tail != uint32(tr.tail) || kr.resets != 0 {
						t.Errorf("%s: shared tail %d (want %d untouched), %d resets", g.name, tail, tr.tail, kr.resets)
					}
				}
			}
		})
	}
}

// TestKloopBadHead publishes a bad head in the CSB (and in the shared
// header, as a guest's own ring would have it): netmap_ring_reinit runs,
// the guest re-syncs from ktoa and traffic resumes.
func TestKloopBadHead(t *testing.T) {
	const n = 256
	for _, tc := range []struct {
		name      string
		t         int
		head      uint32
		rewritten bool // the header's indexes are reset from the kring
	}{
		{name: "tx head past the ring", t: tTX, head: n + 5, rewritten: true},
		{name: "rx head past the ring", t: tRX, head: n + 7, rewritten: true},
		// In range but beyond tail: netmap_ring_reinit takes the
		// header's values into the kring and rewrites nothing.
		{name: "rx head beyond tail", t: tRX, head: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			a := kloopPort(fx, "ix2", 20)
			b := kloopPort(fx, "ix3", 20)
			g, e, ring := a, 0, a.tx
			if tc.t == tRX {
				g, e, ring = b, 1, b.rx
			}
			kr0, _, _, _ := fx.k.kring(g.name, tc.t, 0)
			ring.SetHead(tc.head)
			ring.SetCur(tc.head)
			ptnetmap.ApplWrite(&g.csb.Atok[e], tc.head, tc.head)
			var kr fakeKring
			var head, tail uint32
			for deadline := time.Now().Add(10 * time.Second); ; {
				kr, head, _, tail = fx.k.kring(g.name, tc.t, 0)
				if kr.resets > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the ring was never reinitialised")
				}
				time.Sleep(100 * time.Microsecond)
			}
			if rewritten := head != tc.head; rewritten != tc.rewritten {
				t.Errorf("header head %d after reinit (bad head %d): rewritten %v, want %v", head, tc.head, rewritten, tc.rewritten)
			}
			if tc.rewritten && (head != kr.hwcur || tail != kr.hwtail) {
				t.Errorf("header head %d tail %d, kring hwcur %d hwtail %d", head, tail, kr.hwcur, kr.hwtail)
			}
			if kr.hwcur != kr0.hwcur || kr.hwtail != kr0.hwtail {
				t.Errorf("kring moved: %+v -> %+v", kr0, kr)
			}
			if hwtail, hwcur := ptnetmap.ApplRead(&g.csb.Ktoa[e]); hwcur != kr.hwcur || hwtail != kr.hwtail {
				t.Errorf("ktoa hwcur %d hwtail %d, kring %d %d", hwcur, hwtail, kr.hwcur, kr.hwtail)
			}
			// Re-sync from ktoa, as the guest's sync would.
			_, hwcur := ptnetmap.ApplRead(&g.csb.Ktoa[e])
			ring.SetHead(hwcur)
			ring.SetCur(hwcur)
			ptnetmap.ApplWrite(&g.csb.Atok[e], hwcur, hwcur)
			if tc.t == tTX {
				a.txHead = hwcur
			} else {
				b.rxHead = hwcur
			}
			var sent, got uint64
			for deadline := time.Now().Add(10 * time.Second); got < 500; {
				if time.Now().After(deadline) {
					t.Fatalf("traffic did not resume: sent %d received %d", sent, got)
				}
				sent += uint64(a.send(0, sent, int(500-sent)))
				nr, _ := b.recv(t, 0, got, 1000)
				if t.Failed() {
					t.FailNow()
				}
				got += uint64(nr)
				time.Sleep(10 * time.Microsecond)
			}
		})
	}
}

// TestKloopStopRestart checks sleep mode's kern_need_kick, that STOP cuts a
// long sleep short, and that CSB mode survives STOP: a second START runs,
// and CSB_ENABLE in between re-initialises the CSB from the kring state.
func TestKloopStopRestart(t *testing.T) {
	fx := newFixture(t)
	a := kloopPort(fx, "ix2", 1_000_000) // one pass a second
	b := kloopPort(fx, "ix3", 50)
	waitPasses := func(g *guestPort, n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); fx.k.priv(g.f.Fd()).passes < n; {
			if time.Now().After(deadline) {
				t.Fatalf("%s: fewer than %d passes", g.name, n)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	waitPasses(a, 1)
	waitPasses(b, 2)
	for _, g := range []*guestPort{a, b} {
		for e := range 2 {
			if g.csb.Ktoa[e].KernNeedKick() {
				t.Errorf("%s entry %d: kern_need_kick 1 in sleep mode", g.name, e)
			}
		}
	}
	// Move a few frames so the rings are not in their initial state.
	for sent, got := uint64(0), uint64(0); got < 10; time.Sleep(50 * time.Microsecond) {
		sent += uint64(b.send(1, sent, int(10-sent)))
		n, _ := a.recv(t, 1, got, 10)
		got += uint64(n)
	}
	start := time.Now()
	a.stop(t)
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("STOP took %v against a 1 s sleep", d)
	}
	wantErr(t, "TXSYNC after STOP", a.f.TxSync(), 0, "CSB mode")

	// CSB_ENABLE again: every entry from the kring.
	atok, ktoa := fx.csb()
	if err := a.f.CSBEnable(addr(atok), addr(ktoa)); err != nil {
		t.Fatal(err)
	}
	c := ptnetmap.CSBFromBytes(atok, ktoa, 2)
	for e, tr := range []int{tTX, tRX} {
		kr, _, _, _ := fx.k.kring("ix2", tr, 0)
		head, cur, flags := ptnetmap.KernRead(&c.Atok[e])
		hwtail, hwcur := ptnetmap.ApplRead(&c.Ktoa[e])
		if head != kr.rhead || cur != kr.rcur || flags != 1 || !c.Atok[e].ApplNeedKick() ||
			hwcur != kr.hwcur || hwtail != kr.hwtail || !c.Ktoa[e].KernNeedKick() {
			t.Errorf("entry %d: atok %d %d %d ktoa %d %d, kring %+v", e, head, cur, flags, hwcur, hwtail, kr)
		}
	}
	if a.rxHead == 0 {
		t.Error("the rings never moved")
	}
	a.csb = c
	a.start(fx, 50)
	waitPasses(a, 2)
	if c.Ktoa[0].KernNeedKick() || c.Ktoa[1].KernNeedKick() {
		t.Error("kern_need_kick left set by the second loop")
	}
	// And it serves the rings.
	for sent, got, deadline := uint64(0), uint64(0), time.Now().Add(10*time.Second); got < 100; time.Sleep(50 * time.Microsecond) {
		if time.Now().After(deadline) {
			t.Fatalf("second loop: sent %d received %d", sent, got)
		}
		sent += uint64(a.send(0, sent, int(100-sent)))
		n, _ := b.recv(t, 0, got, 100)
		got += uint64(n)
	}
}
