package netmap

import (
	"encoding/binary"
	"fmt"
	"unsafe"
)

// PoolsInfo is struct nmreq_pools_info: where the three pools of a region
// lie and how they are cut. It is what POOLS_INFO_GET reports, what the
// ptnetmap-memdev registers expose to a guest, and what EXTMEM takes.
type PoolsInfo struct {
	MemSize          uint64
	MemID            uint16
	IfPoolOffset     uint64
	IfPoolObjTotal   uint32
	IfPoolObjSize    uint32
	RingPoolOffset   uint64
	RingPoolObjTotal uint32
	RingPoolObjSize  uint32
	BufPoolOffset    uint64
	BufPoolObjTotal  uint32
	BufPoolObjSize   uint32
}

// PoolParams asks for pool sizes, as netmap's dev.netmap.{if,ring,buf}_{num,size}
// sysctls and the @extmem: keys do. Layout rounds them as netmap does.
type PoolParams struct {
	IfNum, IfSize     uint32
	RingNum, RingSize uint32
	BufNum, BufSize   uint32
}

const (
	pageSize      = 4096
	maxClustSize  = 1 << 22 // netmap's MAX_CLUSTSIZE
	objAlign      = 64      // netmap's LINE_ROUND
	minBufSize    = 64
	maxBufSize    = 65536
	maxBufNum     = 1000000
	minBufNum     = 4
	maxRingObj    = 32 * pageSize
	maxIfObj      = pageSize
	reservedBufs  = 2 // buffers 0 and 1 are never handed out
	ifHeaderBytes = IfHeaderSize
)

type pool struct {
	objSize, objTotal uint32
}

// cutPool applies netmap's object-pool sizing: the object size is rounded up
// to 64 bytes, a cluster is the smallest run of objects that ends on a page
// boundary (at most 4 MiB), and the object count is rounded up to whole
// clusters. The pool's size is therefore objTotal*objSize exactly.
func cutPool(name string, num, size, minSize, maxSize, minNum, maxNum uint32) (pool, error) {
	if r := size % objAlign; r != 0 {
		size += objAlign - r
	}
	if size < minSize || size > maxSize {
		return pool{}, errorf("%s pool: object size %d out of range [%d, %d]", name, size, minSize, maxSize)
	}
	if num < minNum || num > maxNum {
		return pool{}, errorf("%s pool: object count %d out of range [%d, %d]", name, num, minNum, maxNum)
	}
	entries := uint32(0)
	for i := uint32(1); i*size <= maxClustSize; i++ {
		if i*size%pageSize == 0 {
			entries = i
			break
		}
	}
	if entries == 0 {
		return pool{}, errorf("%s pool: no cluster of %d-byte objects fills whole pages", name, size)
	}
	clusters := (num + entries - 1) / entries
	return pool{objSize: size, objTotal: clusters * entries}, nil
}

// Layout computes the pools of a region the way netmap's allocator does:
// the if pool at offset 0, then the ring pool, then the buffer pool.
func Layout(p PoolParams) (PoolsInfo, error) {
	ifp, err := cutPool("if", p.IfNum, p.IfSize, ifHeaderBytes, maxIfObj, 1, 1<<16)
	if err != nil {
		return PoolsInfo{}, err
	}
	ringp, err := cutPool("ring", p.RingNum, p.RingSize, RingHeaderSize, maxRingObj, 1, 1<<16)
	if err != nil {
		return PoolsInfo{}, err
	}
	bufp, err := cutPool("buf", p.BufNum, p.BufSize, minBufSize, maxBufSize, minBufNum, maxBufNum)
	if err != nil {
		return PoolsInfo{}, err
	}
	var info PoolsInfo
	info.IfPoolOffset = 0
	info.IfPoolObjTotal, info.IfPoolObjSize = ifp.objTotal, ifp.objSize
	info.RingPoolOffset = uint64(ifp.objTotal) * uint64(ifp.objSize)
	info.RingPoolObjTotal, info.RingPoolObjSize = ringp.objTotal, ringp.objSize
	info.BufPoolOffset = info.RingPoolOffset + uint64(ringp.objTotal)*uint64(ringp.objSize)
	info.BufPoolObjTotal, info.BufPoolObjSize = bufp.objTotal, bufp.objSize
	info.MemSize = info.BufPoolOffset + uint64(bufp.objTotal)*uint64(bufp.objSize)
	return info, nil
}

// ParamsFor sizes a private region for ports of nTx/nRx rings of the given
// slot counts, as netmap_mem_private_new does for VALE ports and pipes:
// one netmap_if and its rings per port (counting the fake host ring pair),
// a buffer for every slot, the two reserved buffers and extra buffers.
func ParamsFor(ports, nTx, nRx int, txSlots, rxSlots uint32, bufSize, extraBufs uint32) PoolParams {
	entries := uint32(nTx + 1 + nRx + 1)
	maxSlots := max(txSlots, rxSlots)
	return PoolParams{
		IfNum:    uint32(ports),
		IfSize:   ifHeaderBytes + 8*entries,
		RingNum:  uint32(ports * (nTx + nRx)),
		RingSize: RingHeaderSize + SlotSize*maxSlots,
		BufNum:   uint32(ports)*(uint32(nTx)*txSlots+uint32(nRx)*rxSlots) + reservedBufs + extraBufs,
		BufSize:  bufSize,
	}
}

