// Package bhyve is the ptnet device of a bhyve VM as ptbhyve serves it:
// the plugin connection from bhyve's device model (ptbp), the VM's memory
// and interrupts (vmm), and the netmap port whose region lives in the
// memdev's devmem segment, bound by a ptnetmap.Ptnet.
//
// bhyve creates the devmem segment only after the daemon's WELCOME told
// it the name and size, so the port is opened when the guest first
// touches a register: by then bhyve's device init is over and the segment
// exists. A new bhyve (the VM restarted) gets everything afresh.
package bhyve

import (
	"errors"
	"fmt"
	"math/bits"
	"sync"

	"github.com/ptbhyve/ptbhyve/bhyve/ptbp"
	"github.com/ptbhyve/ptbhyve/bhyve/vmm"
	"github.com/ptbhyve/ptbhyve/internal/event"
	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/netmap/backend"
	"github.com/ptbhyve/ptbhyve/netmap/bounce"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
)

// Config describes one VM's device.
type Config struct {
	VM      string
	Rings   int // per direction
	Slots   uint32
	BufSize uint32
	MAC     [6]byte
	// Port is the netmap port the device serves, opened in the devmem
	// segment.
	Port string
	// SegName names the devmem segment bhyve creates (at most 15
	// characters); default "ptbhyve".
	SegName string
	// Open reaches the VM: vmm.Open on FreeBSD, a *vmm.Fake in tests.
	Open func(vm string) (vmm.Machine, error)
	// Datapath is how frames reach the devmem segment: DatapathAuto
	// (default), DatapathZeroCopy or DatapathCopy.
	Datapath string
	// Sync is who serves the rings: SyncAuto (default), SyncKernel or
	// SyncPtbhyve.
	Sync string
	// Loop is ptbhyve's sync loop; Kernel tunes netmap's in-kernel one.
	Loop   *ptnetmap.Loop
	Kernel ptnetmap.KernelConfig
}

// Data paths (docs/data-path.md).
const (
	// DatapathAuto is zero copy where the port can be built in the
	// devmem segment, else copy.
	DatapathAuto = "auto"
	// DatapathZeroCopy builds the port's rings and buffers in the
	// segment: in-process ports always can; a kernel netmap port only if
	// netmap accepts the segment as EXTMEM.
	DatapathZeroCopy = "zero-copy"
	// DatapathCopy opens the port on its own and copies every frame
	// between its rings and rings of ptbhyve's in the segment.
	DatapathCopy = "copy"
)

// Sync loops (docs/data-path.md).
const (
	// SyncAuto is the kernel's loop for a zero-copy kernel port, ptbhyve's
	// otherwise.
	SyncAuto = "auto"
	// SyncKernel is netmap's in-kernel loop (CSB_ENABLE + SYNC_KLOOP_START)
	// with ptbhyve raising the interrupts; zero-copy kernel ports only.
	SyncKernel = "kernel"
	// SyncPtbhyve is ptbhyve's own loop, which serves any port.
	SyncPtbhyve = "ptbhyve"
)

// Path is how a running device moves frames, for stats.
type Path struct {
	Datapath string `json:"datapath"` // DatapathZeroCopy or DatapathCopy
	Sync     string `json:"sync"`     // SyncKernel or SyncPtbhyve
	// Fallback is why DatapathAuto did not get zero copy.
	Fallback string `json:"fallback,omitempty"`
	// Error is why the kernel's sync loop ended on its own (the rings are
	// stalled until the guest recreates them).
	Error string `json:"error,omitempty"`
	// Copied counts the copy path's frames and bytes each way.
	Copied *bounce.Stats `json:"copied,omitempty"`
}

// Device is one VM's ptnet device.
type Device struct {
	cfg     Config
	memsize uint64
	kicks   []*event.Event
	vectors *ptbp.Vectors
	irq     raiser

	mu     sync.Mutex
	m      vmm.Machine
	ram    *vmm.GuestMemory
	devmem []byte
	port   netmap.Port
	path   Path
	pt     *ptnetmap.Ptnet
	memdev *ptnetmap.Memdev
	err    error // why the device could not come up, until the next connection

	kerrMu sync.Mutex
	kerr   error // why the kernel loop ended by itself
}

// New sizes the device: the memdev segment holds a region of
// Rings x Slots buffers, rounded up to a power of two (a PCI BAR).
func New(c Config) (*Device, error) {
	if c.SegName == "" {
		c.SegName = "ptbhyve"
	}
	if c.Datapath == "" {
		c.Datapath = DatapathAuto
	}
	if c.Sync == "" {
		c.Sync = SyncAuto
	}
	if err := CheckPath(c.Datapath, c.Sync); err != nil {
		return nil, fmt.Errorf("bhyve: %s: %w", c.VM, err)
	}
	if len(c.SegName) > ptbp.MaxSegName {
		return nil, fmt.Errorf("bhyve: %s: devmem segment name %q is longer than %d characters", c.VM, c.SegName, ptbp.MaxSegName)
	}
	// Sized for the pools a kernel port asks netmap for, the largest of
	// the ports the segment may hold.
	info, err := netmap.Layout(backend.KernelParams(c.options(nil)))
	if err != nil {
		return nil, fmt.Errorf("bhyve: %s: %w", c.VM, err)
	}
	d := &Device{cfg: c, memsize: 1 << bits.Len64(info.MemSize-1)}
	if d.kicks, err = event.NewN(2 * c.Rings); err != nil {
		return nil, err
	}
	d.vectors = ptbp.NewVectors(2*c.Rings, &d.irq)
	return d, nil
}

