//go:build linux

package xdp

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestBytecode pins the program byte for byte: research §2.2's six slots,
// with the map fd in the 64-bit immediate load.
func TestBytecode(t *testing.T) {
	if hostBigEndian {
		t.Skip("the pinned bytes are little endian")
	}
	want := []byte{
		0x61, 0x12, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, // r2 = *(u32 *)(r1 + 16)
		0x18, 0x11, 0x00, 0x00, 0x0d, 0x0c, 0x0b, 0x0a, // r1 = map fd 0x0a0b0c0d (BPF_PSEUDO_MAP_FD)
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //      (upper 32 bits)
		0xb7, 0x03, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, // r3 = XDP_PASS
		0x85, 0x00, 0x00, 0x00, 0x33, 0x00, 0x00, 0x00, // call 51 (bpf_redirect_map)
		0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // exit
	}
	if got := redirectInsns(0x0a0b0c0d); string(got) != string(want) {
		t.Errorf("program bytes\n got % x\nwant % x", got, want)
	}
	var b [8]byte
	insn{op: opLdxMemW, dst: 2, src: 1, off: -2, imm: -1}.put(b[:])
	if want := [8]byte{0x61, 0x12, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff}; b != want {
		t.Errorf("negative off/imm: % x, want % x", b, want)
	}
}

func loadProgram(t *testing.T, queues int) *Program {
	t.Helper()
	requireBPF(t)
	p, err := LoadProgram(queues)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Program.Close: %v", err)
		}
	})
	return p
}

// TestProgLoad loads the program and asks the kernel what it holds: an
// XDP program named ptbhyve_xsk whose one map is our XSKMAP.
func TestProgLoad(t *testing.T) {
	p := loadProgram(t, 4)
	if p.Fd() < 0 || p.MapFd() < 0 || p.ID() == 0 || p.Queues() != 4 {
		t.Fatalf("fd %d map fd %d id %d queues %d", p.Fd(), p.MapFd(), p.ID(), p.Queues())
	}
	info, maps, e := progInfoByFd(p.Fd())
	if e != 0 {
		t.Fatalf("BPF_OBJ_GET_INFO_BY_FD program: %v", e)
	}
	if info.progType != unix.BPF_PROG_TYPE_XDP {
		t.Errorf("program type %d, want BPF_PROG_TYPE_XDP (%d)", info.progType, unix.BPF_PROG_TYPE_XDP)
	}
	if info.id != p.ID() {
		t.Errorf("program id %d, ID() says %d", info.id, p.ID())
	}
	if got := string(info.name[:indexByte0(info.name[:])]); got != progName {
		t.Errorf("program name %q, want %q", got, progName)
	}
	m, e := mapInfoByFd(p.MapFd())
	if e != 0 {
		t.Fatalf("BPF_OBJ_GET_INFO_BY_FD map: %v", e)
	}
	if m.mapType != unix.BPF_MAP_TYPE_XSKMAP || m.keySize != 4 || m.valueSize != 4 || m.maxEntries != 4 {
		t.Errorf("map type %d key %d value %d entries %d, want XSKMAP (17) 4 4 4", m.mapType, m.keySize, m.valueSize, m.maxEntries)
	}
	if len(maps) != 1 || maps[0] != m.id {
		t.Errorf("program references maps %v, want exactly [%d] (the XSKMAP)", maps, m.id)
	}
	// With every slot empty the program passes frames to the stack.
	ret, e := testRun(p.Fd(), make([]byte, 64))
	if e != 0 || ret != xdpPass {
		t.Errorf("test run: action %d errno %v, want XDP_PASS (2)", ret, e)
	}
}

