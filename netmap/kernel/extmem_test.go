//go:build linux

package kernel

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ptbhyve/ptbhyve/netmap"
)

func pageUp(v uint64) uint64 { return (v + 4095) &^ 4095 }

// TestExtmemLayout registers ports over user memory with EXTMEM and checks,
// through the File API and by walking the user memory itself, that the
// kernel laid the netmap_if, the rings and every buffer out inside it, with
// the geometry netmap_mem_ext_create computes.
func TestExtmemLayout(t *testing.T) {
	for _, tc := range []struct {
		name     string
		freebsd  bool
		memory   int    // bytes of user memory (a page multiple)
		memSize  uint64 // nr_memsize asked
		info     PoolsInfo
		wantBufs uint32 // buffer pool objtotal
		wantSize uint64 // nr_memsize reported
	}{
		// Pools: if 2x1024 (one page), ring 4x20480, buf at 86016. The
		// leftover of nr_memsize becomes buffers, as many as the pages
		// hold.
		{name: "linux, 4 MiB, 1024 buffers asked", memory: 4 << 20, memSize: 4 << 20, info: PoolsInfo{BufPoolObjTotal: 1024},
			wantBufs: (4<<20 - 86016) / 2048, wantSize: 4 << 20},
		{name: "freebsd, 4 MiB, 1024 buffers asked", freebsd: true, memory: 4 << 20, memSize: 4 << 20, info: PoolsInfo{BufPoolObjTotal: 1024},
			wantBufs: (4<<20 - 86016) / 2048, wantSize: 4 << 20},
		// Defaults everywhere need 4098 buffers: 8476672 bytes unrounded.
		{name: "linux, defaults, 9 MiB", memory: 9 << 20, memSize: 9 << 20, wantBufs: (9<<20 - 86016) / 2048, wantSize: 9 << 20},
		// Explicit sizes: if 4 x 512 (2048, one page), ring 3 x 9000
		// (27000 -> 28672), buffers of 3000 bytes, which straddle pages:
		// the last one is cut by the end of the memory, counted and
		// unusable, and nr_memsize runs past the memory.
		{name: "linux, odd sizes", memory: 8 << 20, memSize: 8 << 20,
			info:     PoolsInfo{IfPoolObjTotal: 4, IfPoolObjSize: 512, RingPoolObjTotal: 3, RingPoolObjSize: 9000, BufPoolObjTotal: 10, BufPoolObjSize: 3000},
			wantBufs: uint32((8<<20 - 4096 - 28672 + 2999) / 3000), wantSize: pageUp(4096 + 28672 + uint64((8<<20-4096-28672+2999)/3000)*3000)},
		// FreeBSD takes the whole VM object, not nr_memsize: a claim of
		// 9 MiB over a 4 MiB object passes the size check and the pools
		// are cut at the object's end.
		{name: "freebsd, object smaller than nr_memsize", freebsd: true, memory: 4 << 20, memSize: 9 << 20,
			wantBufs: (4<<20 - 86016) / 2048, wantSize: 4 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			fx.k.freebsd = tc.freebsd
			m := fx.userMem(tc.memory)
			info := tc.info
			info.MemSize = tc.memSize
			f := fx.open()
			ext := &ExtmemOption{UsrPtr: uint64(addr(m)), Info: info}
			res := fx.register(f, "ix1", netmap.RegAllNIC, 0, ext)
			pi, err := f.PoolsInfo("ix1", 0)
			if err != nil {
				t.Fatal(err)
			}
			if pi.MemID != res.MemID || res.MemID == 1 || pi.MemSize != res.MemSize {
				t.Errorf("register %+v, pools %+v", res.Register, pi)
			}
			// The arithmetic of netmap_mem_ext_create.
			def := func(v, d uint32) uint32 {
				if v == 0 {
					return d
				}
				return v
			}
			ifN, ifSz := def(info.IfPoolObjTotal, 2), def(info.IfPoolObjSize, 1024)
			ringN, ringSz := def(info.RingPoolObjTotal, 4), def(info.RingPoolObjSize, 5*4096)
			bufSz := def(info.BufPoolObjSize, 2048)
			want := PoolsInfo{MemSize: tc.wantSize, MemID: res.MemID,
				IfPoolObjTotal: ifN, IfPoolObjSize: ifSz,
				RingPoolOffset: pageUp(uint64(ifN) * uint64(ifSz)), RingPoolObjTotal: ringN, RingPoolObjSize: ringSz,
				BufPoolObjTotal: tc.wantBufs, BufPoolObjSize: bufSz}
			want.BufPoolOffset = want.RingPoolOffset + pageUp(uint64(ringN)*uint64(ringSz))
			if pi != want {
				t.Errorf("POOLS_INFO_GET\n got %+v\nwant %+v", pi, want)
			}

			// Walk the user memory: the netmap_if, the rings and the
			// buffers the kernel wrote are there.
			region, err := netmap.MapRegion(m[:min(uint64(len(m)), pi.MemSize)], netmap.PoolsInfo(pi))
			if tc.wantSize > uint64(len(m)) {
				// nr_memsize runs past the memory: view the valid part.
				trimmed := netmap.PoolsInfo(pi)
				trimmed.BufPoolObjTotal--
				trimmed.MemSize = uint64(len(m))
				region, err = netmap.MapRegion(m, trimmed)
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Offset < pi.IfPoolOffset || res.Offset+uint64(ifSz) > pi.RingPoolOffset {
				t.Fatalf("nr_offset %d outside the if pool", res.Offset)
			}
			nif, err := netmap.OpenIf(m, res.Offset)
			if err != nil {
				t.Fatal(err)
			}
			if nif.Name() != "ix1" || nif.NumTx() != 2 || nif.NumRx() != 1 {
				t.Errorf("netmap_if %q tx %d rx %d", nif.Name(), nif.NumTx(), nif.NumRx())
			}
			seen := map[uint32]bool{}
			base := uintptr(unsafe.Pointer(&m[0]))
			rings := []netmap.Ring{nif.TxRing(0), nif.TxRing(1), nif.RxRing(0)}
			for k, r := range rings {
				off := uint64(uintptr(unsafe.Pointer(r.Header())) - base)
				if off < pi.RingPoolOffset || (off-pi.RingPoolOffset)%uint64(ringSz) != 0 || off+uint64(ringSz) > pi.BufPoolOffset {
					t.Errorf("ring %d at %d, not a ring object", k, off)
				}
				if r.Header().BufOfs != int64(pi.BufPoolOffset)-int64(off) {
					t.Errorf("ring %d buf_ofs %d", k, r.Header().BufOfs)
				}
				for s := range r.NumSlots() {
					idx := r.Slot(s).BufIdx
					if !region.ValidBuf(idx) || seen[idx] {
						t.Fatalf("ring %d slot %d: buffer %d invalid or shared", k, s, idx)
					}
					seen[idx] = true
					b := region.Buf(idx)
					if o := uint64(uintptr(unsafe.Pointer(&b[0])) - base); o+uint64(bufSz) > uint64(len(m)) {
						t.Fatalf("buffer %d at %d runs past the memory", idx, o)
					}
				}
			}
			// What the kernel writes is in the user memory itself.
			fx.k.mu.Lock()
			km := fx.k.mems[res.MemID].kmem
			fx.k.mu.Unlock()
			if &km[0] != &m[0] {
				t.Error("the kernel's view is not the user memory")
			}
			rings[0].Slot(3).Len = 77
			if kr, _, _, tail := fx.k.kring("ix1", tTX, 0); tail != rings[0].Tail() || kr.hwtail != 511 {
				t.Errorf("TX tail %d in the kernel, %d in the user memory", tail, rings[0].Tail())
			}
			if _, err := f.Mmap(); err == nil {
				t.Error("mmap of an EXTMEM descriptor: the fake cannot, and must say so")
			}
		})
	}
}