// raiser forwards MSIs to the machine of the current connection.
type raiser struct {
	mu sync.Mutex
	m  vmm.Machine
}

func (r *raiser) RaiseMSI(addr uint64, data uint32) error {
	r.mu.Lock()
	m := r.m
	r.mu.Unlock()
	if m == nil {
		return errors.New("bhyve: no VM")
	}
	return m.RaiseMSI(addr, data)
}

// Plugin is what the plugin server gives bhyve for this VM.
func (d *Device) Plugin() *ptbp.Device {
	return &ptbp.Device{
		Welcome: ptbp.Welcome{NTx: uint16(d.cfg.Rings), NRx: uint16(d.cfg.Rings), MAC: d.cfg.MAC, MemSize: d.memsize, SegName: d.cfg.SegName},
		Ptnet:   regs{d, ptbp.FnPtnet},
		Memdev:  regs{d, ptbp.FnMemdev},
		Kicks:   d.kicks,
		Vectors: d.vectors,
		Reset:   d.reset,
	}
}

// regs are a function's registers, bringing the device up on first use.
type regs struct {
	d  *Device
	fn int
}

func (r regs) Read(off uint32) uint32 {
	pt, md := r.d.up()
	switch {
	case r.fn == ptbp.FnPtnet && pt != nil:
		return pt.Read(off)
	case r.fn == ptbp.FnPtnet && off == ptnetmap.RegPtctl:
		return ptnetmap.StatusENXIO // the port could not be opened
	case r.fn == ptbp.FnMemdev && md != nil:
		return md.Read(off)
	}
	return 0
}

func (r regs) Write(off, val uint32) {
	if pt, _ := r.d.up(); pt != nil && r.fn == ptbp.FnPtnet {
		pt.Write(off, val)
	}
}

// up opens the VM and the port once bhyve has created the devmem
// segment, and returns the register files (nil if that failed; Err says
// why).
func (d *Device) up() (*ptnetmap.Ptnet, *ptnetmap.Memdev) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pt != nil || d.err != nil {
		return d.pt, d.memdev
	}
	if d.err = d.bringUp(); d.err != nil {
		d.downLocked()
	}
	return d.pt, d.memdev
}

func (d *Device) bringUp() error {
	c := d.cfg
	var err error
	if d.m, err = c.Open(c.VM); err != nil {
		return err
	}
	if d.ram, err = d.m.Memory(); err != nil {
		return err
	}
	if d.devmem, err = d.m.Devmem(c.SegName); err != nil {
		return err
	}
	if d.port, d.path, err = c.openPort(d.devmem); err != nil {
		return fmt.Errorf("bhyve: %s: %w", c.VM, err)
	}
	if n := len(d.port.TxRings()); n != c.Rings || len(d.port.RxRings()) != c.Rings {
		return fmt.Errorf("bhyve: %s: port %s has %d TX and %d RX rings; the device was announced with %d each (set rings = %d for this VM)", c.VM, c.Port, n, len(d.port.RxRings()), c.Rings, n)
	}
	var syncer ptnetmap.Syncer
	switch {
	case d.path.Sync == SyncPtbhyve && c.Loop == nil:
		return fmt.Errorf("bhyve: %s: no sync loop was given for port %s", c.VM, c.Port)
	case d.path.Sync == SyncPtbhyve:
		syncer = c.Loop
	default:
		kc := c.Kernel
		kc.OnError = func(err error) {
			d.kerrMu.Lock()
			d.kerr = err
			d.kerrMu.Unlock()
		}
		if syncer, err = ptnetmap.NewKernelSync(kc); err != nil {
			return fmt.Errorf("bhyve: %s: %w", c.VM, err)
		}
	}
	d.irq.mu.Lock()
	d.irq.m = d.m
	d.irq.mu.Unlock()
	d.pt, err = ptnetmap.NewPtnet(ptnetmap.PtnetConfig{Port: d.port, MAC: c.MAC, Mem: d.ram, Irq: d.vectors, Kicks: d.kicks, Loop: syncer})
	if err != nil {
		return fmt.Errorf("bhyve: %s: %w", c.VM, err)
	}
	d.memdev = ptnetmap.NewMemdev(d.port.Region().Info())
	return nil
}

