// Package ptnetmap is the ptnetmap device model: the register files of the
// ptnet NIC and the ptnetmap-memdev functions, the Communication Status
// Block that carries ring indexes between guest and host, the host sync
// loop that serves a guest's rings over any netmap.Port, and the guest side
// of the same protocol.
//
// The protocol is netmap's (sys/net/netmap_virt.h, netmap_kloop.c): the
// guest ("appl") publishes head and cur in nm_csb_atok, the host ("kern")
// publishes hwcur and hwtail in nm_csb_ktoa, and each side tells the other
// whether it wants to be notified (appl_need_kick: interrupts; kern_need_kick:
// doorbells). Each side re-checks after asking, so a notification is never
// lost and never sent to a side that is busy anyway.
package ptnetmap

import (
	"sync/atomic"
	"unsafe"
)

// CSBEntrySize is the size of nm_csb_atok and nm_csb_ktoa: one cache line,
// so the two directions never share a line.
const CSBEntrySize = 64

// Atok is struct nm_csb_atok (application to kernel), written by the guest.
type Atok struct {
	head         uint32
	cur          uint32
	applNeedKick uint32
	syncFlags    uint32
	_            [48]byte
}

// Ktoa is struct nm_csb_ktoa (kernel to application), written by the host.
type Ktoa struct {
	hwcur        uint32
	hwtail       uint32
	kernNeedKick uint32
	_            [52]byte
}

// CSB is the pair of arrays, ring order TX then RX.
type CSB struct {
	Atok []Atok
	Ktoa []Ktoa
}

// CSBFromBytes views n entries at the start of atok and ktoa. Both slices
// must be 64-byte aligned and hold n entries; the caller checks both before
// calling (MapCSB does).
func CSBFromBytes(atok, ktoa []byte, n int) CSB {
	return CSB{
		Atok: unsafe.Slice((*Atok)(unsafe.Pointer(unsafe.SliceData(atok))), n),
		Ktoa: unsafe.Slice((*Ktoa)(unsafe.Pointer(unsafe.SliceData(ktoa))), n),
	}
}

// The four accessors. Go's atomic loads and stores are sequentially
// consistent, which is stronger than the stst/ldld barriers netmap puts
// between them; what matters is the order of the fields.

// ApplWrite publishes cur, then head: the host may see a new cur with an old
// head (cur may lead head), never a new head with an old cur.
func ApplWrite(a *Atok, cur, head uint32) {
	atomic.StoreUint32(&a.cur, cur)
	atomic.StoreUint32(&a.head, head)
}

// ApplRead reads hwtail, then hwcur.
func ApplRead(k *Ktoa) (hwtail, hwcur uint32) {
	hwtail = atomic.LoadUint32(&k.hwtail)
	hwcur = atomic.LoadUint32(&k.hwcur)
	return
}

// KernWrite publishes hwcur, then hwtail (the mirror of ApplWrite).
func KernWrite(k *Ktoa, hwcur, hwtail uint32) {
	atomic.StoreUint32(&k.hwcur, hwcur)
	atomic.StoreUint32(&k.hwtail, hwtail)
}

// KernRead reads head, then cur and sync_flags.
func KernRead(a *Atok) (head, cur, flags uint32) {
	head = atomic.LoadUint32(&a.head)
	cur = atomic.LoadUint32(&a.cur)
	flags = atomic.LoadUint32(&a.syncFlags)
	return
}

// ApplNeedKick reports whether the guest asked for an interrupt.
func (a *Atok) ApplNeedKick() bool { return atomic.LoadUint32(&a.applNeedKick) != 0 }

// SetApplNeedKick is the guest enabling or disabling interrupts.
func (a *Atok) SetApplNeedKick(on bool) { atomic.StoreUint32(&a.applNeedKick, b2u(on)) }

// SetSyncFlags records the flags of the sync that is about to kick.
func (a *Atok) SetSyncFlags(f uint32) { atomic.StoreUint32(&a.syncFlags, f) }

// Init sets the entry as CSB_ENABLE does.
func (a *Atok) Init(head, cur uint32) {
	atomic.StoreUint32(&a.head, head)
	atomic.StoreUint32(&a.cur, cur)
	atomic.StoreUint32(&a.applNeedKick, 1)
	atomic.StoreUint32(&a.syncFlags, 1)
}

// KernNeedKick reports whether the host asked for doorbells.
func (k *Ktoa) KernNeedKick() bool { return atomic.LoadUint32(&k.kernNeedKick) != 0 }

// SetKernNeedKick is the host enabling or disabling doorbells.
func (k *Ktoa) SetKernNeedKick(on bool) { atomic.StoreUint32(&k.kernNeedKick, b2u(on)) }

// Init sets the entry as CSB_ENABLE does.
func (k *Ktoa) Init(hwcur, hwtail uint32) {
	KernWrite(k, hwcur, hwtail)
	atomic.StoreUint32(&k.kernNeedKick, 1)
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}
