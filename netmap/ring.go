package netmap

import (
	"sync/atomic"
	"unsafe"
)

// Slot is struct netmap_slot, 16 bytes. A *Slot always points into a shared
// region; the other side may rewrite it at any time, so a consumer copies
// the fields it needs once and validates the copy before use.
type Slot struct {
	BufIdx uint32 // buffer index in the region's buffer pool
	Len    uint16 // bytes valid in the buffer
	Flags  uint16 // NS_*
	Ptr    uint64 // NS_INDIRECT pointer, or the per-slot offset with OPT_OFFSETS
}

// RingHeader is the fixed 256-byte part of struct netmap_ring. head and cur
// belong to the application, tail to the kernel; they are accessed
// atomically because the two owners run on different CPUs (and, for a
// guest, in different address spaces).
type RingHeader struct {
	BufOfs     int64  // from this ring to buffer 0
	NumSlots   uint32 // const
	BufSize    uint32 // const: nr_buf_size
	RingID     uint16 // const
	Dir        uint16 // const; netmap stores NR_TX=1/NR_RX=0, see DirTX
	head       uint32
	cur        uint32
	tail       uint32
	Flags      uint32 // NR_TIMESTAMP, NR_FORWARD
	_          uint32
	TS         [16]byte // struct timeval, written by the kernel on RX syncs
	OffsetMask uint64
	BufAlign   uint64
	_          [56]byte
	Sem        [128]byte
}

// Directions as netmap's kernel stores them in netmap_ring.dir. The header
// comment upstream says the opposite; the kernel writes enum txrx.
const (
	DirRX = 0
	DirTX = 1
)

// Ring is a view of one netmap_ring (header plus slots) inside a region.
// The zero Ring is invalid; rings come from Region.Ring or If.TxRing/RxRing.
type Ring struct {
	h     *RingHeader
	slots unsafe.Pointer
	n     uint32
}

// Header gives direct access to the constant fields of the ring header.
func (r Ring) Header() *RingHeader { return r.h }

// NumSlots is the ring size as recorded when the ring was laid out; it is
// cached so that a peer rewriting the shared header cannot change it.
func (r Ring) NumSlots() uint32 { return r.n }

// Head loads netmap_ring.head.
func (r Ring) Head() uint32 { return atomic.LoadUint32(&r.h.head) }

// Cur loads netmap_ring.cur.
func (r Ring) Cur() uint32 { return atomic.LoadUint32(&r.h.cur) }

// Tail loads netmap_ring.tail.
func (r Ring) Tail() uint32 { return atomic.LoadUint32(&r.h.tail) }

// SetHead stores netmap_ring.head with release semantics, so the slots
// written before it are visible to whoever reads the new head.
func (r Ring) SetHead(v uint32) { atomic.StoreUint32(&r.h.head, v) }

// SetCur stores netmap_ring.cur.
func (r Ring) SetCur(v uint32) { atomic.StoreUint32(&r.h.cur, v) }

// SetTail stores netmap_ring.tail.
func (r Ring) SetTail(v uint32) { atomic.StoreUint32(&r.h.tail, v) }

// Advance sets head and cur to i, as an application does after filling or
// consuming slots up to i.
func (r Ring) Advance(i uint32) {
	r.SetCur(i)
	r.SetHead(i)
}

// Slot returns slot i. i must be below NumSlots: callers validate indexes
// that come from shared memory before calling (see KRing).
func (r Ring) Slot(i uint32) *Slot {
	if i >= r.n {
		panic("netmap: slot index out of range")
	}
	return (*Slot)(unsafe.Add(r.slots, uintptr(i)*SlotSize))
}

// Next is nm_ring_next.
func (r Ring) Next(i uint32) uint32 {
	if i+1 == r.n {
		return 0
	}
	return i + 1
}

// Space is nm_ring_space: slots the application owns, tail - head mod N.
func (r Ring) Space() uint32 { return Dist(r.Head(), r.Tail(), r.n) }

// Empty is nm_ring_empty.
func (r Ring) Empty() bool { return r.Head() == r.Tail() }

// TxPending is nm_tx_pending: the kernel still holds slots to transmit.
func (r Ring) TxPending() bool { return r.Next(r.Tail()) != r.Head() }

// Dist is the number of slots from a forward to b on a ring of n slots.
func Dist(a, b, n uint32) uint32 {
	if b >= a {
		return b - a
	}
	return b + n - a
}

// Add returns i+k on a ring of n slots; k must be at most n.
func Add(i, k, n uint32) uint32 {
	i += k
	if i >= n {
		i -= n
	}
	return i
}

// Prev returns the slot before i on a ring of n slots.
func Prev(i, n uint32) uint32 {
	if i == 0 {
		return n - 1
	}
	return i - 1
}

// Between reports whether x lies in the circular interval [lo, hi] of a
// ring, the test netmap's sync prologues apply to head and cur.
func Between(lo, x, hi uint32) bool {
	if lo <= hi {
		return lo <= x && x <= hi
	}
	return x >= lo || x <= hi
}
