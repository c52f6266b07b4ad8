package shmdev

import (
	"fmt"
	"syscall"
	"time"

	"github.com/ptbhyve/ptbhyve/ptnetmap"
)

// Guest is the guest's side of one device: it reads the registers from the
// device page, posts register writes to the mailbox and rings doorbells.
// Everything it reads was written by the host and is checked before use.
type Guest struct {
	mem    []byte
	page   []byte
	pageAt uint64
	layout Layout
	ring   func(vector int)
	wait   func(time.Duration)
	seq    uint32
	err    error

	// Timeout bounds a mailbox round trip (default 5 s: a TCG guest and a
	// busy host are slow, a dead host must still be reported).
	Timeout time.Duration
}

// OpenGuest finds the device of the VM with ivshmem peer ID id in mem.
// ring rings a doorbell vector; wait sleeps until the control vector fires
// or the time passes (a plain sleep where the guest has no interrupts).
func OpenGuest(mem []byte, id uint32, ring func(vector int), wait func(time.Duration)) (*Guest, error) {
	if len(mem) < PageSize {
		return nil, fmt.Errorf("shmdev: device memory of %d bytes is too small", len(mem))
	}
	if m := load(mem, HdrMagic); m != Magic {
		return nil, fmt.Errorf("shmdev: no ptbhyve device in this memory (magic %#x, want %#x): is the host's ptbhyve serving this VM?", m, Magic)
	}
	if v := load(mem, HdrVersion); v != Version {
		return nil, fmt.Errorf("shmdev: device ABI version %d; this driver speaks %d", v, Version)
	}
	n := load(mem, HdrDevices)
	if n < 1 || n > MaxDevices {
		return nil, fmt.Errorf("shmdev: header says %d devices; want 1..%d", n, MaxDevices)
	}
	if id < 1 || id > n {
		return nil, fmt.Errorf("shmdev: this VM is peer %d, but the memory holds devices for peers 1..%d", id, n)
	}
	l := Layout{Geometry: Geometry{Devices: int(n)}, Size: uint64(len(mem)),
		RegionOffset: load64(mem, HdrRegionOffset), RegionSize: load64(mem, HdrRegionSize)}
	if l.RegionOffset < DeviceOffset(int(n)) || l.RegionOffset%PageSize != 0 || l.RegionSize > l.Size || l.RegionOffset > l.Size-l.RegionSize {
		return nil, fmt.Errorf("shmdev: region %#x+%#x does not fit the %#x-byte memory after the device pages", l.RegionOffset, l.RegionSize, l.Size)
	}
	at := DeviceOffset(int(id) - 1)
	g := &Guest{mem: mem, page: mem[at : at+DevicePageSize : at+DevicePageSize], pageAt: at, layout: l, ring: ring, wait: wait, Timeout: 5 * time.Second}
	v := load(g.page, DevVectors)
	if v < 3 || v%2 != 1 || int(v) > Vectors(MaxRings) || load(g.page, DevCtlVector) != v-1 {
		return nil, fmt.Errorf("shmdev: device page says %d vectors, control vector %d", v, load(g.page, DevCtlVector))
	}
	g.layout.Rings = int(v-1) / 2
	g.seq = load(g.page, DevMboxAck)
	return g, nil
}

// Link reports whether a port is attached, and the generation that changes
// with every attach and detach: a driver that sees a new generation must
// re-read the device and create its rings again.
func (g *Guest) Link() (up bool, gen uint32) {
	gen = load(g.page, DevGeneration)
	return load(g.page, DevLink) == 1, gen
}

// Generation is the link generation alone: one load, for the data path.
func (g *Guest) Generation() uint32 { return load(g.page, DevGeneration) }

// Rings is the device's ring count per direction (its vectors are
// Vectors(Rings)).
func (g *Guest) Rings() int { return g.layout.Rings }

// CtlVector is the control vector.
func (g *Guest) CtlVector() int { return Vectors(g.layout.Rings) - 1 }

// Read reads a ptnet register from the snapshot.
func (g *Guest) Read(off uint32) uint32 {
	if off >= ptnetmap.RegKickBase || off%4 != 0 {
		return 0
	}
	return load(g.page, DevPtnetRegs+uint64(off))
}

// Write posts a ptnet register write and waits for the host to apply it;
// as a register write cannot fail, a failed round trip is kept for Err.
func (g *Guest) Write(off, val uint32) {
	if err := g.Post(off, val); err != nil && g.err == nil {
		g.err = err
	}
}

// Err returns and clears the first failure of a Write.
func (g *Guest) Err() error {
	err := g.err
	g.err = nil
	return err
}

// Post writes ptnet register off through the mailbox.
func (g *Guest) Post(off, val uint32) error {
	g.seq++
	store(g.page, DevMboxOp, OpWrite)
	store(g.page, DevMboxReg, off)
	store(g.page, DevMboxVal, val)
	store(g.page, DevMboxReq, g.seq) // last: the host reads the rest after it
	g.ring(g.CtlVector())
	deadline := time.Now().Add(g.Timeout)
	for pause := 50 * time.Microsecond; load(g.page, DevMboxAck) != g.seq; pause = min(2*pause, 10*time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("shmdev: the host did not answer register write %#x=%#x within %v: is ptbhyve running?", off, val, g.Timeout)
		}
		g.wait(pause)
	}
	switch r := load(g.page, DevMboxResult); r {
	case 0:
		return nil
	case ResultENOLINK:
		return fmt.Errorf("shmdev: register write %#x: %w (no port attached)", off, syscall.Errno(r))
	default:
		return fmt.Errorf("shmdev: register write %#x: %w", off, syscall.Errno(r))
	}
}

// Memdev is the memdev register snapshot.
func (g *Guest) Memdev() ptnetmap.Registers { return memdevRegs{g.page} }

type memdevRegs struct{ page []byte }

func (m memdevRegs) Read(off uint32) uint32 {
	if off >= ptnetmap.RegMemdevEnd || off%4 != 0 {
		return 0
	}
	return load(m.page, DevMemdevRegs+uint64(off))
}

func (memdevRegs) Write(uint32, uint32) {}

// CSB returns the guest's CSB for n rings in its CSB page and the two
// addresses (device-memory offsets) to give the device with
// ptnetmap.Create.
func (g *Guest) CSB(n int) (csb ptnetmap.CSB, atok, ktoa uint64, err error) {
	if n < 1 || n > 2*g.layout.Rings {
		return ptnetmap.CSB{}, 0, 0, fmt.Errorf("shmdev: %d rings; the device has at most %d", n, 2*g.layout.Rings)
	}
	half := uint64(PageSize / 2)
	a := g.page[DevCSB : DevCSB+half]
	k := g.page[DevCSB+half : DevCSB+2*half]
	return ptnetmap.CSBFromBytes(a, k, n), g.pageAt + DevCSB, g.pageAt + DevCSB + half, nil
}

// Region is the netmap region's window of the device memory; what the
// memdev registers describe is inside it (checked by ptnetmap.Probe and
// NewGuest against its length).
func (g *Guest) Region() []byte {
	l := g.layout
	return g.mem[l.RegionOffset : l.RegionOffset+l.RegionSize : l.RegionOffset+l.RegionSize]
}

// Kick rings ring i's doorbell (ptnetmap.Kicker).
func (g *Guest) Kick(i int) { g.ring(i) }
