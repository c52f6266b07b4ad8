//go:build linux

package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ptbhyve/ptbhyve/internal/event"
	"github.com/ptbhyve/ptbhyve/internal/shm"
	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
)

func parseName(t testing.TB, s string) netmap.Name {
	t.Helper()
	n, err := netmap.ParseName(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// openPort opens name on the fake kernel; the port is closed at the end.
func (fx *fixture) openPort(name string) *Port {
	fx.t.Helper()
	p, err := openPort(fx.k, parseName(fx.t, name))
	if err != nil {
		fx.t.Fatal(err)
	}
	fx.t.Cleanup(func() { _ = p.Close() })
	return p
}

// openFds is how many descriptors the fake kernel has open.
func (fx *fixture) openFds() int {
	fx.k.mu.Lock()
	defer fx.k.mu.Unlock()
	return len(fx.k.fds)
}

func (fx *fixture) count(req string) int {
	n := 0
	for _, r := range fx.k.requests() {
		if r == req {
			n++
		}
	}
	return n
}

func TestOpenPortErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		port   string
		setup  func(fx *fixture)
		errno  unix.Errno
		want   []string
		noOpen bool // refused before opening /dev/netmap
	}{
		{name: "no such interface", port: "netmap:ix9", errno: unix.ENXIO, want: []string{"REGISTER ix9", "no such interface ix9"}},
		{name: "no such VALE port", port: "vale0:nope", errno: unix.ENXIO, want: []string{"no such interface vale0:nope"}},
		{name: "busy", port: "netmap:ix0", setup: func(fx *fixture) { fx.openPort("netmap:ix0") },
			errno: unix.EBUSY, want: []string{"REGISTER ix0", "port ix0 is busy", "NR_EXCLUSIVE"}},
		{name: "one ring of a busy port", port: "netmap:ix0-2", setup: func(fx *fixture) { fx.openPort("netmap:ix0") },
			errno: unix.EBUSY, want: []string{"port ix0 is busy"}},
		{name: "two host TX rings", port: "netmap:ix4",
			want: []string{"port netmap:ix4", "2 host TX rings", "ring_ofs[T+1+i]", "@conf:host-rings=1"}},
		{name: "no netmap device", port: "netmap:ix0", setup: func(fx *fixture) { fx.k.openErr = unix.ENOENT },
			errno: unix.ENOENT, want: []string{"/dev/netmap does not exist"}, noOpen: true},
		{name: "xdp family", port: "xdp:eth0", want: []string{"cannot open xdp:eth0 as a kernel port", "it is a xdp: port", "netmap:IF or valeX:PORT"}, noOpen: true},
		{name: "pipe family", port: "pipe:p{1", want: []string{"it is a pipe: port"}, noOpen: true},
		{name: "host rings", port: "netmap:ix0^", want: []string{"mode NR_REG_SW binds host rings", "netmap:ix0", "netmap:ix0-0"}, noOpen: true},
		{name: "NIC and host rings", port: "netmap:ix0*", want: []string{"NR_REG_NIC_SW binds host rings"}, noOpen: true},
		{name: "extmem", port: "netmap:ix0@extmem:file=/tmp/x", want: []string{"@extmem is not supported"}, noOpen: true},
		{name: "offsets", port: "netmap:ix0@offset:initial=0", want: []string{"@offset is not supported"}, noOpen: true},
		{name: "share with a missing port", port: "netmap:ix1@share=netmap:ix9", errno: unix.ENXIO, want: []string{"@share=netmap:ix9", "no such interface ix9"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			if tc.setup != nil {
				tc.setup(fx)
			}
			fds, before, maps := fx.openFds(), fx.k.nextFd, fx.k.maps
			p, err := openPort(fx.k, parseName(t, tc.port))
			if err == nil {
				p.Close()
				t.Fatalf("%s opened", tc.port)
			}
			if tc.errno != 0 && !errors.Is(err, tc.errno) {
				t.Errorf("%v does not match %s", err, unix.ErrnoName(tc.errno))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
			if n := fx.openFds(); n != fds {
				t.Errorf("%d descriptors open after the failure, %d before", n, fds)
			}
			if opened := fx.k.nextFd != before; opened == tc.noOpen {
				t.Errorf("/dev/netmap opened: %v", opened)
			}
			if fx.k.maps != maps {
				t.Errorf("%d mappings after the failure, %d before", fx.k.maps, maps)
			}
		})
	}
}

// checkRings compares a port's KRings with the rings' headers as the
// kernel sees them and with the kernel's krings.
func checkRings(t *testing.T, fx *fixture, p *Port, kname string, hw [2][]int) {
	t.Helper()
	for d, rings := range [2][]*netmap.KRing{p.TxRings(), p.RxRings()} {
		if len(rings) != len(hw[d]) {
			t.Fatalf("%s: %d rings of direction %d, want %d", p.Name(), len(rings), d, len(hw[d]))
		}
		for i, k := range rings {
			kr, head, cur, tail := fx.k.kring(kname, d, hw[d][i])
			if k.Tx != (d == txDir) || k.N != k.Ring.NumSlots() || int(k.Ring.Header().RingID) != hw[d][i] {
				t.Errorf("%s ring %d/%d: tx %v, %d slots, ring id %d", p.Name(), d, i, k.Tx, k.N, k.Ring.Header().RingID)
			}
			if k.Ring.Head() != head || k.Ring.Cur() != cur || k.Ring.Tail() != tail {
				t.Errorf("%s ring %d/%d: our mapping reads %d/%d/%d, the kernel's %d/%d/%d", p.Name(), d, i,
					k.Ring.Head(), k.Ring.Cur(), k.Ring.Tail(), head, cur, tail)
			}
			if k.HwCur != head || k.RHead != head || k.RCur != head || k.HwTail != tail || k.RTail != tail {
				t.Errorf("%s ring %d/%d: state %d %d %d %d %d, header head %d tail %d", p.Name(), d, i,
					k.HwCur, k.RHead, k.RCur, k.HwTail, k.RTail, head, tail)
			}
			if kr.hwcur != k.HwCur || kr.hwtail != k.HwTail {
				t.Errorf("%s ring %d/%d: kernel hwcur %d hwtail %d, ours %d %d", p.Name(), d, i, kr.hwcur, kr.hwtail, k.HwCur, k.HwTail)
			}
		}
	}
}

func TestOpenPortState(t *testing.T) {
	fx := newFixture(t)
	p := fx.openPort("netmap:ix2")
	reg := p.Registration()
	if p.Name() != "netmap:ix2" || p.MemID() != 1 || p.If().Offset() != reg.Offset || p.If().Name() != "ix2" || p.Fd() < 0 || p.Waker().Fd() != p.Fd() {
		t.Errorf("port %s mem %d if %q at %d (nr_offset %d) fd %d", p.Name(), p.MemID(), p.If().Name(), p.If().Offset(), reg.Offset, p.Fd())
	}
	if p.Region().Info() != netmap.PoolsInfo(fx.k.mems[1].info) || uint64(len(p.Region().Mem())) != reg.MemSize {
		t.Errorf("region %+v, %d bytes", p.Region().Info(), len(p.Region().Mem()))
	}
	if priv := fx.k.priv(p.Fd()); priv.flags != netmap.FlagExclusive|netmap.FlagNoTxPoll || priv.first != [2]int{0, 0} || priv.last != [2]int{2, 2} {
		t.Errorf("registered with flags %#x, rings %v..%v", priv.flags, priv.first, priv.last)
	}
	checkRings(t, fx, p, "ix2", [2][]int{{0, 1}, {0, 1}})
	if k := p.TxRings()[0]; k.HwTail != 255 || k.TxSpace() != 255 {
		t.Errorf("TX ring starts with tail %d, space %d", k.HwTail, k.TxSpace())
	}

	// One ring: the netmap_if still counts all of them and names only the
	// bound ones.
	q := fx.openPort("netmap:ix0-1/T")
	checkRings(t, fx, q, "ix0", [2][]int{{1}, nil})
	if q.If().NumTx() != 4 || q.If().RingOfs(0) != 0 || q.If().RingOfs(1) == 0 {
		t.Errorf("netmap_if: %d TX rings, ring_ofs %d %d", q.If().NumTx(), q.If().RingOfs(0), q.If().RingOfs(1))
	}
	r := fx.openPort("netmap:ix1-1")
	checkRings(t, fx, r, "ix1", [2][]int{{1}, {0}})

	// A VALE port (no host rings: the netmap_if still records one pair)
	// and a pipe, by their kernel names.
	v := fx.openPort("vale0:vm1")
	checkRings(t, fx, v, "vale0:vm1", [2][]int{{0}, {0}})
	pp := fx.openPort("netmap:ix2{1")
	checkRings(t, fx, pp, "ix2{1", [2][]int{{0}, {0}})
	if v.If().Name() != "vale0:vm1" || pp.If().Name() != "ix2{1" {
		t.Errorf("netmap_if names %q %q", v.If().Name(), pp.If().Name())
	}

	// @share takes the other port's memory.
	s := fx.openPort("netmap:ix3@share=ix1")
	if s.MemID() != 1 {
		t.Errorf("shared memory %d", s.MemID())
	}

	// Ports on one allocator map the same bytes.
	k := p.TxRings()[0]
	k.Ring.SetCur(7)
	if _, _, cur, _ := fx.k.kring("ix2", tTX, 0); cur != 7 {
		t.Errorf("the kernel reads cur %d after we wrote 7", cur)
	}
	k.Ring.SetCur(0)
}

// Every value OpenPort reads from the kernel is checked: newPort runs over
// a registration of ix2 after edit has changed the mapping or the reply,
// and must fail with want, without panicking.
func TestOpenPortValidates(t *testing.T) {
	le := binary.LittleEndian
	for _, tc := range []struct {
		name string
		edit func(mem []byte, res *RegisterResult, info *netmap.PoolsInfo)
		want string
	}{
		{"nr_offset outside the if pool", func(_ []byte, res *RegisterResult, info *netmap.PoolsInfo) { res.Offset = info.RingPoolOffset },
			"is not a netmap_if in the if pool"},
		{"nr_offset inside an object", func(_ []byte, res *RegisterResult, _ *netmap.PoolsInfo) { res.Offset += 8 }, "is not a netmap_if"},
		{"if pool past the region", func(_ []byte, _ *RegisterResult, info *netmap.PoolsInfo) { info.IfPoolObjTotal = 1 << 30 }, "does not fit"},
		{"buffer pool past the region", func(_ []byte, _ *RegisterResult, info *netmap.PoolsInfo) { info.BufPoolObjTotal++ }, "does not fit"},
		{"ring outside the region", func(mem []byte, res *RegisterResult, _ *netmap.PoolsInfo) {
			le.PutUint64(mem[res.Offset+56:], uint64(len(mem)))
		}, "outside the region"},
		{"ring counts", func(mem []byte, res *RegisterResult, _ *netmap.PoolsInfo) { le.PutUint32(mem[res.Offset+24:], 3) }, "the netmap_if has 3 TX"},
		{"implausible ring counts", func(mem []byte, res *RegisterResult, _ *netmap.PoolsInfo) { le.PutUint32(mem[res.Offset+28:], 1<<20) }, "implausible"},
		{"two host TX rings", func(mem []byte, res *RegisterResult, _ *netmap.PoolsInfo) { le.PutUint32(mem[res.Offset+36:], 2) }, "2 host TX rings"},
		{"slot count", func(_ []byte, res *RegisterResult, _ *netmap.PoolsInfo) { res.TxSlots = 512 }, "TX ring 0: has 256 slots, REGISTER said 512"},
		{"buffer size", func(mem []byte, res *RegisterResult, _ *netmap.PoolsInfo) {
			le.PutUint32(mem[ringAt(mem, res, 3)+12:], 4096)
		}, "RX ring 0: has 4096-byte buffers"},
		{"buf_ofs", func(mem []byte, res *RegisterResult, _ *netmap.PoolsInfo) {
			o := ringAt(mem, res, 1)
			le.PutUint64(mem[o:], le.Uint64(mem[o:])+2048)
		}, "TX ring 1: buf_ofs"},
		{"head", func(mem []byte, res *RegisterResult, _ *netmap.PoolsInfo) {
			le.PutUint32(mem[ringAt(mem, res, 4)+20:], 256)
		}, "RX ring 1: head 256"},
		{"tail", func(mem []byte, res *RegisterResult, _ *netmap.PoolsInfo) {
			le.PutUint32(mem[ringAt(mem, res, 0)+28:], 1<<31)
		}, "TX ring 0: head 0, cur 0, tail 2147483648"},
		{"no ring bound", func(mem []byte, res *RegisterResult, _ *netmap.PoolsInfo) {
			clear(mem[res.Offset+56 : res.Offset+56+6*8])
		}, "binds no hardware ring"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			f := fx.open()
			res, err := f.Register("ix2", Register{Mode: netmap.RegAllNIC, Flags: netmap.FlagExclusive})
			if err != nil {
				t.Fatal(err)
			}
			pools, err := f.PoolsInfo("ix2", res.MemID)
			if err != nil {
				t.Fatal(err)
			}
			mem, err := f.Mmap()
			if err != nil {
				t.Fatal(err)
			}
			defer f.Munmap(mem)
			info := netmap.PoolsInfo(pools)
			if _, err := newPort(f, parseName(t, "netmap:ix2"), res, mem, info); err != nil {
				t.Fatalf("unedited: %v", err)
			}
			tc.edit(mem, &res, &info)
			_, err = newPort(f, parseName(t, "netmap:ix2"), res, mem, info)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// ringAt is the offset of ring_ofs entry k of the registration's netmap_if.
func ringAt(mem []byte, res *RegisterResult, k int) uint64 {
	return uint64(int64(res.Offset) + int64(binary.LittleEndian.Uint64(mem[res.Offset+56+8*uint64(k):])))
}

// fill queues frames seq.. (8-byte sequence number, then length-dependent
// padding) on TX ring k as an application does, up to the tail it was
// given; it returns the next sequence number.
func fill(p netmap.Port, k *netmap.KRing, seq, end uint64, max uint32) uint64 {
	r := k.Ring
	h := r.Head()
	for n := uint32(0); seq < end && n < max && h != r.Tail(); n++ {
		s := r.Slot(h)
		b := p.Region().Buf(s.BufIdx)
		binary.LittleEndian.PutUint64(b, seq)
		s.Len = uint16(60 + seq%64)
		b[s.Len-1] = byte(seq)
		seq++
		h = r.Next(h)
	}
	r.Advance(h)
	return seq
}

// drain takes every frame on RX ring k, checking they continue *seq.
func drain(p netmap.Port, k *netmap.KRing, seq *uint64) (int, error) {
	r := k.Ring
	n := 0
	h := r.Head()
	for ; h != r.Tail(); h = r.Next(h) {
		s := r.Slot(h)
		b := p.Region().Buf(s.BufIdx)
		if v := binary.LittleEndian.Uint64(b); v != *seq || s.Len != uint16(60+v%64) || b[s.Len-1] != byte(v) {
			return n, fmt.Errorf("%s: expected frame %d, got %d (len %d)", p.Name(), *seq, v, s.Len)
		}
		*seq++
		n++
	}
	r.Advance(h)
	return n, nil
}

// An application in this process sends numbered frames on both TX rings
// of ix2 with netmap.TxSync; they cross the fake wire to ix3, whose
// application receives them with netmap.RxSync, in order and intact. Each
// pass costs one TXSYNC and one RXSYNC whatever the number of rings.
func TestAppFlow(t *testing.T) {
	const total = 20000
	fx := newFixture(t)
	a, b := fx.openPort("netmap:ix2"), fx.openPort("netmap:ix3")
	var sent, got [2]uint64
	passes := 0
	txBefore, rxBefore := fx.count("TXSYNC"), fx.count("RXSYNC")
	for deadline := time.Now().Add(30 * time.Second); (got[0] < total || got[1] < total) && time.Now().Before(deadline); passes++ {
		for i, k := range a.TxRings() {
			sent[i] = fill(a, k, sent[i], total, 100+uint32(passes%150))
		}
		if err := netmap.TxSync(a); err != nil {
			t.Fatal(err)
		}
		if err := netmap.RxSync(b); err != nil {
			t.Fatal(err)
		}
		for i, k := range b.RxRings() {
			if _, err := drain(b, k, &got[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got != [2]uint64{total, total} {
		t.Fatalf("received %v of %d per ring", got, total)
	}
	if tx, rx := fx.count("TXSYNC")-txBefore, fx.count("RXSYNC")-rxBefore; tx != passes || rx != passes {
		t.Errorf("%d passes issued %d TXSYNC and %d RXSYNC", passes, tx, rx)
	}
	if s, d := fx.k.wireStats("ix2"); s != 2*total || d != 0 {
		t.Errorf("wire: %d sent, %d dropped", s, d)
	}
	for d, ks := range [][]*netmap.KRing{a.TxRings(), a.RxRings(), b.TxRings(), b.RxRings()} {
		for i, k := range ks {
			if k.Resets != 0 {
				t.Errorf("set %d ring %d reset %d times", d, i, k.Resets)
			}
		}
	}
	for i := range 2 {
		for _, c := range []struct {
			port string
			t    int
		}{{"ix2", tTX}, {"ix3", tRX}} {
			if kr, _, _, _ := fx.k.kring(c.port, c.t, i); kr.resets != 0 {
				t.Errorf("the kernel reinitialised %s ring %d/%d %d times", c.port, c.t, i, kr.resets)
			}
		}
	}
}

// The syncs as a sync loop drives them: the loop validates the guest's
// indexes with KRing.Prologue and calls the port's sync with them.
func TestPortSync(t *testing.T) {
	fx := newFixture(t)
	a, b := fx.openPort("netmap:ix2"), fx.openPort("netmap:ix3")
	k0, k1 := a.TxRings()[0], a.TxRings()[1]
	tx := func(i int, flags int) error {
		t.Helper()
		k := a.TxRings()[i]
		if !k.Prologue(k.Ring.Head(), k.Ring.Cur()) {
			t.Fatalf("prologue refused ring %d: %d %d", i, k.Ring.Head(), k.Ring.Cur())
		}
		return a.TxSync(i, flags)
	}
	txsyncs := func() int { return fx.count("TXSYNC") }

	// Nothing to send and room left: no ioctl. Reclaim asked: one, and the
	// next ring takes its tail from it.
	n := txsyncs()
	if err := tx(0, 0); err != nil || txsyncs() != n {
		t.Fatalf("idle sync: %v, %d ioctls", err, txsyncs()-n)
	}
	if err := tx(0, netmap.NAFForceReclaim); err != nil || txsyncs() != n+1 {
		t.Fatalf("reclaim: %v, %d ioctls", err, txsyncs()-n)
	}
	if err := tx(1, netmap.NAFForceReclaim); err != nil || txsyncs() != n+1 {
		t.Fatalf("second ring: %v, %d ioctls", err, txsyncs()-n)
	}

	// Frames queued: one ioctl; the kernel completed them and HwTail says
	// so. The header shows the kernel's tail before the caller finalizes
	// (what a guest sharing the ring would see, see Port).
	fill(a, k0, 0, 10, 10)
	if err := tx(0, 0); err != nil || txsyncs() != n+2 {
		t.Fatalf("send: %v, %d ioctls", err, txsyncs()-n)
	}
	if k0.HwCur != 10 || k0.HwTail != 9 || k0.Ring.Tail() != 9 || k0.RTail != 255 {
		t.Errorf("after sending 10: hwcur %d hwtail %d header tail %d rtail %d", k0.HwCur, k0.HwTail, k0.Ring.Tail(), k0.RTail)
	}
	if kr, _, _, _ := fx.k.kring("ix2", tTX, 0); kr.hwcur != 10 || kr.hwtail != 9 {
		t.Errorf("kernel: hwcur %d hwtail %d", kr.hwcur, kr.hwtail)
	}
	k0.Finalize()

	// A guest that moved head on after publishing keeps its head: the
	// kernel takes the frames early, the ring catches up next time.
	k0.Prologue(k0.Ring.Head(), k0.Ring.Cur())
	fill(a, k0, 10, 15, 5)
	if err := a.TxSync(0, netmap.NAFForceReclaim); err != nil {
		t.Fatal(err)
	}
	if k0.Ring.Head() != 15 || k0.HwCur != 10 {
		t.Errorf("head %d hwcur %d: the guest's newer head was rewritten", k0.Ring.Head(), k0.HwCur)
	}
	if kr, _, _, _ := fx.k.kring("ix2", tTX, 0); kr.hwcur != 15 {
		t.Errorf("kernel hwcur %d, want the guest's 15", kr.hwcur)
	}
	if err := tx(0, 0); err != nil || k0.HwCur != 15 || k0.HwTail != 14 {
		t.Errorf("caught up: %v, hwcur %d hwtail %d", err, k0.HwCur, k0.HwTail)
	}

	// Garbage in the header (a guest writing behind our back): the port
	// writes the validated indexes back, so the kernel does not reset.
	k1.Ring.SetHead(1000)
	k1.Ring.SetCur(3)
	if err := a.TxSync(1, netmap.NAFForceReclaim); err != nil {
		t.Fatal(err)
	}
	if k1.Ring.Head() != k1.RHead || k1.Ring.Cur() != k1.RCur {
		t.Errorf("header head %d cur %d, want %d %d", k1.Ring.Head(), k1.Ring.Cur(), k1.RHead, k1.RCur)
	}
	n = txsyncs()
	if err := a.TxSync(1, netmap.NAFForceReclaim); err != nil || txsyncs() != n+1 {
		t.Fatalf("reclaim: %v, %d ioctls", err, txsyncs()-n)
	}
	if kr, _, _, _ := fx.k.kring("ix2", tTX, 1); kr.resets != 0 {
		t.Errorf("the kernel reset the ring %d times", kr.resets)
	}

	// A kernel bug: a tail outside the ring is a RingError that makes the
	// sync helpers reinitialise the ring; one the kernel could not have
	// reached is ignored.
	k0.Finalize()
	if err := tx(0, 0); err != nil { // takes the tail the last TXSYNC left
		t.Fatal(err)
	}
	fx.k.injectTail("ix2", tTX, 0, 4000)
	err := tx(0, netmap.NAFForceReclaim)
	var re *RingError
	if !errors.As(err, &re) || !errors.Is(err, netmap.ErrBadSlot) || re.Ring != 0 || re.Val != 4000 ||
		!strings.Contains(err.Error(), "TXSYNC ix2: ring 0 tail 4000 is outside the 256-slot ring") {
		t.Errorf("bad tail: %v", err)
	}
	fx.k.injectTail("ix2", tTX, 0, 100)
	if err := tx(0, netmap.NAFForceReclaim); err != nil || k0.HwTail != 14 {
		t.Errorf("unreachable tail: %v, hwtail %d", err, k0.HwTail)
	}
	fx.k.injectTail("ix2", tTX, 0, 4000)
	if err := netmap.TxSync(a); err != nil || k0.Resets != 1 {
		t.Errorf("netmap.TxSync over a bad tail: %v, %d resets", err, k0.Resets)
	}

	// RX: one RXSYNC per pass over the rings; a bad index is an error, not
	// a panic.
	r := b.RxRings()
	n = fx.count("RXSYNC")
	for i := range r {
		if err := b.RxSync(i, 0); err != nil {
			t.Fatal(err)
		}
	}
	if got := fx.count("RXSYNC") - n; got != 1 {
		t.Errorf("%d RXSYNC for one pass", got)
	}
	if err := b.RxSync(2, 0); err == nil || !strings.Contains(err.Error(), "has 2 bound RX rings, no ring 2") {
		t.Errorf("ring 2: %v", err)
	}
	if err := a.TxSync(-1, 0); err == nil {
		t.Error("ring -1 synced")
	}
}

func TestPortClose(t *testing.T) {
	fx := newFixture(t)
	p := fx.openPort("netmap:ix2")
	fd := p.Fd()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); !errors.Is(err, netmap.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if err := p.TxSync(0, 0); !errors.Is(err, netmap.ErrClosed) {
		t.Errorf("TxSync after Close: %v", err)
	}
	if p.Fd() != -1 || p.Waker().Events() != unix.POLLIN {
		t.Errorf("fd %d, events %#x after Close", p.Fd(), p.Waker().Events())
	}
	fx.k.mu.Lock()
	_, open := fx.k.fds[fd]
	maps := fx.k.maps
	fx.k.mu.Unlock()
	if open || maps != 0 {
		t.Errorf("after Close: descriptor open %v, %d mappings", open, maps)
	}
	// The port is free again, its rings fresh.
	q := fx.openPort("netmap:ix2")
	checkRings(t, fx, q, "ix2", [2][]int{{0, 1}, {0, 1}})
}

// pollReal polls the port's real descriptor (the fake with realFds), as the
// sync loop does.
func pollReal(t *testing.T, p *Port, events int16) int16 {
	t.Helper()
	fds := []unix.PollFd{{Fd: int32(p.Fd()), Events: events}}
	if _, err := unix.Poll(fds, 0); err != nil {
		t.Fatal(err)
	}
	return fds[0].Revents
}

func TestWakerEvents(t *testing.T) {
	fx := newFixture(t)
	fx.k.realFds = true
	a, b := fx.openPort("netmap:ix2-0"), fx.openPort("netmap:ix3")
	w := a.Waker()
	if ev := w.Events(); ev != unix.POLLIN {
		t.Fatalf("idle: events %#x, want POLLIN", ev)
	}
	if !w.Arm() {
		t.Fatal("Arm refused")
	}
	w.Disarm()
	if re := pollReal(t, a, unix.POLLIN); re != 0 {
		t.Errorf("idle port readable: %#x", re)
	}

	// The link goes down with the TX ring full: POLLOUT is wanted, and
	// comes when the link is back.
	fx.k.pauseTx("ix2", true)
	k := a.TxRings()[0]
	if seq := fill(a, k, 0, 1000, 1000); seq != 255 {
		t.Fatalf("filled %d slots", seq)
	}
	if err := netmap.TxSync(a); err != nil {
		t.Fatal(err)
	}
	if k.TxSpace() != 0 {
		t.Fatalf("space %d with the link down", k.TxSpace())
	}
	ev := w.Events()
	if ev != unix.POLLIN|unix.POLLOUT {
		t.Errorf("TX ring full: events %#x, want POLLIN|POLLOUT", ev)
	}
	if re := pollReal(t, a, ev); re != 0 {
		t.Errorf("full ring with the link down polls %#x", re)
	}
	if re, err := a.f.Poll(ev, 0); err != nil || re != 0 {
		t.Errorf("File.Poll: %#x, %v", re, err)
	}
	fx.k.pauseTx("ix2", false)
	if re := pollReal(t, a, ev); re != unix.POLLOUT {
		t.Errorf("link back: polls %#x, want POLLOUT", re)
	}
	if err := netmap.TxSync(a); err != nil || k.TxSpace() != 255 {
		t.Fatalf("after the link came back: %v, space %d", err, k.TxSpace())
	}
	if ev := w.Events(); ev != unix.POLLIN {
		t.Errorf("room again: events %#x", ev)
	}

	// Frames arrive: the descriptor polls readable until the application
	// has them; while it sits on them POLLIN is not asked for.
	var seq uint64
	fill(b, b.TxRings()[0], 0, 5, 5)
	if err := netmap.TxSync(b); err != nil {
		t.Fatal(err)
	}
	if re := pollReal(t, a, unix.POLLIN); re != unix.POLLIN {
		t.Errorf("frames waiting: polls %#x", re)
	}
	if re, err := a.f.Poll(unix.POLLIN, 0); err != nil || re != unix.POLLIN {
		t.Errorf("File.Poll with frames waiting: %#x, %v", re, err)
	}
	if err := netmap.RxSync(a); err != nil {
		t.Fatal(err)
	}
	if ev := w.Events(); ev != 0 {
		t.Errorf("frames not consumed: events %#x, want none", ev)
	}
	if n, err := drain(a, a.RxRings()[0], &seq); err != nil || n != 5 {
		t.Fatalf("received %d frames: %v", n, err)
	}
	if err := netmap.RxSync(a); err != nil {
		t.Fatal(err)
	}
	if ev := w.Events(); ev != unix.POLLIN {
		t.Errorf("consumed: events %#x", ev)
	}
	if re := pollReal(t, a, unix.POLLIN|unix.POLLOUT); re != unix.POLLOUT {
		t.Errorf("consumed: polls %#x", re)
	}
}

func newEvents(t testing.TB, n int) []*event.Event {
	evs, err := event.NewN(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, e := range evs {
			e.Close()
		}
	})
	return evs
}

// A guest sends numbered frames through a ptnet device over the kernel
// port ix2, served by the host sync loop; they cross the fake wire to ix3,
// where an application in this process receives them. At the same time
// that application sends frames the other way, which the guest receives.
// The guest works as ptnet's stack mode does (measuring its room and its
// received frames against its own ring, and sleeping on the ring's
// interrupt when it must wait); the loop sleeps in poll on the netmap
// descriptor when idle; the application sleeps in poll on its own.
func TestGuestThroughKernelPort(t *testing.T) {
	const total = 30000
	fx := newFixture(t)
	fx.k.realFds = true
	host, peer := fx.openPort("netmap:ix2"), fx.openPort("netmap:ix3")

	mem, err := shm.New("guest-ram", 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	guestRAM := ptnetmap.FlatMemory(mem.Bytes())
	loop, err := ptnetmap.NewLoop(ptnetmap.LoopConfig{Spin: 20 * time.Microsecond, SafetyPoll: 50 * time.Millisecond, CPU: -1})
	if err != nil {
		t.Fatal(err)
	}
	loop.Start()
	nr := len(host.TxRings()) + len(host.RxRings())
	irq := newEvents(t, nr)
	dev, err := ptnetmap.NewPtnet(ptnetmap.PtnetConfig{Port: host, MAC: [6]byte{2, 0, 0, 0, 0, 1}, Mem: guestRAM,
		Irq: ptnetmap.EventInterrupts(irq), Kicks: newEvents(t, nr), Loop: loop})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		dev.Reset()
		if err := loop.Stop(); err != nil {
			t.Errorf("loop ended with %v", err)
		}
	}()

	// The guest driver attaches: probe, CREATE, map the rings.
	memdev := ptnetmap.NewMemdev(host.Region().Info())
	info, err := ptnetmap.Probe(dev, memdev)
	if err != nil {
		t.Fatal(err)
	}
	if info.NifpOfs != host.If().Offset() || info.NumTx != 2 || info.NumRx != 2 || info.TxSlots != 256 || info.Pools.MemID != 1 {
		t.Fatalf("device info %+v", info)
	}
	const gh, hg = 8192, 12288
	if err := ptnetmap.Create(dev, gh, hg); err != nil {
		t.Fatal(err)
	}
	n := uint64(info.NumTx + info.NumRx)
	csb := ptnetmap.CSBFromBytes(guestRAM[gh:gh+n*64], guestRAM[hg:hg+n*64], int(n))
	guest, err := ptnetmap.NewGuest(ptnetmap.GuestConfig{Mem: host.Region().Mem(), Pools: info.Pools, NifpOfs: info.NifpOfs,
		NumTx: info.NumTx, NumRx: info.NumRx, CSB: csb, Kick: ptnetmap.RegKicker{Regs: dev}})
	if err != nil {
		t.Fatal(err)
	}

	// Every goroutine must be gone before the ports are unmapped, even
	// when the test fails early.
	var wg sync.WaitGroup
	var stop atomic.Bool
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()
	deadline := time.Now().Add(60 * time.Second)
	running := func() bool { return !stop.Load() && time.Now().Before(deadline) }
	sleep := func(p *Port, ev int16) {
		unix.Poll([]unix.PollFd{{Fd: int32(p.Fd()), Events: ev}}, 20)
	}
	var peerGot, guestGot uint64
	run := func(what string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				t.Errorf("%s: %v", what, err)
				stop.Store(true)
			}
		}()
	}

	run("application receiving on ix3", func() error {
		k := peer.RxRings()[0]
		for peerGot < total && running() {
			if err := netmap.RxSync(peer); err != nil {
				return err
			}
			n, err := drain(peer, k, &peerGot)
			if err != nil {
				return err
			}
			if n == 0 {
				sleep(peer, unix.POLLIN)
			}
		}
		return nil
	})
	run("application sending on ix3", func() error {
		k := peer.TxRings()[0]
		for seq := uint64(0); seq < total && running(); {
			next := fill(peer, k, seq, total, 64)
			if err := netmap.TxSync(peer); err != nil {
				return err
			}
			if next == seq {
				sleep(peer, unix.POLLOUT)
			}
			seq = next
		}
		return nil
	})
	run("guest receiving", func() error {
		g := guest.Rx[0]
		ring := g.Ring
		for guestGot < total && running() {
			if !g.Sync(0) {
				return fmt.Errorf("the guest's RX ring was reset after %d frames", guestGot)
			}
			n := 0
			h := g.RHead
			for ; h != g.RTail; h = ring.Next(h) {
				s := ring.Slot(h)
				b := guest.Region.Buf(s.BufIdx)
				if v := binary.LittleEndian.Uint64(b); v != guestGot || s.Len != uint16(60+v%64) || b[s.Len-1] != byte(v) {
					return fmt.Errorf("expected frame %d, got %d (len %d)", guestGot, v, s.Len)
				}
				guestGot++
				n++
			}
			ring.Advance(h)
			if n == 0 && g.WantsInterrupt() {
				irq[info.NumTx].Wait(100)
			}
		}
		return nil
	})

	g := guest.Tx[0]
	ring := g.Ring
	for seq := uint64(0); seq < total; {
		if !running() {
			t.Errorf("the guest sent %d of %d frames", seq, total)
			break
		}
		h := g.RHead
		for ; seq < total && h != g.RTail; h = ring.Next(h) {
			s := ring.Slot(h)
			b := guest.Region.Buf(s.BufIdx)
			binary.LittleEndian.PutUint64(b, seq)
			s.Len = uint16(60 + seq%64)
			b[s.Len-1] = byte(seq)
			seq++
		}
		ring.Advance(h)
		if !g.Sync(0) {
			t.Errorf("the guest's TX ring was reset after %d frames", seq)
			break
		}
		if g.RHead == g.RTail && g.WantsInterrupt() {
			irq[0].Wait(100)
		}
	}
	wg.Wait()
	if peerGot != total || guestGot != total {
		t.Fatalf("ix3 received %d and the guest %d of %d frames", peerGot, guestGot, total)
	}
	// The kernel may send frames as soon as the guest's head reaches the
	// ring header, before the loop has read it from the CSB (see Port): the
	// device's count catches up when it does.
	st := dev.Stats()
	for end := time.Now().Add(5 * time.Second); st[0].Packets != total && time.Now().Before(end); st = dev.Stats() {
		time.Sleep(time.Millisecond)
	}
	if st[0].Packets != total || st[info.NumTx].Packets != total {
		t.Errorf("device counted %d TX and %d RX packets, want %d", st[0].Packets, st[info.NumTx].Packets, total)
	}
	for _, s := range st {
		if s.Resets != 0 {
			t.Errorf("ring %s %d was reset %d times", s.Dir, s.Ring, s.Resets)
		}
	}
	for _, port := range []string{"ix2", "ix3"} {
		if sent, dropped := fx.k.wireStats(port); sent != total || dropped != 0 {
			t.Errorf("wire from %s: %d sent, %d dropped", port, sent, dropped)
		}
	}
	for _, c := range []struct {
		port string
		t    int
	}{{"ix2", tTX}, {"ix2", tRX}, {"ix3", tTX}, {"ix3", tRX}} {
		if kr, _, _, _ := fx.k.kring(c.port, c.t, 0); kr.resets != 0 {
			t.Errorf("the kernel reinitialised %s ring %d/0 %d times", c.port, c.t, kr.resets)
		}
	}
	t.Logf("TXSYNC %d, RXSYNC %d; device TX kicks %d, interrupts %d; RX kicks %d, interrupts %d",
		fx.count("TXSYNC"), fx.count("RXSYNC"), st[0].Kicks, st[0].Interrupts, st[info.NumTx].Kicks, st[info.NumTx].Interrupts)
}
