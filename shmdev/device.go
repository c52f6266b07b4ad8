package shmdev

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/ptbhyve/ptbhyve/internal/event"
	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
	"golang.org/x/sys/unix"
)

// InitMemory writes the header page of a fresh device memory; the devices
// write their own pages.
func InitMemory(mem []byte, l Layout) error {
	if uint64(len(mem)) < l.Size {
		return fmt.Errorf("shmdev: memory of %d bytes; the layout needs %d", len(mem), l.Size)
	}
	store(mem, HdrVersion, Version)
	store(mem, HdrDevices, uint32(l.Devices))
	store64(mem, HdrRegionOffset, l.RegionOffset)
	store64(mem, HdrRegionSize, l.RegionSize)
	store(mem, HdrMagic, Magic) // last: a guest that sees the magic sees the rest
	return nil
}

// Config describes one device in a device memory.
type Config struct {
	Name   string // the VM's name, for messages
	Mem    []byte // the whole device memory, as InitMemory laid it out
	Layout Layout
	Index  int // the device's page: the VM's ivshmem peer ID - 1
	MAC    [6]byte
	// Kicks are the doorbells the guest rings, Vectors(Layout.Rings) of
	// them; the last is the control vector.
	Kicks []*event.Event
	// Loop runs the rings' syncs between the guest's PTCTL CREATE and
	// DELETE.
	Loop *ptnetmap.Loop
}

// Device is the host side of one VM's device: it answers the mailbox,
// publishes the register snapshot and the link, and binds a port to the
// guest's rings with a ptnetmap.Ptnet.
type Device struct {
	cfg   Config
	page  []byte // the device page and its CSB page
	irq   interrupts
	stop  *event.Event
	done  chan struct{}
	ctl   int
	mbox  atomic.Uint64
	bad   atomic.Uint64
	spur  atomic.Uint64
	links atomic.Uint64

	mu       sync.Mutex
	pt       *ptnetmap.Ptnet
	port     netmap.Port
	finished []ptnetmap.RingStats
}

// New writes device cfg.Index's page (link down) and starts answering its
// control vector. Close stops it.
func New(cfg Config) (*Device, error) {
	l := cfg.Layout
	if cfg.Index < 0 || cfg.Index >= l.Devices {
		return nil, fmt.Errorf("shmdev: %s: device %d of a memory for %d", cfg.Name, cfg.Index, l.Devices)
	}
	if uint64(len(cfg.Mem)) < l.Size {
		return nil, fmt.Errorf("shmdev: %s: memory of %d bytes; the layout needs %d", cfg.Name, len(cfg.Mem), l.Size)
	}
	if len(cfg.Kicks) != Vectors(l.Rings) {
		return nil, fmt.Errorf("shmdev: %s: %d doorbells for %d vectors", cfg.Name, len(cfg.Kicks), Vectors(l.Rings))
	}
	off := DeviceOffset(cfg.Index)
	d := &Device{cfg: cfg, page: cfg.Mem[off : off+DevicePageSize : off+DevicePageSize], ctl: Vectors(l.Rings) - 1, done: make(chan struct{})}
	clear(d.page)
	store(d.page, DevVectors, uint32(Vectors(l.Rings)))
	store(d.page, DevCtlVector, uint32(d.ctl))
	var err error
	if d.stop, err = event.New(); err != nil {
		return nil, fmt.Errorf("shmdev: %s: %w", cfg.Name, err)
	}
	go d.serve()
	return d, nil
}

// Region is where a port attached to this device must build its region
// (backend.Options.Mem), so the guest sees it.
func (d *Device) Region() []byte {
	l := d.cfg.Layout
	return d.cfg.Mem[l.RegionOffset : l.RegionOffset+l.RegionSize : l.RegionOffset+l.RegionSize]
}

// SetInterrupts gives the device the VM's interrupt vectors when the VM
// connects, and nil when it goes away: then the rings stop being served
// until a new guest creates them again, as after a device reset.
func (d *Device) SetInterrupts(vectors []*event.Event) {
	if vectors == nil {
		d.irq.p.Store(nil)
		d.mu.Lock()
		if d.pt != nil {
			d.pt.Reset()
			d.publishLocked()
		}
		d.mu.Unlock()
		return
	}
	v := append([]*event.Event(nil), vectors...)
	d.irq.p.Store(&v)
}

