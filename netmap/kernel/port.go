//go:build linux || freebsd

package kernel

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ptbhyve/ptbhyve/netmap"
)

// Port is a kernel netmap port — an interface (netmap:ix0), a VALE port
// (vale0:vm1), a netmap pipe (netmap:ix0{1) — bound on its own /dev/netmap
// descriptor and usable as a netmap.Port, so the host sync loop can serve a
// guest over it. It binds the port as a ptnet host must (research §5.7,
// §6.7): NR_REG_ALL_NIC unless the name selects one ring, NR_EXCLUSIVE, and
// NR_NO_TX_POLL so that sleeping in poll for received packets does not also
// push transmissions.
//
// A sync publishes the validated head and cur to the kernel's ring and
// issues NIOCTXSYNC or NIOCRXSYNC, which sync every bound ring of that
// direction at once. A ring's sync therefore issues the ioctl only when
// the kernel has something to learn from it or it has something to learn
// from the kernel that no ioctl since its last sync has told it:
//
//   - TX ring: when the application queued slots the kernel has not seen
//     (RHead != HwCur and the last ioctl did not already read this head),
//     or, if no TXSYNC ran since the ring last took its tail, when it has
//     no free slot or the caller passes NAF_FORCE_RECLAIM.
//   - RX ring: when the application released slots the kernel has not
//     seen, or no RXSYNC ran since the ring last took its tail.
//
// Otherwise the ring takes the tail the last ioctl left it. A loop that
// syncs every ring per pass thus pays one RXSYNC per pass, and a TXSYNC
// only when some ring transmits or needs room.
//
// # The shared ring header
//
// With a ptnet guest, the rings' headers are shared three ways: the guest
// maps the whole region, so its netmap application writes head and cur and
// its kernel writes tail (nm_sync_finalize) in the very header the host
// kernel reads and writes on every NIOC*SYNC and poll. The host's own sync
// loop in the kernel (SYNC_KLOOP_START) avoids this by syncing from the CSB
// through a shadow ring; a descriptor that is not in CSB mode cannot.
// Hence:
//
//   - The kernel validates whatever head and cur it reads, so a guest that
//     writes garbage there, or races the host's writes, gets its own ring
//     reinitialised: the worst a guest can do is confuse its own port (and
//     spin the host loop, which it can do by ringing doorbells anyway).
//   - A sync writes head and cur only when the header does not already
//     hold a valid state at or ahead of what the guest published through
//     the CSB. A guest that has moved on since it published keeps its newer
//     values (the kernel acts on them a little early, which is harmless:
//     the application only advances over slots it is done with); rewriting
//     them would hand its own slots back to it.
//   - The kernel writes each ring's tail whenever it syncs it (from the
//     ioctls and from poll), so between a host sync and the guest's next
//     one the header shows the guest a tail its own ring has not been told
//     about. A guest application that reads tail there and fills (or
//     drains) up to it gets ahead of its ring and is reinitialised by its
//     own kernel. netmap applications read tail right after their own sync,
//     which rewrites it, so they are exposed only if a host sync lands in
//     between; one that reads tail after sleeping, without syncing first,
//     is reinitialised at once. ptnet's stack mode measures its room against
//     its own kring and is immune. Putting the old tails back after each
//     ioctl does not help: a tail older than the application's head reads,
//     around the ring, as room the application does not have. (The guest's
//     finalizes in turn overwrite the kernel's tail, which the kernel
//     silently restores at its next sync.)
//   - A tail read back from the header is accepted only if the kernel could
//     have reached it (from the ring's HwTail up to the slot before HwCur):
//     anything else is the guest's own stale tail, stored between the
//     kernel's store and our load, and is ignored until the next sync; a
//     tail outside the ring is a RingError.
//
// A Port is for one sync loop: each ring is synced by one goroutine at a
// time (as netmap.Port asks). Close waits for syncs in progress, but the
// region goes away with it: stop using the rings (detach the port from its
// loop) first.
type Port struct {
	name   string
	kname  string
	f      *File
	mem    []byte // the region as mapped; the caller's memory with OpenPortIn
	extmem bool   // mem is the caller's: not unmapped at Close
	region *netmap.Region
	nif    *netmap.If
	reg    RegisterResult
	dirs   [2]direction // txDir, rxDir
	waker  waker
}

