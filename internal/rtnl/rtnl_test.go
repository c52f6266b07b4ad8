//go:build linux

package rtnl_test

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/ptbhyve/ptbhyve/internal/rtnl"
	"github.com/ptbhyve/ptbhyve/internal/testnet"
	"golang.org/x/sys/unix"
)

func newNS(t *testing.T, name string) (*testnet.NS, *rtnl.Conn) {
	t.Helper()
	if reason := testnet.Unavailable(); reason != "" {
		t.Skipf("rtnl: SKIP: %s", reason)
	}
	ns, err := testnet.NewNS(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Close(); err != nil {
			t.Error(err)
		}
	})
	c, err := rtnl.DialNamed(ns.Fd(), ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return ns, c
}

func wantErr(t *testing.T, err error, errno unix.Errno, text string) {
	t.Helper()
	if !errors.Is(err, errno) {
		t.Fatalf("want %v (%s), got %v", errno, unix.ErrnoName(errno), err)
	}
	var got unix.Errno
	if !errors.As(err, &got) || got != errno {
		t.Errorf("error does not unwrap to the errno: %#v", err)
	}
	if !strings.Contains(err.Error(), text) {
		t.Errorf("error %q does not say %q", err, text)
	}
}

func TestLinkLifecycle(t *testing.T) {
	t.Parallel()
	ns, c := newNS(t, "rtnl-life")

	_, err := c.LinkByName("nope0")
	wantErr(t, err, unix.ENODEV, "no such interface nope0 in namespace "+ns.Name)

	// Same-namespace veth with asymmetric queues and a custom MTU.
	cfg := rtnl.VethConfig{Name: "va", PeerName: "vb", PeerNSFd: -1, TxQueues: 3, RxQueues: 2, MTU: 1400}
	if err := c.CreateVeth(cfg); err != nil {
		t.Fatal(err)
	}
	wantErr(t, c.CreateVeth(cfg), unix.EEXIST, "already exists")
	if err := c.CreateVeth(rtnl.VethConfig{Name: "averyveryverylongname", PeerName: "x", PeerNSFd: -1}); err == nil || !strings.Contains(err.Error(), "IFNAMSIZ") {
		t.Errorf("long name: got %v", err)
	}

	links, err := c.Links()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]rtnl.Link{}
	for _, l := range links {
		byName[l.Name] = l
	}
	for _, n := range []string{"lo", "va", "vb"} {
		if _, ok := byName[n]; !ok {
			t.Errorf("Links() lacks %s: %+v", n, links)
		}
	}
	va, vb := byName["va"], byName["vb"]
	for _, l := range []rtnl.Link{va, vb} {
		if l.MTU != 1400 || l.NumTxQueues != 3 || l.NumRxQueues != 2 || l.Flags&unix.IFF_UP != 0 {
			t.Errorf("%s: got %+v, want MTU 1400, 3 TX / 2 RX queues, down", l.Name, l)
		}
	}

	if err := c.SetMTU(va.Index, 9000); err != nil {
		t.Fatal(err)
	}
	wantErr(t, c.SetMTU(va.Index, 10), unix.EINVAL, "out of range")
	if err := c.SetUp(va.Index); err != nil {
		t.Fatal(err)
	}
	if err := c.SetUp(vb.Index); err != nil {
		t.Fatal(err)
	}
	got, err := c.LinkByIndex(va.Index)
	if err != nil || got.MTU != 9000 || got.Flags&unix.IFF_UP == 0 {
		t.Errorf("after SetMTU/SetUp: %+v, %v", got, err)
	}

	for _, p := range []string{"192.0.2.1/24", "2001:db8::1/64", "::ffff:198.51.100.7/120"} {
		if err := c.AddAddr(va.Index, netip.MustParsePrefix(p)); err != nil {
			t.Errorf("AddAddr %s: %v", p, err)
		}
	}
	wantErr(t, c.AddAddr(va.Index, netip.MustParsePrefix("192.0.2.1/24")), unix.EEXIST, "already assigned")
	if err := c.AddAddr(va.Index, netip.Prefix{}); err == nil {
		t.Error("AddAddr accepted an invalid prefix")
	}

	if err := c.DeleteLink(vb.Index); err != nil {
		t.Fatal(err)
	}
	// Deleting one end takes the other with it.
	_, err = c.LinkByIndex(va.Index)
	wantErr(t, err, unix.ENODEV, "no such interface")
	wantErr(t, c.DeleteLink(va.Index), unix.ENODEV, "in namespace "+ns.Name)
	wantErr(t, c.SetUp(va.Index), unix.ENODEV, "no such interface")
	if err := c.SetUp(0); err == nil {
		t.Error("SetUp(0) accepted")
	}
}

func TestDial(t *testing.T) {
	if _, err := rtnl.Dial(-2); err == nil {
		t.Error("Dial(-2) accepted")
	}
	c, err := rtnl.Dial(-1)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.LinkByName("lo"); err != nil {
		t.Error(err)
	}
	if c.Namespace() != "the current namespace" {
		t.Errorf("Namespace() = %q", c.Namespace())
	}
}

