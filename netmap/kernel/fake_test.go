//go:build linux

package kernel

import (
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
)

// fakeNetmap is a model of the netmap driver behind /dev/netmap, for tests
// on machines that have no netmap kernel. It is written from the documented
// behaviour (research/netmap-ptnetmap-abi.md §2, §3 and §6.6, which restate
// netmap.c's netmap_ioctl, nmreq_copyin/copyout and netmap_csb_validate and
// netmap_kloop.c's netmap_sync_kloop), and it must stay faithful to it: a
// test passing against a fake that is kinder than the kernel proves nothing.
//
// What it models:
//   - NIOCCTRL as Linux delivers it: the 88-byte header copied in and,
//     whatever the outcome, out again with nr_name's last byte forced to NUL;
//     version 14..15, nr_reserved 0, body present iff the type has one.
//   - nmreq_copyin: the body and every option copied from the caller's
//     memory by address (EFAULT outside the memory the fake knows); option
//     headers counted in the 4096-byte limit (EMSGSIZE), type 0 and
//     duplicates EINVAL on the options concerned, unknown types (>= 6)
//     skipped, a list that never ends cut by EMSGSIZE; all options then
//     marked EOPNOTSUPP until a handler claims them.
//   - nmreq_copyout: option headers always written back, the body only on
//     success, option bodies only on success and status 0.
//   - REGISTER: one port per descriptor (EBUSY), EXTMEM, mem_id lookup
//     (EINVAL), name lookup (ENXIO), ports owned by the kernel (EBUSY),
//     virtio-net headers without NR_ACCEPT_VNET_HDR (EIO), the ring
//     selection of every nr_mode with its EINVAL cases, NR_EXCLUSIVE
//     conflicts per ring (EBUSY), OFFSETS, the CSB option, and EOPNOTSUPP
//     for any option left unconsumed, undoing the registration.
//   - PORT_INFO_GET, POOLS_INFO_GET, PORT_HDR_GET/SET.
//   - CSB validation: EBUSY while a kloop runs, nothing at all when no ring
//     is bound, EINVAL without NR_EXCLUSIVE or for an unaligned array, the
//     atok array read and the ktoa array zeroed (EFAULT), every entry then
//     initialized from the ring state; CSB_ENABLE without the option EINVAL.
//   - SYNC_KLOOP_START's preconditions in the kernel's order, MODE and
//     EVENTFDS validation, FreeBSD's missing eventfd support (freebsd:
//     status EOPNOTSUPP, return 0 at once), a loop that blocks until
//     SYNC_KLOOP_STOP (processing the rings meanwhile), and a stop flag that
//     survives when STOP finds no loop.
//   - NIOCTXSYNC/NIOCRXSYNC (ENXIO unbound, EBUSY in CSB mode), mmap of a
//     registered descriptor, poll (POLLERR unbound or in CSB mode; it never
//     sleeps: nothing ready means the timeout passed).
//   - The shared region of an allocator (§1; the ring model is at the end
//     of this file): one memfd per allocator, laid out on first use, which
//     every mmap of a descriptor registered on it maps again, so the
//     kernel's view and all the mappings are the same bytes. A kring gets its netmap_ring (header
//     as §1.4, a buffer from the pool for every slot) the first time it is
//     bound; it keeps the memory after its last user leaves but its state is
//     reset, which is what netmap's fresh rings look like. Each REGISTER
//     writes a netmap_if for the descriptor (§1.5: the hardware counts, host
//     counts written as max(1, n), ring_ofs nonzero only for the rings this
//     descriptor binds) and nr_offset points at it.
//   - NIOCTXSYNC/NIOCRXSYNC on those rings (§1.7): the prologue against the
//     header's head and cur with the "tail overwritten" restore, a violation
//     reinitialising the ring as netmap_ring_reinit does, the backend, then
//     the finalize that writes the header's tail. The backend is a NIC on a
//     wire: TX ring i of a wired port sends the slots [hwcur, head) to RX
//     ring i of its peer by copying bytes, lengths and NS_MOREFRAG, and
//     completes them at once, except that a frame that finds the peer's
//     ring full waits, with those behind it, for room (the wire has flow
//     control, as a netmap pipe has and as PAUSE frames give a NIC), and
//     nothing completes while the port's transmitter is paused (a link that
//     is down). Held frames go out as soon as the peer's RX sync makes room
//     or the link comes back, without waiting for a TX sync, as a NIC's
//     queue drains by itself; the application sees the completions at its
//     next TX sync. A frame is dropped when the peer is not in netmap mode or
//     when it leaves a host ring (the host stack is not modelled) or a port
//     without a peer. A slot with a bad buffer or length reinitialises the
//     ring and sends nothing, where a driver would send the slots before
//     it. An RX sync hands [hwcur, head) back to the NIC.
//   - poll by netmap_poll's rule: TX rings synced when POLLOUT is wanted or
//     NR_NO_TX_POLL is clear, RX rings when POLLIN is wanted or
//     NR_DO_RX_POLL is set; POLLOUT when a TX ring has rcur != hwtail,
//     POLLIN when an RX ring has rcur != hwtail.
//   - With realFds, descriptors are real (one end of a socketpair) so code
//     that polls them itself, as ptnetmap.Loop does, sleeps and wakes as with
//     /dev/netmap: after every operation the fake sets the descriptor
//     readable when a poll for POLLIN would report it and writable when a
//     poll for POLLOUT would. It cannot run syncs at poll time as the kernel
//     does (and so cannot write tails then); the levels are what those syncs
//     would find.
//   - For the tests of code above it: injectTail plants a kernel bug (the
//     next finalize of a ring writes a given tail), pauseTx takes a link
//     down, wireStats counts what the wire carried and dropped.
//
// What it does not: VALE switching (VALE ports are plain ports here, wired
// or not), netmap pipes' buffer swapping (a pipe pair is a wire that
// copies), checking that eventfds are eventfds, RX timestamps, NS_FORWARD
// and host-stack traffic (host rings are laid out and synced but carry
// nothing), extra buffers, and mmap of a descriptor on an EXTMEM allocator
// (refused: use the memory given to EXTMEM).
//
// EXTMEM allocators (fake_extmem_test.go) are laid out in the user's own
// pages as netmap_mem_ext_create does; the sync kloop (fake_kloop_test.go)
// processes the rings through the CSB as netmap_sync_kloop does.
type fakeNetmap struct {
	mu   sync.Mutex
	cond *sync.Cond // kloop state changes

	freebsd bool       // FreeBSD's kloop: no eventfd support
	extmem  bool       // built WITH_EXTMEM
	openErr unix.Errno // open fails with this
	eintr   int        // poll returns EINTR this many times first

	ports  map[string]*fakePort
	mems   map[uint16]*fakeMem
	fds    map[int]*fakePriv
	nextFd int
	nextID uint16
	user   []userMem // memory the "kernel" may copy from and to
	log    []string  // requests handled, in order
	maps   int       // live region mappings

	// realFds makes open hand out real, pollable descriptors (set it
	// before opening).
	realFds bool
}

type userMem struct {
	base uintptr
	b    []byte
	anon bool // handed out by anon, for request buffers
}

type fakeMem struct {
	info PoolsInfo

	// The region as the kernel holds it, once laid out.
	memfd    int
	kmem     []byte         // the kernel's mapping of memfd; for EXTMEM, the user's pages
	region   *netmap.Region // its buffer allocator
	ifUsed   []bool
	ringUsed []bool

	// EXTMEM (see fake_extmem_test.go): the pages it was carved from
	// and what netmap_mem_finalize will answer.
	ext      bool
	extKey   extKey
	finalErr unix.Errno // netmap_mem_init_bitmaps's verdict
}