const (
	txDir = 0
	rxDir = 1
)

// direction is the state of one direction's rings, which one ioctl syncs
// together. mu serialises its syncs and guards closed.
type direction struct {
	mu     sync.Mutex
	closed bool
	rings  []*netmap.KRing
	hw     []int    // the hardware ring number of each KRing
	gen    uint64   // ioctls issued
	seen   []uint64 // gen when each ring last took its tail
	heads  []uint32 // each ring's header head just before the last ioctl
	tails  []uint32 // each ring's tail as the last ioctl left it
}

func (d *direction) init(n int) {
	d.seen = make([]uint64, n)
	d.heads = make([]uint32, n)
	d.tails = make([]uint32, n)
	d.gen = 1 // every ring starts with nothing to learn: its tail is the header's
	for i := range d.seen {
		d.seen[i] = 1
	}
}

// RingError is a ring index read from the shared region that cannot be the
// kernel's: a kernel bug, or a guest sharing the ring writing the header.
// It wraps netmap.ErrBadSlot, so a sync loop reinitialises the ring instead
// of stopping every device it serves.
type RingError struct {
	Op   string // TXSYNC, RXSYNC
	Port string
	Ring int // hardware ring number
	What string
	Val  uint32
	N    uint32
}

func (e *RingError) Error() string {
	return fmt.Sprintf("netmap %s %s: ring %d %s %d is outside the %d-slot ring (written by a guest sharing the ring, or a kernel bug)",
		e.Op, e.Port, e.Ring, e.What, e.Val, e.N)
}

// Unwrap makes the error match netmap.ErrBadSlot.
func (e *RingError) Unwrap() error { return netmap.ErrBadSlot }

// OpenPort opens /dev/netmap and binds the port n names, which must be of
// the netmap: or valeX: family (netmap.ParseName). The ring mode is
// NR_REG_ALL_NIC unless n selects one hardware ring (-N); modes that bind
// host rings (^, ^N, *) are refused, since nothing here serves those. The
// flags are n's plus NR_EXCLUSIVE and NR_NO_TX_POLL; @conf, @N and @share
// are passed on; @extmem and @offset are refused.
//
// A ptnet device needs the whole port (a guest finds its rings through the
// netmap_if, which counts all of them): open it without -N.
func OpenPort(n netmap.Name) (*Port, error) { return openPort(osCalls{}, n) }

func openPort(s sysCalls, n netmap.Name) (*Port, error) {
	return openPortIn(s, n, nil, netmap.PoolParams{})
}

// OpenPortIn opens the port as OpenPort does, but asks netmap to build the
// port's region — its netmap_if, rings and buffers — in mem
// (NETMAP_REQ_OPT_EXTMEM), which stays the caller's and must stay mapped
// until Close: a VM's device memory, so that the guest works on the
// kernel's rings with no copy. mem must be page-aligned and not in use:
// OpenPortIn clears it. On FreeBSD mem must be a mapping of a whole VM
// object from its offset 0 (a devmem segment mapped from
// /dev/vmm.io/VM.SEG), since netmap takes the object, not the range. p asks for the
// pools' sizes as netmap's sysctls would (zero fields take netmap's
// defaults for private allocators, which hold few rings); netmap fits
// what it can into mem and lays the pools out from its start.
//
// netmap refuses when it was built without WITH_EXTMEM, when the port is
// already bound with another memory (a NIC in use, an existing VALE port),
// or when mem is too small for the rings; the error says which, and a
// caller can then open the port normally and copy (netmap/bounce).
func OpenPortIn(n netmap.Name, mem []byte, p netmap.PoolParams) (*Port, error) {
	if len(mem) == 0 {
		return nil, fmt.Errorf("netmap: cannot open %s in external memory: no memory given", n)
	}
	return openPortIn(osCalls{}, n, mem, p)
}

