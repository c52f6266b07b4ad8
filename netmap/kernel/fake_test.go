//go:build linux

package kernel

import (
	"slices"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ptbhyve/ptbhyve/netmap"
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
//     SYNC_KLOOP_STOP, and a stop flag that survives when STOP finds no loop.
//   - NIOCTXSYNC/NIOCRXSYNC (ENXIO unbound, EBUSY in CSB mode), mmap of a
//     registered descriptor, poll (POLLERR unbound or in CSB mode; it never
//     sleeps: nothing ready means the timeout passed).
//
// What it does not: VALE switching, the kloop's ring processing, checking
// that eventfds are eventfds, memory allocators beyond their geometry.
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
}

type userMem struct {
	base uintptr
	b    []byte
	anon bool // handed out by anon, for request buffers
}

type fakeMem struct {
	info   PoolsInfo
	usrptr uint64 // extmem: the user memory it was carved from
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
	rxReady     bool
}

type fakeKring struct {
	users                  int
	excl                   bool
	rhead, rcur            uint32
	hwcur, hwtail          uint32
	offsetMask, offsetMaxV uint64
}

const (
	tTX = 0
	tRX = 1
)

type fakePriv struct {
	fd          int
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
	global := &fakeMem{info: fakePools(1, 64, 1024, 32, 4*4096+256, 4096, 2048)}
	k.mems[1] = global
	k.addPort(&fakePort{name: "ix0", tx: 4, rx: 4, hostTx: 1, hostRx: 1, txSlots: 1024, rxSlots: 1024, mem: global, offsets: true})
	k.addPort(&fakePort{name: "ix1", tx: 2, rx: 1, hostTx: 1, hostRx: 1, txSlots: 512, rxSlots: 256, mem: global})
	k.addPort(&fakePort{name: "vale0:vm1", tx: 1, rx: 1, txSlots: 1024, rxSlots: 1024, mem: global, vale: true})
	k.addPort(&fakePort{name: "vale0:vnet", tx: 1, rx: 1, txSlots: 1024, rxSlots: 1024, mem: global, vale: true, virtHdr: 12})
	k.addPort(&fakePort{name: "em0", tx: 1, rx: 1, hostTx: 1, hostRx: 1, txSlots: 256, rxSlots: 256, mem: global, ownedByKern: true})
	return k
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
			}
			p.krings[t] = append(p.krings[t], kr)
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
	fd := k.nextFd
	k.nextFd++
	k.fds[fd] = &fakePriv{fd: fd}
	return fd, nil
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
	b, err := unix.Mmap(-1, 0, length, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_SHARED)
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
			fds[i].Revents = fds[i].Events & unix.POLLOUT
			if p.port.rxReady {
				fds[i].Revents |= fds[i].Events & unix.POLLIN
			}
		}
		if fds[i].Revents != 0 {
			n++
		}
	}
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
		}
	default:
		err = unix.ENOTTY
	}
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
	if nmd == nil {
		nmd = port.mem
	}
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
	req.Offset = uint64(p.fd) * uint64(nmd.info.IfPoolObjSize)
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
		}
	}
	*p = fakePriv{fd: p.fd, atok: p.atok, ktoa: p.ktoa}
}

func (k *fakeNetmap) extmemCreate(o *kopt) (*fakeMem, unix.Errno) {
	usrptr := le.Uint64(o.body[extmemUsrPtr-OptionHeaderSize:])
	var info PoolsInfo
	info.Decode(o.body[extmemInfo-OptionHeaderSize:])
	for _, m := range k.mems {
		if m.usrptr == usrptr && usrptr != 0 {
			m.info.Encode(o.body[extmemInfo-OptionHeaderSize:])
			return m, 0
		}
	}
	if info.MemSize == 0 {
		return nil, unix.EINVAL
	}
	if _, err := k.mem(usrptr, int(info.MemSize)); err != 0 {
		return nil, err
	}
	def := func(v *uint32, d uint32) {
		if *v == 0 {
			*v = d
		}
	}
	def(&info.IfPoolObjTotal, 16)
	def(&info.IfPoolObjSize, 1024)
	def(&info.RingPoolObjTotal, 16)
	def(&info.RingPoolObjSize, 4096)
	def(&info.BufPoolObjSize, 2048)
	head := uint64(info.IfPoolObjTotal)*uint64(info.IfPoolObjSize) + uint64(info.RingPoolObjTotal)*uint64(info.RingPoolObjSize)
	if head >= info.MemSize {
		return nil, unix.EINVAL
	}
	maxBufs := uint32((info.MemSize - head) / uint64(info.BufPoolObjSize))
	if info.BufPoolObjTotal == 0 || info.BufPoolObjTotal > maxBufs {
		info.BufPoolObjTotal = maxBufs
	}
	id := k.nextID
	k.nextID++
	m := &fakeMem{usrptr: usrptr, info: fakePools(id, info.IfPoolObjTotal, info.IfPoolObjSize, info.RingPoolObjTotal, info.RingPoolObjSize, info.BufPoolObjTotal, info.BufPoolObjSize)}
	m.info.MemSize = info.MemSize
	k.mems[id] = m
	m.info.Encode(o.body[extmemInfo-OptionHeaderSize:])
	return m, 0
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
			a, kt := atok[e*CSBAlign:], ktoa[e*CSBAlign:]
			le.PutUint32(a[0:], kr.rhead)
			le.PutUint32(a[4:], kr.rcur)
			le.PutUint32(a[8:], 1)  // appl_need_kick
			le.PutUint32(a[12:], 1) // sync_flags
			le.PutUint32(kt[0:], kr.hwcur)
			le.PutUint32(kt[4:], kr.hwtail)
			le.PutUint32(kt[8:], 1) // kern_need_kick
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

func (k *fakeNetmap) kloopRun(p *fakePriv, r *kreq, sleepUS uint32) unix.Errno {
	nRings := p.last[tTX] - p.first[tTX] + p.last[tRX] - p.first[tRX]
	var direct [2]bool
	busyWait := true
	if o := r.opt(OptSyncKloopMode); o != nil {
		mode := le.Uint32(o.body)
		direct = [2]bool{mode&KloopDirectTX != 0, mode&KloopDirectRX != 0}
		if mode&^kloopModeMask != 0 {
			o.status = unix.EINVAL
			return o.status
		}
		o.status = 0
	}
	var fds [][2]int32
	if o := r.opt(OptSyncKloopEventfds); o != nil {
		if o.size != uint64(EventfdsOptSize(nRings)) {
			o.status = unix.EINVAL
			return o.status
		}
		if k.freebsd {
			o.status = unix.EOPNOTSUPP
			return 0
		}
		o.status = 0
		busyWait = false
		for i := range nRings {
			e := o.body[i*EventfdEntrySize:]
			fds = append(fds, [2]int32{int32(le.Uint32(e)), int32(le.Uint32(e[4:]))})
			if fds[i][0] < 0 {
				busyWait = true
			}
		}
		if busyWait && (direct[tTX] || direct[tRX]) {
			o.status = unix.EINVAL
			return o.status
		}
	}
	p.sleepUS, p.direct, p.busyWait, p.eventfds = sleepUS, direct, busyWait, fds
	k.cond.Broadcast()
	for !p.stopping {
		k.cond.Wait()
	}
	return 0
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
