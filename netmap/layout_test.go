package netmap

import (
	"encoding/binary"
	"testing"
	"unsafe"
)

// The offsets and sizes of research §1.2–§1.5, pinned.
func TestABILayout(t *testing.T) {
	var s Slot
	var h RingHeader
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(netmap_slot)", unsafe.Sizeof(s), 16},
		{"slot.buf_idx", unsafe.Offsetof(s.BufIdx), 0},
		{"slot.len", unsafe.Offsetof(s.Len), 4},
		{"slot.flags", unsafe.Offsetof(s.Flags), 6},
		{"slot.ptr", unsafe.Offsetof(s.Ptr), 8},
		{"sizeof(netmap_ring header)", unsafe.Sizeof(h), 256},
		{"ring.buf_ofs", unsafe.Offsetof(h.BufOfs), 0},
		{"ring.num_slots", unsafe.Offsetof(h.NumSlots), 8},
		{"ring.nr_buf_size", unsafe.Offsetof(h.BufSize), 12},
		{"ring.ringid", unsafe.Offsetof(h.RingID), 16},
		{"ring.dir", unsafe.Offsetof(h.Dir), 18},
		{"ring.head", unsafe.Offsetof(h.head), 20},
		{"ring.cur", unsafe.Offsetof(h.cur), 24},
		{"ring.tail", unsafe.Offsetof(h.tail), 28},
		{"ring.flags", unsafe.Offsetof(h.Flags), 32},
		{"ring.ts", unsafe.Offsetof(h.TS), 40},
		{"ring.offset_mask", unsafe.Offsetof(h.OffsetMask), 56},
		{"ring.buf_align", unsafe.Offsetof(h.BufAlign), 64},
		{"ring.sem", unsafe.Offsetof(h.Sem), 128},
		{"if.ni_name", ifOffName, 0},
		{"if.ni_version", ifOffVersion, 16},
		{"if.ni_flags", ifOffFlags, 20},
		{"if.ni_tx_rings", ifOffTxRings, 24},
		{"if.ni_rx_rings", ifOffRxRings, 28},
		{"if.ni_bufs_head", ifOffBufsHead, 32},
		{"if.ni_host_tx_rings", ifOffHostTx, 36},
		{"if.ni_host_rx_rings", ifOffHostRx, 40},
		{"if.ring_ofs", ifOffRingOfs, 56},
		{"IfHeaderSize", IfHeaderSize, 56},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"NS_BUF_CHANGED", NSBufChanged, 0x1}, {"NS_REPORT", NSReport, 0x2}, {"NS_FORWARD", NSForward, 0x4},
		{"NS_NO_LEARN", NSNoLearn, 0x8}, {"NS_INDIRECT", NSIndirect, 0x10}, {"NS_MOREFRAG", NSMoreFrag, 0x20},
		{"NS_TXMON", NSTxMon, 0x40}, {"NS_PORT_MASK", NSPortMask, 0xff00}, {"NR_TIMESTAMP", NRTimestamp, 2},
		{"NR_FORWARD", NRForward, 4}, {"NR_EXCLUSIVE", FlagExclusive, 0x800}, {"NR_ACCEPT_VNET_HDR", FlagAcceptVnetHd, 0x8000},
		{"NR_NO_TX_POLL", FlagNoTxPoll, 0x20000}, {"NR_RX_RINGS_ONLY", FlagRxRingsOnly, 0x2000}, {"NR_TX_RINGS_ONLY", FlagTxRingsOnly, 0x4000},
		{"NR_REG_ALL_NIC", int(RegAllNIC), 1}, {"NR_REG_ONE_SW", int(RegOneSW), 8}, {"NR_REG_NULL", int(RegNull), 7},
		{"NAF_FORCE_READ", NAFForceRead, 1}, {"NAF_FORCE_RECLAIM", NAFForceReclaim, 2}, {"NETMAP_API", API, 14},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}

// Layout must cut pools as netmap's allocator does (research §1.1).
func TestLayout(t *testing.T) {
	for _, c := range []struct {
		name string
		p    PoolParams
		want PoolsInfo
	}{
		{
			name: "global allocator defaults",
			p:    PoolParams{IfNum: 100, IfSize: 1024, RingNum: 200, RingSize: 9 * 4096, BufNum: 163840, BufSize: 2048},
			want: PoolsInfo{IfPoolObjTotal: 100, IfPoolObjSize: 1024,
				RingPoolOffset: 102400, RingPoolObjTotal: 200, RingPoolObjSize: 36864,
				BufPoolOffset: 102400 + 200*36864, BufPoolObjTotal: 163840, BufPoolObjSize: 2048,
				MemSize: 102400 + 200*36864 + 163840*2048},
		},
		{
			// 100 bytes round to 128; 32 fill a page: 3 objects become 32.
			// 16640-byte rings need 16 per cluster; 2048-byte buffers 2.
			name: "rounding",
			p:    PoolParams{IfNum: 3, IfSize: 100, RingNum: 3, RingSize: 16640, BufNum: 5, BufSize: 2000},
			want: PoolsInfo{IfPoolObjTotal: 32, IfPoolObjSize: 128,
				RingPoolOffset: 4096, RingPoolObjTotal: 16, RingPoolObjSize: 16640,
				BufPoolOffset: 4096 + 16*16640, BufPoolObjTotal: 6, BufPoolObjSize: 2048,
				MemSize: 4096 + 16*16640 + 6*2048},
		},
	} {
		got, err := Layout(c.p)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
	}
	for _, p := range []PoolParams{
		{IfNum: 1, IfSize: 8192, RingNum: 1, RingSize: 4096, BufNum: 8, BufSize: 2048},    // if too big
		{IfNum: 1, IfSize: 1024, RingNum: 1, RingSize: 4096, BufNum: 2, BufSize: 2048},    // too few buffers
		{IfNum: 1, IfSize: 1024, RingNum: 1, RingSize: 4096, BufNum: 8, BufSize: 1 << 17}, // buffer too big
		{IfNum: 0, IfSize: 1024, RingNum: 1, RingSize: 4096, BufNum: 8, BufSize: 2048},    // no if
	} {
		if _, err := Layout(p); err == nil {
			t.Errorf("Layout(%+v) accepted an impossible layout", p)
		}
	}
}