func openPortIn(s sysCalls, n netmap.Name, mem []byte, pp netmap.PoolParams) (*Port, error) {
	req, err := portRequest(n)
	if err != nil {
		return nil, err
	}
	var opts []Option
	if mem != nil {
		if n.MemID != 0 || n.Share != "" {
			return nil, fmt.Errorf("netmap: cannot open %s in external memory: the name also selects a kernel allocator (@N or @share)", n)
		}
		clear(mem)
		opts = append(opts, &ExtmemOption{UsrPtr: uint64(uintptr(unsafe.Pointer(unsafe.SliceData(mem)))), Info: PoolsInfo{
			MemSize:        uint64(len(mem)),
			IfPoolObjTotal: pp.IfNum, IfPoolObjSize: pp.IfSize,
			RingPoolObjTotal: pp.RingNum, RingPoolObjSize: pp.RingSize,
			BufPoolObjTotal: pp.BufNum, BufPoolObjSize: pp.BufSize,
		}})
	}
	f, err := open(s)
	if err != nil {
		return nil, err
	}
	p, err := bind(f, n, req, mem, opts)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return p, nil
}

// portRequest is the REGISTER body for n, or why n cannot be opened here.
func portRequest(n netmap.Name) (Register, error) {
	bad := func(format string, args ...any) (Register, error) {
		return Register{}, fmt.Errorf("netmap: cannot open %s as a kernel port: "+format, append([]any{n}, args...)...)
	}
	switch {
	case n.Family != netmap.FamilyNetmap && n.Family != netmap.FamilyVale:
		return bad("it is a %s: port; kernel ports are named netmap:IF or valeX:PORT", n.Family)
	case n.KernelName() == "":
		return bad("the name has no port")
	case n.Extmem != nil:
		return bad("@extmem is not supported: the region must be the kernel's, which the port maps itself")
	case n.Offset != nil:
		return bad("@offset is not supported: per-slot offsets are invisible to a ptnet guest")
	}
	req := Register{
		Mode: n.Mode, RingID: n.RingID, MemID: n.MemID,
		Flags:   n.Flags | netmap.FlagExclusive | netmap.FlagNoTxPoll,
		TxRings: n.Conf.TxRings, RxRings: n.Conf.RxRings,
		HostTxRings: n.Conf.HostTxRings, HostRxRings: n.Conf.HostRxRings,
		TxSlots: n.Conf.TxSlots, RxSlots: n.Conf.RxSlots,
	}
	switch req.Mode {
	case netmap.RegDefault:
		req.Mode = netmap.RegAllNIC
	case netmap.RegAllNIC, netmap.RegOneNIC:
	default:
		base := netmap.Name{Family: n.Family, Switch: n.Switch, Port: n.Port, PipeRole: n.PipeRole, PipeID: n.PipeID}
		return bad("mode %v binds host rings, which this port does not serve; name all hardware rings (%s) or one (%s-0)", req.Mode, base, base)
	}
	return req, nil
}

