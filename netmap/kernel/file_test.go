//go:build linux

package kernel

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ptbhyve/ptbhyve/netmap"
)

// fixture is a fake netmap kernel and the files opened on it.
type fixture struct {
	t *testing.T
	k *fakeNetmap
}

func newFixture(t *testing.T) *fixture {
	fx := &fixture{t: t, k: newFakeNetmap()}
	t.Cleanup(func() {
		if n := fx.k.anonCount(); n != 0 {
			t.Errorf("%d request buffers were not unmapped", n)
		}
	})
	return fx
}

func (fx *fixture) open() *File {
	fx.t.Helper()
	f, err := open(fx.k)
	if err != nil {
		fx.t.Fatal(err)
	}
	fx.t.Cleanup(func() { _ = f.Close() })
	return f
}

// userMem maps n bytes the fake kernel may reach, as guest memory mapped
// by the hypervisor.
func (fx *fixture) userMem(n int) []byte {
	fx.t.Helper()
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		fx.t.Fatal(err)
	}
	fx.k.addUser(b)
	fx.t.Cleanup(func() { _ = unix.Munmap(b) })
	return b
}

// csb maps an atok page and a ktoa page.
func (fx *fixture) csb() (atok, ktoa []byte) {
	b := fx.userMem(2 * 4096)
	return b[:4096], b[4096:]
}

func (fx *fixture) register(f *File, name string, mode netmap.RegMode, flags uint64, opts ...Option) RegisterResult {
	fx.t.Helper()
	res, err := f.Register(name, Register{Mode: mode, Flags: flags}, opts...)
	if err != nil {
		fx.t.Fatal(err)
	}
	return res
}

// wantErr checks err is an *Error with errno (matched by errors.Is too),
// whose message holds every substring in want.
func wantErr(t *testing.T, what string, err error, errno unix.Errno, want ...string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Errorf("%s: got %v, want an *Error", what, err)
		return nil
	}
	if errno != 0 && !errors.Is(err, errno) {
		t.Errorf("%s: %v does not match %s", what, err, unix.ErrnoName(errno))
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: %q does not say %q", what, err, w)
		}
	}
	return e
}

func addr(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }

