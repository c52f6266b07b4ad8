//go:build linux

package kernel

import (
	"slices"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ptbhyve/ptbhyve/netmap"
)

// call hands the fake kernel r laid out without the encoder's checks, after
// patch (if any) has edited the bytes, and returns the errno, the reply and
// a copy of the buffer as the kernel left it.
func (fx *fixture) call(fd int, r *Request, patch func(buf []byte, base uint64, l Layout)) (unix.Errno, Reply, []byte) {
	fx.t.Helper()
	n := (max(r.Size(), 4096) + 4095) &^ 4095
	buf, err := fx.k.anon(n)
	if err != nil {
		fx.t.Fatal(err)
	}
	defer fx.k.munmap(buf)
	base := uint64(addr(buf))
	l, err := r.encode(buf, base)
	if err != nil {
		fx.t.Fatal(err)
	}
	if patch != nil {
		patch(buf, base, l)
	}
	errno, _ := fx.k.ioctl(fd, nioc.Ctrl, unsafe.Pointer(&buf[0])).(unix.Errno)
	rep, err := r.Decode(buf, l)
	if err != nil {
		fx.t.Fatal(err)
	}
	return errno, rep, slices.Clone(buf[:l.Size])
}

func regBody(mode netmap.RegMode, flags uint64) []byte {
	b := make([]byte, RegisterSize)
	(&Register{Mode: mode, Flags: flags}).Encode(b)
	return b
}