type fakePort struct {
	name        string
	tx, rx      int // hardware rings
	hostTx      int
	hostRx      int
	txSlots     uint32
	rxSlots     uint32
	mem         *fakeMem
	virtHdr     uint32
	vale        bool
	ownedByKern bool // attached to a VALE switch
	offsets     bool // NAF_OFFSETS
	bufSize     uint64
	krings      [2][]*fakeKring // [tx, rx]: hardware rings then host rings
	rings       [2][]fakeRing   // their netmap_rings, once laid out
	rxReady     bool            // poll reports POLLIN whatever the rings say

	// netmap_get_na's assign_mem: an allocator given by EXTMEM or
	// nr_mem_id replaces the port's own while nobody has it open; the
	// rings laid out in each allocator are kept apart.
	memPrev *fakeMem
	stash   map[*fakeMem][2][]fakeRing

	peer     *fakePort // the other end of this port's wire (with flow control)
	txPaused bool      // the transmitter completes nothing
	sent     uint64    // slots put on the wire
	dropped  uint64    // slots the wire dropped
}

type fakeKring struct {
	users                  int
	excl                   bool
	rhead, rcur, rtail     uint32
	hwcur, hwtail          uint32
	offsetMask, offsetMaxV uint64
	resets                 int // netmap_ring_reinit calls

	// A kernel bug for tests: the next finalize writes this tail.
	bugTail    uint32
	bugPending bool
}

const (
	tTX = 0
	tRX = 1
)

type fakePriv struct {
	fd          int
	peerFd      int  // realFds: the socketpair's other end
	in, out     bool // realFds: the levels set on fd
	ifObj       int  // the netmap_if object of this descriptor, -1 for none
	port        *fakePort
	mem         *fakeMem
	flags       uint64
	first, last [2]int
	atok, ktoa  uint64
	running     bool
	stopping    bool
	syncs       [2]int
	// The last kloop's configuration.
	sleepUS  uint32
	direct   [2]bool
	busyWait bool
	eventfds [][2]int32
	// The running kloop (fake_kloop_test.go).
	wakeFd int   // eventfd that ends the loop's sleep, -1 when none
	irqs   []int // irqfd signals per CSB entry
	passes int   // passes of the main loop
}

func newFakeNetmap() *fakeNetmap {
	k := &fakeNetmap{
		extmem: true,
		ports:  map[string]*fakePort{},
		mems:   map[uint16]*fakeMem{},
		fds:    map[int]*fakePriv{},
		nextFd: 3,
		nextID: 2,
	}
	k.cond = sync.NewCond(&k.mu)
	// Room for every port's rings at once, host rings included, with a
	// buffer for each slot.
	global := &fakeMem{info: fakePools(1, 64, 1024, 64, 4*4096+256, 32768, 2048)}
	k.mems[1] = global
	k.addPort(&fakePort{name: "ix0", tx: 4, rx: 4, hostTx: 1, hostRx: 1, txSlots: 1024, rxSlots: 1024, mem: global, offsets: true})
	k.addPort(&fakePort{name: "ix1", tx: 2, rx: 1, hostTx: 1, hostRx: 1, txSlots: 512, rxSlots: 256, mem: global})
	k.addPort(&fakePort{name: "vale0:vm1", tx: 1, rx: 1, txSlots: 1024, rxSlots: 1024, mem: global, vale: true})
	k.addPort(&fakePort{name: "vale0:vnet", tx: 1, rx: 1, txSlots: 1024, rxSlots: 1024, mem: global, vale: true, virtHdr: 12})
	k.addPort(&fakePort{name: "em0", tx: 1, rx: 1, hostTx: 1, hostRx: 1, txSlots: 256, rxSlots: 256, mem: global, ownedByKern: true})
	// Two NICs cabled to each other, and a pipe on ix2 (a wire too here).
	k.addPort(&fakePort{name: "ix2", tx: 2, rx: 2, hostTx: 1, hostRx: 1, txSlots: 256, rxSlots: 256, mem: global})
	k.addPort(&fakePort{name: "ix3", tx: 2, rx: 2, hostTx: 1, hostRx: 1, txSlots: 256, rxSlots: 256, mem: global})
	k.wire("ix2", "ix3")
	k.addPort(&fakePort{name: "ix2{1", tx: 1, rx: 1, txSlots: 128, rxSlots: 128, mem: global})
	k.addPort(&fakePort{name: "ix2}1", tx: 1, rx: 1, txSlots: 128, rxSlots: 128, mem: global})
	k.wire("ix2{1", "ix2}1")
	// A NIC configured with two host ring pairs.
	k.addPort(&fakePort{name: "ix4", tx: 1, rx: 1, hostTx: 2, hostRx: 2, txSlots: 256, rxSlots: 256, mem: global})
	return k
}

// wire cables port a to port b: what one transmits on TX ring i arrives on
// the other's RX ring i.
func (k *fakeNetmap) wire(a, b string) {
	pa, pb := k.ports[a], k.ports[b]
	pa.peer, pb.peer = pb, pa
}

// fakePools lays out an if pool, ring pool and buffer pool back to back.
func fakePools(id uint16, ifN, ifSz, ringN, ringSz, bufN, bufSz uint32) PoolsInfo {
	p := PoolsInfo{MemID: id, IfPoolObjTotal: ifN, IfPoolObjSize: ifSz,
		RingPoolObjTotal: ringN, RingPoolObjSize: ringSz, BufPoolObjTotal: bufN, BufPoolObjSize: bufSz}
	p.RingPoolOffset = uint64(ifN) * uint64(ifSz)
	p.BufPoolOffset = p.RingPoolOffset + uint64(ringN)*uint64(ringSz)
	p.MemSize = p.BufPoolOffset + uint64(bufN)*uint64(bufSz)
	return p
}

func (k *fakeNetmap) addPort(p *fakePort) {
	p.bufSize = uint64(p.mem.info.BufPoolObjSize)
	for t, n := range [2]int{p.tx + p.hostTx, p.rx + p.hostRx} {
		for i := 0; i < n; i++ {
			kr := &fakeKring{}
			if t == tTX {
				slots := p.txSlots
				kr.hwtail = slots - 1 // an empty TX ring: all slots free
				kr.rtail = kr.hwtail
			}
			p.krings[t] = append(p.krings[t], kr)
			p.rings[t] = append(p.rings[t], fakeRing{})
		}
	}
	k.ports[p.name] = p
}

// ---- user memory ----

// addUser lets the fake kernel reach b, as the hypervisor's mapping of
// guest memory or a caller's buffer.
func (k *fakeNetmap) addUser(b []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.user = append(k.user, userMem{base: addr(b), b: b})
}

// mem is copyin/copyout's view of [addr, addr+n): a slice of the caller's
// memory, or EFAULT. Called with k.mu held.
func (k *fakeNetmap) mem(addr uint64, n int) ([]byte, unix.Errno) {
	for _, u := range k.user {
		if uint64(u.base) <= addr && addr+uint64(n) <= uint64(u.base)+uint64(len(u.b)) && addr+uint64(n) >= addr {
			off := int(addr - uint64(u.base))
			return u.b[off : off+n], 0
		}
	}
	return nil, unix.EFAULT
}

func (k *fakeNetmap) anonCount() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, u := range k.user {
		if u.anon {
			n++
		}
	}
	return n
}

// ---- sysCalls ----

func (k *fakeNetmap) open(path string) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if path != DevPath {
		return -1, unix.ENOENT
	}
	if k.openErr != 0 {
		return -1, k.openErr
	}
	p := &fakePriv{fd: k.nextFd, peerFd: -1, ifObj: -1}
	if k.realFds {
		sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return -1, err
		}
		// A small send buffer, so that making fd unwritable is cheap.
		_ = unix.SetsockoptInt(sp[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 1)
		p.fd, p.peerFd = sp[0], sp[1]
		if k.fds[p.fd] != nil {
			unix.Close(sp[0])
			unix.Close(sp[1])
			return -1, unix.EMFILE // a virtual descriptor has this number
		}
		p.out = true // an idle socket is writable
	} else {
		k.nextFd++
	}
	k.fds[p.fd] = p
	return p.fd, nil
}