// TestExtmemReuse checks that a second REGISTER over the same memory
// reuses the allocator while a port holds it, that a port already open
// keeps its allocator, and that the allocator goes with its last user.
func TestExtmemReuse(t *testing.T) {
	for _, freebsd := range []bool{false, true} {
		fx := newFixture(t)
		fx.k.freebsd = freebsd
		m := fx.userMem(8 << 20)
		opt := func() *ExtmemOption {
			return &ExtmemOption{UsrPtr: uint64(addr(m)), Info: PoolsInfo{MemSize: 8 << 20, RingPoolObjTotal: 16, BufPoolObjTotal: 1024}}
		}
		a, b, c := fx.open(), fx.open(), fx.open()
		ra := fx.register(a, "ix2", netmap.RegAllNIC, 0, opt())
		rb := fx.register(b, "ix3", netmap.RegAllNIC, 0, opt())
		if ra.MemID == 1 || rb.MemID != ra.MemID || rb.Offset == ra.Offset {
			t.Errorf("freebsd=%v: second register mem %d off %d, first mem %d off %d", freebsd, rb.MemID, rb.Offset, ra.MemID, ra.Offset)
		}
		// ix1 already open on the global allocator: EXTMEM is ignored.
		g := fx.open()
		fx.register(g, "ix1", netmap.RegOneNIC, 0)
		rc := fx.register(c, "ix1", netmap.RegAllNIC, 0, opt())
		if rc.MemID != 1 {
			t.Errorf("freebsd=%v: a port in use switched to mem %d", freebsd, rc.MemID)
		}
		for _, f := range []*File{a, b, c, g} {
			_ = f.Close()
		}
		d := fx.open()
		rd := fx.register(d, "ix2", netmap.RegAllNIC, 0, opt())
		if rd.MemID == ra.MemID {
			t.Errorf("freebsd=%v: the allocator outlived its users (mem %d)", freebsd, rd.MemID)
		}
		_ = d.Close()
		// Back on its own allocator.
		if re := fx.register(fx.open(), "ix2", netmap.RegAllNIC, 0); re.MemID != 1 {
			t.Errorf("freebsd=%v: ix2 stayed on mem %d", freebsd, re.MemID)
		}
	}
}