func TestOpen(t *testing.T) {
	fx := newFixture(t)
	f := fx.open()
	if f.Fd() < 0 {
		t.Fatalf("fd %d", f.Fd())
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if f.Fd() != -1 {
		t.Errorf("fd after Close: %d", f.Fd())
	}
	wantErr(t, "second Close", f.Close(), unix.EBADF, "closed")
	wantErr(t, "Register after Close", func() error { _, err := f.Register("ix0", Register{Mode: netmap.RegAllNIC}); return err }(), unix.EBADF, "closed")
	wantErr(t, "TxSync after Close", f.TxSync(), unix.EBADF)

	for _, tc := range []struct {
		errno unix.Errno
		want  []string
	}{
		{unix.ENOENT, []string{"/dev/netmap does not exist", "load the netmap module"}},
		{unix.EACCES, []string{"no permission to open /dev/netmap", "root"}},
		{unix.EMFILE, []string{"cannot open /dev/netmap"}},
	} {
		fx.k.openErr = tc.errno
		_, err := open(fx.k)
		wantErr(t, "open with "+unix.ErrnoName(tc.errno), err, tc.errno, tc.want...)
	}
}

func TestRegister(t *testing.T) {
	fx := newFixture(t)
	f := fx.open()
	res := fx.register(f, "ix0", netmap.RegAllNIC, netmap.FlagExclusive|netmap.FlagNoTxPoll)
	global := fx.k.mems[1].info
	if res.Name != "ix0" || res.TxRings != 4 || res.RxRings != 4 || res.HostTxRings != 1 || res.TxSlots != 1024 ||
		res.MemSize != global.MemSize || res.MemID != 1 || res.Offset != uint64(f.Fd())*1024 || res.CSB {
		t.Errorf("result %+v", res)
	}
	p := fx.k.priv(f.Fd())
	if p.first != [2]int{0, 0} || p.last != [2]int{4, 4} || p.flags != netmap.FlagExclusive|netmap.FlagNoTxPoll {
		t.Errorf("kernel state: rings %v..%v flags %#x", p.first, p.last, p.flags)
	}
	region, err := f.Mmap()
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(region)) != global.MemSize || fx.k.maps != 1 {
		t.Errorf("mapped %d bytes (%d maps), want %d", len(region), fx.k.maps, global.MemSize)
	}
	if err := f.Munmap(region); err != nil || fx.k.maps != 0 {
		t.Errorf("Munmap: %v, %d maps left", err, fx.k.maps)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	// The modes select the rings netmap_interp_ringid does.
	for _, tc := range []struct {
		name        string
		port        string
		mode        netmap.RegMode
		ringID      uint16
		flags       uint64
		first, last [2]int
	}{
		{"NIC+SW", "ix0", netmap.RegNICSW, 0, 0, [2]int{0, 0}, [2]int{5, 5}},
		{"SW", "ix0", netmap.RegSW, 0, 0, [2]int{4, 4}, [2]int{5, 5}},
		{"ONE_NIC 3", "ix0", netmap.RegOneNIC, 3, 0, [2]int{3, 3}, [2]int{4, 4}},
		{"ONE_NIC 1 on 2 TX / 1 RX", "ix1", netmap.RegOneNIC, 1, 0, [2]int{1, 0}, [2]int{2, 1}},
		{"ONE_SW 0", "ix1", netmap.RegOneSW, 0, 0, [2]int{2, 1}, [2]int{3, 2}},
		{"TX rings only", "ix1", netmap.RegAllNIC, 0, netmap.FlagTxRingsOnly, [2]int{0, 0}, [2]int{2, 0}},
		{"RX rings only", "ix1", netmap.RegAllNIC, 0, netmap.FlagRxRingsOnly, [2]int{0, 0}, [2]int{0, 1}},
		{"vnet accepted", "vale0:vnet", netmap.RegAllNIC, 0, netmap.FlagAcceptVnetHd, [2]int{0, 0}, [2]int{1, 1}},
	} {
		g := fx.open()
		if _, err := g.Register(tc.port, Register{Mode: tc.mode, RingID: tc.ringID, Flags: tc.flags}); err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if p := fx.k.priv(g.Fd()); p.first != tc.first || p.last != tc.last {
			t.Errorf("%s: rings %v..%v, want %v..%v", tc.name, p.first, p.last, tc.first, tc.last)
		}
		_ = g.Close()
	}
}

func TestRegisterErrors(t *testing.T) {
	type setup func(fx *fixture, f *File)
	holdExclusive := func(name string) setup {
		return func(fx *fixture, _ *File) { fx.register(fx.open(), name, netmap.RegAllNIC, netmap.FlagExclusive) }
	}
	for _, tc := range []struct {
		name    string
		setup   setup
		port    string
		req     Register
		opts    func(fx *fixture) []Option
		errno   unix.Errno
		want    []string
		options []OptionStatus
		noCall  bool // refused before reaching the kernel
	}{
		{name: "held exclusively", setup: holdExclusive("ix0"), port: "ix0", req: Register{Mode: netmap.RegAllNIC},
			errno: unix.EBUSY, want: []string{"REGISTER ix0", "port ix0 is busy: another process holds it", "NR_EXCLUSIVE", "VALE switch", "(EBUSY)"}},
		{name: "exclusive on a ring in use",
			setup: func(fx *fixture, _ *File) {
				_, err := fx.open().Register("ix0", Register{Mode: netmap.RegOneNIC, RingID: 2})
				if err != nil {
					t.Fatal(err)
				}
			},
			port: "ix0", req: Register{Mode: netmap.RegAllNIC, Flags: netmap.FlagExclusive}, errno: unix.EBUSY, want: []string{"port ix0 is busy"}},
		{name: "attached to a VALE switch", port: "em0", req: Register{Mode: netmap.RegAllNIC}, errno: unix.EBUSY, want: []string{"port em0 is busy"}},
		{name: "descriptor already registered", setup: func(fx *fixture, f *File) { fx.register(f, "ix1", netmap.RegAllNIC, 0) },
			port: "ix0", req: Register{Mode: netmap.RegAllNIC}, errno: unix.EBUSY, want: []string{"this descriptor already has a port registered"}},
		{name: "virtio-net headers", port: "vale0:vnet", req: Register{Mode: netmap.RegAllNIC}, errno: unix.EIO,
			want: []string{"port vale0:vnet uses virtio-net headers", "NR_ACCEPT_VNET_HDR"}},
		{name: "no such interface", port: "ix9", req: Register{Mode: netmap.RegAllNIC}, errno: unix.ENXIO, want: []string{"no such interface ix9"}},
		{name: "NR_REG_DEFAULT", port: "ix0", req: Register{}, errno: unix.EINVAL, want: []string{"NR_REG_DEFAULT is rejected", "RegAllNIC"}},
		{name: "pipe mode", port: "ix0", req: Register{Mode: netmap.RegPipeMastr}, errno: unix.EINVAL, want: []string{"NR_REG_PIPE_MASTER is deprecated"}},
		{name: "mode 9", port: "ix0", req: Register{Mode: 9}, errno: unix.EINVAL, want: []string{"nr_mode 9 is not a netmap register mode"}},
		{name: "ring id out of range", port: "ix0", req: Register{Mode: netmap.RegOneNIC, RingID: 4}, errno: unix.EINVAL,
			want: []string{"invalid registration of ix0", "ring id 4"}},
		{name: "host rings on a port without", port: "vale0:vm1", req: Register{Mode: netmap.RegSW}, errno: unix.EINVAL,
			want: []string{"host rings for the SW modes"}},
		{name: "unknown mem_id", port: "ix0", req: Register{Mode: netmap.RegAllNIC, MemID: 42}, errno: unix.EINVAL, want: []string{"mem_id 42"}},
		{name: "offsets unsupported", port: "vale0:vm1", req: Register{Mode: netmap.RegAllNIC},
			opts:  func(*fixture) []Option { return []Option{&OffsetsOption{MaxOffset: 64}} },
			errno: unix.EOPNOTSUPP, want: []string{"port vale0:vm1 does not support buffer offsets", "[option OFFSETS: EOPNOTSUPP]"},
			options: []OptionStatus{{OptOffsets, unix.EOPNOTSUPP}}},
		{name: "offsets too large", port: "ix0", req: Register{Mode: netmap.RegAllNIC},
			opts:  func(*fixture) []Option { return []Option{&OffsetsOption{MaxOffset: 4096}} },
			errno: unix.EINVAL, want: []string{"bad OFFSETS"}, options: []OptionStatus{{OptOffsets, unix.EINVAL}}},
		{name: "option not consumed", port: "ix0", req: Register{Mode: netmap.RegAllNIC},
			opts:  func(*fixture) []Option { return []Option{&KloopModeOption{}} },
			errno: unix.EOPNOTSUPP, want: []string{"option SYNC_KLOOP_MODE is not supported with REGISTER"},
			options: []OptionStatus{{OptSyncKloopMode, unix.EOPNOTSUPP}}},
		{name: "CSB without NR_EXCLUSIVE", port: "ix0", req: Register{Mode: netmap.RegAllNIC},
			opts: func(fx *fixture) []Option {
				a, k := fx.csb()
				return []Option{&CSBOption{Atok: uint64(addr(a)), Ktoa: uint64(addr(k))}}
			},
			errno: unix.EINVAL, want: []string{"CSB mode needs port ix0 registered with NR_EXCLUSIVE"}, options: []OptionStatus{{OptCSB, unix.EINVAL}}},
		{name: "CSB unaligned", port: "ix0", req: Register{Mode: netmap.RegAllNIC, Flags: netmap.FlagExclusive},
			opts: func(fx *fixture) []Option {
				a, k := fx.csb()
				return []Option{&CSBOption{Atok: uint64(addr(a)), Ktoa: uint64(addr(k)) + 32}}
			},
			errno: unix.EINVAL, want: []string{"csb_ktoa", "is not aligned to 64 bytes"}, noCall: true},
		{name: "CSB unmapped", port: "ix0", req: Register{Mode: netmap.RegAllNIC, Flags: netmap.FlagExclusive},
			opts:  func(*fixture) []Option { return []Option{&CSBOption{Atok: 0x10000, Ktoa: 0x20000}} },
			errno: unix.EFAULT, want: []string{"could not read the atok array"}, options: []OptionStatus{{OptCSB, unix.EFAULT}}},
		{name: "unreached option not blamed", port: "ix9", req: Register{Mode: netmap.RegAllNIC, Flags: netmap.FlagExclusive},
			opts: func(fx *fixture) []Option {
				a, k := fx.csb()
				return []Option{&CSBOption{Atok: uint64(addr(a)), Ktoa: uint64(addr(k))}}
			},
			errno: unix.ENXIO, want: []string{"no such interface ix9"}},
		{name: "no extmem in this kernel", setup: func(fx *fixture, _ *File) { fx.k.extmem = false }, port: "ix0", req: Register{Mode: netmap.RegAllNIC},
			opts: func(fx *fixture) []Option {
				m := fx.userMem(1 << 20)
				return []Option{&ExtmemOption{UsrPtr: uint64(addr(m)), Info: PoolsInfo{MemSize: 1 << 20}}}
			},
			errno: unix.EOPNOTSUPP, want: []string{"no external-memory support"}, options: []OptionStatus{{OptExtmem, unix.EOPNOTSUPP}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			f := fx.open()
			if tc.setup != nil {
				tc.setup(fx, f)
			}
			var opts []Option
			if tc.opts != nil {
				opts = tc.opts(fx)
			}
			before := len(fx.k.requests())
			_, err := f.Register(tc.port, tc.req, opts...)
			e := wantErr(t, tc.name, err, tc.errno, tc.want...)
			if e != nil && !slices.Equal(e.Options, tc.options) {
				t.Errorf("options %v, want %v", e.Options, tc.options)
			}
			if called := len(fx.k.requests()) > before; called == tc.noCall {
				t.Errorf("kernel called: %v, want %v", called, !tc.noCall)
			}
			// A failed REGISTER leaves the descriptor as it was.
			if _, st := f.state(); st.registered != (tc.name == "descriptor already registered") {
				t.Errorf("registered: %v", st.registered)
			}
			if p := fx.k.priv(f.Fd()); p.port != nil && tc.name != "descriptor already registered" {
				t.Errorf("the kernel kept %s registered", p.port.name)
			}
		})
	}
}

func TestRegisterOptions(t *testing.T) {
	fx := newFixture(t)

	// EXTMEM: a new allocator carved out of our memory. The kernel writes
	// back only the defaults it filled in (netmap_min_priv_params) for
	// the zero fields; the geometry is POOLS_INFO_GET's (extmem tests).
	m := fx.userMem(1 << 22)
	ext := &ExtmemOption{UsrPtr: uint64(addr(m)), Info: PoolsInfo{MemSize: 1 << 22, BufPoolObjTotal: 1024}}
	e := fx.open()
	res := fx.register(e, "ix1", netmap.RegAllNIC, 0, ext)
	if res.MemID != 2 || res.MemSize != 1<<22 {
		t.Errorf("extmem registration: %+v", res.Register)
	}
	want := PoolsInfo{MemSize: 1 << 22, IfPoolObjTotal: 2, IfPoolObjSize: 1024, RingPoolObjTotal: 4, RingPoolObjSize: 5 * 4096,
		BufPoolObjTotal: 1024, BufPoolObjSize: 2048}
	if ext.Info != want {
		t.Errorf("extmem option written back as %+v, want the defaults filled in: %+v", ext.Info, want)
	}
	_ = e.Close()

	// OFFSETS: the max offset in force comes back.
	off := &OffsetsOption{MaxOffset: 128, Bits: 16, InitialOffset: 64}
	fx.register(fx.open(), "ix0", netmap.RegOneNIC, 0, off)
	if off.MaxOffset != 128 {
		t.Errorf("max offset %d", off.MaxOffset)
	}

	// CSB at registration: CSB mode from the start.
	atok, ktoa := fx.csb()
	f := fx.open()
	res = fx.register(f, "ix1", netmap.RegAllNIC, netmap.FlagExclusive, &CSBOption{Atok: uint64(addr(atok)), Ktoa: uint64(addr(ktoa))})
	if !res.CSB || le.Uint32(atok[8:]) != 1 || le.Uint32(ktoa[8:]) != 1 {
		t.Errorf("CSB not enabled: %+v", res)
	}
	wantErr(t, "TxSync in CSB mode", f.TxSync(), unix.EBUSY, "CSB mode")
}

func TestInfo(t *testing.T) {
	fx := newFixture(t)
	f := fx.open()
	global := fx.k.mems[1].info

	pi, err := f.PortInfo("ix1", 0)
	want := PortInfo{MemSize: global.MemSize, TxSlots: 512, RxSlots: 256, TxRings: 2, RxRings: 1, HostTxRings: 1, HostRxRings: 1, MemID: 1}
	if err != nil || pi != want {
		t.Errorf("PortInfo(ix1) = %+v, %v; want %+v", pi, err, want)
	}
	pi, err = f.PortInfo("", 0)
	if err != nil || pi != (PortInfo{MemSize: global.MemSize, MemID: 1}) {
		t.Errorf("PortInfo(\"\", 0) = %+v, %v", pi, err)
	}
	_, err = f.PortInfo("", 42)
	wantErr(t, "PortInfo mem 42", err, unix.EINVAL, "PORT_INFO_GET", "no netmap allocator with mem_id 42")
	_, err = f.PortInfo("ix9", 0)
	wantErr(t, "PortInfo ix9", err, unix.ENXIO, "PORT_INFO_GET ix9: no such interface ix9")

	pools, err := f.PoolsInfo("ix0", 0)
	if err != nil || pools != global {
		t.Errorf("PoolsInfo(ix0) = %+v, %v; want %+v", pools, err, global)
	}
	_, err = f.PoolsInfo("ix9", 0)
	wantErr(t, "PoolsInfo ix9", err, unix.ENXIO, "POOLS_INFO_GET ix9: no such interface ix9")

	if n, err := f.PortHdr("vale0:vnet"); err != nil || n != 12 {
		t.Errorf("PortHdr(vale0:vnet) = %d, %v", n, err)
	}
	if err := f.SetPortHdr("vale0:vm1", VnetHdrLen); err != nil {
		t.Fatal(err)
	}
	if n, err := f.PortHdr("vale0:vm1"); err != nil || n != VnetHdrLen {
		t.Errorf("PortHdr after set = %d, %v", n, err)
	}
	wantErr(t, "SetPortHdr ix0", f.SetPortHdr("ix0", 12), unix.ENXIO, "ix0 is not a VALE port")
	wantErr(t, "SetPortHdr 11", f.SetPortHdr("vale0:vm1", 11), unix.EINVAL, "must be 0, 10 or 12")
	_, err = f.PortHdr("ix9")
	wantErr(t, "PortHdr ix9", err, unix.ENXIO, "no such interface ix9")
}

func TestSyncAndPoll(t *testing.T) {
	fx := newFixture(t)
	f := fx.open()
	wantErr(t, "TxSync unbound", f.TxSync(), unix.ENXIO, "TXSYNC: no port is registered", "Register first")
	wantErr(t, "RxSync unbound", f.RxSync(), unix.ENXIO, "RXSYNC")
	_, err := f.Poll(unix.POLLIN, 0)
	wantErr(t, "Poll unbound", err, 0, "POLLERR", "no port is registered")
	_, err = f.Mmap()
	wantErr(t, "Mmap unbound", err, unix.EINVAL, "Register first")

	fx.register(f, "ix1", netmap.RegAllNIC, netmap.FlagExclusive)
	if err := f.TxSync(); err != nil {
		t.Fatal(err)
	}
	if err := f.RxSync(); err != nil {
		t.Fatal(err)
	}
	if err := f.RxSync(); err != nil {
		t.Fatal(err)
	}
	if p := fx.k.priv(f.Fd()); p.syncs != [2]int{1, 2} {
		t.Errorf("syncs %v", p.syncs)
	}
	if re, err := f.Poll(unix.POLLIN|unix.POLLOUT, time.Second); err != nil || re != unix.POLLOUT {
		t.Errorf("Poll = %#x, %v; want POLLOUT", re, err)
	}
	if re, err := f.Poll(unix.POLLIN, 10*time.Millisecond); err != nil || re != 0 {
		t.Errorf("Poll with nothing received = %#x, %v", re, err)
	}
	fx.k.ports["ix1"].rxReady = true
	fx.k.eintr = 2
	if re, err := f.Poll(unix.POLLIN, -1); err != nil || re != unix.POLLIN {
		t.Errorf("Poll through EINTR = %#x, %v", re, err)
	}

	atok, ktoa := fx.csb()
	if err := f.CSBEnable(addr(atok), addr(ktoa)); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "TxSync in CSB mode", f.TxSync(), unix.EBUSY, "in CSB mode: only the sync kloop may sync")
	wantErr(t, "RxSync in CSB mode", f.RxSync(), unix.EBUSY)
	_, err = f.Poll(unix.POLLIN, 0)
	wantErr(t, "Poll in CSB mode", err, 0, "POLLERR", "CSB mode")
}