func (k *fakeNetmap) close(fd int) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	p := k.fds[fd]
	if p == nil {
		return unix.EBADF
	}
	k.unregister(p)
	delete(k.fds, fd)
	if p.peerFd >= 0 {
		unix.Close(p.fd)
		unix.Close(p.peerFd)
	}
	k.refreshLevels()
	return nil
}

func (k *fakeNetmap) anon(n int) ([]byte, error) {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.user = append(k.user, userMem{base: addr(b), b: b, anon: true})
	k.mu.Unlock()
	return b, nil
}

func (k *fakeNetmap) mmap(fd int, length int) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p := k.fds[fd]
	if p == nil {
		return nil, unix.EBADF
	}
	if p.port == nil || length <= 0 || uint64(length) > p.mem.info.MemSize {
		return nil, unix.EINVAL
	}
	var b []byte
	var err error
	if p.mem.ext {
		// Not modelled: the fake cannot map anonymous user pages a
		// second time. Use the memory given to EXTMEM itself.
		return nil, unix.EOPNOTSUPP
	}
	if p.mem.kmem != nil {
		b, err = unix.Mmap(p.mem.memfd, 0, length, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	} else {
		b, err = unix.Mmap(-1, 0, length, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_SHARED)
	}
	if err != nil {
		return nil, err
	}
	k.maps++
	return b, nil
}

func (k *fakeNetmap) munmap(b []byte) error {
	k.mu.Lock()
	base := addr(b)
	region := true
	k.user = slices.DeleteFunc(k.user, func(u userMem) bool {
		if u.anon && u.base == base {
			region = false
			return true
		}
		return false
	})
	if region {
		k.maps--
	}
	k.mu.Unlock()
	return unix.Munmap(b)
}

func (k *fakeNetmap) poll(fds []unix.PollFd, timeoutMS int) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.eintr > 0 {
		k.eintr--
		return 0, unix.EINTR
	}
	n := 0
	for i := range fds {
		fds[i].Revents = 0
		p := k.fds[int(fds[i].Fd)]
		switch {
		case p == nil:
			fds[i].Revents = unix.POLLNVAL
		case p.port == nil, p.atok != 0:
			fds[i].Revents = unix.POLLERR
		default:
			fds[i].Revents = k.netmapPoll(p, fds[i].Events)
		}
		if fds[i].Revents != 0 {
			n++
		}
	}
	k.refreshLevels()
	return n, nil
}

func (k *fakeNetmap) ioctl(fd int, req uint32, arg unsafe.Pointer) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	p := k.fds[fd]
	if p == nil {
		return unix.EBADF
	}
	var err unix.Errno
	switch req {
	case nioc.Ctrl:
		err = k.ctrl(p, uint64(uintptr(arg)))
	case nioc.TxSync, nioc.RxSync:
		t := tTX
		if req == nioc.RxSync {
			t = tRX
		}
		k.log = append(k.log, [2]string{"TXSYNC", "RXSYNC"}[t])
		switch {
		case p.port == nil:
			err = unix.ENXIO
		case p.atok != 0:
			err = unix.EBUSY
		default:
			p.syncs[t]++
			k.syncRings(p, t)
		}
	default:
		err = unix.ENOTTY
	}
	k.refreshLevels()
	if err != 0 {
		return err
	}
	return nil
}

// ---- NIOCCTRL ----

// kreq is the kernel's copy of a request.
type kreq struct {
	typ      ReqType
	name     string
	bodyAddr uint64
	body     []byte
	opts     []*kopt
}

type kopt struct {
	addr   uint64 // where it lives in user memory
	next   uint64 // the user's nro_next
	typ    OptType
	status unix.Errno
	size   uint64 // nro_size
	body   []byte // the bytes after the header
}

func (r *kreq) opt(t OptType) *kopt {
	for _, o := range r.opts {
		if o.typ == t {
			return o
		}
	}
	return nil
}

// optBodySize is nmreq_opt_size_by_type: the bytes after the header.
func (k *fakeNetmap) optBodySize(t OptType, nroSize uint64) uint64 {
	rv := uint64(OptionHeaderSize)
	switch t {
	case OptExtmem:
		if k.extmem {
			rv = ExtmemOptSize
		}
	case OptSyncKloopEventfds:
		if nroSize >= rv {
			rv = nroSize
		}
	case OptCSB:
		rv = CSBOptSize
	case OptSyncKloopMode:
		rv = KloopModeOptSize
	case OptOffsets:
		rv = OffsetsOptSize
	}
	return rv - OptionHeaderSize
}

func (k *fakeNetmap) ctrl(p *fakePriv, hdrAddr uint64) unix.Errno {
	user, err := k.mem(hdrAddr, HeaderSize)
	if err != 0 {
		return err
	}
	var hb [HeaderSize]byte
	copy(hb[:], user)
	err = k.ctrlHeader(p, hb[:])
	// Linux's ioctl wrapper copies the header back whatever happened.
	copy(user, hb[:])
	return err
}

func (k *fakeNetmap) ctrlHeader(p *fakePriv, hb []byte) unix.Errno {
	var h Header
	h.Decode(hb)
	k.log = append(k.log, h.ReqType.String())
	if h.Version < 14 || h.Version > 15 {
		return unix.EINVAL
	}
	r, err := k.copyin(&h)
	if err != 0 {
		return err
	}
	hb[hdrName+MaxNameLen] = 0
	r.name = cString(hb[hdrName : hdrName+MaxNameLen])
	err = k.handle(p, r)
	return k.copyout(r, err)
}

// copyin is nmreq_copyin.
func (k *fakeNetmap) copyin(h *Header) (*kreq, unix.Errno) {
	if h.Reserved != 0 {
		return nil, unix.EINVAL
	}
	rqsz, _ := h.ReqType.BodySize()
	if (rqsz != 0 && h.Body == 0) || (rqsz == 0 && h.Body != 0) {
		return nil, unix.EINVAL
	}
	r := &kreq{typ: h.ReqType, bodyAddr: h.Body}
	const bufsz = (2+int(optMax))*8 + MaxRequestSize + int(optMax)*8
	used := 16
	if rqsz > 0 {
		b, err := k.mem(h.Body, rqsz)
		if err != 0 {
			return nil, k.copyout(r, err)
		}
		r.body = slices.Clone(b)
	}
	used += rqsz + int(optMax)*8
	seen := map[OptType]*kopt{}
	for src := h.Options; src != 0; {
		if used+8+OptionHeaderSize > bufsz {
			// Perhaps a loop: the options are not written back.
			r.opts = nil
			return nil, k.copyout(r, unix.EMSGSIZE)
		}
		ub, err := k.mem(src, OptionHeaderSize)
		if err != 0 {
			return nil, k.copyout(r, err)
		}
		o := &kopt{addr: src, next: le.Uint64(ub[optNext:]), typ: OptType(le.Uint32(ub[optReqType:])), size: le.Uint64(ub[optSize:])}
		rqsz += OptionHeaderSize
		used += 8 + OptionHeaderSize
		r.opts = append(r.opts, o)
		src = o.next
		if o.typ < 1 {
			o.status = unix.EINVAL
			return nil, k.copyout(r, unix.EINVAL)
		}
		if o.typ >= optMax {
			continue
		}
		if d := seen[o.typ]; d != nil {
			o.status, d.status = unix.EINVAL, unix.EINVAL
			return nil, k.copyout(r, unix.EINVAL)
		}
		seen[o.typ] = o
		optsz := k.optBodySize(o.typ, o.size)
		if optsz > MaxRequestSize || o.size > MaxRequestSize || uint64(rqsz)+optsz > MaxRequestSize || uint64(used)+optsz > uint64(bufsz) {
			return nil, k.copyout(r, unix.EMSGSIZE)
		}
		rqsz += int(optsz)
		if optsz > 0 {
			b, err := k.mem(optBody(o), int(optsz))
			if err != 0 {
				return nil, k.copyout(r, err)
			}
			o.body = slices.Clone(b)
			used += int(optsz)
		}
	}
	for _, o := range r.opts {
		o.status = unix.EOPNOTSUPP
	}
	return r, 0
}