// TestProgLicenseNotGPL documents that bpf_redirect_map is not a GPL-only
// helper: the program loads under the project's license, and the kernel
// records it as not GPL-compatible.
func TestProgLicenseNotGPL(t *testing.T) {
	p := loadProgram(t, 1)
	info, _, e := progInfoByFd(p.Fd())
	if e != 0 {
		t.Fatal(e)
	}
	if info.gplCompatible&1 != 0 {
		t.Errorf("the kernel counts license %q as GPL-compatible; the test means to load a non-GPL program", License)
	}
	// "GPL" is accepted too, and marked compatible: the bit is read right.
	fd, err := loadInsns(redirectInsns(p.MapFd()), "GPL")
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if info, _, _ := progInfoByFd(fd); info.gplCompatible&1 == 0 {
		t.Error("a program licensed GPL is not marked GPL-compatible")
	}
}

// TestProgVerifierLog: a refused program's error quotes the verifier.
func TestProgVerifierLog(t *testing.T) {
	requireBPF(t)
	bad := make([]byte, insnSize)
	insn{op: opExit}.put(bad) // returns r0, which was never set
	fd, err := loadInsns(bad, License)
	if err == nil {
		unix.Close(fd)
		t.Fatal("the verifier accepted a program that returns an unset r0")
	}
	var pe *ProgError
	if !errors.As(err, &pe) || pe.Errno != unix.EACCES {
		t.Fatalf("error %v, want a *ProgError with EACCES", err)
	}
	if !strings.Contains(pe.Log, "R0 !read_ok") || !strings.Contains(err.Error(), "verifier log:\n") {
		t.Errorf("the error does not quote the verifier's log:\n%v", err)
	}
	t.Log(err)
}

// TestProgSetSocket: each wrong fd gets an error naming what is wrong,
// with the kernel's errno; an AF_XDP socket (bound or not, on 5.10+) goes
// in, and ClearSocket empties the slot.
func TestProgSetSocket(t *testing.T) {
	p := loadProgram(t, 2)
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	udp, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(udp)
	closed, _ := unix.Eventfd(0, unix.EFD_CLOEXEC)
	unix.Close(closed)

	for _, c := range []struct {
		queue, fd int
		errno     unix.Errno
		says      string
	}{
		{0, efd, unix.ENOTSOCK, "is not a socket"},
		{0, udp, unix.EOPNOTSUPP, "is not an AF_XDP socket"},
		{0, closed, unix.EBADF, "is not open"},
		{0, -1, unix.EBADF, "negative"},
		{2, udp, unix.E2BIG, "outside the XSKMAP's 2 slots"},
		{-1, udp, unix.E2BIG, "outside"},
	} {
		err := p.SetSocket(c.queue, c.fd)
		var pe *ProgError
		if !errors.As(err, &pe) || !errors.Is(err, c.errno) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("SetSocket(%d, %d) = %v; want a *ProgError with %v saying %q", c.queue, c.fd, err, c.errno, c.says)
		}
	}

	xsk, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("AF_XDP socket: %v", err)
	}
	defer unix.Close(xsk)
	if err := p.SetSocket(1, xsk); err != nil {
		t.Fatalf("SetSocket with an AF_XDP socket: %v", err)
	}
	if err := p.ClearSocket(1); err != nil {
		t.Errorf("ClearSocket: %v", err)
	}
	if err := p.ClearSocket(1); err != nil {
		t.Errorf("ClearSocket of an empty slot: %v", err)
	}
	if err := p.ClearSocket(5); !errors.Is(err, unix.E2BIG) {
		t.Errorf("ClearSocket(5) = %v, want E2BIG", err)
	}
}

func TestProgArgsAndClose(t *testing.T) {
	for _, n := range []int{0, -1, maxMapQueues + 1} {
		if _, err := LoadProgram(n); !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), fmt.Sprint(n)) {
			t.Errorf("LoadProgram(%d) = %v, want EINVAL naming the count", n, err)
		}
	}
	requireBPF(t)
	p, err := LoadProgram(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if p.Fd() != -1 || p.MapFd() != -1 {
		t.Errorf("after Close: fd %d map fd %d", p.Fd(), p.MapFd())
	}
	if err := p.SetSocket(0, 0); !errors.Is(err, unix.EBADF) || !strings.Contains(err.Error(), "closed") {
		t.Errorf("SetSocket after Close = %v, want EBADF saying closed", err)
	}
}
