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
	Loop *ptnetmap.Loop
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
	pt     *ptnetmap.Ptnet
	memdev *ptnetmap.Memdev
	err    error // why the device could not come up, until the next connection
}

// New sizes the device: the memdev segment holds a region of
// Rings x Slots buffers, rounded up to a power of two (a PCI BAR).
func New(c Config) (*Device, error) {
	if c.SegName == "" {
		c.SegName = "ptbhyve"
	}
	if len(c.SegName) > ptbp.MaxSegName {
		return nil, fmt.Errorf("bhyve: %s: devmem segment name %q is longer than %d characters", c.VM, c.SegName, ptbp.MaxSegName)
	}
	info, err := netmap.Layout(netmap.ParamsFor(1, c.Rings, c.Rings, c.Slots, c.Slots, c.BufSize, 0))
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
	if d.port, err = backend.Open(c.Port, backend.Options{Rings: c.Rings, Slots: c.Slots, BufSize: c.BufSize, Mem: d.devmem}); err != nil {
		return fmt.Errorf("bhyve: %s: %w", c.VM, err)
	}
	if n := len(d.port.TxRings()); n != c.Rings || len(d.port.RxRings()) != c.Rings {
		return fmt.Errorf("bhyve: %s: port %s has %d TX and %d RX rings; the device was announced with %d each", c.VM, c.Port, n, len(d.port.RxRings()), c.Rings)
	}
	d.irq.mu.Lock()
	d.irq.m = d.m
	d.irq.mu.Unlock()
	d.pt, err = ptnetmap.NewPtnet(ptnetmap.PtnetConfig{Port: d.port, MAC: c.MAC, Mem: d.ram, Irq: d.vectors, Kicks: d.kicks, Loop: c.Loop})
	if err != nil {
		return fmt.Errorf("bhyve: %s: %w", c.VM, err)
	}
	d.memdev = ptnetmap.NewMemdev(d.port.Region().Info())
	return nil
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

// Close releases everything.
func (d *Device) Close() {
	d.Disconnected()
	for _, k := range d.kicks {
		k.Close()
	}
}