func optBody(o *kopt) uint64 { return o.addr + OptionHeaderSize }

// copyout is nmreq_copyout.
func (k *fakeNetmap) copyout(r *kreq, rerr unix.Errno) unix.Errno {
	if rerr == 0 && len(r.body) > 0 {
		b, err := k.mem(r.bodyAddr, len(r.body))
		if err != 0 {
			return err
		}
		copy(b, r.body)
	}
	for _, o := range r.opts {
		b, err := k.mem(o.addr, OptionHeaderSize)
		if err != 0 {
			return err
		}
		le.PutUint64(b[optNext:], o.next)
		le.PutUint32(b[optReqType:], uint32(o.typ))
		le.PutUint32(b[optStatus:], uint32(o.status))
		le.PutUint64(b[optSize:], o.size)
		if rerr == 0 && o.status == 0 && len(o.body) > 0 {
			ob, err := k.mem(optBody(o), len(o.body))
			if err != 0 {
				return err
			}
			copy(ob, o.body)
		}
	}
	return rerr
}

func (k *fakeNetmap) handle(p *fakePriv, r *kreq) unix.Errno {
	switch r.typ {
	case ReqRegister:
		return k.register(p, r)
	case ReqPortInfoGet:
		return k.portInfo(r)
	case ReqPoolsInfoGet:
		return k.poolsInfo(r)
	case ReqPortHdrSet:
		n := le.Uint32(r.body)
		if n != 0 && n != 10 && n != 12 {
			return unix.EINVAL
		}
		port := k.ports[r.name]
		if port == nil || !port.vale {
			return unix.ENXIO
		}
		port.virtHdr = n
		return 0
	case ReqPortHdrGet:
		port := k.ports[r.name]
		if port == nil {
			return unix.ENXIO
		}
		le.PutUint32(r.body, port.virtHdr)
		return 0
	case ReqCSBEnable:
		o := r.opt(OptCSB)
		if o == nil {
			return unix.EINVAL
		}
		o.status = k.csbValidate(p, o)
		return o.status
	case ReqSyncKloopStart:
		return k.kloop(p, r)
	case ReqSyncKloopStop:
		if p.port == nil {
			return unix.ENXIO
		}
		p.stopping = true
		k.wakeKloop(p)
		k.cond.Broadcast()
		for p.running {
			k.cond.Wait()
		}
		return 0
	case ReqValeAttach, ReqValeDetach, ReqValeList, ReqValeNewIf, ReqValeDelIf, ReqValePollingEnable, ReqValePollingDisable:
		return unix.ENOSYS // not modelled
	}
	return unix.EINVAL
}

func (k *fakeNetmap) register(p *fakePriv, r *kreq) unix.Errno {
	if p.port != nil {
		return unix.EBUSY
	}
	var req Register
	req.Decode(r.body)
	var nmd *fakeMem
	// The reference netmap_mem_ext_create or netmap_mem_find took is
	// dropped at the end: an allocator no port holds goes away.
	defer k.dropUnusedMems()
	if o := r.opt(OptExtmem); o != nil && k.extmem {
		nmd, o.status = k.extmemCreate(o)
		if nmd == nil {
			return o.status
		}
	}
	if nmd == nil && req.MemID != 0 {
		if nmd = k.mems[req.MemID]; nmd == nil {
			return unix.EINVAL
		}
	}
	if req.Mode == netmap.RegPipeMastr || req.Mode == netmap.RegPipeSlave {
		return unix.EINVAL
	}
	port := k.ports[r.name]
	if port == nil {
		return unix.ENXIO
	}
	if port.ownedByKern {
		return unix.EBUSY
	}
	if port.virtHdr != 0 && req.Flags&netmap.FlagAcceptVnetHd == 0 {
		return unix.EIO
	}
	// assign_mem: the allocator asked for replaces the port's own only
	// while nobody has the port open; otherwise it is silently ignored.
	if nmd != nil && k.activeFds(port) == 0 && port.mem != nmd {
		k.switchMem(port, nmd)
	}
	defer k.restoreMem(port)
	nmd = port.mem
	first, last, err := interpRingID(port, &req)
	if err != 0 {
		return err
	}
	excl := req.Flags&netmap.FlagExclusive != 0
	for t := range 2 {
		for i := first[t]; i < last[t]; i++ {
			kr := port.krings[t][i]
			if kr.excl || (kr.users > 0 && excl) {
				return unix.EBUSY
			}
		}
	}
	for t := range 2 {
		for i := first[t]; i < last[t]; i++ {
			port.krings[t][i].users++
			port.krings[t][i].excl = port.krings[t][i].excl || excl
		}
	}
	p.port, p.mem, p.flags, p.first, p.last = port, nmd, req.Flags, first, last
	if o := r.opt(OptOffsets); o != nil {
		if o.status = k.offsetsInit(p, o); o.status != 0 {
			k.unregister(p)
			return o.status
		}
	}
	if o := r.opt(OptCSB); o != nil {
		if o.status = k.csbValidate(p, o); o.status != 0 {
			k.unregister(p)
			return o.status
		}
	}
	req.TxRings, req.RxRings = uint16(port.tx), uint16(port.rx)
	req.TxSlots, req.RxSlots = port.txSlots, port.rxSlots
	req.HostTxRings, req.HostRxRings = uint16(port.hostTx), uint16(port.hostRx)
	req.MemSize, req.MemID = nmd.info.MemSize, nmd.info.MemID
	off, err := k.layoutPriv(p)
	if err != 0 {
		k.unregister(p)
		return err
	}
	req.Offset = off
	req.Encode(r.body)
	for _, o := range r.opts {
		if o.status == unix.EOPNOTSUPP {
			k.unregister(p)
			return unix.EOPNOTSUPP
		}
	}
	return 0
}

// interpRingID is netmap_interp_ringid: the rings nr_mode selects.
func interpRingID(port *fakePort, req *Register) (first, last [2]int, err unix.Errno) {
	hw := [2]int{port.tx, port.rx}
	host := [2]int{port.hostTx, port.hostRx}
	hasHost := port.hostTx+port.hostRx > 0
	for t := range 2 {
		if (t == tTX && req.Flags&netmap.FlagRxRingsOnly != 0) || (t == tRX && req.Flags&netmap.FlagTxRingsOnly != 0) {
			continue
		}
		switch req.Mode {
		case netmap.RegAllNIC, netmap.RegNull:
			first[t], last[t] = 0, hw[t]
		case netmap.RegSW, netmap.RegNICSW:
			if !hasHost {
				return first, last, unix.EINVAL
			}
			if req.Mode == netmap.RegSW {
				first[t] = hw[t]
			}
			last[t] = hw[t] + host[t]
		case netmap.RegOneNIC:
			if int(req.RingID) >= hw[tTX] && int(req.RingID) >= hw[tRX] {
				return first, last, unix.EINVAL
			}
			j := int(req.RingID)
			if j >= hw[t] {
				j = 0
			}
			first[t], last[t] = j, j+1
		case netmap.RegOneSW:
			if !hasHost || (int(req.RingID) >= host[tTX] && int(req.RingID) >= host[tRX]) {
				return first, last, unix.EINVAL
			}
			j := int(req.RingID)
			if j >= host[t] {
				j = 0
			}
			first[t], last[t] = hw[t]+j, hw[t]+j+1
		default:
			return first, last, unix.EINVAL
		}
	}
	return first, last, 0
}

