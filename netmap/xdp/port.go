//go:build linux

package xdp

import (
	"fmt"
	"sync/atomic"

	"github.com/ptbhyve/ptbhyve/internal/shm"
	"github.com/ptbhyve/ptbhyve/netmap"
	"golang.org/x/sys/unix"
)

// Buffer owners. Every buffer of the pool is in exactly one state; each
// hand-over between the netmap rings and the AF_XDP rings checks and moves
// it, so a guest that names a buffer twice, or one the kernel holds, gets
// its ring reset instead of corrupting a frame.
const (
	ownApp  uint8 = iota // in a netmap slot the application owns (or may own)
	ownFill              // on the FILL ring or held by the kernel for RX
	ownTx                // on the TX ring, until its completion
)

// PortConfig sizes a port.
type PortConfig struct {
	Slots   uint32 // slots per netmap ring and entries per AF_XDP ring (power of two); default 1024
	BufSize uint32 // 2048 (the UMEM chunk); frames up to BufSize-256 bytes can be received
	// Mem, if set, is where the region is built (a VM's device memory);
	// it must be page aligned, hold the layout, and stays the caller's.
	// Its buffer pool becomes the UMEM, so frames land in guest memory.
	Mem []byte
}

// Port is an xdp: port: netmap rings in a shared region, one ring pair per
// bound queue, each backed by an AF_XDP socket whose UMEM is the region's
// buffer pool. It implements netmap.Port. Each ring is synced by one
// goroutine at a time.
type Port struct {
	name    string
	mem     *shm.Mem
	region  *netmap.Region
	nif     *netmap.If
	tx, rx  []*netmap.KRing
	socks   []*Socket
	owner   []uint8
	bufSize uint64
	waker   waker
	prog    *Program
	att     *Attachment

	counters []queueCounters
}

type queueCounters struct {
	txPackets, rxPackets, txBytes, rxBytes atomic.Uint64
	_                                      [32]byte
}

// newPort lays out the region and opens one socket per queue; sockets are
// created in the calling thread's network namespace, so call it inside
// the interface's namespace. The XDP program is attached by the caller.
func newPort(name, ifname string, ifindex int, queues []int, c PortConfig) (p *Port, err error) {
	if c.Slots == 0 {
		c.Slots = 1024
	}
	if c.BufSize == 0 {
		c.BufSize = 2048
	}
	if c.Slots&(c.Slots-1) != 0 || c.Slots < 64 || c.Slots > 4096 {
		return nil, fmt.Errorf("xdp: %s: %d slots; want a power of two from 64 to 4096", name, c.Slots)
	}
	if c.BufSize != 2048 && c.BufSize != 4096 {
		return nil, fmt.Errorf("xdp: %s: buffer size %d; AF_XDP chunks are 2048 or 4096 bytes", name, c.BufSize)
	}
	nq := len(queues)
	info, err := netmap.Layout(netmap.ParamsFor(1, nq, nq, c.Slots, c.Slots, c.BufSize, 0))
	if err != nil {
		return nil, fmt.Errorf("xdp: %s: %w", name, err)
	}
	info.MemID = 0x7000 + uint16(ifindex)
	p = &Port{name: name, bufSize: uint64(c.BufSize)}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	if p.mem, err = shm.Place(c.Mem, "ptbhyve-"+name, int(info.MemSize)); err != nil {
		return p, err
	}
	if p.region, err = netmap.NewRegion(p.mem.Bytes(), info); err != nil {
		return p, err
	}
	if p.nif, err = p.region.NewIf(netmap.IfConfig{Name: shortName(ifname), TxRings: nq, RxRings: nq, TxSlots: c.Slots, RxSlots: c.Slots}); err != nil {
		return p, err
	}
	p.owner = make([]uint8, info.BufPoolObjTotal)
	umem := p.region.Mem()[info.BufPoolOffset:info.MemSize]
	if p.waker.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return p, fmt.Errorf("xdp: epoll: %w", err)
	}
	p.waker.p = p
	p.counters = make([]queueCounters, nq)
	for i, q := range queues {
		tx := netmap.NewKRing(p.region, p.nif.TxRing(i), true)
		rx := netmap.NewKRing(p.region, p.nif.RxRing(i), false)
		p.tx, p.rx = append(p.tx, tx), append(p.rx, rx)
		s, err := NewSocket(SocketConfig{UMEM: umem, ChunkSize: c.BufSize, RingSize: c.Slots})
		if err != nil {
			return p, fmt.Errorf("xdp: %s queue %d: %w", name, q, err)
		}
		p.socks = append(p.socks, s)
		// Every RX slot's buffer starts on FILL, the one slot netmap keeps
		// empty included: received frames are placed by rewriting buf_idx,
		// and a buffer left in that slot would be orphaned the first time
		// the slot received. FILL thus holds one buffer more than the
		// ring's kernel-owned slots, always.
		fill := &s.fill
		for j := range rx.N {
			idx := rx.Ring.Slot(j).BufIdx
			*fill.addr(fill.cachedProd + j) = p.fillAddr(idx)
			p.owner[idx] = ownFill
		}
		fill.submit(rx.N)
		if err := s.Bind(ifindex, q, ifname); err != nil {
			return p, err
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(s.Fd())}
		if err := unix.EpollCtl(p.waker.ep, unix.EPOLL_CTL_ADD, s.Fd(), &ev); err != nil {
			return p, fmt.Errorf("xdp: epoll add: %w", err)
		}
	}
	return p, nil
}