// TestKernelModel pins the fake's reading of requests to the documented
// kernel behaviour, for requests File never sends.
func TestKernelModel(t *testing.T) {
	fx := newFixture(t)
	atok, ktoa := fx.csb()
	csbOpt := func() *CSBOption { return &CSBOption{Atok: uint64(addr(atok)), Ktoa: uint64(addr(ktoa))} }
	ev := func(n int) *EventfdsOption { return &EventfdsOption{Pairs: make([][2]int32, n)} }
	portInfo := func() []byte { return make([]byte, PortInfoSize) }

	for _, tc := range []struct {
		name   string
		prep   func(f *File) // on a fresh descriptor
		r      *Request
		patch  func(buf []byte, base uint64, l Layout)
		errno  unix.Errno
		status []uint32
		check  func(t *testing.T, f *File, buf []byte, l Reply)
	}{
		{name: "version 13", r: &Request{Type: ReqPortInfoGet, Name: "ix0", Body: portInfo()},
			patch: func(b []byte, _ uint64, _ Layout) { le.PutUint16(b[hdrVersion:], 13) }, errno: unix.EINVAL},
		{name: "version 16", r: &Request{Type: ReqPortInfoGet, Name: "ix0", Body: portInfo()},
			patch: func(b []byte, _ uint64, _ Layout) { le.PutUint16(b[hdrVersion:], 16) }, errno: unix.EINVAL},
		{name: "version 15 accepted", r: &Request{Type: ReqPortInfoGet, Name: "ix0", Body: portInfo()},
			patch: func(b []byte, _ uint64, _ Layout) { le.PutUint16(b[hdrVersion:], 15) }},
		{name: "nr_reserved set", r: &Request{Type: ReqPortInfoGet, Name: "ix0", Body: portInfo()},
			patch: func(b []byte, _ uint64, _ Layout) { le.PutUint32(b[hdrReserved:], 1) }, errno: unix.EINVAL},
		{name: "REGISTER without body", r: &Request{Type: ReqRegister, Name: "ix0"}, errno: unix.EINVAL},
		{name: "CSB_ENABLE with a body", r: &Request{Type: ReqCSBEnable, Body: make([]byte, 8), Options: []Option{csbOpt()}}, errno: unix.EINVAL},
		{name: "SYNC_KLOOP_STOP with a body", r: &Request{Type: ReqSyncKloopStop, Body: make([]byte, 8)}, errno: unix.EINVAL},
		{name: "unknown type", r: &Request{Type: 16}, errno: unix.EINVAL},
		{name: "body out of reach", r: &Request{Type: ReqPortInfoGet, Name: "ix0", Body: portInfo()},
			patch: func(b []byte, _ uint64, _ Layout) { le.PutUint64(b[hdrBody:], 0x10000) }, errno: unix.EFAULT},
		{name: "body and options over 4096", r: &Request{Type: ReqRegister, Name: "ix0", Body: regBody(netmap.RegAllNIC, 0), Options: []Option{ev(503)}},
			errno: unix.EMSGSIZE, status: []uint32{0}},
		{name: "nro_size over 4096", r: &Request{Type: ReqSyncKloopStart, Body: make([]byte, 8), Options: []Option{&rawOption{typ: OptSyncKloopEventfds, size: 24, nro: 4104}}},
			errno: unix.EMSGSIZE},
		{name: "endless list of unknown options",
			r: &Request{Type: ReqPortInfoGet, Name: "ix0", Body: portInfo(), Options: []Option{&rawOption{typ: 9, size: 24}}},
			patch: func(b []byte, base uint64, l Layout) {
				le.PutUint64(b[l.Options[0]+optNext:], base+uint64(l.Options[0]))
			}, errno: unix.EMSGSIZE},
		{name: "endless list of CSB options is a duplicate",
			r: &Request{Type: ReqCSBEnable, Options: []Option{csbOpt()}},
			patch: func(b []byte, base uint64, l Layout) {
				le.PutUint64(b[l.Options[0]+optNext:], base+uint64(l.Options[0]))
			}, errno: unix.EINVAL, status: []uint32{uint32(unix.EINVAL)}},
		{name: "option type 0", r: &Request{Type: ReqCSBEnable, Options: []Option{csbOpt(), &rawOption{size: 24}}},
			errno: unix.EINVAL, status: []uint32{0, uint32(unix.EINVAL)}},
		{name: "duplicate option", r: &Request{Type: ReqCSBEnable, Options: []Option{csbOpt(), &KloopModeOption{}, csbOpt()}},
			errno: unix.EINVAL, status: []uint32{uint32(unix.EINVAL), 0, uint32(unix.EINVAL)}},
		{name: "unknown option ignored by PORT_INFO_GET",
			r:     &Request{Type: ReqPortInfoGet, Name: "ix0", Body: portInfo(), Options: []Option{&rawOption{typ: 9, size: 24}}},
			errno: 0, status: []uint32{uint32(unix.EOPNOTSUPP)},
			check: func(t *testing.T, _ *File, buf []byte, _ Reply) {
				var pi PortInfo
				pi.Decode(buf[HeaderSize:])
				if pi.TxRings != 4 {
					t.Errorf("body not written back: %+v", pi)
				}
			}},
		{name: "unknown option fails REGISTER and undoes it",
			r:     &Request{Type: ReqRegister, Name: "ix0", Body: regBody(netmap.RegAllNIC, netmap.FlagExclusive), Options: []Option{&rawOption{typ: 9, size: 24}}},
			errno: unix.EOPNOTSUPP, status: []uint32{uint32(unix.EOPNOTSUPP)},
			check: func(t *testing.T, f *File, buf []byte, _ Reply) {
				var reg Register
				reg.Decode(buf[HeaderSize:])
				if reg.MemSize != 0 {
					t.Errorf("body written back on failure: %+v", reg)
				}
				if p := fx.k.priv(f.Fd()); p.port != nil {
					t.Error("port left registered")
				}
				for _, kr := range fx.k.ports["ix0"].krings[tTX] {
					if kr.users != 0 || kr.excl {
						t.Errorf("ring left held: %+v", kr)
					}
				}
			}},
		{name: "unprocessed options read EOPNOTSUPP after an early failure",
			r:     &Request{Type: ReqRegister, Name: "ix9", Body: regBody(netmap.RegAllNIC, netmap.FlagExclusive), Options: []Option{csbOpt(), &OffsetsOption{}}},
			errno: unix.ENXIO, status: []uint32{uint32(unix.EOPNOTSUPP), uint32(unix.EOPNOTSUPP)}},
		{name: "CSB addresses survive a REGISTER undone after validating them",
			r:     &Request{Type: ReqRegister, Name: "ix0", Body: regBody(netmap.RegAllNIC, netmap.FlagExclusive), Options: []Option{csbOpt(), &rawOption{typ: 9, size: 24}}},
			errno: unix.EOPNOTSUPP, status: []uint32{0, uint32(unix.EOPNOTSUPP)},
			check: func(t *testing.T, f *File, _ []byte, _ Reply) {
				if p := fx.k.priv(f.Fd()); p.port != nil || p.atok != uint64(addr(atok)) {
					t.Errorf("port %v, atok %#x", p.port, p.atok)
				}
			}},
		{name: "REGISTER with an unaligned CSB",
			r:     &Request{Type: ReqRegister, Name: "ix0", Body: regBody(netmap.RegAllNIC, netmap.FlagExclusive), Options: []Option{&CSBOption{Atok: uint64(addr(atok)) + 4, Ktoa: uint64(addr(ktoa))}}},
			errno: unix.EINVAL, status: []uint32{uint32(unix.EINVAL)},
			check: func(t *testing.T, f *File, _ []byte, _ Reply) {
				if p := fx.k.priv(f.Fd()); p.port != nil || p.atok != 0 {
					t.Error("port left registered")
				}
			}},
		{name: "CSB_ENABLE on an unbound descriptor does nothing",
			r: &Request{Type: ReqCSBEnable, Options: []Option{csbOpt()}}, errno: 0, status: []uint32{0},
			check: func(t *testing.T, f *File, _ []byte, _ Reply) {
				if p := fx.k.priv(f.Fd()); p.atok != 0 {
					t.Error("CSB mode on with no ring bound")
				}
			}},
		{name: "CSB_ENABLE without the option", prep: func(f *File) { fx.register(f, "ix1", netmap.RegAllNIC, netmap.FlagExclusive) },
			r: &Request{Type: ReqCSBEnable}, errno: unix.EINVAL},
		{name: "CSB_ENABLE with an unaligned ktoa", prep: func(f *File) { fx.register(f, "ix1", netmap.RegAllNIC, netmap.FlagExclusive) },
			r:     &Request{Type: ReqCSBEnable, Options: []Option{&CSBOption{Atok: uint64(addr(atok)), Ktoa: uint64(addr(ktoa)) + 32}}},
			errno: unix.EINVAL, status: []uint32{uint32(unix.EINVAL)}},
		{name: "sleep_us over 1 s", prep: func(f *File) { fx.register(f, "ix1", netmap.RegAllNIC, netmap.FlagExclusive, csbOpt()) },
			r:     &Request{Type: ReqSyncKloopStart, Body: le.AppendUint64(nil, 1_000_001)},
			errno: unix.EINVAL},
		{name: "kloop on an unbound descriptor", r: &Request{Type: ReqSyncKloopStart, Body: make([]byte, 8)}, errno: unix.ENXIO},
		{name: "kloop stop on an unbound descriptor", r: &Request{Type: ReqSyncKloopStop}, errno: unix.ENXIO},
		{name: "kloop mode bit 4", prep: func(f *File) { fx.register(f, "ix1", netmap.RegAllNIC, netmap.FlagExclusive, csbOpt()) },
			r:     &Request{Type: ReqSyncKloopStart, Body: make([]byte, 8), Options: []Option{&KloopModeOption{Mode: 5}}},
			errno: unix.EINVAL, status: []uint32{uint32(unix.EINVAL)}},
		{name: "the header comes back with nr_name terminated",
			r: &Request{Type: ReqPortInfoGet, Name: "ix0", Body: portInfo()},
			patch: func(b []byte, _ uint64, _ Layout) {
				for i := range 64 {
					b[hdrName+i] = 'x'
				}
			}, errno: unix.ENXIO,
			check: func(t *testing.T, _ *File, buf []byte, rep Reply) {
				if buf[hdrName+63] != 0 || len(rep.Header.Name) != 63 {
					t.Errorf("nr_name[63] = %#x", buf[hdrName+63])
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := fx.open()
			defer f.Close()
			if tc.prep != nil {
				tc.prep(f)
			}
			errno, rep, buf := fx.call(f.Fd(), tc.r, tc.patch)
			if errno != tc.errno {
				t.Errorf("errno %v, want %v", errno, tc.errno)
			}
			if tc.status != nil && !slices.Equal(rep.Status, tc.status) {
				t.Errorf("statuses %v, want %v", rep.Status, tc.status)
			}
			if tc.check != nil {
				tc.check(t, f, buf, rep)
			}
		})
	}
}