// unregister is netmap_do_unregif plus netmap_unset_ringid. Like them it
// leaves the CSB addresses: a REGISTER undone after its CSB was validated
// leaves the descriptor in CSB mode.
func (k *fakeNetmap) unregister(p *fakePriv) {
	if p.port == nil {
		return
	}
	excl := p.flags&netmap.FlagExclusive != 0
	for t := range 2 {
		for i := p.first[t]; i < p.last[t]; i++ {
			kr := p.port.krings[t][i]
			kr.users--
			if excl {
				kr.excl = false
			}
			if kr.users == 0 {
				k.resetRing(p.port, t, i)
			}
		}
	}
	if p.ifObj >= 0 {
		p.mem.ifUsed[p.ifObj] = false
	}
	port := p.port
	*p = fakePriv{fd: p.fd, peerFd: p.peerFd, in: p.in, out: p.out, ifObj: -1, atok: p.atok, ktoa: p.ktoa}
	k.restoreMem(port)
	k.dropUnusedMems()
}

// Offsets of the option fields, from the start of the option.
const (
	extmemUsrPtr = 24
	extmemInfo   = 32
)

// offsetsInit is netmap_offsets_init.
func (k *fakeNetmap) offsetsInit(p *fakePriv, o *kopt) unix.Errno {
	if !p.port.offsets {
		return unix.EOPNOTSUPP
	}
	b := o.body
	maxOff, initial, bits := le.Uint64(b[0:]), le.Uint64(b[8:]), le.Uint32(b[16:])
	if bits > 64 {
		return unix.EINVAL
	}
	mask := ^uint64(0)
	if bits != 0 && bits != 64 {
		mask = 1<<bits - 1
	}
	if maxOff > p.port.bufSize || maxOff&mask != maxOff || initial > maxOff {
		return unix.EINVAL
	}
	for t := range 2 {
		for i := p.first[t]; i < p.last[t]; i++ {
			kr := p.port.krings[t][i]
			if kr.offsetMask != 0 {
				if kr.offsetMask&mask != mask || kr.offsetMaxV < maxOff {
					return unix.EBUSY
				}
				mask, maxOff = kr.offsetMask, kr.offsetMaxV
			} else {
				kr.offsetMask, kr.offsetMaxV = mask, maxOff
			}
		}
	}
	le.PutUint64(b[0:], maxOff)
	return 0
}

// csbValidate is netmap_csb_validate.
func (k *fakeNetmap) csbValidate(p *fakePriv, o *kopt) unix.Errno {
	if p.running {
		return unix.EBUSY
	}
	n := [2]int{p.last[tTX] - p.first[tTX], p.last[tRX] - p.first[tRX]}
	tot := n[tTX] + n[tRX]
	if tot <= 0 {
		return 0
	}
	if p.flags&netmap.FlagExclusive == 0 {
		return unix.EINVAL
	}
	atokAddr, ktoaAddr := le.Uint64(o.body[0:]), le.Uint64(o.body[8:])
	if atokAddr%CSBAlign != 0 {
		return unix.EINVAL
	}
	atok, err := k.mem(atokAddr, tot*CSBAlign)
	if err != 0 {
		return err
	}
	if ktoaAddr%CSBAlign != 0 {
		return unix.EINVAL
	}
	ktoa, err := k.mem(ktoaAddr, tot*CSBAlign)
	if err != 0 {
		return err
	}
	clear(ktoa)
	p.atok, p.ktoa = atokAddr, ktoaAddr
	for t := range 2 {
		for i := 0; i < n[t]; i++ {
			kr := p.port.krings[t][p.first[t]+i]
			e := i
			if t == tRX {
				e += n[tTX]
			}
			// head, cur, appl_need_kick = 1, sync_flags = 1;
			// hwcur, hwtail, kern_need_kick = 1.
			c := ptnetmap.CSBFromBytes(atok[e*CSBAlign:], ktoa[e*CSBAlign:], 1)
			c.Atok[0].Init(kr.rhead, kr.rcur)
			c.Ktoa[0].Init(kr.hwcur, kr.hwtail)
		}
	}
	return 0
}

// kloop is netmap_sync_kloop, minus the ring processing.
func (k *fakeNetmap) kloop(p *fakePriv, r *kreq) unix.Errno {
	sleepUS := le.Uint32(r.body)
	if sleepUS > MaxKloopSleepUS {
		return unix.EINVAL
	}
	if p.port == nil {
		return unix.ENXIO
	}
	if p.atok == 0 || p.ktoa == 0 {
		return unix.EINVAL
	}
	if p.running {
		return unix.EBUSY
	}
	p.running = true
	err := k.kloopRun(p, r, sleepUS)
	p.running, p.stopping = false, false
	k.cond.Broadcast()
	return err
}

// waitRunning blocks until a kloop runs on fd.
func (k *fakeNetmap) waitRunning(fd int) *fakePriv {
	k.mu.Lock()
	defer k.mu.Unlock()
	for {
		if p := k.fds[fd]; p != nil && p.running {
			return p
		}
		k.cond.Wait()
	}
}

func (k *fakeNetmap) priv(fd int) fakePriv {
	k.mu.Lock()
	defer k.mu.Unlock()
	return *k.fds[fd]
}

func (k *fakeNetmap) requests() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.log)
}

// lookup is netmap_get_na for the info requests: the mem_id must exist,
// then the name must.
func (k *fakeNetmap) lookup(name string, memID uint16) (*fakePort, unix.Errno) {
	if memID != 0 && k.mems[memID] == nil {
		return nil, unix.EINVAL
	}
	port := k.ports[name]
	if port == nil {
		return nil, unix.ENXIO
	}
	return port, 0
}

func (k *fakeNetmap) portInfo(r *kreq) unix.Errno {
	var in PortInfo
	in.Decode(r.body)
	var port *fakePort
	var m *fakeMem
	if r.name != "" {
		var err unix.Errno
		if port, err = k.lookup(r.name, in.MemID); err != 0 {
			return err
		}
		m = port.mem
	} else if m = k.mems[max(in.MemID, 1)]; m == nil {
		return unix.EINVAL
	}
	in.MemSize, in.MemID = m.info.MemSize, m.info.MemID
	if port != nil {
		in.TxRings, in.RxRings = uint16(port.tx), uint16(port.rx)
		in.TxSlots, in.RxSlots = port.txSlots, port.rxSlots
		in.HostTxRings, in.HostRxRings = uint16(port.hostTx), uint16(port.hostRx)
	}
	in.Encode(r.body)
	return 0
}

func (k *fakeNetmap) poolsInfo(r *kreq) unix.Errno {
	var in PoolsInfo
	in.Decode(r.body)
	port, err := k.lookup(r.name, in.MemID)
	if err != 0 {
		return err
	}
	port.mem.info.Encode(r.body)
	return 0
}

// ---- the region and its rings ----

// fakeRing is where a kring's netmap_ring lies; off 0 means not laid out
// (the ring pool never starts at offset 0).
type fakeRing struct {
	mem *fakeMem
	off uint64
	n   uint32
}

// fring is the fake kernel's view of one netmap_ring. It reads the header
// through the offsets of research §1.4 rather than through netmap.Ring, so
// a layout mistake on either side shows up as a disagreement.
type fring struct {
	b []byte
	n uint32
}