// bind registers, maps and checks the port on f. With an EXTMEM option
// the region is ext, where the kernel built it, and nothing is mapped.
func bind(f *File, n netmap.Name, req Register, ext []byte, opts []Option) (*Port, error) {
	kname := n.KernelName()
	fail := func(format string, args ...any) error {
		return fmt.Errorf("netmap: port %s: "+format, append([]any{n}, args...)...)
	}
	if n.Share != "" {
		// The memory of the port named, found as libnetmap finds it.
		pi, err := f.PortInfo(strings.TrimPrefix(n.Share, "netmap:"), 0)
		if err != nil {
			return nil, fail("@share=%s: %w", n.Share, err)
		}
		req.MemID = pi.MemID
	}
	res, err := f.Register(kname, req, opts...)
	if err != nil {
		return nil, err
	}
	if res.HostTxRings > 1 {
		return nil, fail("it has %d host TX rings; a ptnet guest looks for RX ring i at ring_ofs[T+1+i] and would take the wrong rings: configure the port with one host ring pair (@conf:host-rings=1)", res.HostTxRings)
	}
	pools, err := f.PoolsInfo(kname, res.MemID)
	if err != nil {
		return nil, err
	}
	if pools.MemID != res.MemID || pools.MemSize != res.MemSize {
		return nil, fail("POOLS_INFO_GET describes memory %d of %d bytes, REGISTER memory %d of %d bytes", pools.MemID, pools.MemSize, res.MemID, res.MemSize)
	}
	if ext != nil {
		// netmap keeps a port that is already open (by another process)
		// on its memory and ignores EXTMEM without a word; ext was
		// cleared, so a netmap_if there is the kernel's work.
		if res.Offset+ifHostTxOff >= uint64(len(ext)) || isZero(ext[res.Offset:res.Offset+ifHostTxOff]) {
			return nil, fail("netmap kept the port in its own memory %d and ignored the external memory: the port is already open elsewhere (netmap gives a port the memory of its first opener); close the other user or copy", res.MemID)
		}
		info, err := extmemLayout(ext, netmap.PoolsInfo(pools))
		if err != nil {
			return nil, fail("%w", err)
		}
		p, err := newPort(f, n, res, ext[:info.MemSize], info)
		if err != nil {
			return nil, fail("%w", err)
		}
		p.extmem = true
		return p, nil
	}
	mem, err := f.Mmap()
	if err != nil {
		return nil, err
	}
	p, err := newPort(f, n, res, mem, netmap.PoolsInfo(pools))
	if err != nil {
		_ = f.Munmap(mem)
		return nil, fail("%w", err)
	}
	return p, nil
}

// extmemLayout is the part of info that lies inside ext. netmap counts a
// last buffer that the end of the memory cuts short (and never hands it
// out), so nr_memsize may run past ext by less than a buffer; the guest
// is shown the whole buffers only.
func extmemLayout(ext []byte, info netmap.PoolsInfo) (netmap.PoolsInfo, error) {
	size := uint64(len(ext))
	if info.MemSize <= size {
		return info, nil
	}
	if info.BufPoolObjSize == 0 || info.BufPoolOffset >= size || info.MemSize-size >= uint64(info.BufPoolObjSize)+pageSize {
		return info, fmt.Errorf("netmap laid out %d bytes in the %d bytes of external memory it was given", info.MemSize, size)
	}
	info.BufPoolObjTotal = uint32((size - info.BufPoolOffset) / uint64(info.BufPoolObjSize))
	info.MemSize = info.BufPoolOffset + uint64(info.BufPoolObjTotal)*uint64(info.BufPoolObjSize)
	return info, nil
}

