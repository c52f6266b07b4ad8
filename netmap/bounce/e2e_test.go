package bounce

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ptbhyve/ptbhyve/internal/event"
	"github.com/ptbhyve/ptbhyve/netmap/pipe"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
)

// A guest on a ptnet device whose port is bounce(pipe A), served by a host
// ptnetmap.Loop through its CSB, exchanges frames both ways with an
// application on pipe B: the loop serves the copying port like any other,
// sleeping on the inner port's waker, with no frame lost and no ring reset.
func TestLoopEndToEnd(t *testing.T) {
	const total = 20000
	mem := make([]byte, 4<<20) // the VM's device memory, where the region goes
	a, b := openPipe(t, pipe.Config{Slots: 128})
	p, err := New(a, Config{Mem: mem, Slots: 256})
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	ram := make(ptnetmap.FlatMemory, 1<<16)
	loop, err := ptnetmap.NewLoop(ptnetmap.LoopConfig{Spin: 20 * time.Microsecond, SafetyPoll: 50 * time.Millisecond, CPU: -1})
	if err != nil {
		t.Fatal(err)
	}
	loop.Start()
	evs := func(n int) []*event.Event {
		e, err := event.NewN(n)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			for _, x := range e {
				x.Close()
			}
		})
		return e
	}
	irq, kicks := evs(2), evs(2)
	dev, err := ptnetmap.NewPtnet(ptnetmap.PtnetConfig{Port: p, MAC: [6]byte{2, 0, 0, 0, 0, 1}, Mem: ram,
		Irq: ptnetmap.EventInterrupts(irq), Kicks: kicks, Loop: loop})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dev.Reset()
		if err := loop.Stop(); err != nil {
			t.Errorf("loop ended with %v", err)
		}
		p.Close()
	})
	info, err := ptnetmap.Probe(dev, ptnetmap.NewMemdev(p.Region().Info()))
	if err != nil {
		t.Fatal(err)
	}
	const gh, hg = 8192, 8192 + 4096
	if err := ptnetmap.Create(dev, gh, hg); err != nil {
		t.Fatal(err)
	}
	csb := ptnetmap.CSBFromBytes(ram[gh:gh+2*64], ram[hg:hg+2*64], 2)
	g, err := ptnetmap.NewGuest(ptnetmap.GuestConfig{Mem: mem[:info.Pools.MemSize], Pools: info.Pools, NifpOfs: info.NifpOfs,
		NumTx: info.NumTx, NumRx: info.NumRx, CSB: csb, Kick: ptnetmap.RegKicker{Regs: dev}})
	if err != nil {
		t.Fatal(err)
	}
	gbs := g.Region.BufSize()

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	deadline := time.Now().Add(60 * time.Second)
	wg.Add(4)
	go func() { // guest TX
		defer wg.Done()
		r := g.Tx[0]
		ring := r.Ring
		for seq := uint64(0); seq < total && time.Now().Before(deadline); {
			h := ring.Head()
			for ; seq < total && h != ring.Tail(); h = ring.Next(h) {
				s := ring.Slot(h)
				l := frameLen(seq, gbs)
				fill(g.Region.Buf(s.BufIdx)[:l], seq)
				s.Len, s.Flags = uint16(l), 0
				seq++
			}
			ring.Advance(h)
			r.Sync(0)
			if ring.Space() == 0 && r.WantsInterrupt() {
				irq[0].Wait(100)
			}
		}
	}()
	go func() { // guest RX
		defer wg.Done()
		r := g.Rx[0]
		ring := r.Ring
		var seq uint64
		for seq < total && time.Now().Before(deadline) {
			r.Sync(0)
			h := ring.Head()
			for ; h != ring.Tail(); h = ring.Next(h) {
				s := ring.Slot(h)
				buf := g.Region.Buf(s.BufIdx)
				if v := binary.LittleEndian.Uint64(buf); v != seq || uint32(s.Len) != frameLen(seq, b.Region().BufSize()) {
					errs <- fmt.Errorf("guest: expected frame %d, got %d (len %d)", seq, v, s.Len)
					return
				}
				seq++
			}
			ring.Advance(h)
			if h == ring.Tail() && r.Sync(0) && ring.Empty() && r.WantsInterrupt() {
				irq[1].Wait(100)
			}
		}
		if seq != total {
			errs <- fmt.Errorf("guest received %d of %d frames", seq, total)
		}
	}()
	go func() { // application on B, TX
		defer wg.Done()
		s := &sender{p: b, maxLen: b.Region().BufSize()}
		for (s.seq < total || b.If().TxRing(0).TxPending()) && time.Now().Before(deadline) {
			n, err := s.send(total)
			if err != nil {
				errs <- err
				return
			}
			if n == 0 {
				runtime.Gosched()
			}
		}
	}()
	go func() { // application on B, RX
		defer wg.Done()
		rc := &receiver{p: b, maxLen: gbs}
		for rc.seq < total && time.Now().Before(deadline) {
			n, err := rc.recv()
			if err != nil {
				errs <- err
				return
			}
			if n == 0 {
				runtime.Gosched()
			}
		}
		if rc.seq != total {
			errs <- fmt.Errorf("application on B received %d of %d frames", rc.seq, total)
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := dev.Stats()
	if st[0].Packets != total || st[1].Packets != total || st[0].Resets+st[1].Resets != 0 {
		t.Errorf("device stats %+v; want %d TX and %d RX packets and no reset", st, total, total)
	}
	if cs := p.Stats(); cs.TxPackets != total || cs.RxPackets != total {
		t.Errorf("copy stats %+v; want %d TX and %d RX", cs, total, total)
	}
	if _, ok := p.BackendStats().(BackendStatsView); !ok {
		t.Error("BackendStats is not a BackendStatsView")
	}
}