// Offsets in struct netmap_ring and struct netmap_slot (research §1.2, §1.4).
const (
	ringBufOfs   = 0
	ringNumSlots = 8
	ringBufSize  = 12
	ringRingID   = 16
	ringDir      = 18
	ringHead     = 20
	ringCur      = 24
	ringTail     = 28
	slotBufIdx   = 0
	slotLen      = 4
	slotFlags    = 6
)

// Offsets in struct netmap_if (research §1.5).
const (
	nifName    = 0
	nifFlags   = 20
	nifTxRings = 24
	nifRxRings = 28
	nifHostTx  = 36
	nifHostRx  = 40
	nifRingOfs = 56
)

func (r fakeRing) view() fring {
	end := r.off + netmap.RingHeaderSize + uint64(r.n)*netmap.SlotSize
	return fring{b: r.mem.kmem[r.off:end:end], n: r.n}
}

func (r fring) word(off int) *uint32 { return (*uint32)(unsafe.Pointer(&r.b[off])) }
func (r fring) head() uint32         { return atomic.LoadUint32(r.word(ringHead)) }
func (r fring) cur() uint32          { return atomic.LoadUint32(r.word(ringCur)) }
func (r fring) tail() uint32         { return atomic.LoadUint32(r.word(ringTail)) }
func (r fring) setHead(v uint32)     { atomic.StoreUint32(r.word(ringHead), v) }
func (r fring) setCur(v uint32)      { atomic.StoreUint32(r.word(ringCur), v) }
func (r fring) setTail(v uint32)     { atomic.StoreUint32(r.word(ringTail), v) }

func (r fring) slot(i uint32) []byte {
	o := netmap.RingHeaderSize + int(i)*netmap.SlotSize
	return r.b[o : o+netmap.SlotSize]
}

func (r fring) getSlot(i uint32) (idx uint32, l, flags uint16) {
	s := r.slot(i)
	return le.Uint32(s[slotBufIdx:]), le.Uint16(s[slotLen:]), le.Uint16(s[slotFlags:])
}

func (r fring) setSlot(i, idx uint32, l, flags uint16) {
	s := r.slot(i)
	le.PutUint32(s[slotBufIdx:], idx)
	le.PutUint16(s[slotLen:], l)
	le.PutUint16(s[slotFlags:], flags)
}

func next(i, n uint32) uint32 { return netmap.Add(i, 1, n) }

// slots is the size of the port's rings of direction t.
func (p *fakePort) slots(t int) uint32 {
	if t == tTX {
		return p.txSlots
	}
	return p.rxSlots
}

