//go:build linux

package xdp

import (
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// requireEnv, when set, turns the root and bpf(2) skips into failures, so
// a CI job that must exercise the kernel cannot pass by skipping.
const requireEnv = "PTBHYVE_REQUIRE_BPF"

var (
	bpfProbeOnce sync.Once
	bpfProbeMsg  string // why bpf(2) is unusable here; "" if usable
)

// requireBPF skips (or, with PTBHYVE_REQUIRE_BPF set, fails) the test
// unless it runs as root on a kernel whose bpf(2) creates an XSKMAP: the
// feature probe cilium/ebpf and libbpf use, creating the smallest object
// of the kind the test needs.
func requireBPF(t testing.TB) {
	t.Helper()
	skip := func(msg string) {
		t.Helper()
		if os.Getenv(requireEnv) != "" {
			t.Fatalf("%s (and %s is set)", msg, requireEnv)
		}
		t.Skipf("SKIP %s: %s (set %s=1 to make this a failure)", t.Name(), msg, requireEnv)
	}
	if os.Geteuid() != 0 {
		skip("needs root: creating BPF maps and loading XDP programs needs CAP_BPF and CAP_NET_ADMIN")
	}
	bpfProbeOnce.Do(func() {
		fd, e := mapCreate(unix.BPF_MAP_TYPE_XSKMAP, 4, 4, 1, "ptbhyve_probe")
		switch e {
		case 0:
			unix.Close(fd)
		case unix.ENOSYS:
			bpfProbeMsg = "this kernel has no bpf(2) (CONFIG_BPF_SYSCALL)"
		case unix.EPERM:
			bpfProbeMsg = "bpf(2) is not permitted here (a container or seccomp filter?)"
		case unix.EINVAL:
			bpfProbeMsg = "this kernel has no XSKMAP (CONFIG_XDP_SOCKETS)"
		default:
			bpfProbeMsg = "creating a one-slot XSKMAP failed: " + e.Error()
		}
	})
	if bpfProbeMsg != "" {
		skip(bpfProbeMsg)
	}
}

// attrBytes is the memory of an attr struct, as the kernel reads it.
func attrBytes[T any](a *T, size uintptr) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(a)), size)
}

// attrWant builds the expected bytes of an attr from (offset, value) pairs, in
// the host's byte order; a value's Go type gives its width.
func attrWant(size int, fields ...any) []byte {
	b := make([]byte, size)
	for i := 0; i < len(fields); i += 2 {
		off := fields[i].(int)
		switch v := fields[i+1].(type) {
		case uint32:
			binary.NativeEndian.PutUint32(b[off:], v)
		case uint64:
			binary.NativeEndian.PutUint64(b[off:], v)
		case string:
			copy(b[off:], v)
		default:
			panic("want: bad field type")
		}
	}
	return b
}

func ptrAddr[T any](p *T) uint64 { return uint64(uintptr(unsafe.Pointer(p))) }

