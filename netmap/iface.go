package netmap

import (
	"encoding/binary"
	"unsafe"
)

// If is a view of a struct netmap_if: the per-descriptor table that names a
// port's rings by their offset from the netmap_if itself.
type If struct {
	mem  []byte // the whole region
	off  uint64 // offset of the netmap_if in mem
	ntx  uint32 // hardware TX rings
	nrx  uint32
	htx  uint32 // host TX rings as recorded (at least 1)
	hrx  uint32
	size uint64 // IfHeaderSize + 8*entries
}

// Offsets of the netmap_if fields.
const (
	ifOffName     = 0
	ifOffVersion  = 16
	ifOffFlags    = 20
	ifOffTxRings  = 24
	ifOffRxRings  = 28
	ifOffBufsHead = 32
	ifOffHostTx   = 36
	ifOffHostRx   = 40
	ifOffRingOfs  = 56
)

// Offset is where the netmap_if lies in the region (nmreq_register.nr_offset
// and the ptnet NIFP_OFS register).
func (f *If) Offset() uint64 { return f.off }

// Name returns ni_name.
func (f *If) Name() string {
	b := f.mem[f.off+ifOffName : f.off+ifOffName+IfNameSize]
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// NumTx and NumRx are the hardware ring counts (ni_tx_rings, ni_rx_rings).
func (f *If) NumTx() int { return int(f.ntx) }

// NumRx is ni_rx_rings.
func (f *If) NumRx() int { return int(f.nrx) }

// RingOfs returns ring_ofs[k], the signed offset of ring k from the
// netmap_if, 0 for an unbound ring.
func (f *If) RingOfs(k int) int64 {
	p := f.off + ifOffRingOfs + 8*uint64(k)
	return int64(binary.LittleEndian.Uint64(f.mem[p : p+8]))
}

func (f *If) setRingOfs(k int, v int64) {
	p := f.off + ifOffRingOfs + 8*uint64(k)
	binary.LittleEndian.PutUint64(f.mem[p:p+8], uint64(v))
}

// txIndex and rxIndex place ring i in ring_ofs as NETMAP_TXRING and
// NETMAP_RXRING do: TX hardware rings, host TX rings, RX hardware rings,
// host RX rings.
func (f *If) txIndex(i int) int { return i }
func (f *If) rxIndex(i int) int { return i + int(f.ntx+f.htx) }

// TxRing returns hardware TX ring i.
func (f *If) TxRing(i int) Ring { return f.ring(f.txIndex(i)) }

// RxRing returns hardware RX ring i.
func (f *If) RxRing(i int) Ring { return f.ring(f.rxIndex(i)) }

func (f *If) ring(k int) Ring {
	off := uint64(int64(f.off) + f.RingOfs(k))
	h := (*RingHeader)(unsafe.Pointer(&f.mem[off]))
	return Ring{h: h, slots: unsafe.Pointer(&f.mem[off+RingHeaderSize]), n: h.NumSlots}
}

// OpenIf reads the netmap_if at off in mem and checks that it and every
// ring it names lie inside mem, so a region received from elsewhere (a
// kernel, a peer process) can be walked without further bounds checks.
func OpenIf(mem []byte, off uint64) (*If, error) {
	if off > uint64(len(mem)) || uint64(len(mem))-off < IfHeaderSize {
		return nil, errorf("netmap_if offset %d outside the %d-byte region", off, len(mem))
	}
	le := binary.LittleEndian
	f := &If{mem: mem, off: off,
		ntx: le.Uint32(mem[off+ifOffTxRings:]),
		nrx: le.Uint32(mem[off+ifOffRxRings:]),
		htx: max(1, le.Uint32(mem[off+ifOffHostTx:])),
		hrx: max(1, le.Uint32(mem[off+ifOffHostRx:])),
	}
	if f.ntx > MaxRings || f.nrx > MaxRings || f.htx > MaxRings || f.hrx > MaxRings {
		return nil, errorf("netmap_if at %d has implausible ring counts tx=%d rx=%d host=%d/%d", off, f.ntx, f.nrx, f.htx, f.hrx)
	}
	entries := uint64(f.ntx + f.htx + f.nrx + f.hrx)
	f.size = IfHeaderSize + 8*entries
	if uint64(len(mem))-off < f.size {
		return nil, errorf("netmap_if at %d: ring table runs past the region", off)
	}
	for k := 0; k < int(entries); k++ {
		ro := f.RingOfs(k)
		if ro == 0 {
			continue
		}
		ra := int64(off) + ro
		if ra < 0 || uint64(ra)%8 != 0 || uint64(ra)+RingHeaderSize > uint64(len(mem)) {
			return nil, errorf("netmap_if at %d: ring %d at %d is outside the region", off, k, ra)
		}
		h := (*RingHeader)(unsafe.Pointer(&mem[ra]))
		n := uint64(h.NumSlots)
		if n < 2 || n > MaxSlots || uint64(ra)+RingHeaderSize+n*SlotSize > uint64(len(mem)) {
			return nil, errorf("netmap_if at %d: ring %d has %d slots, which do not fit", off, k, n)
		}
	}
	return f, nil
}

// Limits the region code enforces on layouts it builds or accepts.
const (
	MaxRings = 64    // per direction; ptnet allows T+R <= 32 overall
	MaxSlots = 32768 // netmap's rings never exceed this
)
