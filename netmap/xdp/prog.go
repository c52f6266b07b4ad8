//go:build linux

package xdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// The redirect program, hand-encoded (research §2.2). In C:
//
//	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
//
// Since Linux 5.3 the low bits of bpf_redirect_map's flags are the action
// for an empty slot, so frames of queues without a socket go on to the
// stack. Six 8-byte slots: opcode, dst_reg | src_reg<<4, off s16, imm s32,
// little endian (the host's order, which is what the kernel reads).

// Opcodes.
const (
	opLdxMemW  = 0x61 // BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
	opLdImmDW  = 0x18 // BPF_LD | BPF_IMM | BPF_DW: dst = imm64 (two slots)
	opMov64Imm = 0xb7 // BPF_ALU64 | BPF_MOV | BPF_K: dst = imm
	opCall     = 0x85 // BPF_JMP | BPF_CALL: r0 = helper imm(r1, ..., r5)
	opExit     = 0x95 // BPF_JMP | BPF_EXIT: return r0

	insnSize = 8

	// offRxQueueIndex is the offset of rx_queue_index in struct xdp_md.
	offRxQueueIndex = 16
)

// hostBigEndian is whether the host stores the low byte of a word last.
var hostBigEndian = binary.NativeEndian.Uint16([]byte{0, 1}) == 1

// insn is one instruction slot.
type insn struct {
	op       uint8
	dst, src uint8
	off      int16
	imm      int32
}

func (i insn) put(b []byte) {
	b[0] = i.op
	// struct bpf_insn's dst_reg:4, src_reg:4 bitfields: dst is the low
	// nibble on little-endian hosts, the high one on big-endian hosts.
	if hostBigEndian {
		b[1] = i.dst<<4 | i.src&0xf
	} else {
		b[1] = i.dst&0xf | i.src<<4
	}
	binary.NativeEndian.PutUint16(b[2:], uint16(i.off))
	binary.NativeEndian.PutUint32(b[4:], uint32(i.imm))
}

// redirectInsns is the program with mapFd in its map load.
func redirectInsns(mapFd int) []byte {
	prog := []insn{
		// r2 = ctx->rx_queue_index
		{op: opLdxMemW, dst: 2, src: 1, off: offRxQueueIndex},
		// r1 = the map: a 64-bit immediate in two slots, tagged as a map
		// fd, which the kernel swaps for the map's address
		{op: opLdImmDW, dst: 1, src: unix.BPF_PSEUDO_MAP_FD, imm: int32(mapFd)},
		{},
		// r3 = XDP_PASS, the action for an empty slot
		{op: opMov64Imm, dst: 3, imm: xdpPass},
		// r0 = bpf_redirect_map(r1, r2, r3)
		{op: opCall, imm: funcRedirectMap},
		// return r0
		{op: opExit},
	}
	b := make([]byte, len(prog)*insnSize)
	for i, in := range prog {
		in.put(b[i*insnSize:])
	}
	return b
}

// License is the license string the program is loaded with. The kernel
// gates GPL-only helpers on it; bpf_redirect_map is not one (its proto
// has gpl_only = false), so the project's own license will do:
// TestProgLicenseNotGPL loads the program with it and checks that the
// kernel marks it not GPL-compatible.
const License = "BSD-2-Clause"

// Object names as bpftool shows them.
const (
	progName = "ptbhyve_xsk"
	mapName  = "ptbhyve_xsks"
)

// errnoKernelNotSupp is the kernel-internal ENOTSUPP (524), which some bpf
// commands leak to user space; x/sys does not name it.
const errnoKernelNotSupp = unix.Errno(524)

// maxMapQueues bounds LoadProgram's maxQueues; it is far above any NIC's
// queue count and keeps the map under a megabyte.
const maxMapQueues = 1 << 16

// verifierLogSize is the buffer for the verifier's log on a failed load.
const verifierLogSize = 64 << 10

// Program is the loaded redirect program and its XSKMAP: frames received
// on queue q go to the AF_XDP socket in slot q, or to the kernel stack when
// the slot is empty. The program and map live until Close and every
// attachment of the program are gone. Its methods may be called
// concurrently.
type Program struct {
	mu        sync.RWMutex // Close excludes the map updates (fd reuse)
	fd, mapFd int          // -1 once closed
	id        uint32
	queues    int
}