// TestExtmemRefused checks the kernel's errnos for memory that cannot
// hold the pools or is not there.
func TestExtmemRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		freebsd bool
		memory  int
		info    PoolsInfo
		usrptr  uint64 // 0: the memory
		errno   unix.Errno
	}{
		// The default 4098 buffers of 2048 bytes do not fit 1 MiB:
		// _netmap_mem_private_new's "request too large".
		{name: "linux, defaults in 1 MiB", memory: 1 << 20, info: PoolsInfo{MemSize: 1 << 20}, errno: unix.ENOMEM},
		{name: "freebsd, defaults in 1 MiB", freebsd: true, memory: 1 << 20, info: PoolsInfo{MemSize: 1 << 20}, errno: unix.ENOMEM},
		{name: "ring pool too big", memory: 1 << 20, info: PoolsInfo{MemSize: 1 << 20, RingPoolObjTotal: 64, BufPoolObjTotal: 4}, errno: unix.ENOMEM},
		// Linux pins nr_memsize bytes: a page missing is EFAULT.
		{name: "linux, memory shorter than nr_memsize", memory: 1 << 20, info: PoolsInfo{MemSize: 2 << 20, BufPoolObjTotal: 64}, errno: unix.EFAULT},
		{name: "linux, unmapped", memory: 4096, usrptr: 0x10000, info: PoolsInfo{MemSize: 1 << 20, BufPoolObjTotal: 64}, errno: unix.EFAULT},
		// FreeBSD: vm_map_lookup fails, vm_mmap_to_errno says ENOMEM.
		{name: "freebsd, unmapped", freebsd: true, memory: 4096, usrptr: 0x10000, info: PoolsInfo{MemSize: 1 << 20, BufPoolObjTotal: 64}, errno: unix.ENOMEM},
		// Fits nr_memsize but the object has no room for any buffer:
		// netmap_mem_finalize's "no objects available".
		{name: "freebsd, object of one page", freebsd: true, memory: 4096, info: PoolsInfo{MemSize: 1 << 20, BufPoolObjTotal: 64}, errno: unix.ENOMEM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			fx.k.freebsd = tc.freebsd
			m := fx.userMem(tc.memory)
			p := tc.usrptr
			if p == 0 {
				p = uint64(addr(m))
			}
			f := fx.open()
			_, err := f.Register("ix1", Register{Mode: netmap.RegAllNIC}, &ExtmemOption{UsrPtr: p, Info: tc.info})
			wantErr(t, tc.name, err, tc.errno)
			if p := fx.k.priv(f.Fd()); p.port != nil {
				t.Error("registered anyway")
			}
			fx.k.mu.Lock()
			n := len(fx.k.mems)
			fx.k.mu.Unlock()
			if n != 1 {
				t.Errorf("%d allocators left, want the global one", n)
			}
		})
	}
}