// pageSize is the unit netmap rounds external memory pools to.
const pageSize = 4096

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// newPort checks what the kernel laid out in mem and builds the rings.
func newPort(f *File, n netmap.Name, res RegisterResult, mem []byte, info netmap.PoolsInfo) (*Port, error) {
	region, err := netmap.MapRegion(mem, info)
	if err != nil {
		return nil, err
	}
	ifEnd := info.IfPoolOffset + uint64(info.IfPoolObjTotal)*uint64(info.IfPoolObjSize)
	ringEnd := info.RingPoolOffset + uint64(info.RingPoolObjTotal)*uint64(info.RingPoolObjSize)
	if ifEnd < info.IfPoolOffset || ifEnd > info.MemSize || ringEnd < info.RingPoolOffset || ringEnd > info.MemSize {
		return nil, fmt.Errorf("the if pool (%d x %d at %d) or ring pool (%d x %d at %d) does not fit the %d-byte region",
			info.IfPoolObjTotal, info.IfPoolObjSize, info.IfPoolOffset, info.RingPoolObjTotal, info.RingPoolObjSize, info.RingPoolOffset, info.MemSize)
	}
	if res.Offset < info.IfPoolOffset || res.Offset >= ifEnd || info.IfPoolObjSize == 0 || (res.Offset-info.IfPoolOffset)%uint64(info.IfPoolObjSize) != 0 {
		return nil, fmt.Errorf("nr_offset %d is not a netmap_if in the if pool (%d x %d at %d)", res.Offset, info.IfPoolObjTotal, info.IfPoolObjSize, info.IfPoolOffset)
	}
	nif, err := netmap.OpenIf(region.Mem(), res.Offset)
	if err != nil {
		return nil, err
	}
	if nif.NumTx() != int(res.TxRings) || nif.NumRx() != int(res.RxRings) {
		return nil, fmt.Errorf("the netmap_if has %d TX and %d RX rings, REGISTER said %d and %d", nif.NumTx(), nif.NumRx(), res.TxRings, res.RxRings)
	}
	if htx := binary.LittleEndian.Uint32(mem[res.Offset+ifHostTxOff:]); htx > 1 {
		return nil, fmt.Errorf("the netmap_if has %d host TX rings; a ptnet guest assumes one", htx)
	}
	p := &Port{name: n.String(), kname: n.KernelName(), f: f, mem: mem, region: region, nif: nif, reg: res}
	p.waker.p = p
	// With at most one host TX ring, RX ring i is ring_ofs[T+1+i].
	for d, c := range [2]struct {
		n     int
		base  int
		slots uint32
	}{{nif.NumTx(), 0, res.TxSlots}, {nif.NumRx(), nif.NumTx() + 1, res.RxSlots}} {
		ds := &p.dirs[d]
		for i := range c.n {
			ofs := nif.RingOfs(c.base + i)
			if ofs == 0 {
				continue // not bound by this descriptor
			}
			ring := nif.TxRing(i)
			if d == rxDir {
				ring = nif.RxRing(i)
			}
			k, err := boundRing(region, ring, d == txDir, int64(res.Offset)+ofs, c.slots, info)
			if err != nil {
				return nil, fmt.Errorf("%s ring %d: %w", [2]string{"TX", "RX"}[d], i, err)
			}
			ds.rings = append(ds.rings, k)
			ds.hw = append(ds.hw, i)
		}
		ds.init(len(ds.rings))
	}
	if len(p.dirs[txDir].rings)+len(p.dirs[rxDir].rings) == 0 {
		return nil, fmt.Errorf("the netmap_if binds no hardware ring")
	}
	return p, nil
}

// ifHostTxOff is the offset of ni_host_tx_rings in struct netmap_if.
const ifHostTxOff = 36

// boundRing checks one ring the kernel bound and starts its KRing from the
// state registration left in its header.
func boundRing(region *netmap.Region, ring netmap.Ring, tx bool, off int64, slots uint32, info netmap.PoolsInfo) (*netmap.KRing, error) {
	h := ring.Header()
	n := ring.NumSlots()
	switch {
	case slots != 0 && n != slots:
		return nil, fmt.Errorf("has %d slots, REGISTER said %d", n, slots)
	case h.BufSize != info.BufPoolObjSize:
		return nil, fmt.Errorf("has %d-byte buffers, the buffer pool %d-byte ones", h.BufSize, info.BufPoolObjSize)
	case off+h.BufOfs != int64(info.BufPoolOffset):
		return nil, fmt.Errorf("buf_ofs %d from offset %d misses the buffer pool at %d", h.BufOfs, off, info.BufPoolOffset)
	}
	head, cur, tail := ring.Head(), ring.Cur(), ring.Tail()
	if head >= n || cur >= n || tail >= n {
		return nil, fmt.Errorf("head %d, cur %d, tail %d: not all inside the %d-slot ring", head, cur, tail, n)
	}
	k := netmap.NewKRing(region, ring, tx)
	k.HwCur, k.RHead, k.RCur = head, head, head
	k.HwTail, k.RTail = tail, tail
	return k, nil
}