// LoadProgram creates an XSKMAP with maxQueues slots (key: u32 queue id,
// value: u32 socket fd) and loads the redirect program over it. It needs
// CAP_BPF and CAP_NET_ADMIN (root), and Linux 5.3 or newer, which it
// checks by running the program once (BPF_PROG_TEST_RUN) on a dummy frame.
func LoadProgram(maxQueues int) (*Program, error) {
	if err := checkPlatform(); err != nil {
		return nil, err
	}
	if maxQueues < 1 || maxQueues > maxMapQueues {
		return nil, &ProgError{Op: "create XSKMAP", Errno: unix.EINVAL,
			Reason: fmt.Sprintf("maxQueues is %d; want 1 to %d (the highest queue id used, plus one)", maxQueues, maxMapQueues)}
	}
	mfd, e := mapCreate(unix.BPF_MAP_TYPE_XSKMAP, 4, 4, uint32(maxQueues), mapName)
	if e != 0 {
		return nil, &ProgError{Op: "create XSKMAP", Errno: e, Reason: mapCreateReason(e)}
	}
	p := &Program{fd: -1, mapFd: mfd, queues: maxQueues}
	fd, err := loadInsns(redirectInsns(mfd), License)
	if err != nil {
		p.Close()
		return nil, err
	}
	p.fd = fd
	info, _, e := progInfoByFd(fd)
	if e != 0 {
		p.Close()
		return nil, &ProgError{Op: "load program", Errno: e, Reason: "the kernel loaded the program but would not describe it (BPF_OBJ_GET_INFO_BY_FD)"}
	}
	p.id = info.id
	if err := p.checkFallback(); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// loadInsns loads an XDP program. It loads without a log first, as the
// log costs verification time, and on failure loads again with one so the
// error can quote the verifier.
func loadInsns(insns []byte, license string) (int, error) {
	fd, e := progLoad(unix.BPF_PROG_TYPE_XDP, insns, license, progName, nil)
	if e == 0 {
		return fd, nil
	}
	err := &ProgError{Op: "load program", Errno: e, Reason: progLoadReason(e)}
	if e == unix.EPERM || e == unix.ENOSYS {
		return -1, err
	}
	log := make([]byte, verifierLogSize)
	fd, e2 := progLoad(unix.BPF_PROG_TYPE_XDP, insns, license, progName, log)
	if e2 == 0 { // passed the second time (a transient failure)
		return fd, nil
	}
	if n := indexByte0(log); n > 0 {
		err.Log = string(log[:n])
	}
	return -1, err
}

func indexByte0(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}

// checkFallback runs the program with an empty map and expects XDP_PASS.
// Before Linux 5.3 bpf_redirect_map ignored a nonzero flags argument's
// action and returned XDP_ABORTED, so the program would drop every frame
// of a queue without a socket.
func (p *Program) checkFallback() error {
	frame := make([]byte, 64)
	ret, e := testRun(p.fd, frame)
	switch {
	case e == errnoKernelNotSupp || e == unix.EOPNOTSUPP || e == unix.EINVAL:
		return nil // no XDP test runs here (before 4.12); trust the kernel
	case e != 0:
		return &ProgError{Op: "load program", Errno: e, Reason: "test run of the loaded program failed"}
	case ret != xdpPass:
		return &ProgError{Op: "load program", Errno: unix.ENOTSUP,
			Reason: fmt.Sprintf("with an empty XSKMAP the program returned action %d, not XDP_PASS (2): the kernel's bpf_redirect_map takes no fallback action (it needs Linux 5.3 or newer) and would drop the frames of every queue without a socket", ret)}
	}
	return nil
}

// Fd is the program's file descriptor (-1 after Close).
func (p *Program) Fd() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.fd
}

// MapFd is the XSKMAP's file descriptor (-1 after Close).
func (p *Program) MapFd() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.mapFd
}

// ID is the kernel's id for the program, as IFLA_XDP_PROG_ID and bpftool
// show it.
func (p *Program) ID() uint32 { return p.id }

// Queues is the number of XSKMAP slots.
func (p *Program) Queues() int { return p.queues }

