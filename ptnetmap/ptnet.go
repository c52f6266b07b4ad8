package ptnetmap

import (
	"fmt"
	"sync"

	"github.com/ptbhyve/ptbhyve/internal/event"
	"github.com/ptbhyve/ptbhyve/netmap"
)

// GuestMemory resolves guest-physical addresses, where a guest puts its
// CSB, to memory this process can touch.
type GuestMemory interface {
	// Slice returns guest-physical [gpa, gpa+size) or an error if any of
	// it is not guest RAM.
	Slice(gpa, size uint64) ([]byte, error)
}

// PtnetConfig is what a ptnet function needs from its transport.
type PtnetConfig struct {
	Port  netmap.Port
	MAC   [6]byte
	Mem   GuestMemory
	Irq   Interrupter
	Kicks []*event.Event // one per ring, TX then RX
	// Loop serves the rings between PTCTL CREATE and DELETE: a *Loop
	// (several devices may share one, one thread for many VMs) or a
	// *KernelSync for kernel netmap ports.
	Loop Syncer
}

// Ptnet is the ptnet NIC function: its register file and the sync loop that
// PTCTL CREATE starts. Register accesses come from the transport (vCPU
// threads, a socket); the loop runs on its own goroutine.
type Ptnet struct {
	mu  sync.Mutex
	cfg PtnetConfig
	ntx int
	nrx int

	feat     uint32
	ghHi     uint32
	hgHi     uint32
	gh, hg   uint64
	status   uint32
	att      Session
	finished []RingStats // counters of loops that ended, so stats survive DELETE
}

// NewPtnet builds the function for cfg.Port. The port's ring counts must
// fit the device: at most 32 rings in all (the doorbell window).
func NewPtnet(cfg PtnetConfig) (*Ptnet, error) {
	ntx, nrx := len(cfg.Port.TxRings()), len(cfg.Port.RxRings())
	if ntx+nrx > MaxRings {
		return nil, fmt.Errorf("ptnetmap: port %s has %d rings; a ptnet device serves at most %d", cfg.Port.Name(), ntx+nrx, MaxRings)
	}
	if len(cfg.Kicks) != ntx+nrx {
		return nil, fmt.Errorf("ptnetmap: port %s has %d rings but %d doorbells", cfg.Port.Name(), ntx+nrx, len(cfg.Kicks))
	}
	return &Ptnet{cfg: cfg, ntx: ntx, nrx: nrx}, nil
}

// Read returns register off (decoded with the 0xff mask).
func (d *Ptnet) Read(off uint32) uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.cfg.Port
	mac := d.cfg.MAC
	switch off & PtnetRegMask {
	case RegPtfeat:
		return d.feat
	case RegPtctl:
		return d.status
	case RegMacLo:
		return uint32(mac[2])<<24 | uint32(mac[3])<<16 | uint32(mac[4])<<8 | uint32(mac[5])
	case RegMacHi:
		return uint32(mac[0])<<8 | uint32(mac[1])
	case RegNifpOfs:
		return uint32(p.If().Offset())
	case RegNumTxRings:
		return uint32(d.ntx)
	case RegNumRxRings:
		return uint32(d.nrx)
	case RegNumTxSlots:
		return p.TxRings()[0].N
	case RegNumRxSlots:
		return p.RxRings()[0].N
	case RegVnetHdrLen:
		return 0 // no backend here carries virtio-net headers
	case RegHostMemID:
		return uint32(p.MemID())
	case RegCSBGHBAH:
		return uint32(d.gh >> 32)
	case RegCSBGHBAL:
		return uint32(d.gh)
	case RegCSBHGBAH:
		return uint32(d.hg >> 32)
	case RegCSBHGBAL:
		return uint32(d.hg)
	}
	return 0
}

// Write handles a register write. Writes to read-only and unknown
// registers are ignored, as in the reference device.
func (d *Ptnet) Write(off, val uint32) {
	off &= PtnetRegMask
	if off >= RegKickBase {
		if i := int(off-RegKickBase) / 4; i < len(d.cfg.Kicks) && off%4 == 0 {
			d.cfg.Kicks[i].Signal()
		}
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch off {
	case RegPtfeat:
		d.feat = 0 // the only feature, VNET_HDR, needs a backend that has it
	case RegPtctl:
		d.status = d.ptctl(val)
	case RegCSBGHBAH:
		d.ghHi = val
	case RegCSBGHBAL:
		d.deleteLocked()
		d.gh = uint64(d.ghHi)<<32 | uint64(val)
	case RegCSBHGBAH:
		d.hgHi = val
	case RegCSBHGBAL:
		d.deleteLocked()
		d.hg = uint64(d.hgHi)<<32 | uint64(val)
	}
}

func (d *Ptnet) ptctl(cmd uint32) uint32 {
	switch cmd {
	case PtctlCreate:
		return d.createLocked()
	case PtctlDelete:
		d.deleteLocked()
		return StatusOK
	}
	return StatusEINVL
}

func (d *Ptnet) createLocked() uint32 {
	d.deleteLocked()
	if d.gh == 0 || d.hg == 0 {
		return StatusENXIO
	}
	if d.gh%CSBEntrySize != 0 || d.hg%CSBEntrySize != 0 {
		return StatusEINVL
	}
	n := uint64(d.ntx + d.nrx)
	gh, err := d.cfg.Mem.Slice(d.gh, n*CSBEntrySize)
	if err != nil {
		return StatusEFAUL
	}
	hg, err := d.cfg.Mem.Slice(d.hg, n*CSBEntrySize)
	if err != nil {
		return StatusEFAUL
	}
	att, err := d.cfg.Loop.Serve(Binding{Port: d.cfg.Port, CSB: CSBFromBytes(gh, hg, int(n)), Kicks: d.cfg.Kicks, Irq: d.cfg.Irq})
	if err != nil {
		return StatusEBUSY
	}
	d.att = att
	return StatusOK
}

func (d *Ptnet) deleteLocked() {
	if d.att == nil {
		return
	}
	d.att.Detach()
	d.finished = SumStats(d.finished, d.att.Stats())
	d.att = nil
}

// Reset returns the function to its power-on state: the loop stops and the
// CSB addresses and negotiated features are forgotten.
func (d *Ptnet) Reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deleteLocked()
	d.feat, d.ghHi, d.hgHi, d.gh, d.hg, d.status = 0, 0, 0, 0, 0, 0
}

// Running reports whether the sync loop runs (between CREATE and DELETE).
func (d *Ptnet) Running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.att != nil
}

// Stats sums the counters of every loop this function has run.
func (d *Ptnet) Stats() []RingStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := append([]RingStats(nil), d.finished...)
	if d.att != nil {
		s = SumStats(s, d.att.Stats())
	}
	if s == nil {
		// No loop has run yet: every ring, at zero.
		for i := range d.ntx + d.nrx {
			dir, r := "tx", i
			if i >= d.ntx {
				dir, r = "rx", i-d.ntx
			}
			s = append(s, RingStats{Ring: r, Dir: dir})
		}
	}
	return s
}

// SumStats adds b into a, ring by ring (matched by ring and direction, so
// ports of different ring counts add up); rings only b has are appended.
func SumStats(a, b []RingStats) []RingStats {
	for _, r := range b {
		found := false
		for i := range a {
			if a[i].Ring == r.Ring && a[i].Dir == r.Dir {
				a[i].Add(r)
				found = true
			}
		}
		if !found {
			a = append(a, r)
		}
	}
	return a
}