// Name is the port's name, in netmap.Name's canonical text.
func (p *Port) Name() string { return p.name }

// Region is the kernel's region as this process maps it.
func (p *Port) Region() *netmap.Region { return p.region }

// If is the descriptor's netmap_if.
func (p *Port) If() *netmap.If { return p.nif }

// MemID is the kernel allocator's id; ports with the same id share buffers.
func (p *Port) MemID() uint16 { return p.reg.MemID }

// Registration is what REGISTER reported for the port.
func (p *Port) Registration() RegisterResult { return p.reg }

// TxRings are the bound hardware TX rings, in ring order (one with -N).
func (p *Port) TxRings() []*netmap.KRing { return p.dirs[txDir].rings }

// RxRings are the bound hardware RX rings.
func (p *Port) RxRings() []*netmap.KRing { return p.dirs[rxDir].rings }

// Fd is the /dev/netmap descriptor the port is bound on, -1 once closed.
// There is no separate memory descriptor: the region is this descriptor's
// mmap at offset 0 (Region().Mem() is that mapping), and a hypervisor that
// gives the region to a guest maps the same descriptor (or passes it on).
func (p *Port) Fd() int { return p.f.Fd() }

// Extmem reports whether the region is the caller's memory (OpenPortIn).
func (p *Port) Extmem() bool { return p.extmem }

// CSBEnable puts the descriptor in CSB mode (File.CSBEnable), for
// netmap's in-kernel sync loop; from then on TxSync, RxSync and the
// Waker's poll are refused by the kernel.
func (p *Port) CSBEnable(atok, ktoa uintptr) error { return p.f.CSBEnable(atok, ktoa) }

// SyncKloop runs netmap's sync loop on the port in sleep mode, as FreeBSD
// must (no eventfds), until SyncKloopStop (File.SyncKloopStart).
func (p *Port) SyncKloop(sleepUS uint32) error { return p.f.SyncKloopStart(sleepUS, 0, nil) }

// SyncKloopStop stops the loop SyncKloop runs (File.SyncKloopStop).
func (p *Port) SyncKloopStop() error { return p.f.SyncKloopStop() }

// Waker is the descriptor's poll.
func (p *Port) Waker() netmap.Waker { return &p.waker }

// TxSync hands the kernel the slots [HwCur, RHead) of TX ring i and takes
// back the slots it has finished with (see Port for when it issues
// NIOCTXSYNC).
func (p *Port) TxSync(i int, flags int) error { return p.sync(txDir, i, flags) }

// RxSync gives the kernel back the slots [HwCur, RHead) of RX ring i and
// takes what it has received.
func (p *Port) RxSync(i int, flags int) error { return p.sync(rxDir, i, flags) }

func (p *Port) sync(d, i, flags int) error {
	ds := &p.dirs[d]
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if ds.closed {
		return netmap.ErrClosed
	}
	if i < 0 || i >= len(ds.rings) {
		return fmt.Errorf("netmap: port %s has %d bound %s rings, no ring %d", p.name, len(ds.rings), [2]string{"TX", "RX"}[d], i)
	}
	k := ds.rings[i]
	publish(k, d)
	fresh := ds.seen[i] != ds.gen // an ioctl ran since the ring last took its tail
	need := k.RHead != k.HwCur && !(fresh && ds.heads[i] == k.RHead)
	if !fresh {
		if d == rxDir {
			need = true
		} else if flags&netmap.NAFForceReclaim != 0 || k.TxSpace() == 0 {
			need = true
		}
	}
	if need {
		if err := p.ioctl(ds, d); err != nil {
			return err
		}
	}
	k.HwCur = k.RHead
	if ds.seen[i] == ds.gen {
		return nil
	}
	ds.seen[i] = ds.gen
	t := ds.tails[i]
	if t >= k.N {
		return &RingError{Op: [2]string{"TXSYNC", "RXSYNC"}[d], Port: p.kname, Ring: ds.hw[i], What: "tail", Val: t, N: k.N}
	}
	if netmap.Between(k.HwTail, t, netmap.Prev(k.HwCur, k.N)) {
		k.HwTail = t
	}
	return nil
}