// Attach binds p to the guest's rings and brings the link up. p's region
// must lie in Region and its rings must fit the device.
func (d *Device) Attach(p netmap.Port) error {
	r := d.Region()
	m := p.Region().Mem()
	start := uintptr(unsafe.Pointer(unsafe.SliceData(m)))
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(r)))
	if start < lo || start+uintptr(len(m)) > lo+uintptr(len(r)) {
		return fmt.Errorf("shmdev: %s: port %s keeps its buffers outside the VM's memory; open it with the device's region", d.cfg.Name, p.Name())
	}
	ntx, nrx := len(p.TxRings()), len(p.RxRings())
	if ntx < 1 || nrx < 1 || ntx > d.cfg.Layout.Rings || nrx > d.cfg.Layout.Rings {
		return fmt.Errorf("shmdev: %s: port %s has %d TX and %d RX rings; the device has 1..%d each", d.cfg.Name, p.Name(), ntx, nrx, d.cfg.Layout.Rings)
	}
	pt, err := ptnetmap.NewPtnet(ptnetmap.PtnetConfig{
		Port:  p,
		MAC:   d.cfg.MAC,
		Mem:   csbWindow{mem: d.cfg.Mem, base: DeviceOffset(d.cfg.Index) + DevCSB},
		Irq:   &d.irq,
		Kicks: d.cfg.Kicks[:ntx+nrx],
		Loop:  d.cfg.Loop,
	})
	if err != nil {
		return fmt.Errorf("shmdev: %s: %w", d.cfg.Name, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.port != nil {
		return fmt.Errorf("shmdev: %s: port %s is attached; detach it first", d.cfg.Name, d.port.Name())
	}
	d.pt, d.port = pt, p
	d.publishLocked()
	d.setLinkLocked(1)
	return nil
}

// Detach stops serving the port and takes the link down; it returns the
// port, which the loop no longer touches, for the caller to close.
func (d *Device) Detach() netmap.Port {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.port
	if p == nil {
		return nil
	}
	d.pt.Reset()
	d.finished = ptnetmap.SumStats(d.finished, d.pt.Stats())
	d.pt, d.port = nil, nil
	d.setLinkLocked(0)
	return p
}

// Port is the attached port, or nil.
func (d *Device) Port() netmap.Port {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.port
}

func (d *Device) setLinkLocked(up uint32) {
	store(d.page, DevGeneration, load(d.page, DevGeneration)+1)
	store(d.page, DevLink, up)
	d.links.Add(1)
	d.irq.Interrupt(d.ctl)
}

// publishLocked copies the register files into the device page, where the
// guest reads them without a round trip. Called after every change.
func (d *Device) publishLocked() {
	if d.pt == nil {
		return
	}
	for off := uint32(0); off < ptnetmap.RegPtnetEnd; off += 4 {
		store(d.page, DevPtnetRegs+uint64(off), d.pt.Read(off))
	}
	md := ptnetmap.NewMemdev(d.port.Region().Info())
	for off := uint32(0); off < ptnetmap.RegMemdevEnd; off += 4 {
		store(d.page, DevMemdevRegs+uint64(off), md.Read(off))
	}
}

// serve answers the mailbox each time the guest rings the control vector.
// A guest ringing it in a loop costs one wakeup and one comparison each.
func (d *Device) serve() {
	defer close(d.done)
	ctl := d.cfg.Kicks[d.ctl]
	fds := []unix.PollFd{{Fd: int32(ctl.Fd()), Events: unix.POLLIN}, {Fd: int32(d.stop.Fd()), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
		if fds[1].Revents != 0 {
			return
		}
		if fds[0].Revents != 0 {
			ctl.Drain()
			d.answer()
		}
	}
}

func (d *Device) answer() {
	req := load(d.page, DevMboxReq)
	if req == load(d.page, DevMboxAck) {
		d.spur.Add(1)
		return
	}
	op, reg, val := load(d.page, DevMboxOp), load(d.page, DevMboxReg), load(d.page, DevMboxVal)
	var res uint32
	d.mu.Lock()
	switch {
	case op != OpWrite:
		res = ResultEINVAL
		d.bad.Add(1)
	case d.pt == nil:
		res = ResultENOLINK
	default:
		d.pt.Write(reg, val)
		d.publishLocked()
	}
	d.mu.Unlock()
	d.mbox.Add(1)
	store(d.page, DevMboxResult, res)
	store(d.page, DevMboxAck, req) // last: the guest reads the result after it
	d.irq.Interrupt(d.ctl)
}

// Stats are a device's counters.
type Stats struct {
	Link        bool                 `json:"link"`
	Port        string               `json:"port,omitempty"`
	Rings       []ptnetmap.RingStats `json:"rings"`
	Requests    uint64               `json:"mailbox_requests"`
	BadRequests uint64               `json:"mailbox_bad_requests"`
	Spurious    uint64               `json:"spurious_doorbells"`
	LinkChanges uint64               `json:"link_changes"`
}

// Stats snapshots the device's counters; ring counters add up across
// attachments.
func (d *Device) Stats() Stats {
	d.mu.Lock()
	s := Stats{Rings: append([]ptnetmap.RingStats(nil), d.finished...)}
	if d.pt != nil {
		s.Link, s.Port = true, d.port.Name()
		s.Rings = ptnetmap.SumStats(s.Rings, d.pt.Stats())
	}
	d.mu.Unlock()
	s.Requests, s.BadRequests, s.Spurious, s.LinkChanges = d.mbox.Load(), d.bad.Load(), d.spur.Load(), d.links.Load()
	return s
}

// Close detaches any port (returning it for the caller to close) and stops
// answering the mailbox.
func (d *Device) Close() netmap.Port {
	p := d.Detach()
	d.stop.Signal()
	<-d.done
	d.stop.Close()
	return p
}

// interrupts raises the VM's vectors; the set changes as the VM comes and
// goes, so the loop reads it through an atomic pointer.
type interrupts struct {
	p atomic.Pointer[[]*event.Event]
}

func (q *interrupts) Interrupt(v int) {
	if p := q.p.Load(); p != nil && v < len(*p) {
		(*p)[v].Signal()
	}
}

// csbWindow is the guest memory a CSB may be placed in: the device's own
// CSB page, addressed by offset in the device memory, so a guest cannot
// point the loop at another device's page or at the netmap region.
type csbWindow struct {
	mem  []byte
	base uint64
}

func (w csbWindow) Slice(gpa, size uint64) ([]byte, error) {
	if gpa < w.base || size > PageSize || gpa-w.base > PageSize-size {
		return nil, fmt.Errorf("CSB at %#x+%d is outside the device's CSB page %#x+%d", gpa, size, w.base, PageSize)
	}
	return w.mem[gpa : gpa+size : gpa+size], nil
}