// materialize creates the bytes of allocator m, as netmap_mem_finalize
// does on first use: a memfd that the kernel and every mmap of a
// descriptor on m map. EXTMEM allocators are left as geometry.
func (k *fakeNetmap) materialize(m *fakeMem) unix.Errno {
	if m.ext {
		return m.finalErr // laid out when created, over the user's pages
	}
	if m.kmem != nil {
		return 0
	}
	fd, err := unix.MemfdCreate("fake-netmap-mem", unix.MFD_CLOEXEC)
	if err != nil {
		return unix.ENOMEM
	}
	if err := unix.Ftruncate(fd, int64(m.info.MemSize)); err != nil {
		unix.Close(fd)
		return unix.ENOMEM
	}
	b, err := unix.Mmap(fd, 0, int(m.info.MemSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return unix.ENOMEM
	}
	region, err := netmap.NewRegion(b, netmap.PoolsInfo(m.info))
	if err != nil {
		unix.Munmap(b)
		unix.Close(fd)
		return unix.ENOMEM
	}
	m.memfd, m.kmem, m.region = fd, b, region
	m.ifUsed = make([]bool, m.info.IfPoolObjTotal)
	m.ringUsed = make([]bool, m.info.RingPoolObjTotal)
	// The fake lives as long as its test: release the region with it.
	runtime.AddCleanup(m, func(r struct {
		fd int
		b  []byte
	}) {
		unix.Munmap(r.b)
		unix.Close(r.fd)
	}, struct {
		fd int
		b  []byte
	}{fd, b})
	return 0
}

// newRing lays out the netmap_ring of kring i of direction t in m: a ring
// object, its constant header fields, the kring's indexes, and a buffer
// from the pool for every slot.
func (k *fakeNetmap) newRing(m *fakeMem, port *fakePort, t, i int) (fakeRing, unix.Errno) {
	n := port.slots(t)
	info := m.info
	if netmap.RingHeaderSize+uint64(n)*netmap.SlotSize > uint64(info.RingPoolObjSize) || m.region.FreeBufs() < int(n) {
		return fakeRing{}, unix.ENOMEM
	}
	obj := slices.Index(m.ringUsed, false)
	if obj < 0 {
		return fakeRing{}, unix.ENOMEM
	}
	m.ringUsed[obj] = true
	off := info.RingPoolOffset + uint64(obj)*uint64(info.RingPoolObjSize)
	clear(m.kmem[off : off+uint64(info.RingPoolObjSize)])
	fr := fakeRing{mem: m, off: off, n: n}
	r := fr.view()
	le.PutUint64(r.b[ringBufOfs:], uint64(int64(info.BufPoolOffset)-int64(off)))
	le.PutUint32(r.b[ringNumSlots:], n)
	le.PutUint32(r.b[ringBufSize:], info.BufPoolObjSize)
	le.PutUint16(r.b[ringRingID:], uint16(i))
	le.PutUint16(r.b[ringDir:], uint16(1-t)) // the kernel stores NR_TX = 1, NR_RX = 0
	for s := range n {
		idx, _ := m.region.AllocBuf()
		r.setSlot(s, idx, 0, 0)
	}
	kr := port.krings[t][i]
	r.setHead(kr.rhead)
	r.setCur(kr.rcur)
	r.setTail(kr.rtail)
	return fr, 0
}

// layoutPriv makes sure every ring p binds is laid out and writes p's
// netmap_if, as netmap_mem_rings_create and netmap_mem_if_new do. It
// returns the netmap_if's offset (nr_offset).
func (k *fakeNetmap) layoutPriv(p *fakePriv) (uint64, unix.Errno) {
	m, port := p.mem, p.port
	if err := k.materialize(m); err != 0 {
		return 0, err
	}
	if m.kmem == nil {
		return 0, 0
	}
	for t := range 2 {
		for i := p.first[t]; i < p.last[t]; i++ {
			if port.rings[t][i].off != 0 {
				continue
			}
			fr, err := k.newRing(m, port, t, i)
			if err != 0 {
				return 0, err
			}
			port.rings[t][i] = fr
		}
	}
	info := m.info
	htx, hrx := max(1, port.hostTx), max(1, port.hostRx)
	entries := port.tx + htx + port.rx + hrx
	if nifRingOfs+8*entries > int(info.IfPoolObjSize) {
		return 0, unix.ENOMEM
	}
	// Any free object is one netmap could hand out; this one prefers the
	// object numbered like the descriptor, so offsets are easy to predict.
	obj := p.fd
	if obj < 0 || obj >= len(m.ifUsed) || m.ifUsed[obj] {
		if obj = slices.Index(m.ifUsed, false); obj < 0 {
			return 0, unix.ENOMEM
		}
	}
	m.ifUsed[obj] = true
	p.ifObj = obj
	ifOff := info.IfPoolOffset + uint64(obj)*uint64(info.IfPoolObjSize)
	b := m.kmem[ifOff : ifOff+uint64(info.IfPoolObjSize)]
	clear(b)
	copy(b[nifName:nifName+netmap.IfNameSize-1], port.name)
	if info.MemID != 1 {
		le.PutUint32(b[nifFlags:], netmap.NIPrivMem)
	}
	le.PutUint32(b[nifTxRings:], uint32(port.tx))
	le.PutUint32(b[nifRxRings:], uint32(port.rx))
	le.PutUint32(b[nifHostTx:], uint32(htx))
	le.PutUint32(b[nifHostRx:], uint32(hrx))
	for t := range 2 {
		base := 0
		if t == tRX {
			base = port.tx + htx
		}
		for i := p.first[t]; i < p.last[t]; i++ {
			le.PutUint64(b[nifRingOfs+8*(base+i):], uint64(int64(port.rings[t][i].off)-int64(ifOff)))
		}
	}
	return ifOff, 0
}

// resetRing puts kring i of direction t back in its initial state when its
// last user leaves: netmap frees the ring then and the next registration
// gets a fresh one; the fake keeps the memory and resets what it holds.
func (k *fakeNetmap) resetRing(port *fakePort, t, i int) {
	kr := port.krings[t][i]
	n := port.slots(t)
	kr.rhead, kr.rcur, kr.hwcur, kr.hwtail = 0, 0, 0, 0
	if t == tTX {
		kr.hwtail = n - 1
	}
	kr.rtail = kr.hwtail
	fr := port.rings[t][i]
	if fr.off == 0 {
		return
	}
	r := fr.view()
	for s := range r.n {
		idx, _, _ := r.getSlot(s)
		if !fr.mem.region.ValidBuf(idx) {
			idx = 0
		}
		r.setSlot(s, idx, 0, 0)
	}
	r.setHead(0)
	r.setCur(0)
	r.setTail(kr.hwtail)
}

// reinit is netmap_ring_reinit (netmap.c), which trusts the shared header
// more than its name suggests: the kring takes the header's head, cur and
// tail whatever they are, every slot that names a reserved or nonexistent
// buffer is pointed at buffer 0 with length 0 (or its length cleared if it
// exceeds a buffer), and only when one of head, cur, tail is beyond the
// ring are the header and the kring reset from hwcur and hwtail. It reports
// whether it found such errors.
func (k *fakeNetmap) reinit(port *fakePort, t, i int) bool {
	kr, fr := port.krings[t][i], port.rings[t][i]
	r := fr.view()
	kr.resets++
	h, c, tl := r.head(), r.cur(), r.tail()
	kr.rhead, kr.rcur, kr.rtail = h, c, tl
	bs := fr.mem.region.BufSize()
	for s := range r.n {
		idx, l, fl := r.getSlot(s)
		switch {
		case !fr.mem.region.ValidBuf(idx):
			r.setSlot(s, 0, 0, fl)
		case uint32(l) > bs:
			r.setSlot(s, idx, 0, fl)
		}
	}
	if h < r.n && c < r.n && tl < r.n {
		return false
	}
	kr.rhead, kr.rcur, kr.rtail = kr.hwcur, kr.hwcur, kr.hwtail
	r.setHead(kr.hwcur)
	r.setCur(kr.hwcur)
	r.setTail(kr.hwtail)
	return true
}

// syncRings is the loop of NIOCTXSYNC / NIOCRXSYNC over the bound rings.
func (k *fakeNetmap) syncRings(p *fakePriv, t int) {
	for i := p.first[t]; i < p.last[t]; i++ {
		if p.port.rings[t][i].off == 0 {
			continue
		}
		if t == tTX {
			k.txsync(p.port, i)
		} else {
			k.rxsync(p.port, i)
		}
	}
}

// txsync is one TX ring's NIOCTXSYNC: nm_txsync_prologue on the shared
// header, the NIC's txsync and nm_sync_finalize.
func (k *fakeNetmap) txsync(port *fakePort, i int) {
	kr, fr := port.krings[tTX][i], port.rings[tTX][i]
	r := fr.view()
	if r.tail() != kr.rtail { // "tail overwritten": restored
		r.setTail(kr.rtail)
	}
	if !txPrologue(kr, r.n, r.head(), r.cur()) {
		k.reinit(port, tTX, i)
		return
	}
	if !k.txBackend(port, i) {
		return
	}
	k.finalize(kr, r)
}

// txPrologue is nm_txsync_prologue's check of head and cur (from the
// header, or from the CSB's shadow in the kloop): head in [rhead, rtail],
// cur in [head, rtail]; the kring takes them only when they pass.
func txPrologue(kr *fakeKring, n, head, cur uint32) bool {
	if head >= n || cur >= n || !netmap.Between(kr.rhead, head, kr.rtail) || !netmap.Between(head, cur, kr.rtail) {
		return false
	}
	kr.rhead, kr.rcur = head, cur
	return true
}

// txBackend is the NIC's txsync after the prologue: the slots [hwcur,
// rhead) go on the wire. A slot with a bad buffer or length reinitialises
// the ring and sends nothing; it reports false then.
func (k *fakeNetmap) txBackend(port *fakePort, i int) bool {
	kr, fr := port.krings[tTX][i], port.rings[tTX][i]
	r := fr.view()
	region := fr.mem.region
	for j := kr.hwcur; j != kr.rhead; j = next(j, r.n) {
		if idx, l, _ := r.getSlot(j); !region.ValidBuf(idx) || uint32(l) > region.BufSize() {
			k.reinit(port, tTX, i)
			return false
		}
	}
	kr.hwcur = kr.rhead
	k.pump(port, i)
	return true
}

// pump is the NIC working through TX ring i on its own: it sends the
// frames in flight, [hwtail+1, hwcur), until the wire holds one, and
// completes them. It runs at every TX sync, when the peer makes room on
// the ring it feeds, and when the link comes back.
func (k *fakeNetmap) pump(port *fakePort, i int) {
	kr, fr := port.krings[tTX][i], port.rings[tTX][i]
	if port.txPaused || fr.off == 0 {
		return
	}
	r := fr.view()
	j := next(kr.hwtail, r.n)
	for ; j != kr.hwcur && k.transmit(port, i, r, j); j = next(j, r.n) {
	}
	if tail := netmap.Prev(j, r.n); tail != kr.hwtail {
		kr.hwtail = tail
		// netmap_tx_irq here, netmap_rx_irq on the peer.
		k.backendIrq(port)
		k.backendIrq(port.peer)
	}
}

// finalize is nm_sync_finalize: the application gets the kernel's tail.
func (k *fakeNetmap) finalize(kr *fakeKring, r fring) {
	kr.rtail = kr.hwtail
	tail := kr.hwtail
	if kr.bugPending {
		tail, kr.bugPending = kr.bugTail, false
	}
	r.setTail(tail)
}

// transmit puts TX slot j of ring i on the wire: it lands in the peer's RX
// ring i if that ring is in netmap mode, and is dropped otherwise. Host
// rings talk to the host stack, which is not modelled. It reports false,
// sending nothing, when the peer's ring is full: flow control holds the
// frame until the peer makes room.
func (k *fakeNetmap) transmit(port *fakePort, i int, r fring, j uint32) bool {
	src := port.rings[tTX][i].mem.region
	idx, l, fl := r.getSlot(j)
	peer := port.peer
	if i >= port.tx || peer == nil || i >= peer.rx || !src.ValidBuf(idx) || uint32(l) > src.BufSize() {
		port.sent++
		port.dropped++
		return true
	}
	pk, pr := peer.krings[tRX][i], peer.rings[tRX][i]
	if pk.users == 0 || pr.off == 0 {
		port.sent++
		port.dropped++
		return true
	}
	if next(pk.hwtail, pr.n) == pk.hwcur {
		return false
	}
	port.sent++
	v := pr.view()
	didx, _, _ := v.getSlot(pk.hwtail)
	dst := pr.mem.region
	if !dst.ValidBuf(didx) || uint32(l) > dst.BufSize() {
		port.dropped++
		return true
	}
	copy(dst.Buf(didx)[:l], src.Buf(idx)[:l])
	v.setSlot(pk.hwtail, didx, l, fl&netmap.NSMoreFrag)
	pk.hwtail = next(pk.hwtail, pr.n)
	return true
}

// room is how many frames TX ring i of port could put on the wire now
// (the peer RX ring's free slots), or n when none would be held.
func (k *fakeNetmap) room(port *fakePort, i int, n uint32) uint32 {
	peer := port.peer
	if i >= port.tx || peer == nil || i >= peer.rx {
		return n
	}
	pk, pr := peer.krings[tRX][i], peer.rings[tRX][i]
	if pk.users == 0 || pr.off == 0 {
		return n
	}
	return pr.n - 1 - netmap.Dist(pk.hwcur, pk.hwtail, pr.n)
}

// rxsync is one RX ring's NIOCRXSYNC: nm_rxsync_prologue on the shared
// header, the NIC's rxsync (the slots [hwcur, head) go back to the NIC,
// with the buffers they now name) and nm_sync_finalize. Packets arrive by
// transmit, between syncs, as a NIC fills its ring.
func (k *fakeNetmap) rxsync(port *fakePort, i int) {
	kr, fr := port.krings[tRX][i], port.rings[tRX][i]
	r := fr.view()
	if r.tail() != kr.rtail {
		r.setTail(kr.rtail)
	}
	if !rxPrologue(kr, r.n, r.head(), r.cur()) {
		k.reinit(port, tRX, i)
		return
	}
	if !k.rxBackend(port, i) {
		return
	}
	k.finalize(kr, r)
}

// rxPrologue is nm_rxsync_prologue's check: hwcur <= head <= cur <= hwtail.
// Unlike the TX one it stores head and cur in the kring before checking.
func rxPrologue(kr *fakeKring, n, head, cur uint32) bool {
	kr.rhead, kr.rcur = head, cur
	return head < n && cur < n && netmap.Between(kr.hwcur, head, kr.hwtail) && netmap.Between(head, cur, kr.hwtail)
}

// rxBackend is the NIC's rxsync after the prologue: the slots [hwcur,
// rhead) go back to the NIC, and what the wire held back for want of room
// comes in. A slot with a bad buffer reinitialises the ring (false).
func (k *fakeNetmap) rxBackend(port *fakePort, i int) bool {
	kr, fr := port.krings[tRX][i], port.rings[tRX][i]
	r := fr.view()
	for j := kr.hwcur; j != kr.rhead; j = next(j, r.n) {
		if idx, _, _ := r.getSlot(j); !fr.mem.region.ValidBuf(idx) {
			k.reinit(port, tRX, i)
			return false
		}
	}
	kr.hwcur = kr.rhead
	if peer := port.peer; peer != nil && i < port.rx && i < peer.tx {
		k.pump(peer, i) // room for what flow control held back
	}
	return true
}

// netmapPoll is netmap_poll for one descriptor, minus the sleep.
func (k *fakeNetmap) netmapPoll(p *fakePriv, events int16) int16 {
	wantTx, wantRx := events&unix.POLLOUT != 0, events&unix.POLLIN != 0
	if wantTx || p.flags&netmap.FlagNoTxPoll == 0 {
		k.syncRings(p, tTX)
	}
	if wantRx || p.flags&netmap.FlagDoRxPoll != 0 {
		k.syncRings(p, tRX)
	}
	var re int16
	for t, want := range [2]bool{wantTx, wantRx} {
		if !want {
			continue
		}
		ready := t == tRX && p.port.rxReady
		for i := p.first[t]; i < p.last[t]; i++ {
			kr := p.port.krings[t][i]
			if p.port.rings[t][i].off == 0 {
				ready = ready || t == tTX // geometry only: room, nothing received
				continue
			}
			ready = ready || kr.rcur != kr.hwtail
		}
		if ready {
			re |= [2]int16{unix.POLLOUT, unix.POLLIN}[t]
		}
	}
	return re
}

// levels is what netmapPoll would report for p now, worked out without
// running the syncs: the header's head and cur as the prologue would take
// them (the kring's own if they are invalid), the TX tail a sync would
// leave, the RX tail the NIC has reached.
func (k *fakeNetmap) levels(p *fakePriv) (in, out bool) {
	port := p.port
	if port == nil || p.atok != 0 {
		return false, true
	}
	in = port.rxReady
	for t := range 2 {
		for i := p.first[t]; i < p.last[t]; i++ {
			kr, fr := port.krings[t][i], port.rings[t][i]
			if fr.off == 0 {
				out = out || t == tTX
				continue
			}
			r := fr.view()
			h, c := r.head(), r.cur()
			if t == tTX {
				if h >= r.n || c >= r.n || !netmap.Between(kr.rhead, h, kr.rtail) || !netmap.Between(h, c, kr.rtail) {
					h, c = kr.hwcur, kr.hwcur
				}
				tail := kr.hwtail
				if !port.txPaused {
					// A sync would complete what the wire takes.
					inflight := netmap.Dist(next(kr.hwtail, r.n), h, r.n)
					tail = netmap.Add(kr.hwtail, min(inflight, k.room(port, i, r.n)), r.n)
				}
				out = out || c != tail
			} else {
				if h >= r.n || c >= r.n || !netmap.Between(kr.hwcur, h, kr.hwtail) || !netmap.Between(h, c, kr.hwtail) {
					c = kr.hwcur
				}
				in = in || c != kr.hwtail
			}
		}
	}
	return in, out
}

// refreshLevels makes every real descriptor readable and writable as a
// poll of it would find it: readable while one byte from its peer end is
// queued, unwritable while its send buffer is full.
func (k *fakeNetmap) refreshLevels() {
	var buf [4096]byte
	for _, p := range k.fds {
		if p.peerFd < 0 {
			continue
		}
		in, out := k.levels(p)
		if in != p.in {
			if in {
				unix.Write(p.peerFd, buf[:1])
			} else {
				for n, _ := unix.Read(p.fd, buf[:]); n > 0; n, _ = unix.Read(p.fd, buf[:]) {
				}
			}
			p.in = in
		}
		if out != p.out {
			if out {
				for n, _ := unix.Read(p.peerFd, buf[:]); n > 0; n, _ = unix.Read(p.peerFd, buf[:]) {
				}
			} else {
				for n, _ := unix.Write(p.fd, buf[:]); n > 0; n, _ = unix.Write(p.fd, buf[:]) {
				}
			}
			p.out = out
		}
	}
}

// pauseTx stops or restarts the transmitter of port name (link down/up).
func (k *fakeNetmap) pauseTx(name string, paused bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	port := k.ports[name]
	port.txPaused = paused
	for i := range port.krings[tTX] {
		k.pump(port, i)
	}
	k.refreshLevels()
}

// injectTail makes the next finalize of kring i of direction t of port name
// write tail v into the ring's header: a kernel bug.
func (k *fakeNetmap) injectTail(name string, t, i int, v uint32) {
	k.mu.Lock()
	defer k.mu.Unlock()
	kr := k.ports[name].krings[t][i]
	kr.bugTail, kr.bugPending = v, true
}

// kring returns a copy of kring i of direction t of port name, and its
// ring's header as the kernel sees it.
func (k *fakeNetmap) kring(name string, t, i int) (kr fakeKring, head, cur, tail uint32) {
	k.mu.Lock()
	defer k.mu.Unlock()
	port := k.ports[name]
	kr = *port.krings[t][i]
	if fr := port.rings[t][i]; fr.off != 0 {
		r := fr.view()
		head, cur, tail = r.head(), r.cur(), r.tail()
	}
	return kr, head, cur, tail
}

// wireStats returns how many slots port name sent and how many of them the
// wire dropped.
func (k *fakeNetmap) wireStats(name string) (sent, dropped uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p := k.ports[name]
	return p.sent, p.dropped
}