// Region is one netmap memory region in this process's address space, with
// the allocator that hands out its interfaces, rings and buffers. The
// process that builds the region owns the allocator; peers that map the
// same bytes (a guest, a bench process) only read the layout.
type Region struct {
	mem  []byte
	info PoolsInfo

	ifUsed   []bool
	ringUsed []bool
	freeBufs []uint32 // stack of free buffer indexes
}

// NewRegion prepares mem, which must be zeroed and at least info.MemSize
// bytes, to be carved up as info says.
func NewRegion(mem []byte, info PoolsInfo) (*Region, error) {
	if uint64(len(mem)) < info.MemSize {
		return nil, errorf("region of %d bytes is smaller than its layout (%d bytes)", len(mem), info.MemSize)
	}
	if info.BufPoolObjTotal <= reservedBufs {
		return nil, errorf("region has %d buffers; netmap reserves the first %d", info.BufPoolObjTotal, reservedBufs)
	}
	r := &Region{
		mem:      mem[:info.MemSize],
		info:     info,
		ifUsed:   make([]bool, info.IfPoolObjTotal),
		ringUsed: make([]bool, info.RingPoolObjTotal),
		freeBufs: make([]uint32, 0, info.BufPoolObjTotal-reservedBufs),
	}
	for i := info.BufPoolObjTotal - 1; i >= reservedBufs; i-- {
		r.freeBufs = append(r.freeBufs, i)
	}
	return r, nil
}

// Mem is the whole region.
func (r *Region) Mem() []byte { return r.mem }

// Info is the region's layout.
func (r *Region) Info() PoolsInfo { return r.info }

// NumBufs is the buffer pool's object count: valid buffer indexes are
// [2, NumBufs).
func (r *Region) NumBufs() uint32 { return r.info.BufPoolObjTotal }

// BufSize is the buffer pool's object size.
func (r *Region) BufSize() uint32 { return r.info.BufPoolObjSize }

// ValidBuf reports whether idx names a buffer a slot may carry.
func (r *Region) ValidBuf(idx uint32) bool {
	return idx >= reservedBufs && idx < r.info.BufPoolObjTotal
}

// Buf returns buffer idx. Out-of-range indexes get buffer 0, the scratch
// buffer netmap maps them to, so a bad index never reaches outside the pool.
func (r *Region) Buf(idx uint32) []byte {
	if idx >= r.info.BufPoolObjTotal {
		idx = 0
	}
	sz := uint64(r.info.BufPoolObjSize)
	off := r.info.BufPoolOffset + uint64(idx)*sz
	return r.mem[off : off+sz : off+sz]
}

// BufPtr is the address of buffer idx (mapped as Buf does).
func (r *Region) BufPtr(idx uint32) unsafe.Pointer {
	return unsafe.Pointer(unsafe.SliceData(r.Buf(idx)))
}

// FreeBufs is how many buffers the allocator still holds.
func (r *Region) FreeBufs() int { return len(r.freeBufs) }

// AllocBuf takes a buffer from the pool.
func (r *Region) AllocBuf() (uint32, error) {
	n := len(r.freeBufs)
	if n == 0 {
		return 0, errorf("region out of buffers (%d in the pool)", r.info.BufPoolObjTotal)
	}
	idx := r.freeBufs[n-1]
	r.freeBufs = r.freeBufs[:n-1]
	return idx, nil
}

// FreeBuf returns a buffer to the pool; reserved and out-of-range indexes
// are refused, as netmap's free routine refuses them.
func (r *Region) FreeBuf(idx uint32) {
	if r.ValidBuf(idx) {
		r.freeBufs = append(r.freeBufs, idx)
	}
}

func takeObj(used []bool) (int, bool) {
	for i, u := range used {
		if !u {
			used[i] = true
			return i, true
		}
	}
	return 0, false
}

// IfConfig describes the rings of a port to lay out with NewIf.
type IfConfig struct {
	Name             string
	TxRings, RxRings int
	TxSlots, RxSlots uint32
}