// TestBPFAttrLayouts pins every attr struct byte for byte against the
// union bpf_attr offsets of the UAPI header (research §2.3, re-checked
// here with offsetof on linux-libc-dev 6.1).
func TestBPFAttrLayouts(t *testing.T) {
	check := func(name string, got, want []byte) {
		t.Helper()
		if string(got) != string(want) {
			t.Errorf("%s:\n got %x\nwant %x", name, got, want)
		}
	}
	if unsafe.Sizeof(mapCreateAttr{}) != mapCreateAttrSize {
		t.Errorf("mapCreateAttr is %d bytes, want %d", unsafe.Sizeof(mapCreateAttr{}), mapCreateAttrSize)
	}
	mc := mapCreateAttr{mapType: 17, keySize: 4, valueSize: 4, maxEntries: 64, mapFlags: 0x11, innerMapFd: 0x22,
		numaNode: 0x33, mapName: objName("ptbhyve_xsks"), mapIfindex: 0x44}
	check("MAP_CREATE", attrBytes(&mc, mapCreateAttrSize), attrWant(48,
		0, uint32(17), 4, uint32(4), 8, uint32(4), 12, uint32(64), 16, uint32(0x11), 20, uint32(0x22),
		24, uint32(0x33), 28, "ptbhyve_xsks", 44, uint32(0x44)))

	key, value := uint32(3), uint32(9)
	me := mapElemAttr{mapFd: 7, key: unsafe.Pointer(&key), value: unsafe.Pointer(&value), flags: 2}
	check("MAP_UPDATE_ELEM", attrBytes(&me, mapElemAttrSize), attrWant(32,
		0, uint32(7), 8, ptrAddr(&key), 16, ptrAddr(&value), 24, uint64(2)))

	insns, lic, log := make([]byte, 48), []byte("GPL\x00"), make([]byte, 16)
	pl := progLoadAttr{progType: 6, insnCnt: 6, insns: unsafe.Pointer(&insns[0]), license: unsafe.Pointer(&lic[0]),
		logLevel: 1, logSize: 16, logBuf: unsafe.Pointer(&log[0]), kernVersion: 0x55, progFlags: 0x66,
		progName: objName("ptbhyve_xsk"), progIfindex: 0x77, expectedAttachType: 37}
	check("PROG_LOAD", attrBytes(&pl, progLoadAttrSize), attrWant(72,
		0, uint32(6), 4, uint32(6), 8, ptrAddr(&insns[0]), 16, ptrAddr(&lic[0]), 24, uint32(1), 28, uint32(16),
		32, ptrAddr(&log[0]), 40, uint32(0x55), 44, uint32(0x66), 48, "ptbhyve_xsk", 64, uint32(0x77), 68, uint32(37)))

	var pinfo progInfo
	oi := objInfoAttr{bpfFd: 5, infoLen: progInfoSize, info: unsafe.Pointer(&pinfo)}
	check("OBJ_GET_INFO_BY_FD", attrBytes(&oi, objInfoAttrSize), attrWant(16,
		0, uint32(5), 4, uint32(progInfoSize), 8, ptrAddr(&pinfo)))

	lc := linkCreateAttr{progFd: 5, targetIfindex: 9, attachType: unix.BPF_XDP, flags: unix.XDP_FLAGS_DRV_MODE}
	check("LINK_CREATE", attrBytes(&lc, linkCreateAttrSize), attrWant(16,
		0, uint32(5), 4, uint32(9), 8, uint32(37), 12, uint32(4)))

	in, out := make([]byte, 64), make([]byte, 64)
	tr := testRunAttr{progFd: 5, retval: 1, dataSizeIn: 64, dataSizeOut: 64, dataIn: unsafe.Pointer(&in[0]),
		dataOut: unsafe.Pointer(&out[0]), repeat: 1, duration: 2}
	check("PROG_TEST_RUN", attrBytes(&tr, testRunAttrSize), attrWant(40,
		0, uint32(5), 4, uint32(1), 8, uint32(64), 12, uint32(64), 16, ptrAddr(&in[0]), 24, ptrAddr(&out[0]),
		32, uint32(1), 36, uint32(2)))

	// The info structs the kernel writes: offsets from struct bpf_prog_info
	// and struct bpf_map_info.
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"progInfo.id", unsafe.Offsetof(pinfo.id), 4},
		{"progInfo.nrMapIDs", unsafe.Offsetof(pinfo.nrMapIDs), 52},
		{"progInfo.mapIDs", unsafe.Offsetof(pinfo.mapIDs), 56},
		{"progInfo.name", unsafe.Offsetof(pinfo.name), 64},
		{"progInfo.gplCompatible", unsafe.Offsetof(pinfo.gplCompatible), 84},
		{"progInfo.netnsIno", unsafe.Offsetof(pinfo.netnsIno), 96},
		{"sizeof progInfo", unsafe.Sizeof(pinfo), progInfoSize},
		{"mapInfo.maxEntries", unsafe.Offsetof(mapInfo{}.maxEntries), 16},
		{"mapInfo.name", unsafe.Offsetof(mapInfo{}.name), 24},
		{"sizeof mapInfo", unsafe.Sizeof(mapInfo{}), mapInfoSize},
	} {
		if c.got != c.want {
			t.Errorf("%s at %d, want %d", c.name, c.got, c.want)
		}
	}
}

// TestBPFConstants pins the numbers the program and the attach code
// depend on, whether from x/sys or spelled out here.
func TestBPFConstants(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"BPF_MAP_CREATE", unix.BPF_MAP_CREATE, 0},
		{"BPF_MAP_UPDATE_ELEM", cmdMapUpdateElem, 2},
		{"BPF_MAP_DELETE_ELEM", cmdMapDeleteElem, 3},
		{"BPF_PROG_LOAD", unix.BPF_PROG_LOAD, 5},
		{"BPF_PROG_TEST_RUN", cmdProgTestRun, 10},
		{"BPF_OBJ_GET_INFO_BY_FD", unix.BPF_OBJ_GET_INFO_BY_FD, 15},
		{"BPF_LINK_CREATE", unix.BPF_LINK_CREATE, 0x1c},
		{"BPF_LINK_DETACH", cmdLinkDetach, 34},
		{"BPF_MAP_TYPE_XSKMAP", unix.BPF_MAP_TYPE_XSKMAP, 17},
		{"BPF_PROG_TYPE_XDP", unix.BPF_PROG_TYPE_XDP, 6},
		{"BPF_XDP", unix.BPF_XDP, 37},
		{"BPF_PSEUDO_MAP_FD", unix.BPF_PSEUDO_MAP_FD, 1},
		{"BPF_FUNC_redirect_map", funcRedirectMap, 51},
		{"XDP_PASS", xdpPass, 2},
		{"XDP_FLAGS_UPDATE_IF_NOEXIST", unix.XDP_FLAGS_UPDATE_IF_NOEXIST, 1},
		{"XDP_FLAGS_SKB_MODE", unix.XDP_FLAGS_SKB_MODE, 2},
		{"XDP_FLAGS_DRV_MODE", unix.XDP_FLAGS_DRV_MODE, 4},
		{"IFLA_XDP", unix.IFLA_XDP, 0x2b},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

func TestBPFErrorUnwrap(t *testing.T) {
	err := error(&ProgError{Op: "attach", Mode: "native", Iface: "veth0", Errno: unix.ERANGE, Reason: "peer MTU too large"})
	if !errors.Is(err, unix.ERANGE) {
		t.Errorf("%v does not unwrap to ERANGE", err)
	}
	if got := err.Error(); got != "xdp attach native veth0: peer MTU too large (ERANGE)" {
		t.Errorf("message %q", got)
	}
	err = &ProgError{Op: "load program", Errno: unix.EACCES, Reason: "the verifier refused the program", Log: "0: R0 !read_ok\n"}
	if got := err.Error(); !strings.HasSuffix(got, "(EACCES)\nverifier log:\n0: R0 !read_ok") {
		t.Errorf("message %q", got)
	}
	if errors.Unwrap(&ProgError{Op: "x", Reason: "y"}) != nil {
		t.Error("an error without errno unwraps to something")
	}
}
