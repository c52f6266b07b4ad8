package ptnetmap

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ptbhyve/ptbhyve/internal/event"
	"github.com/ptbhyve/ptbhyve/internal/seqframe"
	"github.com/ptbhyve/ptbhyve/internal/shm"
	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/netmap/pipe"
)

func newEvents(t testing.TB, n int) []*event.Event {
	evs, err := event.NewN(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, e := range evs {
			e.Close()
		}
	})
	return evs
}

// rig is two ptnet devices joined by a pipe, served by one host loop, each
// with a guest attached through its registers.
type rig struct {
	ram     FlatMemory
	loop    *Loop
	dev     [2]*Ptnet
	memdev  *Memdev
	guest   [2]*Guest
	irq     [2][]*event.Event
	csbBase [2]uint64
}

func newRig(t testing.TB, cfg pipe.Config) *rig {
	key := fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())
	m, err := pipe.Open(key, true, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := pipe.Open(key, false, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := shm.New("guest-ram", 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{ram: FlatMemory(mem.Bytes())}
	r.loop, err = NewLoop(LoopConfig{Spin: 20 * time.Microsecond, SafetyPoll: 50 * time.Millisecond, CPU: -1})
	if err != nil {
		t.Fatal(err)
	}
	r.loop.Start()
	r.memdev = NewMemdev(m.Region().Info())
	t.Cleanup(func() {
		for _, d := range r.dev {
			if d != nil {
				d.Reset()
			}
		}
		if err := r.loop.Stop(); err != nil {
			t.Errorf("loop ended with %v", err)
		}
		m.Close()
		s.Close()
		mem.Close()
	})
	for i, p := range []netmap.Port{m, s} {
		n := len(p.TxRings()) + len(p.RxRings())
		r.irq[i] = newEvents(t, n)
		r.dev[i], err = NewPtnet(PtnetConfig{Port: p, MAC: [6]byte{2, 0, 0, 0, 0, byte(i)}, Mem: r.ram,
			Irq: EventInterrupts(r.irq[i]), Kicks: newEvents(t, n), Loop: r.loop})
		if err != nil {
			t.Fatal(err)
		}
		r.csbBase[i] = uint64(i+1) * 8192 // GPA 0 means "no CSB"
		r.attach(t, i)
	}
	return r
}

// attach plays the guest driver: probe, CREATE, then map the rings.
func (r *rig) attach(t testing.TB, i int) {
	info, err := Probe(r.dev[i], r.memdev)
	if err != nil {
		t.Fatal(err)
	}
	gh, hg := r.csbBase[i], r.csbBase[i]+4096
	if err := Create(r.dev[i], gh, hg); err != nil {
		t.Fatal(err)
	}
	n := uint64(info.NumTx + info.NumRx)
	csb := CSBFromBytes(r.ram[gh:gh+n*64], r.ram[hg:hg+n*64], int(n))
	r.guest[i], err = NewGuest(GuestConfig{Mem: r.dev[i].cfg.Port.Region().Mem(), Pools: info.Pools, NifpOfs: info.NifpOfs,
		NumTx: info.NumTx, NumRx: info.NumRx, CSB: csb, Kick: RegKicker{r.dev[i]}})
	if err != nil {
		t.Fatal(err)
	}
}

// send queues frames seq.. on g's TX ring 0 and syncs; when the ring is full
// it sleeps on the TX interrupt (unless irq is nil). It returns the next sequence number.
func send(t testing.TB, g *Guest, irq *event.Event, seq, end uint64) uint64 {
	r := g.Tx[0]
	seq = seqframe.Fill(r.Ring, g.Region, nil, seq, end)
	r.Sync(0)
	if irq != nil && r.Ring.Space() == 0 && r.WantsInterrupt() {
		irq.Wait(100)
	}
	return seq
}

// recv drains g's RX ring 0 checking the sequence, sleeping on the RX
// interrupt when empty.
func recv(t testing.TB, g *Guest, irq *event.Event, seq *uint64) {
	r := g.Rx[0]
	r.Sync(0)
	if err := seqframe.Check(r.Ring, g.Region, seq); err != nil {
		t.Fatal(err)
	}
	if irq != nil && r.Sync(0) && r.Ring.Empty() && r.WantsInterrupt() {
		irq.Wait(100)
	}
}

// Frames flow both ways at once between two guests through their devices,
// the pipe and one host loop, with every frame checked in order, and the
// guests sleeping on interrupts whenever they must wait.
func TestTwoGuestsBothWays(t *testing.T) {
	const total = 100000
	r := newRig(t, pipe.Config{Slots: 256})
	var wg sync.WaitGroup
	for dir := range 2 {
		src, dst := dir, 1-dir
		wg.Add(2)
		go func() {
			defer wg.Done()
			for seq := uint64(0); seq < total; {
				seq = send(t, r.guest[src], r.irq[src][0], seq, total)
			}
		}()
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(60 * time.Second)
			var seq uint64
			for seq < total && time.Now().Before(deadline) {
				recv(t, r.guest[dst], r.irq[dst][1], &seq)
			}
			if seq != total {
				t.Errorf("guest %d received %d of %d frames", dst, seq, total)
			}
		}()
	}
	wg.Wait()
	for i, d := range r.dev {
		st := d.Stats()
		if st[0].Packets != total || st[1].Packets != total || st[0].Bytes != 60*total || st[1].Bytes != 60*total {
			t.Errorf("device %d counted tx %d rx %d packets, %d and %d bytes; want %d each, of 60 bytes", i, st[0].Packets, st[1].Packets, st[0].Bytes, st[1].Bytes, total)
		}
		if st[0].Resets+st[1].Resets != 0 {
			t.Errorf("device %d reset rings on valid traffic: %+v", i, st)
		}
	}
}

func TestRegisters(t *testing.T) {
	r := newRig(t, pipe.Config{Rings: 2, Slots: 128})
	d := r.dev[0]
	info := d.cfg.Port.Region().Info()
	for _, c := range []struct {
		regs Registers
		off  uint32
		want uint32
	}{
		{d, RegMacHi, 0x0200},
		{d, RegMacLo, 0x00000000},
		{d, RegNumTxRings, 2},
		{d, RegNumRxRings, 2},
		{d, RegNumTxSlots, 128},
		{d, RegNumRxSlots, 128},
		{d, RegHostMemID, uint32(info.MemID)},
		{d, RegNifpOfs, uint32(d.cfg.Port.If().Offset())},
		{d, RegVnetHdrLen, 0},
		{d, RegPtnetEnd, 0},
		{d, 100, 0},
		{r.memdev, RegMemsizeLo, uint32(info.MemSize)},
		{r.memdev, RegMemsizeHi, uint32(info.MemSize >> 32)},
		{r.memdev, RegMemID, uint32(info.MemID)},
		{r.memdev, RegBufPoolOfs, uint32(info.BufPoolOffset)},
		{r.memdev, RegBufPoolObjNum, info.BufPoolObjTotal},
		{r.memdev, RegBufPoolObjSz, 2048},
		{r.memdev, RegRingPoolObjNum, info.RingPoolObjTotal},
		{r.memdev, RegIfPoolObjSz, info.IfPoolObjSize},
		{r.memdev, 12, 0},
	} {
		if got := c.regs.Read(c.off); got != c.want {
			t.Errorf("register %d = %#x, want %#x", c.off, got, c.want)
		}
	}
	// The register window is decoded with & 0xff.
	if got, want := d.Read(0x100+RegNumTxRings), uint32(2); got != want {
		t.Errorf("aliased NUM_TX_RINGS = %d, want %d", got, want)
	}
	// Writes to read-only registers are ignored.
	d.Write(RegNumTxRings, 9)
	r.memdev.Write(RegMemID, 9)
	if d.Read(RegNumTxRings) != 2 || r.memdev.Read(RegMemID) != uint32(info.MemID) {
		t.Error("a read-only register changed")
	}
	// The feature we cannot offer is refused.
	d.Write(RegPtfeat, FeatureVnetHdr)
	if got := d.Read(RegPtfeat); got != 0 {
		t.Errorf("PTFEAT acked %#x without a VNET_HDR backend", got)
	}
}

func TestPtctl(t *testing.T) {
	r := newRig(t, pipe.Config{})
	d := r.dev[0]
	if !d.Running() {
		t.Fatal("device not running after CREATE")
	}
	cases := []struct {
		name    string
		do      func()
		status  uint32
		running bool
	}{
		{"unknown command", func() { d.Write(RegPtctl, 7) }, StatusEINVL, true},
		{"delete", func() { d.Write(RegPtctl, PtctlDelete) }, StatusOK, false},
		{"create again", func() { d.Write(RegPtctl, PtctlCreate) }, StatusOK, true},
		{"CSB address write deletes", func() { d.Write(RegCSBGHBAH, 0); d.Write(RegCSBGHBAL, 0) }, StatusOK, false},
		{"create without CSB", func() { d.Write(RegPtctl, PtctlCreate) }, StatusENXIO, false},
		{"misaligned CSB", func() { d.Write(RegCSBGHBAL, 32); d.Write(RegPtctl, PtctlCreate) }, StatusEINVL, false},
		{"CSB outside RAM", func() { d.Write(RegCSBGHBAH, 1); d.Write(RegCSBGHBAL, 0); d.Write(RegPtctl, PtctlCreate) }, StatusEFAUL, false},
		{"CSB at the end of RAM", func() {
			d.Write(RegCSBGHBAH, 0)
			d.Write(RegCSBGHBAL, uint32(len(r.ram)-64))
			d.Write(RegPtctl, PtctlCreate)
		}, StatusEFAUL, false},
		{"reset", func() { d.Reset() }, StatusOK, false},
	}
	for _, c := range cases {
		c.do()
		if got := d.Read(RegPtctl); got != c.status {
			t.Errorf("%s: PTCTL status %d, want %d", c.name, got, c.status)
		}
		if d.Running() != c.running {
			t.Errorf("%s: running = %v, want %v", c.name, d.Running(), c.running)
		}
	}
	if d.Read(RegCSBGHBAL) != 0 || d.Read(RegCSBHGBAL) != 0 {
		t.Error("reset kept the CSB addresses")
	}
}

// A guest that does DELETE and CREATE again (ifconfig down/up) resumes
// from where the rings were, with no frame lost or repeated.
func TestRecreateKeepsRingState(t *testing.T) {
	r := newRig(t, pipe.Config{Slots: 64})
	var seq, got uint64
	for round := range 3 {
		for end := seq + 1000; seq < end; {
			seq = send(t, r.guest[0], nil, seq, end) // one goroutine: never sleep
			recv(t, r.guest[1], nil, &got)
		}
		for deadline := time.Now().Add(10 * time.Second); got < seq && time.Now().Before(deadline); {
			recv(t, r.guest[1], r.irq[1][1], &got)
		}
		if got != seq {
			t.Fatalf("round %d: received %d of %d", round, got, seq)
		}
		// A guest publishes what it released before it brings the device
		// down: CREATE restarts from what the host was told.
		r.guest[1].Rx[0].Sync(0)
		for i := range 2 {
			if err := Delete(r.dev[i]); err != nil {
				t.Fatal(err)
			}
			r.attach(t, i)
		}
	}
}