// CheckPath says what is wrong with a datapath and sync choice, before
// any port is opened.
func CheckPath(datapath, sync string) error {
	switch datapath {
	case DatapathAuto, DatapathZeroCopy, DatapathCopy:
	default:
		return fmt.Errorf("datapath %q is not one of %q, %q, %q", datapath, DatapathAuto, DatapathZeroCopy, DatapathCopy)
	}
	switch sync {
	case SyncAuto, SyncKernel, SyncPtbhyve:
	default:
		return fmt.Errorf("sync %q is not one of %q, %q, %q", sync, SyncAuto, SyncKernel, SyncPtbhyve)
	}
	if datapath == DatapathCopy && sync == SyncKernel {
		return fmt.Errorf("sync %q needs the kernel's rings in the VM's memory, which datapath %q does not give; use datapath %q or %q", SyncKernel, DatapathCopy, DatapathZeroCopy, DatapathAuto)
	}
	return nil
}

func (c Config) options(mem []byte) backend.Options {
	return backend.Options{Rings: c.Rings, Slots: c.Slots, BufSize: c.BufSize, Mem: mem}
}

// openPort opens the port in devmem as c.Datapath and c.Sync ask.
func (c Config) openPort(devmem []byte) (netmap.Port, Path, error) {
	n, err := netmap.ParseName(c.Port)
	if err != nil {
		return nil, Path{}, err
	}
	kernelPort := n.Family == netmap.FamilyNetmap || n.Family == netmap.FamilyVale
	var path Path
	var port netmap.Port
	if c.Datapath != DatapathCopy {
		port, err = backend.Open(c.Port, c.options(devmem))
		switch {
		case err == nil:
			path.Datapath = DatapathZeroCopy
		case c.Datapath == DatapathZeroCopy || !kernelPort:
			return nil, Path{}, err
		default:
			path.Fallback = err.Error()
		}
	}
	if port == nil {
		inner, err := backend.Open(c.Port, c.options(nil))
		if err != nil {
			// What fails both ways (no /dev/netmap, no such port) is said once.
			if path.Fallback != "" && path.Fallback != err.Error() {
				return nil, Path{}, fmt.Errorf("%w (and in the VM's memory: %s)", err, path.Fallback)
			}
			return nil, Path{}, err
		}
		if port, err = bounce.New(inner, bounce.Config{Mem: devmem, Slots: c.Slots, BufSize: c.BufSize}); err != nil {
			inner.Close()
			return nil, Path{}, err
		}
		path.Datapath = DatapathCopy
	}
	_, kloop := port.(ptnetmap.KloopPort)
	switch {
	case c.Sync == SyncPtbhyve, c.Sync == SyncAuto && !kloop:
		path.Sync = SyncPtbhyve
	case kloop:
		path.Sync = SyncKernel
	default:
		port.Close()
		why := "it is not a kernel netmap port"
		if kernelPort {
			why = "the port is copied (" + path.Fallback + ")"
		}
		return nil, Path{}, fmt.Errorf("sync %q: netmap's in-kernel loop cannot serve %s: %s; use sync %q", c.Sync, c.Port, why, SyncPtbhyve)
	}
	return port, path, nil
}

// reset stops the rings (RESET, or bhyve went away).
func (d *Device) reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pt != nil {
		d.pt.Reset()
	}
}

// Disconnected releases what the connection brought up: a new bhyve has a
// new VM memory and a new segment.
func (d *Device) Disconnected() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.downLocked()
	d.err = nil
}

func (d *Device) downLocked() {
	if d.pt != nil {
		d.pt.Reset()
	}
	if d.port != nil {
		d.port.Close()
	}
	if d.devmem != nil {
		vmm.Unmap(d.devmem)
	}
	if d.ram != nil {
		d.ram.Close()
	}
	d.irq.mu.Lock()
	d.irq.m = nil
	d.irq.mu.Unlock()
	if d.m != nil {
		d.m.Close()
	}
	d.m, d.ram, d.devmem, d.port, d.pt, d.memdev = nil, nil, nil, nil, nil, nil
	d.path = Path{}
	d.kerrMu.Lock()
	d.kerr = nil
	d.kerrMu.Unlock()
}

// SetPort changes the port the device serves from the next connection on.
// ptnet(4) has no link state a guest would follow, so a port cannot change
// under a running guest: that is refused while the device is up.
func (d *Device) SetPort(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pt != nil {
		return fmt.Errorf("bhyve: %s: the device is in use by a running guest with port %s; stop the VM first (ptnet has no link state to change)", d.cfg.VM, d.cfg.Port)
	}
	d.cfg.Port, d.err = name, nil
	return nil
}

// Port is the port the device serves ("" for none), and whether it is
// open for a running guest.
func (d *Device) Port() (name string, up bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg.Port, d.pt != nil
}

// Err is why the device could not come up for the current connection.
func (d *Device) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// Stats are the rings' counters (zero before the guest creates them).
func (d *Device) Stats() []ptnetmap.RingStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pt == nil {
		return nil
	}
	return d.pt.Stats()
}

// Path is how the device moves frames while a guest runs (zero Path
// before the port is open).
func (d *Device) Path() Path {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.path
	d.kerrMu.Lock()
	if d.kerr != nil {
		p.Error = d.kerr.Error()
	}
	d.kerrMu.Unlock()
	if b, ok := d.port.(*bounce.Port); ok {
		st := b.Stats()
		p.Copied = &st
	}
	return p
}

// Close releases everything.
func (d *Device) Close() {
	d.Disconnected()
	for _, k := range d.kicks {
		k.Close()
	}
}