func TestCSBEnable(t *testing.T) {
	fx := newFixture(t)
	atok, ktoa := fx.csb()
	a, k := addr(atok), addr(ktoa)

	f := fx.open()
	wantErr(t, "unbound", f.CSBEnable(a, k), unix.ENXIO, "CSB_ENABLE", "would accept CSB_ENABLE and enable nothing")
	if slices.Contains(fx.k.requests(), "CSB_ENABLE") {
		t.Error("an unbound CSB_ENABLE reached the kernel")
	}
	fx.register(f, "ix0", netmap.RegAllNIC, 0)
	wantErr(t, "unaligned atok", f.CSBEnable(a+8, k), unix.EINVAL, "csb_atok", "not aligned to 64 bytes")
	wantErr(t, "zero ktoa", f.CSBEnable(a, 0), unix.EFAULT, "csb_ktoa is 0")
	e := wantErr(t, "not exclusive", f.CSBEnable(a, k), unix.EINVAL, "CSB_ENABLE ix0: CSB mode needs port ix0 registered with NR_EXCLUSIVE")
	if e != nil && !slices.Equal(e.Options, []OptionStatus{{OptCSB, unix.EINVAL}}) {
		t.Errorf("options %v", e.Options)
	}

	// ix1 binds 2 TX and 1 RX rings: three entries, TX first.
	g := fx.open()
	fx.register(g, "ix1", netmap.RegAllNIC, netmap.FlagExclusive)
	port := fx.k.ports["ix1"]
	*port.krings[tTX][1] = fakeKring{users: 1, excl: true, rhead: 5, rcur: 6, hwcur: 7, hwtail: 8}
	*port.krings[tRX][0] = fakeKring{users: 1, excl: true, rhead: 9, rcur: 10, hwcur: 11, hwtail: 12}
	for i := range atok {
		atok[i], ktoa[i] = 0xaa, 0xbb
	}
	wantErr(t, "unmapped", g.CSBEnable(0x10000, 0x20000), unix.EFAULT, "could not read the atok array")
	if err := g.CSBEnable(a, k); err != nil {
		t.Fatal(err)
	}
	for i, w := range []struct{ head, cur, hwcur, hwtail uint32 }{{0, 0, 0, 511}, {5, 6, 7, 8}, {9, 10, 11, 12}} {
		e := atok[64*i:]
		checkFields(t, "atok entry", e[:16], []field{{"head", 0, 4, uint64(w.head)}, {"cur", 4, 4, uint64(w.cur)},
			{"appl_need_kick", 8, 4, 1}, {"sync_flags", 12, 4, 1}})
		checkFields(t, "ktoa entry", ktoa[64*i:64*i+64], []field{{"hwcur", 0, 4, uint64(w.hwcur)}, {"hwtail", 4, 4, uint64(w.hwtail)},
			{"kern_need_kick", 8, 4, 1}})
	}
	if atok[3*64] != 0xaa || ktoa[3*64] != 0xbb {
		t.Error("the kernel wrote past the three entries")
	}
	if _, st := g.state(); !st.csb {
		t.Error("File does not know it is in CSB mode")
	}
}