// NewIf lays out a netmap_if with its hardware rings and gives every slot a
// buffer, as netmap does when a port is first registered. The host ring
// pair is recorded (ni_host_*_rings = 1) but not bound: its ring_ofs
// entries are 0, which is what a ptnet guest expects to find.
func (r *Region) NewIf(c IfConfig) (*If, error) {
	if c.TxRings < 1 || c.RxRings < 1 || c.TxRings > MaxRings || c.RxRings > MaxRings {
		return nil, errorf("port %q: %d TX and %d RX rings; want 1..%d each", c.Name, c.TxRings, c.RxRings, MaxRings)
	}
	if len(c.Name) >= IfNameSize {
		return nil, errorf("port name %q is longer than %d bytes", c.Name, IfNameSize-1)
	}
	for _, s := range []uint32{c.TxSlots, c.RxSlots} {
		if s < 2 || s > MaxSlots || RingHeaderSize+uint64(s)*SlotSize > uint64(r.info.RingPoolObjSize) {
			return nil, errorf("port %q: %d slots do not fit a %d-byte ring object", c.Name, s, r.info.RingPoolObjSize)
		}
	}
	entries := c.TxRings + 1 + c.RxRings + 1
	if IfHeaderSize+8*uint64(entries) > uint64(r.info.IfPoolObjSize) {
		return nil, errorf("port %q: %d rings do not fit a %d-byte netmap_if", c.Name, entries, r.info.IfPoolObjSize)
	}
	need := c.TxRings*int(c.TxSlots) + c.RxRings*int(c.RxSlots)
	if need > len(r.freeBufs) {
		return nil, errorf("port %q needs %d buffers, region has %d free", c.Name, need, len(r.freeBufs))
	}
	ifi, ok := takeObj(r.ifUsed)
	if !ok {
		return nil, errorf("region has no free netmap_if (%d in the pool)", len(r.ifUsed))
	}
	ifOff := r.info.IfPoolOffset + uint64(ifi)*uint64(r.info.IfPoolObjSize)
	b := r.mem[ifOff : ifOff+uint64(r.info.IfPoolObjSize)]
	clear(b)
	copy(b[ifOffName:ifOffName+IfNameSize-1], c.Name)
	le := binary.LittleEndian
	le.PutUint32(b[ifOffFlags:], NIPrivMem)
	le.PutUint32(b[ifOffTxRings:], uint32(c.TxRings))
	le.PutUint32(b[ifOffRxRings:], uint32(c.RxRings))
	le.PutUint32(b[ifOffHostTx:], 1)
	le.PutUint32(b[ifOffHostRx:], 1)
	f := &If{mem: r.mem, off: ifOff, ntx: uint32(c.TxRings), nrx: uint32(c.RxRings), htx: 1, hrx: 1,
		size: IfHeaderSize + 8*uint64(entries)}

	mk := func(k, id int, dir uint16, slots uint32) error {
		ri, ok := takeObj(r.ringUsed)
		if !ok {
			return errorf("region has no free ring (%d in the pool)", len(r.ringUsed))
		}
		off := r.info.RingPoolOffset + uint64(ri)*uint64(r.info.RingPoolObjSize)
		clear(r.mem[off : off+uint64(r.info.RingPoolObjSize)])
		h := (*RingHeader)(unsafe.Pointer(&r.mem[off]))
		h.BufOfs = int64(r.info.BufPoolOffset) - int64(off)
		h.NumSlots = slots
		h.BufSize = r.info.BufPoolObjSize
		h.RingID = uint16(id)
		h.Dir = dir
		ring := Ring{h: h, slots: unsafe.Pointer(&r.mem[off+RingHeaderSize]), n: slots}
		if dir == DirTX {
			ring.SetTail(slots - 1)
		}
		for s := range slots {
			idx, _ := r.AllocBuf()
			*ring.Slot(s) = Slot{BufIdx: idx}
		}
		f.setRingOfs(k, int64(off)-int64(ifOff))
		return nil
	}
	for i := range c.TxRings {
		if err := mk(f.txIndex(i), i, DirTX, c.TxSlots); err != nil {
			return nil, err
		}
	}
	for i := range c.RxRings {
		if err := mk(f.rxIndex(i), i, DirRX, c.RxSlots); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func errorf(format string, args ...any) error {
	return fmt.Errorf("netmap: "+format, args...)
}

// MapRegion views a region laid out elsewhere (by a host, for a guest that
// maps it) without an allocator: it can resolve buffers, not hand them out.
func MapRegion(mem []byte, info PoolsInfo) (*Region, error) {
	if uint64(len(mem)) < info.MemSize {
		return nil, errorf("mapped region of %d bytes is smaller than its layout (%d bytes)", len(mem), info.MemSize)
	}
	end := info.BufPoolOffset + uint64(info.BufPoolObjTotal)*uint64(info.BufPoolObjSize)
	if info.BufPoolObjSize == 0 || info.BufPoolObjTotal <= reservedBufs || end > info.MemSize || end < info.BufPoolOffset {
		return nil, errorf("buffer pool (%d x %d at %d) does not fit the %d-byte region", info.BufPoolObjTotal, info.BufPoolObjSize, info.BufPoolOffset, info.MemSize)
	}
	return &Region{mem: mem[:info.MemSize], info: info}, nil
}
