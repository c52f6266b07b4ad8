package ptbp

import (
	"encoding/binary"
	"errors"
	"net"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ptbhyve/ptbhyve/internal/event"
	"github.com/ptbhyve/ptbhyve/internal/seqframe"
	"github.com/ptbhyve/ptbhyve/internal/shm"
	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/netmap/pipe"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
	"golang.org/x/sys/unix"
)

// recorder is a fake vmm's VM_LAPIC_MSI: it records each MSI and wakes
// the guest waiting on that vector (the data word is 0x40 + vector, as the
// test's MSI-X table says).
type recorder struct {
	mu   sync.Mutex
	msis []uint32
	wake []*event.Event
}

func (r *recorder) RaiseMSI(addr uint64, data uint32) error {
	if addr != 0xfee00000 {
		return errors.New("bad MSI address")
	}
	r.mu.Lock()
	r.msis = append(r.msis, data)
	r.mu.Unlock()
	if v := int(data) - 0x40; v >= 0 && v < len(r.wake) {
		r.wake[v].Signal()
	}
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msis)
}

// rig is the daemon's side of one VM: a pipe whose near end is built in
// the memdev segment, guest RAM for the CSB, a loop, and the plugin server.
type rig struct {
	server *Server
	ram    *shm.Mem
	devmem *shm.Mem
	peer   *pipe.Endpoint
	rec    *recorder
	ptnet  *ptnetmap.Ptnet
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{rec: &recorder{}}
	var err error
	if r.ram, err = shm.New("ptbp-ram", 1<<20); err != nil {
		t.Fatal(err)
	}
	if r.devmem, err = shm.New("ptbp-devmem", 4<<20); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.ram.Close(); r.devmem.Close() })
	near, err := pipe.Open("ptbp-"+t.Name(), true, pipe.Config{Slots: 256, Mem: r.devmem.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	if r.peer, err = pipe.Open("ptbp-"+t.Name(), false, pipe.Config{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { near.Close(); r.peer.Close() })
	loop, err := ptnetmap.NewLoop(ptnetmap.LoopConfig{CPU: -1})
	if err != nil {
		t.Fatal(err)
	}
	loop.Start()
	t.Cleanup(func() { loop.Stop() })
	kicks, err := event.NewN(2)
	if err != nil {
		t.Fatal(err)
	}
	if r.rec.wake, err = event.NewN(2); err != nil {
		t.Fatal(err)
	}
	vectors := NewVectors(2, r.rec)
	r.ptnet, err = ptnetmap.NewPtnet(ptnetmap.PtnetConfig{Port: near, MAC: [6]byte{2, 0, 0, 0, 0, 7},
		Mem: ptnetmap.FlatMemory(r.ram.Bytes()), Irq: vectors, Kicks: kicks, Loop: loop})
	if err != nil {
		t.Fatal(err)
	}
	dev := &Device{
		Welcome: Welcome{NTx: 1, NRx: 1, MAC: [6]byte{2, 0, 0, 0, 0, 7}, MemSize: uint64(len(r.devmem.Bytes())), SegName: "ptbhyve"},
		Ptnet:   r.ptnet, Memdev: ptnetmap.NewMemdev(near.Region().Info()), Kicks: kicks, Vectors: vectors,
		Reset: r.ptnet.Reset,
	}
	if r.server, err = Listen(filepath.Join(t.TempDir(), "vm0.plugin")); err != nil {
		t.Fatal(err)
	}
	r.server.Open = func(vm string) (*Device, error) {
		if vm != "vm0" {
			return nil, syscall.ENOENT
		}
		return dev, nil
	}
	go r.server.Serve()
	t.Cleanup(func() { r.server.Close() })
	return r
}

// client plays bhyve's device model in Go.
type client struct {
	t     *testing.T
	c     *net.UnixConn
	seq   uint32
	w     Welcome
	kicks []int
}

func dial(t *testing.T, path, vm string) (*client, error) {
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	cl := &client{t: t, c: c}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write(Encode(1, Hello{Magic: Magic, Version: Version, VM: vm})); err != nil {
		t.Fatal(err)
	}
	buf, oob := make([]byte, MaxMsg), make([]byte, unix.CmsgSpace(4*8))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	_, m, err := Decode(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	switch m := m.(type) {
	case Error:
		return nil, syscall.Errno(m.Errno)
	case Welcome:
		cl.w = m
	}
	cms, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(cms) != 1 {
		t.Fatalf("WELCOME control messages: %v %v", cms, err)
	}
	if cl.kicks, err = unix.ParseUnixRights(&cms[0]); err != nil {
		t.Fatal(err)
	}
	for _, fd := range cl.kicks {
		t.Cleanup(func() { unix.Close(fd) })
	}
	return cl, nil
}

func (cl *client) call(m any) any {
	cl.t.Helper()
	cl.seq++
	if _, err := cl.c.Write(Encode(cl.seq, m)); err != nil {
		cl.t.Fatal(err)
	}
	if _, ok := m.(MSIX); ok {
		return nil
	}
	buf := make([]byte, MaxMsg)
	n, err := cl.c.Read(buf)
	if err != nil {
		cl.t.Fatal(err)
	}
	seq, r, err := Decode(buf[:n])
	if err != nil || seq != cl.seq {
		cl.t.Fatalf("reply %d %+v %v; want seq %d", seq, r, err, cl.seq)
	}
	return r
}

// regs are a function's registers as a guest sees them through bhyve.
type regs struct {
	cl *client
	fn uint8
}

func (r regs) Read(off uint32) uint32 {
	return r.cl.call(Read{Fn: r.fn, Size: 4, Off: off}).(Value).Val
}

func (r regs) Write(off, val uint32) {
	if r.fn == FnPtnet && off >= ptnetmap.RegKickBase {
		// bhyve turns a kick into a write on the descriptor, no message.
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], 1)
		unix.Write(r.cl.kicks[(off-ptnetmap.RegKickBase)/4], b[:])
		return
	}
	r.cl.call(Write{Fn: r.fn, Size: 4, Off: off, Val: val})
}

// guestUp runs ptnet's attach sequence through bhyve and returns the
// guest's view.
func guestUp(t *testing.T, r *rig, cl *client) *ptnetmap.Guest {
	t.Helper()
	for v := range 2 {
		cl.call(MSIX{Vector: uint16(v), Flags: MSIXEnabled, Addr: 0xfee00000, Data: 0x40 + uint32(v)})
	}
	return attachGuest(t, r, regs{cl, FnPtnet}, regs{cl, FnMemdev})
}

// attachGuest runs ptnet's attach sequence on the two functions' registers
// and returns the guest's view of its rings, the CSB in guest RAM.
func attachGuest(t *testing.T, r *rig, pt, memdev ptnetmap.Registers) *ptnetmap.Guest {
	t.Helper()
	info, err := ptnetmap.Probe(pt, memdev)
	if err != nil {
		t.Fatal(err)
	}
	if err := ptnetmap.Create(pt, 0x1000, 0x2000); err != nil {
		t.Fatal(err)
	}
	ram := r.ram.Bytes()
	g, err := ptnetmap.NewGuest(ptnetmap.GuestConfig{Mem: r.devmem.Bytes(), Pools: info.Pools, NifpOfs: info.NifpOfs,
		NumTx: info.NumTx, NumRx: info.NumRx, CSB: ptnetmap.CSBFromBytes(ram[0x1000:0x1080], ram[0x2000:0x2080], 2),
		Kick: ptnetmap.RegKicker{Regs: pt}})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// stream sends n frames from the guest to the pipe's far end, the guest
// sleeping on its TX interrupt whenever the ring is full.
func stream(t *testing.T, r *rig, g *ptnetmap.Guest, n uint64) {
	t.Helper()
	done := make(chan uint64)
	go func() {
		var got uint64
		for deadline := time.Now().Add(30 * time.Second); got < n && time.Now().Before(deadline); {
			netmap.RxSync(r.peer)
			if err := seqframe.Check(r.peer.If().RxRing(0), r.peer.Region(), &got); err != nil {
				t.Error(err)
				break
			}
		}
		done <- got
	}()
	tx := g.Tx[0]
	for seq := uint64(0); seq < n; {
		seq = seqframe.Fill(tx.Ring, g.Region, nil, seq, n)
		tx.Sync(0)
		if tx.Ring.Space() == 0 && tx.WantsInterrupt() {
			r.rec.wake[0].Wait(100)
		}
	}
	if got := <-done; got != n {
		t.Fatalf("%d of %d frames arrived", got, n)
	}
}

func TestSession(t *testing.T) {
	r := newRig(t)
	if _, err := dial(t, r.server.Path(), "vm9"); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("unknown VM: %v", err)
	}
	cl, err := dial(t, r.server.Path(), "vm0")
	if err != nil {
		t.Fatal(err)
	}
	if cl.w.NTx != 1 || cl.w.NRx != 1 || cl.w.SegName != "ptbhyve" || len(cl.kicks) != 2 || cl.w.Version != Version {
		t.Fatalf("welcome %+v with %d fds", cl.w, len(cl.kicks))
	}
	g := guestUp(t, r, cl)
	stream(t, r, g, 100000)
	if r.rec.count() == 0 {
		t.Fatal("the guest slept on TX interrupts, yet no MSI was raised")
	}

	// RESET stops the rings; CREATE works again afterwards.
	if d := cl.call(Reset{}); d != (Done{}) || r.ptnet.Running() {
		t.Fatalf("reset: %+v, running %v", d, r.ptnet.Running())
	}
	g = guestUp(t, r, cl)
	stream(t, r, g, 1000)

	// bhyve goes away: the rings stop. A new bhyve connects and works.
	cl.c.Close()
	for deadline := time.Now().Add(5 * time.Second); r.ptnet.Running() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if r.ptnet.Running() {
		t.Fatal("rings still running after bhyve hung up")
	}
	cl, err = dial(t, r.server.Path(), "vm0")
	if err != nil {
		t.Fatal(err)
	}
	g = guestUp(t, r, cl)
	stream(t, r, g, 1000)
}

// A masked vector, or a masked or disabled function, holds the interrupt
// until the mask clears; Reset forgets it.
func TestVectorsMask(t *testing.T) {
	rec := &recorder{}
	v := NewVectors(2, rec)
	v.Interrupt(0) // masked at power-on
	v.Interrupt(5) // out of range: ignored
	v.Update(MSIX{Vector: 0, Flags: MSIXEnabled | MSIXFuncMasked, Addr: 0xfee00000, Data: 0x40})
	if rec.count() != 0 {
		t.Fatal("fired under the function mask")
	}
	v.Update(MSIX{Vector: 1, Flags: MSIXEnabled, Addr: 0xfee00000, Data: 0x41})
	if rec.count() != 1 || rec.msis[0] != 0x40 {
		t.Fatalf("clearing the function mask delivered %v", rec.msis)
	}
	v.Interrupt(1)
	if rec.count() != 2 || v.Stats() != (VectorStats{Raised: 2, Pending: 1}) {
		t.Fatalf("msis %v, stats %+v", rec.msis, v.Stats())
	}
	v.Update(MSIX{Vector: 1, Flags: 0, Addr: 0xfee00000, Data: 0x41}) // MSI-X off
	v.Interrupt(1)
	v.Reset()
	v.Update(MSIX{Vector: 1, Flags: MSIXEnabled, Addr: 0xfee00000, Data: 0x41})
	if rec.count() != 2 {
		t.Fatalf("an interrupt pending before a reset fired after it: %v", rec.msis)
	}
	v.Update(MSIX{Vector: 0, Flags: MSIXEnabled, Addr: 1, Data: 0x40})
	v.Interrupt(0)
	if v.Stats().Failed != 1 {
		t.Fatalf("a refused MSI is not counted: %+v", v.Stats())
	}
}

// A bhyve that sends garbage is hung up on, and the rings stop.
func TestMalformed(t *testing.T) {
	r := newRig(t)
	cl, err := dial(t, r.server.Path(), "vm0")
	if err != nil {
		t.Fatal(err)
	}
	guestUp(t, r, cl)
	cl.c.Write([]byte{3, 0, 0, 0, 1, 0, 0, 0, 0}) // a READ one byte short
	buf := make([]byte, 64)
	cl.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := cl.c.Read(buf); err == nil && n > 0 {
		t.Fatalf("the server answered a malformed message with %x", buf[:n])
	}
	for deadline := time.Now().Add(5 * time.Second); r.ptnet.Running() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if r.ptnet.Running() {
		t.Fatal("rings still running after a malformed message")
	}
}
