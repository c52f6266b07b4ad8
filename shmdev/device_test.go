package shmdev

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ptbhyve/ptbhyve/internal/event"
	"github.com/ptbhyve/ptbhyve/internal/seqframe"
	"github.com/ptbhyve/ptbhyve/internal/shm"
	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/netmap/pipe"
	"github.com/ptbhyve/ptbhyve/netmap/vswitch"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
)

// vm is one VM's device as both ends see it: the host Device and the
// guest driver's Guest, joined by doorbell and interrupt eventfds as the
// ivshmem server joins them.
type vm struct {
	dev   *Device
	guest *Guest
	kicks []*event.Event // guest -> host
	irqs  []*event.Event // host -> guest
	g     *ptnetmap.Guest
}

type rig struct {
	mem    *shm.Mem
	layout Layout
	loop   *ptnetmap.Loop
	vms    []*vm
}

func newRig(t *testing.T, g Geometry) *rig {
	t.Helper()
	l, err := LayoutFor(g)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := shm.New("shmdev-test", int(l.Size))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	if err := InitMemory(mem.Bytes(), l); err != nil {
		t.Fatal(err)
	}
	loop, err := ptnetmap.NewLoop(ptnetmap.LoopConfig{CPU: -1})
	if err != nil {
		t.Fatal(err)
	}
	loop.Start()
	r := &rig{mem: mem, layout: l, loop: loop}
	for i := range g.Devices {
		v := &vm{}
		if v.kicks, err = event.NewN(Vectors(g.Rings)); err != nil {
			t.Fatal(err)
		}
		if v.irqs, err = event.NewN(Vectors(g.Rings)); err != nil {
			t.Fatal(err)
		}
		v.dev, err = New(Config{Name: "vm" + string(rune('0'+i)), Mem: mem.Bytes(), Layout: l, Index: i,
			MAC: [6]byte{2, 0, 0, 0, 0, byte(i + 1)}, Kicks: v.kicks, Loop: loop})
		if err != nil {
			t.Fatal(err)
		}
		v.dev.SetInterrupts(v.irqs)
		ctl := v.irqs[len(v.irqs)-1]
		kicks := v.kicks
		v.guest, err = OpenGuest(mem.Bytes(), uint32(i+1), func(vec int) { kicks[vec].Signal() },
			func(d time.Duration) { ctl.Wait(int(d.Milliseconds()) + 1) })
		if err != nil {
			t.Fatal(err)
		}
		r.vms = append(r.vms, v)
	}
	t.Cleanup(func() {
		for _, v := range r.vms {
			if p := v.dev.Close(); p != nil {
				p.Close()
			}
			for _, e := range append(v.kicks, v.irqs...) {
				e.Close()
			}
		}
		if err := loop.Stop(); err != nil {
			t.Error(err)
		}
	})
	return r
}

