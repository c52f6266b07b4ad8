package ptnetmap

import (
	"fmt"

	"github.com/ptbhyve/ptbhyve/netmap"
)

// Kicker rings the doorbell of a ring (a write to the ptnet kick register,
// an ivshmem doorbell, an eventfd).
type Kicker interface {
	Kick(ring int)
}

// GuestRing is the guest kernel's side of one passed-through ring: what
// netmap's ptnet guest driver does in netmap_pt_guest_txsync/rxsync. The
// guest application fills or drains the shared netmap ring and moves head
// and cur as with any netmap port, then calls Sync.
type GuestRing struct {
	*netmap.KRing
	id   int
	atok *Atok
	ktoa *Ktoa
	kick Kicker

	// NoIntr keeps the ring from asking for interrupts (NKR_NOINTR): a
	// busy-polling application sets it and never sleeps.
	NoIntr bool
	// Kicks counts the doorbells this ring rang.
	Kicks uint64
}

// Guest is the guest's view of one ptnet device: the host's netmap_if in
// the shared region, and the guest side of each ring.
type Guest struct {
	Region *netmap.Region
	If     *netmap.If
	Tx, Rx []*GuestRing
}

// GuestConfig is what a guest learns from the device: the memdev's region
// and pool layout, the ptnet registers, and its own CSB.
type GuestConfig struct {
	Mem     []byte // the memdev BAR, mapped
	Pools   netmap.PoolsInfo
	NifpOfs uint64
	NumTx   int
	NumRx   int
	CSB     CSB
	Kick    Kicker
}

// NewGuest attaches to a device after PTCTL CREATE, reading the initial
// ring state from the CSB as ptnet_sync_from_csb does. Every layout value
// comes from the host and is checked before use.
func NewGuest(c GuestConfig) (*Guest, error) {
	region, err := netmap.MapRegion(c.Mem, c.Pools)
	if err != nil {
		return nil, err
	}
	nif, err := netmap.OpenIf(region.Mem(), c.NifpOfs)
	if err != nil {
		return nil, err
	}
	if nif.NumTx() != c.NumTx || nif.NumRx() != c.NumRx {
		return nil, fmt.Errorf("ptnetmap: device says %d/%d rings, netmap_if says %d/%d", c.NumTx, c.NumRx, nif.NumTx(), nif.NumRx())
	}
	n := c.NumTx + c.NumRx
	if len(c.CSB.Atok) < n || len(c.CSB.Ktoa) < n {
		return nil, fmt.Errorf("ptnetmap: CSB has %d entries for %d rings", len(c.CSB.Atok), n)
	}
	g := &Guest{Region: region, If: nif}
	for i := range n {
		tx := i < c.NumTx
		var ring netmap.Ring
		if tx {
			ring = nif.TxRing(i)
		} else {
			ring = nif.RxRing(i - c.NumTx)
		}
		if ring.Header() == nil {
			return nil, fmt.Errorf("ptnetmap: ring %d is not bound in the netmap_if", i)
		}
		gr := &GuestRing{KRing: netmap.NewKRing(region, ring, tx), id: i, atok: &c.CSB.Atok[i], ktoa: &c.CSB.Ktoa[i], kick: c.Kick}
		gr.syncFromCSB()
		if tx {
			g.Tx = append(g.Tx, gr)
		} else {
			g.Rx = append(g.Rx, gr)
		}
	}
	return g, nil
}

// syncFromCSB adopts the host's view of the ring (ptnet_sync_from_csb).
// The values come from the host, which this side trusts; they are still
// reduced modulo the ring size so a corrupt CSB cannot index past a ring.
func (g *GuestRing) syncFromCSB() {
	head, cur, _ := KernRead(g.atok)
	hwtail, hwcur := ApplRead(g.ktoa)
	n := g.N
	g.RHead, g.RCur, g.HwCur, g.HwTail = head%n, cur%n, hwcur%n, hwtail%n
	g.RTail = g.HwTail
	g.Ring.SetHead(g.RHead)
	g.Ring.SetCur(g.RCur)
	g.Ring.SetTail(g.HwTail)
}

// Sync publishes the application's head and cur and picks up the host's
// progress. flags are NAF_* (netmap.NAFForceReclaim kicks on every TX
// sync, as NIOCTXSYNC does). It returns false if the application broke the
// ring protocol and the ring was reset.
func (g *GuestRing) Sync(flags uint32) bool {
	if !g.Prologue(g.Ring.Head(), g.Ring.Cur()) {
		g.Reinit()
		return false
	}
	if g.Tx {
		g.txsync(flags)
	} else {
		g.rxsync(flags)
	}
	g.Finalize()
	return true
}

func (g *GuestRing) txsync(flags uint32) {
	g.atok.SetApplNeedKick(false)
	_, g.HwCur = g.read()
	ApplWrite(g.atok, g.RCur, g.RHead)
	// ApplWrite's stores are sequentially consistent, so the load of
	// kern_need_kick below is ordered after them (the fence netmap's guest
	// lacks, research §6.8).
	wouldBlock := g.RCur == g.HwTail
	kick := (g.RHead != g.HwCur || wouldBlock) && g.ktoa.KernNeedKick() || flags&netmap.NAFForceReclaim != 0
	if kick {
		g.atok.SetSyncFlags(flags)
	}
	if wouldBlock || flags&netmap.NAFForceReclaim != 0 {
		g.HwTail, g.HwCur = g.read()
	}
	if g.RCur == g.HwTail && !g.NoIntr {
		g.atok.SetApplNeedKick(true)
		g.HwTail, g.HwCur = g.read()
		if g.RCur != g.HwTail {
			g.atok.SetApplNeedKick(false)
		}
	}
	if kick {
		g.Kicks++
		g.kick.Kick(g.id)
	}
}

func (g *GuestRing) rxsync(flags uint32) {
	g.atok.SetApplNeedKick(false)
	g.HwTail, g.HwCur = g.read()
	released := g.RHead != g.HwCur
	if released {
		ApplWrite(g.atok, g.RCur, g.RHead)
	}
	wouldBlock := g.RCur == g.HwTail
	if wouldBlock && !g.NoIntr {
		g.atok.SetApplNeedKick(true)
		g.HwTail, g.HwCur = g.read()
		wouldBlock = g.RCur == g.HwTail
		if !wouldBlock {
			g.atok.SetApplNeedKick(false)
		}
	}
	if (released || wouldBlock) && g.ktoa.KernNeedKick() {
		g.atok.SetSyncFlags(flags)
		g.Kicks++
		g.kick.Kick(g.id)
	}
}

// read is ApplRead with the host's indexes kept inside the ring, so even a
// corrupt host cannot make the guest index past its slots.
func (g *GuestRing) read() (hwtail, hwcur uint32) {
	hwtail, hwcur = ApplRead(g.ktoa)
	if hwtail >= g.N {
		hwtail %= g.N
	}
	if hwcur >= g.N {
		hwcur %= g.N
	}
	return
}

// WantsInterrupt reports whether the ring asked the host for an interrupt
// in its last sync, i.e. whether sleeping until one arrives is safe.
func (g *GuestRing) WantsInterrupt() bool { return g.atok.ApplNeedKick() }