func shortName(n string) string {
	if len(n) >= netmap.IfNameSize {
		n = n[:netmap.IfNameSize-1]
	}
	return n
}

// fillAddr places buffer idx on FILL so that the kernel, which writes a
// frame XDP_PACKET_HEADROOM into the chunk it is given, writes it at the
// buffer's first byte: the chunk starts rxHeadroom bytes before the buffer,
// inside the previous buffer's tail, which no frame of at most
// BufSize-rxHeadroom bytes reaches.
func (p *Port) fillAddr(idx uint32) uint64 { return uint64(idx)*p.bufSize - rxHeadroom }

// Name implements netmap.Port.
func (p *Port) Name() string { return p.name }

// Region implements netmap.Port.
func (p *Port) Region() *netmap.Region { return p.region }

// MemFd is the shared-memory object holding the region.
// It is -1 when the region lives in memory the caller gave (Config.Mem).
func (p *Port) MemFd() int { return p.mem.Fd() }

// If implements netmap.Port.
func (p *Port) If() *netmap.If { return p.nif }

// MemID implements netmap.Port.
func (p *Port) MemID() uint16 { return p.region.Info().MemID }

// TxRings implements netmap.Port.
func (p *Port) TxRings() []*netmap.KRing { return p.tx }

// RxRings implements netmap.Port.
func (p *Port) RxRings() []*netmap.KRing { return p.rx }

// Waker implements netmap.Port.
func (p *Port) Waker() netmap.Waker { return &p.waker }

// reap takes back completed transmissions: their buffers return to the
// application and the TX ring's tail moves past them.
func (p *Port) reap(i int) {
	s, k := p.socks[i], p.tx[i]
	n := s.comp.avail()
	if n == 0 {
		return
	}
	for j := range n {
		idx := uint32(*s.comp.addr(s.comp.cachedCons + j) / p.bufSize)
		if idx < uint32(len(p.owner)) {
			p.owner[idx] = ownApp
		}
	}
	s.comp.release(n)
	k.HwTail = netmap.Add(k.HwTail, n, k.N)
}

// TxSync hands the slots the application queued, [HwCur, RHead), to the
// kernel as TX descriptors pointing at their own buffers, kicks the kernel
// (copy mode transmits 32 frames per system call), and takes back what it
// completed. A slot with a bad buffer, a length outside 14..BufSize, or a
// buffer the application does not own stops the sync with
// netmap.ErrBadSlot after the slots before it.
func (p *Port) TxSync(i int, flags int) error {
	s, k := p.socks[i], p.tx[i]
	p.reap(i)
	var err error
	m, lim := k.HwCur, k.RHead
	free := s.tx.free(netmap.Dist(m, lim, k.N))
	var n, bytes uint32
	for ; m != lim && n < free; m = k.Ring.Next(m) {
		sl := k.Ring.Slot(m)
		idx, l := sl.BufIdx, uint32(sl.Len)
		if !p.region.ValidBuf(idx) || l < 14 || uint64(l) > p.bufSize || p.owner[idx] != ownApp {
			err = netmap.ErrBadSlot
			break
		}
		d := s.tx.desc(s.tx.cachedProd + n)
		d.Addr, d.Len, d.Options = uint64(idx)*p.bufSize, l, 0
		p.owner[idx] = ownTx
		n++
		bytes += l
	}
	k.HwCur = m
	if n > 0 {
		s.tx.submit(n)
		p.counters[i].txPackets.Add(uint64(n))
		p.counters[i].txBytes.Add(uint64(bytes))
	}
	// Copy mode needs a kick per 32 frames; a zero-copy driver only when
	// it says so.
	for kicks := 0; s.tx.cachedProd != atomicLoad(s.tx.cons) && kicks <= int(s.tx.size/32); kicks++ {
		if !s.copyMode && !s.tx.needWakeup() {
			break
		}
		if kerr := s.kick(); kerr != nil {
			return kerr
		}
	}
	p.reap(i)
	return err
}