// publish makes the ring's header hold a head and cur the kernel may act
// on: the validated RHead and RCur, unless the header already holds a
// valid state at or ahead of them (see Port).
func publish(k *netmap.KRing, d int) {
	h, c := k.Ring.Head(), k.Ring.Cur()
	lim := k.RTail
	if d == rxDir {
		lim = k.HwTail
	}
	if h < k.N && c < k.N && netmap.Between(k.RHead, h, lim) && netmap.Between(h, c, lim) {
		return
	}
	k.Ring.SetCur(k.RCur)
	k.Ring.SetHead(k.RHead)
}

// ioctl issues one NIOCTXSYNC or NIOCRXSYNC and collects the tail it left
// in every ring of the direction.
func (p *Port) ioctl(ds *direction, d int) error {
	for j, k := range ds.rings {
		ds.heads[j] = k.Ring.Head()
	}
	var err error
	if d == txDir {
		err = p.f.TxSync()
	} else {
		err = p.f.RxSync()
	}
	if err != nil {
		return err
	}
	ds.gen++
	for j, k := range ds.rings {
		ds.tails[j] = k.Ring.Tail()
	}
	return nil
}

// Close unmaps the region and closes the descriptor, which unbinds the
// port. A second Close returns netmap.ErrClosed. The region, the netmap_if
// and the rings must not be touched after Close.
func (p *Port) Close() error {
	for d := range p.dirs {
		p.dirs[d].mu.Lock()
		defer p.dirs[d].mu.Unlock()
	}
	if p.dirs[txDir].closed {
		return netmap.ErrClosed
	}
	for d := range p.dirs {
		p.dirs[d].closed = true
	}
	var err error
	if !p.extmem {
		err = p.f.Munmap(p.mem)
	}
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	p.mem = nil
	return err
}

// waker polls the descriptor. The kernel's poll syncs the rings and checks
// them under its own lock, so there is no window for a lost wakeup: Arm
// never refuses and Disarm has nothing to clear. The rings learn what a
// poll found at their next sync.
type waker struct {
	p *Port
}

// Fd is the /dev/netmap descriptor.
func (w *waker) Fd() int { return w.p.f.Fd() }

// Events asks for POLLIN unless an RX ring holds packets its application
// has not reached yet (its cur short of the tail it was given): netmap
// reports POLLIN at once for such a ring, and the loop would spin for as
// long as the guest sits on them; the guest's release rings the doorbell
// instead. POLLOUT is asked only while some TX ring has no free slot, as
// netmap reports it whenever some ring has room.
func (w *waker) Events() int16 {
	var ev int16 = unix.POLLIN
	rx := &w.p.dirs[rxDir]
	rx.mu.Lock()
	if !rx.closed {
		for _, k := range rx.rings {
			h, c := k.Ring.Head(), k.Ring.Cur()
			if h >= k.N || c >= k.N || !netmap.Between(k.HwCur, h, k.HwTail) || !netmap.Between(h, c, k.HwTail) {
				c = k.HwCur // what the kernel would make of it
			}
			if c != k.HwTail {
				ev = 0
				break
			}
		}
	}
	rx.mu.Unlock()
	tx := &w.p.dirs[txDir]
	tx.mu.Lock()
	if !tx.closed {
		for _, k := range tx.rings {
			if k.TxSpace() == 0 {
				ev |= unix.POLLOUT
				break
			}
		}
	}
	tx.mu.Unlock()
	return ev
}

// Arm always lets the caller sleep.
func (w *waker) Arm() bool { return true }

// Disarm does nothing.
func (w *waker) Disarm() {}

var _ netmap.Port = (*Port)(nil)