// SetSocket puts the AF_XDP socket xskFd into slot queue, so frames
// received on that queue go to it. Closing the socket empties the slot.
func (p *Program) SetSocket(queue int, xskFd int) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	op := fmt.Sprintf("set socket (queue %d, fd %d)", queue, xskFd)
	if err := p.checkSlot(op, queue); err != nil {
		return err
	}
	if xskFd < 0 {
		return &ProgError{Op: op, Errno: unix.EBADF, Reason: "no socket: the fd is negative"}
	}
	if e := mapUpdateU32(p.mapFd, uint32(queue), uint32(xskFd), unix.BPF_ANY); e != 0 {
		return &ProgError{Op: op, Errno: e, Reason: setSocketReason(e, xskFd)}
	}
	return nil
}

// ClearSocket empties slot queue: the queue's frames go to the kernel
// stack again. An empty slot is not an error.
func (p *Program) ClearSocket(queue int) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	op := fmt.Sprintf("clear socket (queue %d)", queue)
	if err := p.checkSlot(op, queue); err != nil {
		return err
	}
	if e := mapDeleteU32(p.mapFd, uint32(queue)); e != 0 && e != unix.ENOENT {
		return &ProgError{Op: op, Errno: e, Reason: "the kernel refused to empty the XSKMAP slot"}
	}
	return nil
}

func (p *Program) checkSlot(op string, queue int) error {
	if p.mapFd < 0 {
		return &ProgError{Op: op, Errno: unix.EBADF, Reason: "the program is closed"}
	}
	if queue < 0 || queue >= p.queues {
		return &ProgError{Op: op, Errno: unix.E2BIG,
			Reason: fmt.Sprintf("queue %d is outside the XSKMAP's %d slots: load the program with maxQueues above the highest queue id", queue, p.queues)}
	}
	return nil
}

// Close closes the program and map descriptors. Attachments keep the
// program (and it the map) alive in the kernel until they are closed too.
func (p *Program) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, fd := range []*int{&p.fd, &p.mapFd} {
		if *fd >= 0 {
			errs = append(errs, unix.Close(*fd))
			*fd = -1
		}
	}
	return errors.Join(errs...)
}

func mapCreateReason(e unix.Errno) string {
	switch e {
	case unix.EPERM:
		return "creating an XSKMAP needs CAP_BPF and CAP_NET_ADMIN (run as root); before Linux 5.11 it also needs RLIMIT_MEMLOCK (ulimit -l) to cover the map"
	case unix.EINVAL:
		return "this kernel has no XSKMAP: AF_XDP needs Linux 4.18 or newer built with CONFIG_XDP_SOCKETS"
	case unix.ENOMEM:
		return "the kernel has no memory for the map (before Linux 5.11: raise RLIMIT_MEMLOCK)"
	case unix.ENOSYS:
		return "this kernel has no bpf(2) system call (CONFIG_BPF_SYSCALL)"
	}
	return "the kernel refused to create the XSKMAP"
}

func progLoadReason(e unix.Errno) string {
	switch e {
	case unix.EPERM:
		return "loading an XDP program needs CAP_BPF and CAP_NET_ADMIN (run as root); before Linux 5.11 it also needs RLIMIT_MEMLOCK (ulimit -l) to cover it"
	case unix.EACCES, unix.EINVAL:
		return "the verifier refused the program"
	case unix.ENOSYS:
		return "this kernel has no bpf(2) system call (CONFIG_BPF_SYSCALL)"
	case unix.ENOMEM:
		return "the kernel has no memory for the program (before Linux 5.11: raise RLIMIT_MEMLOCK)"
	}
	return "the kernel refused the program"
}

func setSocketReason(e unix.Errno, fd int) string {
	switch e {
	case unix.EBADF:
		return fmt.Sprintf("fd %d is not open", fd)
	case unix.ENOTSOCK:
		return fmt.Sprintf("fd %d is not a socket: SetSocket takes an AF_XDP socket", fd)
	case unix.EOPNOTSUPP:
		return fmt.Sprintf("fd %d is not an AF_XDP socket (kernels before about 5.10 also refuse one without a UMEM and an RX ring yet)", fd)
	case unix.E2BIG:
		return "the queue is outside the XSKMAP"
	}
	return "the kernel refused to put the socket into the XSKMAP"
}