// startKloop runs SyncKloopStart in a goroutine and returns its result
// channel once the fake kernel's loop runs.
func startKloop(fx *fixture, f *File, sleepUS, mode uint32, fds [][2]int32) (<-chan error, fakePriv) {
	done := make(chan error, 1)
	go func() { done <- f.SyncKloopStart(sleepUS, mode, fds) }()
	fx.k.waitRunning(f.Fd())
	return done, fx.k.priv(f.Fd()) // a copy taken under the fake's lock
}

func waitDone(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("SyncKloopStart did not return")
		return nil
	}
}

// csbFile is a File bound to ix1 (2 TX + 1 RX rings) in CSB mode.
func (fx *fixture) csbFile() *File {
	fx.t.Helper()
	f := fx.open()
	fx.register(f, "ix1", netmap.RegAllNIC, netmap.FlagExclusive)
	atok, ktoa := fx.csb()
	if err := f.CSBEnable(addr(atok), addr(ktoa)); err != nil {
		fx.t.Fatal(err)
	}
	return f
}

func TestKloop(t *testing.T) {
	fx := newFixture(t)

	f := fx.open()
	wantErr(t, "unbound", f.SyncKloopStart(100, 0, nil), unix.ENXIO, "SYNC_KLOOP_START: no port is registered")
	fx.register(f, "ix0", netmap.RegAllNIC, netmap.FlagExclusive)
	wantErr(t, "not in CSB mode", f.SyncKloopStart(100, 0, nil), unix.EINVAL, "not in CSB mode", "CSBEnable")

	f = fx.csbFile()
	before := len(fx.k.requests())
	for _, tc := range []struct {
		name    string
		sleep   uint32
		mode    uint32
		fds     [][2]int32
		noEvfds bool
		errno   unix.Errno
		want    string
	}{
		{"sleep over 1 s", 1_000_001, 0, nil, false, unix.EINVAL, "sleep_us 1000001 is over the kernel's limit"},
		{"mode bit 4", 100, 4, nil, false, unix.EINVAL, "mode 0x4 has bits other than"},
		{"direct without eventfds", 100, KloopDirectTX, nil, false, unix.EINVAL, "direct mode needs eventfds"},
		{"eventfds on FreeBSD", 100, 0, [][2]int32{{3, 4}, {5, 6}, {7, 8}}, true, unix.EOPNOTSUPP, "no eventfd support (FreeBSD)"},
	} {
		f.eventfds = !tc.noEvfds
		wantErr(t, tc.name, f.SyncKloopStart(tc.sleep, tc.mode, tc.fds), tc.errno, tc.want)
	}
	f.eventfds = true
	if n := len(fx.k.requests()); n != before {
		t.Errorf("refused starts reached the kernel: %v", fx.k.requests()[before:])
	}

	// Sleep mode: runs until stopped; the kernel refuses a second loop and
	// CSB changes meanwhile.
	done, p := startKloop(fx, f, 100, 0, nil)
	if p.sleepUS != 100 || !p.busyWait || p.eventfds != nil {
		t.Errorf("kloop config: sleep %d busy %v fds %v", p.sleepUS, p.busyWait, p.eventfds)
	}
	wantErr(t, "second start", f.SyncKloopStart(100, 0, nil), unix.EBUSY, "already running")
	atok, ktoa := fx.csb()
	wantErr(t, "CSB change", f.CSBEnable(addr(atok), addr(ktoa)), unix.EBUSY, "a sync kloop is running")
	if err := f.SyncKloopStop(); err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, done); err != nil {
		t.Fatalf("SyncKloopStart after stop: %v", err)
	}
	wantErr(t, "CSB mode stays", f.TxSync(), unix.EBUSY)

	// Eventfds, one pair per bound ring, with direct TX.
	fds := [][2]int32{{10, 20}, {11, 21}, {12, 22}}
	done, p = startKloop(fx, f, 0, KloopDirectTX, fds)
	if p.busyWait || !slices.Equal(p.eventfds, fds) || p.direct != [2]bool{true, false} {
		t.Errorf("kloop config: busy %v fds %v direct %v", p.busyWait, p.eventfds, p.direct)
	}
	if err := f.SyncKloopStop(); err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, done); err != nil {
		t.Fatal(err)
	}

	// The kernel's refusals, reported through the options' status.
	e := wantErr(t, "two pairs for three rings", f.SyncKloopStart(0, 0, fds[:2]), unix.EINVAL, "exactly one {ioeventfd, irqfd} pair per bound ring")
	if e != nil && !slices.Equal(e.Options, []OptionStatus{{OptSyncKloopEventfds, unix.EINVAL}}) {
		t.Errorf("options %v", e.Options)
	}
	wantErr(t, "direct with a missing ioeventfd", f.SyncKloopStart(0, KloopDirectRX, [][2]int32{{10, 20}, {-1, 21}, {12, 22}}),
		unix.EINVAL, "valid ioeventfds for direct mode")

	// A stop with no loop running does not reach the kernel.
	before = len(fx.k.requests())
	if err := f.SyncKloopStop(); err != nil {
		t.Fatal(err)
	}
	if n := len(fx.k.requests()); n != before {
		t.Errorf("idle stop reached the kernel: %v", fx.k.requests()[before:])
	}

	// Close stops a running loop.
	done, _ = startKloop(fx, f, 50, 0, nil)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, done); err != nil {
		t.Fatal(err)
	}
}