// loadXDPPass loads the two-instruction program "return XDP_PASS" with the
// raw bpf(2) call, so the tests exercise a real attach without depending on
// the backend's loader.
func loadXDPPass(t *testing.T) int {
	t.Helper()
	const xdpPass = 2
	insns := make([]byte, 16)
	insns[0] = unix.BPF_ALU64 | unix.BPF_MOV | unix.BPF_K // r0 = imm
	binary.NativeEndian.PutUint32(insns[4:], xdpPass)
	insns[8] = unix.BPF_JMP | unix.BPF_EXIT
	license := []byte("GPL\x00")
	// The leading fields of union bpf_attr for BPF_PROG_LOAD.
	attr := struct {
		progType, insnCnt   uint32
		insns, license      uint64
		logLevel, logSize   uint32
		logBuf              uint64
		kernVersion, pflags uint32
		name                [16]byte
		ifindex, attachType uint32
	}{
		progType: unix.BPF_PROG_TYPE_XDP, insnCnt: 2,
		insns:   uint64(uintptr(unsafe.Pointer(&insns[0]))),
		license: uint64(uintptr(unsafe.Pointer(&license[0]))),
	}
	copy(attr.name[:], "ptb_test_pass")
	fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(insns)
	runtime.KeepAlive(license)
	if errno != 0 {
		t.Skipf("cannot load an XDP program (needs CAP_BPF and CONFIG_BPF_SYSCALL): %v", errno)
	}
	t.Cleanup(func() { unix.Close(int(fd)) })
	return int(fd)
}

func TestSetXDP(t *testing.T) {
	t.Parallel()
	p := testnet.NewPair(t, testnet.PairConfig{Queues: 2})
	ca, err := rtnl.DialNamed(p.A.Fd(), p.A.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	cb, err := rtnl.DialNamed(p.B.Fd(), p.B.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()

	// Detaching with nothing attached is fine, in any mode.
	for _, f := range []uint32{0, rtnl.XDPFlagsSKBMode, rtnl.XDPFlagsDrvMode} {
		if err := ca.SetXDP(p.AIndex, -1, f); err != nil {
			t.Errorf("detach (flags %#x) with nothing attached: %v", f, err)
		}
	}

	// A descriptor that is not a BPF program.
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	err = ca.SetXDP(p.AIndex, efd, rtnl.XDPFlagsDrvMode)
	wantErr(t, err, unix.EINVAL, "is not a loaded BPF program of type XDP")
	t.Logf("non-program fd: %v", err)
	// A descriptor that is not open.
	var closed [2]int
	if err := unix.Pipe2(closed[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	unix.Close(closed[0])
	unix.Close(closed[1])
	wantErr(t, ca.SetXDP(p.AIndex, closed[0], 0), unix.EBADF, "not an open file descriptor")
	wantErr(t, ca.SetXDP(p.AIndex, -1, rtnl.XDPFlagsSKBMode|rtnl.XDPFlagsDrvMode), unix.EINVAL, "invalid XDP flags")
	_, err = ca.LinkByName(p.AName)
	if err != nil {
		t.Fatal(err)
	}

	prog := loadXDPPass(t)

	// Native attach, seen through RTM_GETLINK.
	if err := ca.SetXDP(p.AIndex, prog, rtnl.XDPFlagsDrvMode); err != nil {
		t.Fatal(err)
	}
	l, err := ca.LinkByName(p.AName)
	if err != nil {
		t.Fatal(err)
	}
	if l.XDPAttached != rtnl.XDPAttachedDrv || l.XDPProgID == 0 {
		t.Errorf("after native attach: %+v", l)
	}
	wantErr(t, ca.SetXDP(p.AIndex, prog, rtnl.XDPFlagsDrvMode|rtnl.XDPFlagsUpdateIfNoExist), unix.EBUSY, "already attached")
	// Raising the peer's MTU beyond what native XDP allows is refused while
	// the program is attached (the kernel caps the peer's max MTU).
	if err := cb.SetMTU(p.BIndex, 9000); err == nil {
		t.Error("peer MTU 9000 accepted while native XDP is attached")
	}
	if err := ca.SetXDP(p.AIndex, -1, rtnl.XDPFlagsDrvMode); err != nil {
		t.Fatal(err)
	}
	if l, err := ca.LinkByName(p.AName); err != nil || l.XDPAttached != rtnl.XDPAttachedNone || l.XDPProgID != 0 {
		t.Errorf("after detach: %+v, %v", l, err)
	}

	// With the peer at MTU 9000, native attach fails with ERANGE and a
	// hint; generic mode works.
	if err := cb.SetMTU(p.BIndex, 9000); err != nil {
		t.Fatal(err)
	}
	err = ca.SetXDP(p.AIndex, prog, rtnl.XDPFlagsDrvMode)
	wantErr(t, err, unix.ERANGE, "peer MTU too large for native XDP on veth: lower the MTU to 1500 or use generic mode")
	t.Logf("ERANGE: %v", err)
	if err := ca.SetXDP(p.AIndex, prog, rtnl.XDPFlagsSKBMode); err != nil {
		t.Fatal(err)
	}
	if l, err := ca.LinkByName(p.AName); err != nil || l.XDPAttached != rtnl.XDPAttachedSKB || l.XDPProgID == 0 {
		t.Errorf("after generic attach: %+v, %v", l, err)
	}
	// Left attached on purpose: Pair.Close must cope.
}
