//go:build linux

package xdp

// The raw bpf(2) system call: the few commands the redirect program needs,
// each with its union bpf_attr member spelled out (offsets from the UAPI
// header, pinned by bpf_test.go). No libbpf, no cilium/ebpf.

import (
	"fmt"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// bpf(2) commands and constants that golang.org/x/sys does not name.
const (
	cmdMapUpdateElem = 2  // BPF_MAP_UPDATE_ELEM
	cmdMapDeleteElem = 3  // BPF_MAP_DELETE_ELEM
	cmdProgTestRun   = 10 // BPF_PROG_TEST_RUN
	cmdLinkDetach    = 34 // BPF_LINK_DETACH (5.9+ for XDP links)

	funcRedirectMap = 51 // BPF_FUNC_redirect_map
	xdpAborted      = 0  // XDP_ABORTED
	xdpPass         = 2  // XDP_PASS
)

// ptrPad fills a pointer field of a bpf_attr up to the __aligned_u64 the
// kernel reads. It is 0 on 64-bit platforms. On 32-bit little-endian ones
// the pointer is the low half; 32-bit big-endian (linux/mips) would need the
// pad first, and LoadProgram refuses to run there (see checkPlatform).
const ptrPad = 8 - unsafe.Sizeof(uintptr(0))

// The attrs hold user pointers as unsafe.Pointer, not as integers, so the
// garbage collector keeps what they point to alive and the stack copier
// updates them should a goroutine stack move before the system call. Only
// the conversion in sysBPF's call to Syscall turns the attr into an integer.

// mapCreateAttr is union bpf_attr for BPF_MAP_CREATE, up to map_ifindex.
type mapCreateAttr struct {
	mapType    uint32   // @0
	keySize    uint32   // @4
	valueSize  uint32   // @8
	maxEntries uint32   // @12
	mapFlags   uint32   // @16
	innerMapFd uint32   // @20
	numaNode   uint32   // @24
	mapName    [16]byte // @28
	mapIfindex uint32   // @44
}

const mapCreateAttrSize = 48

// mapElemAttr is union bpf_attr for BPF_MAP_*_ELEM.
type mapElemAttr struct {
	mapFd uint32 // @0
	_     uint32
	key   unsafe.Pointer // @8
	_     [ptrPad]byte
	value unsafe.Pointer // @16 (unused by DELETE)
	_     [ptrPad]byte
	flags uint64 // @24
}

const mapElemAttrSize = 32

// progLoadAttr is union bpf_attr for BPF_PROG_LOAD, up to
// expected_attach_type.
type progLoadAttr struct {
	progType           uint32         // @0
	insnCnt            uint32         // @4
	insns              unsafe.Pointer // @8
	_                  [ptrPad]byte
	license            unsafe.Pointer // @16, a NUL-terminated string
	_                  [ptrPad]byte
	logLevel           uint32         // @24
	logSize            uint32         // @28
	logBuf             unsafe.Pointer // @32
	_                  [ptrPad]byte
	kernVersion        uint32   // @40
	progFlags          uint32   // @44
	progName           [16]byte // @48
	progIfindex        uint32   // @64
	expectedAttachType uint32   // @68
}

const progLoadAttrSize = 72

// objInfoAttr is union bpf_attr for BPF_OBJ_GET_INFO_BY_FD.
type objInfoAttr struct {
	bpfFd   uint32         // @0
	infoLen uint32         // @4
	info    unsafe.Pointer // @8
	_       [ptrPad]byte
}

const objInfoAttrSize = 16

// linkCreateAttr is union bpf_attr for BPF_LINK_CREATE, up to flags (the
// XDP link uses nothing after it).
type linkCreateAttr struct {
	progFd        uint32 // @0
	targetIfindex uint32 // @4
	attachType    uint32 // @8
	flags         uint32 // @12: for BPF_XDP only the XDP_FLAGS_*_MODE bits
}

const linkCreateAttrSize = 16

// testRunAttr is union bpf_attr for BPF_PROG_TEST_RUN, up to duration.
type testRunAttr struct {
	progFd      uint32         // @0
	retval      uint32         // @4
	dataSizeIn  uint32         // @8
	dataSizeOut uint32         // @12
	dataIn      unsafe.Pointer // @16
	_           [ptrPad]byte
	dataOut     unsafe.Pointer // @24
	_           [ptrPad]byte
	repeat      uint32 // @32
	duration    uint32 // @36
}

const testRunAttrSize = 40

// progInfo is the start of struct bpf_prog_info, up to netns_ino. The
// kernel fills in as much as info_len says.
type progInfo struct {
	progType        uint32         // @0
	id              uint32         // @4
	tag             [8]byte        // @8
	jitedProgLen    uint32         // @16
	xlatedProgLen   uint32         // @20
	jitedProgInsns  uint64         // @24
	xlatedProgInsns uint64         // @32
	loadTime        uint64         // @40
	createdByUID    uint32         // @48
	nrMapIDs        uint32         // @52: in: room in mapIDs; out: the program's map count
	mapIDs          unsafe.Pointer // @56: where the kernel writes the map ids
	_               [ptrPad]byte
	name            [16]byte // @64
	ifindex         uint32   // @80
	gplCompatible   uint32   // @84: bit 0
	netnsDev        uint64   // @88
	netnsIno        uint64   // @96
}

const progInfoSize = 104

// mapInfo is the start of struct bpf_map_info, up to ifindex.
type mapInfo struct {
	mapType    uint32   // @0
	id         uint32   // @4
	keySize    uint32   // @8
	valueSize  uint32   // @12
	maxEntries uint32   // @16
	mapFlags   uint32   // @20
	name       [16]byte // @24
	ifindex    uint32   // @40
	_          uint32   // @44 btf_vmlinux_value_type_id
}

const mapInfoSize = 48

// sysBPF is bpf(cmd, attr, size), retried on EINTR. attr must point to an
// attr struct whose pointers are held as unsafe.Pointer (see above).
func sysBPF(cmd int, attr unsafe.Pointer, size uintptr) (int, unix.Errno) {
	for {
		r, _, e := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
		switch e {
		case 0:
			return int(r), 0
		case unix.EINTR:
			continue
		}
		return -1, e
	}
}

// objName is a BPF object name: at most 15 bytes of [A-Za-z0-9_.].
func objName(s string) (n [16]byte) {
	copy(n[:15], s)
	return n
}

func mapCreate(mapType, keySize, valueSize, maxEntries uint32, name string) (int, unix.Errno) {
	a := mapCreateAttr{mapType: mapType, keySize: keySize, valueSize: valueSize, maxEntries: maxEntries, mapName: objName(name)}
	return sysBPF(unix.BPF_MAP_CREATE, unsafe.Pointer(&a), mapCreateAttrSize)
}

func mapUpdateU32(mapFd int, key, value uint32, flags uint64) unix.Errno {
	a := mapElemAttr{mapFd: uint32(mapFd), key: unsafe.Pointer(&key), value: unsafe.Pointer(&value), flags: flags}
	_, e := sysBPF(cmdMapUpdateElem, unsafe.Pointer(&a), mapElemAttrSize)
	return e
}

func mapDeleteU32(mapFd int, key uint32) unix.Errno {
	a := mapElemAttr{mapFd: uint32(mapFd), key: unsafe.Pointer(&key)}
	_, e := sysBPF(cmdMapDeleteElem, unsafe.Pointer(&a), mapElemAttrSize)
	return e
}

// progLoad loads insns (8-byte slots). With a log buffer the verifier
// writes its log there (log_level 1).
func progLoad(progType uint32, insns []byte, license, name string, log []byte) (int, unix.Errno) {
	lic := append([]byte(license), 0)
	a := progLoadAttr{
		progType: progType,
		insnCnt:  uint32(len(insns) / insnSize),
		insns:    unsafe.Pointer(unsafe.SliceData(insns)),
		license:  unsafe.Pointer(&lic[0]),
		progName: objName(name),
	}
	if len(log) > 0 {
		a.logLevel, a.logSize, a.logBuf = 1, uint32(len(log)), unsafe.Pointer(&log[0])
	}
	// The verifier returns EAGAIN when a signal (the Go scheduler's
	// preemption signal, say) interrupts it; a few retries are what
	// loaders do.
	for try := 0; ; try++ {
		fd, e := sysBPF(unix.BPF_PROG_LOAD, unsafe.Pointer(&a), progLoadAttrSize)
		if e == unix.EAGAIN && try < 5 {
			continue
		}
		return fd, e
	}
}

func objInfo(fd int, info unsafe.Pointer, size uint32) unix.Errno {
	a := objInfoAttr{bpfFd: uint32(fd), infoLen: size, info: info}
	_, e := sysBPF(unix.BPF_OBJ_GET_INFO_BY_FD, unsafe.Pointer(&a), objInfoAttrSize)
	return e
}

// progInfoByFd returns the program's info and the ids of its maps.
func progInfoByFd(fd int) (progInfo, []uint32, unix.Errno) {
	ids := make([]uint32, 8)
	info := progInfo{nrMapIDs: uint32(len(ids)), mapIDs: unsafe.Pointer(&ids[0])}
	if e := objInfo(fd, unsafe.Pointer(&info), progInfoSize); e != 0 {
		return progInfo{}, nil, e
	}
	n := min(int(info.nrMapIDs), len(ids))
	info.mapIDs = nil
	return info, ids[:n], 0
}

func mapInfoByFd(fd int) (mapInfo, unix.Errno) {
	var info mapInfo
	e := objInfo(fd, unsafe.Pointer(&info), mapInfoSize)
	return info, e
}

func linkCreate(progFd, ifindex int, attachType, flags uint32) (int, unix.Errno) {
	a := linkCreateAttr{progFd: uint32(progFd), targetIfindex: uint32(ifindex), attachType: attachType, flags: flags}
	return sysBPF(unix.BPF_LINK_CREATE, unsafe.Pointer(&a), linkCreateAttrSize)
}

// linkDetach detaches a link from its hook while its fds stay open, so
// the detach does not wait for every copy of the fd (one a concurrent
// fork holds until its exec, say) to close.
func linkDetach(linkFd int) unix.Errno {
	a := struct{ linkFd uint32 }{uint32(linkFd)}
	_, e := sysBPF(cmdLinkDetach, unsafe.Pointer(&a), 4)
	return e
}

// testRun runs the program once over data (BPF_PROG_TEST_RUN) and returns
// its return value.
func testRun(progFd int, data []byte) (uint32, unix.Errno) {
	out := make([]byte, len(data)+256)
	a := testRunAttr{
		progFd:      uint32(progFd),
		dataSizeIn:  uint32(len(data)),
		dataSizeOut: uint32(len(out)),
		dataIn:      unsafe.Pointer(unsafe.SliceData(data)),
		dataOut:     unsafe.Pointer(&out[0]),
		repeat:      1,
	}
	if _, e := sysBPF(cmdProgTestRun, unsafe.Pointer(&a), testRunAttrSize); e != 0 {
		return 0, e
	}
	return a.retval, 0
}

// checkPlatform refuses the one Linux platform whose pointer fields the
// attrs above lay out wrongly: 32-bit big endian.
func checkPlatform() error {
	one := uint16(1)
	if ptrPad != 0 && *(*byte)(unsafe.Pointer(&one)) == 0 {
		return &ProgError{Op: "load program", Errno: unix.ENOTSUP,
			Reason: "bpf(2) attributes are not laid out for 32-bit big-endian platforms"}
	}
	return nil
}

// ProgError is a failed operation on the XDP program: creating its XSKMAP,
// loading it, updating the map, attaching or detaching it. It unwraps to
// the errno, so errors.Is(err, unix.EBUSY) works.
//
// Checks this package makes before calling the kernel, for requests the
// kernel would refuse, also return a *ProgError with the errno the kernel
// would have used.
type ProgError struct {
	Op     string // "create XSKMAP", "load program", "set socket", "attach", "detach", ...
	Iface  string // the interface, for attach and detach
	Mode   string // the XDP mode tried, for attach and detach
	Errno  unix.Errno
	Reason string // what the failure means, and the fix when there is one
	// Kernel is the kernel's own message (netlink extended ack), if any.
	Kernel string
	// Log is the verifier's log when it refused the program.
	Log string
}

func (e *ProgError) Error() string {
	var b strings.Builder
	b.WriteString("xdp ")
	b.WriteString(e.Op)
	if e.Mode != "" {
		b.WriteString(" ")
		b.WriteString(e.Mode)
	}
	if e.Iface != "" {
		b.WriteString(" ")
		b.WriteString(e.Iface)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	if e.Errno != 0 {
		fmt.Fprintf(&b, " (%s)", progErrnoName(e.Errno))
	}
	if e.Kernel != "" {
		fmt.Fprintf(&b, " [kernel: %s]", e.Kernel)
	}
	if e.Log != "" {
		b.WriteString("\nverifier log:\n")
		b.WriteString(strings.TrimRight(e.Log, "\n"))
	}
	return b.String()
}

// Unwrap returns the errno (nil if there is none).
func (e *ProgError) Unwrap() error {
	if e.Errno == 0 {
		return nil
	}
	return e.Errno
}

func progErrnoName(e unix.Errno) string {
	if e == unix.EOPNOTSUPP {
		return "EOPNOTSUPP" // the kernel's name; x/sys's table says ENOTSUP
	}
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return fmt.Sprintf("errno %d", int(e))
}