func TestKloopFreeBSDKernel(t *testing.T) {
	// Played against FreeBSD's behaviour: the EVENTFDS option is marked
	// EOPNOTSUPP and the ioctl returns 0 at once. The File refuses eventfds
	// on FreeBSD before calling; here it is made to call, to check it does
	// not mistake the early return for a clean stop.
	fx := newFixture(t)
	fx.k.freebsd = true
	f := fx.csbFile()
	err := f.SyncKloopStart(100, 0, [][2]int32{{3, 4}, {5, 6}, {7, 8}})
	e := wantErr(t, "eventfds", err, unix.EOPNOTSUPP, "ignored the option and returned without running")
	if e != nil && (e.Errno != 0 || !slices.Equal(e.Options, []OptionStatus{{OptSyncKloopEventfds, unix.EOPNOTSUPP}})) {
		t.Errorf("errno %v options %v", e.Errno, e.Options)
	}
	// Sleep mode works.
	done, _ := startKloop(fx, f, 100, 0, nil)
	if err := f.SyncKloopStop(); err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, done); err != nil {
		t.Fatal(err)
	}
}

func TestKloopStaleStop(t *testing.T) {
	// A SYNC_KLOOP_STOP that finds no loop leaves the kernel's stop flag
	// set, and the next loop ends at once; SyncKloopStart starts again.
	fx := newFixture(t)
	f := fx.csbFile()
	if errno, _, _ := fx.call(f.Fd(), &Request{Type: ReqSyncKloopStop}, nil); errno != 0 {
		t.Fatal(errno)
	}
	done, _ := startKloop(fx, f, 100, 0, nil)
	starts := 0
	for _, r := range fx.k.requests() {
		if r == "SYNC_KLOOP_START" {
			starts++
		}
	}
	if starts != 2 {
		t.Errorf("%d starts, want 2 (the stale one and the retry)", starts)
	}
	if err := f.SyncKloopStop(); err != nil {
		t.Fatal(err)
	}
	if err := waitDone(t, done); err != nil {
		t.Fatal(err)
	}
}