func newTestRegion(t *testing.T, c IfConfig) (*Region, *If) {
	t.Helper()
	info, err := Layout(ParamsFor(1, c.TxRings, c.RxRings, c.TxSlots, c.RxSlots, 2048, 0))
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRegion(make([]byte, info.MemSize), info)
	if err != nil {
		t.Fatal(err)
	}
	f, err := r.NewIf(c)
	if err != nil {
		t.Fatal(err)
	}
	return r, f
}

// NewIf lays out what a netmap kernel would and what a ptnet guest reads.
func TestNewIf(t *testing.T) {
	r, f := newTestRegion(t, IfConfig{Name: "vm0", TxRings: 2, RxRings: 3, TxSlots: 256, RxSlots: 512})
	mem := r.Mem()
	le := binary.LittleEndian
	if f.Name() != "vm0" || le.Uint32(mem[f.Offset()+ifOffHostTx:]) != 1 || le.Uint32(mem[f.Offset()+ifOffHostRx:]) != 1 {
		t.Fatalf("netmap_if header wrong: name %q", f.Name())
	}
	// ring_ofs: TX0 TX1 hostTX RX0 RX1 RX2 hostRX; host entries unbound.
	if f.RingOfs(2) != 0 || f.RingOfs(6) != 0 {
		t.Error("host ring entries are bound")
	}
	seen := map[uint32]bool{}
	check := func(name string, ring Ring, tx bool, slots uint32) {
		h := ring.Header()
		if h.NumSlots != slots || h.BufSize != 2048 {
			t.Errorf("%s: %d slots of %d bytes", name, h.NumSlots, h.BufSize)
		}
		wantTail := uint32(0)
		if tx {
			wantTail = slots - 1
		}
		if ring.Head() != 0 || ring.Cur() != 0 || ring.Tail() != wantTail {
			t.Errorf("%s: head/cur/tail %d/%d/%d, want 0/0/%d", name, ring.Head(), ring.Cur(), ring.Tail(), wantTail)
		}
		for i := range slots {
			idx := ring.Slot(i).BufIdx
			if !r.ValidBuf(idx) || seen[idx] {
				t.Fatalf("%s slot %d: buffer %d invalid or shared", name, i, idx)
			}
			seen[idx] = true
			// NETMAP_BUF(ring, idx) == the region's buffer idx.
			addr := uintptr(unsafe.Pointer(h)) + uintptr(h.BufOfs) + uintptr(idx)*uintptr(h.BufSize)
			if addr != uintptr(r.BufPtr(idx)) {
				t.Fatalf("%s: buf_ofs does not reach buffer %d", name, idx)
			}
		}
	}
	for i := range 2 {
		check("tx", f.TxRing(i), true, 256)
	}
	for i := range 3 {
		check("rx", f.RxRing(i), false, 512)
	}
	// A guest opening the same bytes sees the same rings.
	g, err := OpenIf(mem, f.Offset())
	if err != nil {
		t.Fatal(err)
	}
	if g.NumTx() != 2 || g.NumRx() != 3 || g.RxRing(2).Header() != f.RxRing(2).Header() {
		t.Error("OpenIf disagrees with NewIf")
	}
	if r.FreeBufs() != 0 {
		t.Errorf("%d buffers left over; ParamsFor should size exactly", r.FreeBufs())
	}
}

// OpenIf is given offsets from another party: garbage must be refused, not
// followed.
func TestOpenIfRejectsGarbage(t *testing.T) {
	r, f := newTestRegion(t, IfConfig{Name: "p", TxRings: 1, RxRings: 1, TxSlots: 64, RxSlots: 64})
	mem := r.Mem()
	le := binary.LittleEndian
	corrupt := []struct {
		name string
		off  uint64
		do   func(b []byte)
	}{
		{"offset past the end", uint64(len(mem)), func([]byte) {}},
		{"huge ring count", f.Offset(), func(b []byte) { le.PutUint32(b[f.Offset()+ifOffTxRings:], 1<<30) }},
		{"ring outside the region", f.Offset(), func(b []byte) { le.PutUint64(b[f.Offset()+ifOffRingOfs:], 1<<40) }},
		{"negative ring offset", f.Offset(), func(b []byte) { le.PutUint64(b[f.Offset()+ifOffRingOfs:], uint64(1<<63)) }},
		{"too many slots", f.Offset(), func(b []byte) {
			ro := int64(f.Offset()) + f.RingOfs(0)
			le.PutUint32(b[ro+8:], 1<<20)
		}},
	}
	for _, c := range corrupt {
		b := append([]byte(nil), mem...)
		c.do(b)
		if _, err := OpenIf(b, c.off); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
}

func TestBufOutOfRangeIsScratch(t *testing.T) {
	r, _ := newTestRegion(t, IfConfig{Name: "p", TxRings: 1, RxRings: 1, TxSlots: 8, RxSlots: 8})
	if &r.Buf(1 << 31)[0] != &r.Buf(0)[0] {
		t.Error("an out-of-range index does not map to buffer 0")
	}
	if r.ValidBuf(0) || r.ValidBuf(1) || r.ValidBuf(r.NumBufs()) || !r.ValidBuf(2) {
		t.Error("ValidBuf disagrees with netmap's [2, objtotal)")
	}
}