// attachPipe builds a pipe in v's memory, attaches one end to v and
// returns the other, closed when the test ends.
func (v *vm) attachPipe(t *testing.T, key string, slots uint32) *pipe.Endpoint {
	t.Helper()
	p, err := pipe.Open(key, true, pipe.Config{Slots: slots, Mem: v.dev.Region()})
	if err != nil {
		t.Fatal(err)
	}
	peer, err := pipe.Open(key, false, pipe.Config{})
	if err != nil {
		p.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	if err := v.dev.Attach(p); err != nil {
		p.Close()
		t.Fatal(err)
	}
	return peer
}

// up plays the guest driver at link up: probe the snapshot, CREATE through
// the mailbox, map the rings.
func (v *vm) up(t *testing.T) {
	t.Helper()
	if up, _ := v.guest.Link(); !up {
		t.Fatal("link is down")
	}
	info, err := ptnetmap.Probe(v.guest, v.guest.Memdev())
	if err != nil {
		t.Fatal(err)
	}
	csb, atok, ktoa, err := v.guest.CSB(info.NumTx + info.NumRx)
	if err != nil {
		t.Fatal(err)
	}
	if err := ptnetmap.Create(v.guest, atok, ktoa); err != nil {
		t.Fatal(err)
	}
	if err := v.guest.Err(); err != nil {
		t.Fatal(err)
	}
	v.g, err = ptnetmap.NewGuest(ptnetmap.GuestConfig{Mem: v.guest.Region(), Pools: info.Pools, NifpOfs: info.NifpOfs,
		NumTx: info.NumTx, NumRx: info.NumRx, CSB: csb, Kick: v.guest})
	if err != nil {
		t.Fatal(err)
	}
}

// send queues up to n numbered frames and syncs; it returns how many went.
func (v *vm) send(seq uint64, n int) int {
	r := v.g.Tx[0]
	k := seqframe.Fill(r.Ring, v.g.Region, nil, seq, seq+uint64(n)) - seq
	r.Sync(0)
	return int(k)
}

// recv drains RX ring 0, checking the sequence.
func (v *vm) recv(t *testing.T, seq *uint64) {
	r := v.g.Rx[0]
	r.Sync(0)
	if err := seqframe.Check(r.Ring, v.g.Region, seq); err != nil {
		t.Fatal(err)
	}
}

// transfer moves n frames from a to b, checked in order.
func transfer(t *testing.T, a, b *vm, n uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var sent, got uint64
	for got < n {
		if time.Now().After(deadline) {
			t.Fatalf("stalled after %d of %d frames (%d sent)", got, n, sent)
		}
		if sent < n {
			sent += uint64(a.send(sent, int(min(n-sent, 64))))
		}
		b.recv(t, &got)
	}
}

func TestLayout(t *testing.T) {
	for _, g := range []Geometry{{1, 1, 1024, 2048}, {2, 1, 1024, 2048}, {1, 4, 256, 4096}, {2, 16, 4096, 2048}} {
		l, err := LayoutFor(g)
		if err != nil {
			t.Fatal(err)
		}
		if l.Size&(l.Size-1) != 0 || l.RegionOffset%PageSize != 0 || l.RegionOffset+l.RegionSize > l.Size ||
			l.RegionOffset < DeviceOffset(g.Devices) {
			t.Errorf("%+v: bad layout %+v", g, l)
		}
		// Every port a backend would build for this geometry must fit.
		info, _ := netmap.Layout(netmap.ParamsFor(g.Devices, g.Rings, g.Rings, g.Slots, g.Slots, g.BufSize, 0))
		if info.MemSize > l.RegionSize {
			t.Errorf("%+v: region %d < %d", g, l.RegionSize, info.MemSize)
		}
	}
	for _, g := range []Geometry{{0, 1, 1024, 2048}, {3, 1, 1024, 2048}, {1, 0, 1024, 2048}, {1, 17, 1024, 2048}} {
		if _, err := LayoutFor(g); err == nil {
			t.Errorf("%+v: no error", g)
		}
	}
}

// Two VMs sharing one memory, joined by a zero-copy pipe built in it: the
// trusted path. Frames flow both ways; then one end detaches (link down,
// mailbox says ENOLINK) and a new pipe is attached (link up again, new
// generation) and traffic resumes.
func TestPipeBetweenTwoVMs(t *testing.T) {
	r := newRig(t, Geometry{Devices: 2, Rings: 1, Slots: 256, BufSize: 2048})
	a, b := r.vms[0], r.vms[1]
	if up, _ := a.guest.Link(); up {
		t.Fatal("link up before any attach")
	}
	if err := a.guest.Post(ptnetmap.RegPtctl, ptnetmap.PtctlCreate); !errors.Is(err, syscall.Errno(ResultENOLINK)) {
		t.Fatalf("CREATE with no port: %v, want ENOLINK", err)
	}
	attach := func(key string) {
		t.Helper()
		region := a.dev.Region()
		pa, err := pipe.Open(key, true, pipe.Config{Slots: 256, Mem: region})
		if err != nil {
			t.Fatal(err)
		}
		pb, err := pipe.Open(key, false, pipe.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.dev.Attach(pa); err != nil {
			t.Fatal(err)
		}
		if err := b.dev.Attach(pb); err != nil {
			t.Fatal(err)
		}
	}
	attach("shmdev-1")
	_, gen := a.guest.Link()
	a.up(t)
	b.up(t)
	transfer(t, a, b, 20000)
	transfer(t, b, a, 20000)

	for _, v := range []*vm{a, b} {
		if p := v.dev.Detach(); p == nil {
			t.Fatal("Detach returned no port")
		} else {
			p.Close()
		}
	}
	if up, g := a.guest.Link(); up || g == gen {
		t.Fatalf("after detach: link up %v generation %d (was %d)", up, g, gen)
	}
	st := a.dev.Stats()
	if st.Link || len(st.Rings) != 2 || st.Rings[0].Packets != 20000 || st.Rings[1].Packets != 20000 || st.Rings[0].Bytes != 60*20000 {
		t.Fatalf("stats after detach: %+v", st)
	}
	attach("shmdev-2")
	a.up(t)
	b.up(t)
	transfer(t, a, b, 5000)
	if st := a.dev.Stats(); !st.Link || st.Port != "pipe:shmdev-2{" || st.Rings[0].Packets != 25000 || st.LinkChanges != 3 {
		t.Fatalf("stats after re-attach: %+v", st)
	}
}

// A port whose buffers are not in the VM's memory cannot be attached: the
// guest could not see them.
func TestAttachChecksRegion(t *testing.T) {
	r := newRig(t, Geometry{Devices: 1, Rings: 1, Slots: 256, BufSize: 2048})
	p, err := pipe.Open("shmdev-outside", true, pipe.Config{Slots: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := r.vms[0].dev.Attach(p); err == nil || !strings.Contains(err.Error(), "outside the VM's memory") {
		t.Fatalf("err = %v", err)
	}
	big, err := vswitch.New("shmdev", vswitch.Config{}).Open("big", vswitch.PortConfig{Rings: 2, Slots: 64, Mem: r.vms[0].dev.Region()})
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	if err := r.vms[0].dev.Attach(big); err == nil || !strings.Contains(err.Error(), "2 TX and 2 RX rings") {
		t.Fatalf("a 2-ring port on a 1-ring device: err = %v", err)
	}
}

// A hostile guest scribbles over its device page and CSB page and rings
// every doorbell; the host must neither panic nor wedge, must count the
// bad requests, and must still serve a well-behaved driver afterwards.
func TestGuestScribbles(t *testing.T) {
	r := newRig(t, Geometry{Devices: 2, Rings: 1, Slots: 256, BufSize: 2048})
	v := r.vms[0]
	peer := v.attachPipe(t, "shmdev-scribble", 256)
	v.up(t)
	rng := rand.New(rand.NewPCG(1, 2))
	page := v.guest.page
	for range 20000 {
		off := uint64(rng.IntN(DevicePageSize/4)) * 4
		if off == DevLink || off == DevGeneration || off == DevVectors || off == DevCtlVector {
			continue // host-owned words the test reads back below
		}
		store(page, off, rng.Uint32())
		v.kicks[rng.IntN(len(v.kicks))].Signal()
	}
	// The host answers every posted request eventually; wait for quiet.
	time.Sleep(50 * time.Millisecond)
	st := v.dev.Stats()
	if st.Requests == 0 || st.BadRequests == 0 {
		t.Fatalf("scribbles were not seen as requests: %+v", st)
	}
	// A driver that starts over (DELETE, CREATE) works again.
	v.guest.seq = load(page, DevMboxAck)
	if err := v.guest.Post(ptnetmap.RegPtctl, ptnetmap.PtctlDelete); err != nil {
		t.Fatal(err)
	}
	v.up(t)
	// What the scribbled CSB made the loop send is garbage, and so is what
	// it left queued in the TX ring, sent once the rings are created
	// again: count only frames numbered from mark on, each once.
	const mark, n = 1 << 40, 1000
	seen := make([]bool, n)
	var got int
	drain := func() {
		netmap.RxSync(peer)
		rx := peer.If().RxRing(0)
		for h := rx.Head(); h != rx.Tail(); h = rx.Next(h) {
			s := rx.Slot(h)
			b := peer.Region().Buf(s.BufIdx)
			if v := binary.LittleEndian.Uint64(b[seqframe.Off:]) - mark; v < n && !seen[v] {
				seen[v] = true
				got++
			}
		}
		rx.Advance(rx.Tail())
	}
	for sent := 0; sent < n; {
		sent += v.send(mark+uint64(sent), min(64, n-sent))
		drain()
	}
	for deadline := time.Now().Add(5 * time.Second); got < n && time.Now().Before(deadline); {
		drain()
	}
	if got != n {
		t.Fatalf("after the scribbles: %d of %d frames arrived", got, n)
	}
}

// A CSB address outside the device's own CSB page is refused with EFAULT.
func TestCSBOutsideItsPage(t *testing.T) {
	r := newRig(t, Geometry{Devices: 2, Rings: 1, Slots: 256, BufSize: 2048})
	v := r.vms[0]
	p, err := pipe.Open("shmdev-csb", true, pipe.Config{Slots: 256, Mem: v.dev.Region()})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.dev.Attach(p); err != nil {
		t.Fatal(err)
	}
	other := DeviceOffset(1) + DevCSB // the other VM's CSB page
	for _, gpa := range []uint64{other, r.layout.RegionOffset, DeviceOffset(0), DeviceOffset(0) + DevCSB + PageSize - 64} {
		err := ptnetmap.Create(v.guest, gpa, gpa)
		if !errors.Is(err, syscall.EFAULT) {
			t.Errorf("CSB at %#x: %v, want EFAULT", gpa, err)
		}
	}
}

func TestOpenGuestChecks(t *testing.T) {
	r := newRig(t, Geometry{Devices: 1, Rings: 1, Slots: 256, BufSize: 2048})
	mem := r.mem.Bytes()
	nop := func(int) {}
	wait := func(time.Duration) {}
	if _, err := OpenGuest(mem, 2, nop, wait); err == nil {
		t.Error("peer 2 of a 1-device memory opened")
	}
	store(mem, HdrVersion, 9)
	if _, err := OpenGuest(mem, 1, nop, wait); err == nil || !strings.Contains(err.Error(), "version 9") {
		t.Errorf("version 9: %v", err)
	}
	store(mem, HdrVersion, Version)
	store64(mem, HdrRegionSize, 1<<40)
	if _, err := OpenGuest(mem, 1, nop, wait); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Errorf("huge region: %v", err)
	}
	store(mem, HdrMagic, 0)
	if _, err := OpenGuest(mem, 1, nop, wait); err == nil || !strings.Contains(err.Error(), "no ptbhyve device") {
		t.Errorf("no magic: %v", err)
	}
}