// RxSync gives the buffers of the slots the application released,
// [HwCur, RHead), back to FILL, then moves received frames into the slots
// from HwTail on, pointing each slot at the buffer the kernel wrote.
func (p *Port) RxSync(i int, flags int) error {
	s, k := p.socks[i], p.rx[i]
	var err error
	m, lim := k.HwCur, k.RHead
	var n uint32
	for ; m != lim; m = k.Ring.Next(m) {
		idx := k.Ring.Slot(m).BufIdx
		if !p.region.ValidBuf(idx) || p.owner[idx] != ownApp {
			err = netmap.ErrBadSlot
			break
		}
		*s.fill.addr(s.fill.cachedProd + n) = p.fillAddr(idx)
		p.owner[idx] = ownFill
		n++
	}
	if n > 0 {
		// FILL has room for a whole ring: it never holds more than one
		// buffer beyond the RX ring's kernel-owned slots.
		s.fill.free(n)
		s.fill.submit(n)
		k.HwCur = m
	}
	if s.fill.needWakeup() {
		unix.Syscall6(unix.SYS_RECVFROM, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	}
	room := netmap.Dist(k.HwTail, netmap.Prev(k.HwCur, k.N), k.N)
	got := min(s.rx.avail(), room)
	var bytes uint64
	for j := range got {
		d := s.rx.desc(s.rx.cachedCons + j)
		data := d.Addr&unalignedMask + d.Addr>>unalignedShift
		idx := uint32(data / p.bufSize)
		if data%p.bufSize != 0 || !p.region.ValidBuf(idx) || p.owner[idx] != ownFill {
			// The kernel returned an address we never gave it: a bug
			// somewhere below us; stop rather than hand out a frame.
			return fmt.Errorf("xdp: %s queue %d: kernel returned RX address %#x not on FILL", p.name, i, d.Addr)
		}
		sl := k.Ring.Slot(k.HwTail)
		sl.BufIdx, sl.Len, sl.Flags = idx, uint16(d.Len), netmap.NSBufChanged
		p.owner[idx] = ownApp
		bytes += uint64(d.Len)
		k.HwTail = k.Ring.Next(k.HwTail)
	}
	if got > 0 {
		s.rx.release(got)
		p.counters[i].rxPackets.Add(uint64(got))
		p.counters[i].rxBytes.Add(bytes)
	}
	return err
}

// Close detaches the program, closes the sockets (which leaves every
// XSKMAP) and unmaps the region.
func (p *Port) Close() error {
	if p.att != nil {
		p.att.Close()
		p.att = nil
	}
	if p.prog != nil {
		p.prog.Close()
		p.prog = nil
	}
	for _, s := range p.socks {
		s.Close()
	}
	p.socks = nil
	if p.waker.ep > 0 {
		unix.Close(p.waker.ep)
		p.waker.ep = 0
	}
	if p.mem != nil {
		err := p.mem.Close()
		p.mem = nil
		return err
	}
	return netmap.ErrClosed
}

// waker implements netmap.Waker: an epoll descriptor over every socket, so
// one poll covers all queues. The kernel's poll has no lost-wakeup window.
type waker struct {
	p  *Port
	ep int
}

func (w *waker) Fd() int       { return w.ep }
func (w *waker) Events() int16 { return unix.POLLIN }

// Arm refuses to sleep while a socket holds received frames that an RX
// ring has room for. Frames waiting for a full ring do not count: the
// guest's release rings the doorbell.
func (w *waker) Arm() bool {
	for i, s := range w.p.socks {
		k := w.p.rx[i]
		if s.rx.avail() != 0 && k.HwTail != netmap.Prev(k.HwCur, k.N) {
			return false
		}
	}
	return true
}

func (w *waker) Disarm() {}

// BackendStats is Stats for callers that hold a netmap.Port (the daemon's
// stats): drops at the FILL ring, copy or zero-copy mode.
func (p *Port) BackendStats() any {
	s, err := p.Stats()
	if err != nil {
		return map[string]string{"error": err.Error()}
	}
	return s
}

// Drops implements netmap.DropCounter from the socket's XDP_STATISTICS:
// on RX the frames the kernel dropped (rx_dropped, which includes those
// that found FILL empty) plus those that found the RX ring full; on TX the
// descriptors it refused.
func (p *Port) Drops(tx bool, ring int) uint64 {
	if ring < 0 || ring >= len(p.socks) {
		return 0
	}
	st, err := p.socks[ring].Stats()
	if err != nil {
		return 0
	}
	if tx {
		return st.Tx_invalid_descs
	}
	return st.Rx_dropped + st.Rx_ring_full
}
