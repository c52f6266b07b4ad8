// Package bounce is a copying netmap port: a netmap.Port whose region
// (netmap_if, rings and buffers) is built in memory the caller chooses, and
// whose syncs copy frames to and from an inner, separately opened port.
//
// # When ptbhyve uses it
//
// A ptnet guest reads and writes its port's region directly, so on FreeBSD
// the region must lie in bhyve's devmem segment: memory ptbhyve is given as
// a []byte. The in-process backends (pipes, the switch) build their region
// wherever they are told; a kernel netmap port (netmap:ix0, a VALE port)
// maps the kernel's region instead, and can place it in the VM's memory
// only if netmap accepts that memory as EXTMEM. When it cannot, ptbhyve
// opens the kernel port on its own and puts a bounce port in front of it:
// the guest sees the bounce port's rings in its memory, and the host sync
// loop serves the bounce port exactly as it serves any other port.
//
// # What it costs
//
// Every frame is copied once each way (guest TX buffer to inner TX buffer,
// inner RX buffer to guest RX buffer), and a sync of a bounce ring costs
// one or two syncs of the inner ring (one to pick up or push frames, one
// more to hand back at once the buffers it copied out, so the inner port's
// peer never waits for a later sync). Nothing else is added: no lock, no
// allocation, counters updated once per batch.
//
// # How a sync works
//
// Bounce is the netmap application of the inner port. It keeps the inner
// rings' head and cur itself, writes them into the inner rings' headers
// (where a kernel port's NIOC*SYNC reads them), validates them with the
// inner KRing's Prologue and calls the inner TxSync or RxSync, as
// netmap.TxSync does for an application in this process.
//
//   - TxSync copies the slots [HwCur, RHead) of its TX ring into the inner
//     TX ring's free slots, as many as fit (the rest stay queued for a
//     later sync: flow control), pushes them with one inner TxSync, and,
//     like VALE, completes every copied slot at once (HwTail =
//     prev(HwCur)). When it could not copy everything it asks the inner
//     port to reclaim completed slots (NAF_FORCE_RECLAIM) and tries again.
//   - RxSync takes back [HwCur, RHead), syncs the inner RX ring, copies
//     its frames into the free RX slots (up to prev(HwCur)) and releases
//     them to the inner port.
//
// Slots are copied one for one with their length and NS_MOREFRAG, so a
// fragmented packet stays fragmented. A TX slot longer than the inner
// port's buffers (Config.BufSize may exceed them) is split over as many
// inner slots as it needs, chained with NS_MOREFRAG.
//
// # Untrusted slots
//
// The application of a bounce port is a guest and may write anything into
// its slots. A TX slot naming a buffer outside the region (or the reserved
// buffers 0 and 1), or longer than a buffer, and an RX slot given back with
// such a buffer, stop the sync with an error wrapping netmap.ErrBadSlot
// once the frames before it are copied; the sync loop then reinitialises
// the ring. Nothing is ever copied outside either region: what the inner
// port hands over is checked too (see Stats.InnerBad).
package bounce

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/ptbhyve/ptbhyve/internal/shm"
	"github.com/ptbhyve/ptbhyve/netmap"
)

// Config sizes a bounce port.
type Config struct {
	// Mem is where the region is built (a VM's device memory); it must
	// hold the layout and stays the caller's. nil allocates a shared
	// memory object, released by Close.
	Mem []byte
	// Slots per ring; 0 takes the inner port's ring sizes (those of its
	// TX ring 0 for the TX rings, of its RX ring 0 for the RX rings).
	Slots uint32
	// BufSize is the size of the region's buffers; 0 means 2048, or the
	// inner port's buffer size if that is larger. It must be at least the
	// inner port's: a frame the inner port receives fills one of its
	// buffers and must fit one of ours.
	BufSize uint32
}

// DefaultBufSize is the buffer size when Config.BufSize is 0 and the inner
// port's buffers are not larger.
const DefaultBufSize = 2048

// NamePrefix starts the Name of every bounce port: "copy:" followed by the
// inner port's name, so logs and stats show both the copy and its target.
const NamePrefix = "copy:"

// Stats are a bounce port's counters, summed over its rings.
type Stats struct {
	// TxPackets and TxBytes count the slots copied from the port's TX
	// rings into the inner port's (a slot split over several inner slots
	// counts once), and their bytes.
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
	// RxPackets and RxBytes count the slots copied from the inner port's
	// RX rings into the port's.
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	// BadSlots counts syncs stopped by a slot of the application's that
	// names an invalid buffer or length (netmap.ErrBadSlot).
	BadSlots uint64 `json:"bad_slots"`
	// InnerBad counts slots the inner port handed over with a buffer index
	// or length that is not valid in its own region: on RX the frame is
	// dropped (and counted in Drops), on TX the sync stops with an error
	// wrapping netmap.ErrBadSlot. Only a broken inner port (or the
	// untrusted peer of a pipe writing garbage into its own RX slots,
	// which the pipe swaps into ours) produces them.
	InnerBad uint64 `json:"inner_bad"`
}

// counters are one ring's, updated once per batch; padded so the TX and
// RX rings of a port, synced on different CPUs, do not share a line.
type counters struct {
	packets, bytes, bad, innerBad atomic.Uint64
	_                             [netmap.CacheLine - 32]byte
}

// ring pairs one of our rings with the inner ring it copies to or from.
type ring struct {
	k, ik *netmap.KRing
	c     counters
}

// Port is a copying port; it implements netmap.Port and netmap.DropCounter.
type Port struct {
	inner  netmap.Port
	name   string
	mem    *shm.Mem
	region *netmap.Region
	nif    *netmap.If
	memID  uint16
	tx, rx []ring
	txk    []*netmap.KRing
	rxk    []*netmap.KRing
	closed atomic.Bool
}

var (
	_ netmap.Port        = (*Port)(nil)
	_ netmap.DropCounter = (*Port)(nil)
)

// memIDs hands out region ids. The kernel's count from 1, switch ports use
// [0x4000, 0x8000), pipes count up from 0x8000; bounce ports take
// [0xf000, 0xffff] so that no two live regions are likely to share an id.
var memIDs atomic.Uint32

func nextMemID() uint16 { return uint16(0xf000 + (memIDs.Add(1)-1)%0x1000) }

// New builds a port whose region lies in cfg.Mem and copies to and from
// inner: ring i of each direction is inner's ring i. The port owns inner
// from then on (Close closes it) unless New fails, in which case inner is
// left open for the caller.
func New(inner netmap.Port, cfg Config) (*Port, error) {
	if inner == nil {
		return nil, errors.New("bounce: no inner port")
	}
	name := NamePrefix + inner.Name()
	fail := func(format string, args ...any) error {
		return fmt.Errorf("bounce %s: "+format, append([]any{name}, args...)...)
	}
	itx, irx := inner.TxRings(), inner.RxRings()
	if len(itx) == 0 || len(irx) == 0 {
		return nil, fail("the inner port binds %d TX and %d RX rings; a copy needs at least one of each", len(itx), len(irx))
	}
	ireg := inner.Region()
	ibs := ireg.BufSize()
	bs := cfg.BufSize
	if bs == 0 {
		bs = max(DefaultBufSize, ibs)
	}
	if bs < ibs {
		return nil, fail("buffer size %d is smaller than the inner port's %d-byte buffers: a frame it receives might not fit; set a BufSize of at least %d", bs, ibs, ibs)
	}
	txSlots, rxSlots := cfg.Slots, cfg.Slots
	if txSlots == 0 {
		txSlots = itx[0].N
	}
	if rxSlots == 0 {
		rxSlots = irx[0].N
	}
	info, err := netmap.Layout(netmap.ParamsFor(1, len(itx), len(irx), txSlots, rxSlots, bs, 0))
	if err != nil {
		return nil, fail("%w", err)
	}
	// Layout rounds the buffer size up; what a guest may fill is the
	// rounded size, so that is what must be split over inner slots.
	pieces := (info.BufPoolObjSize + ibs - 1) / ibs
	for i, ik := range itx {
		if pieces > ik.N-1 {
			return nil, fail("a %d-byte frame needs %d of the inner port's %d-byte buffers, more than its TX ring %d can hold (%d slots)", info.BufPoolObjSize, pieces, ibs, i, ik.N)
		}
	}
	info.MemID = nextMemID()
	mem, err := shm.Place(cfg.Mem, "ptbhyve-copy", int(info.MemSize))
	if err != nil {
		return nil, fail("%w", err)
	}
	region, err := netmap.NewRegion(mem.Bytes(), info)
	if err != nil {
		mem.Close()
		return nil, fail("%w", err)
	}
	nif, err := region.NewIf(netmap.IfConfig{Name: shortName(name), TxRings: len(itx), RxRings: len(irx), TxSlots: txSlots, RxSlots: rxSlots})
	if err != nil {
		mem.Close()
		return nil, fail("%w", err)
	}
	p := &Port{inner: inner, name: name, mem: mem, region: region, nif: nif, memID: info.MemID,
		tx: make([]ring, len(itx)), rx: make([]ring, len(irx))}
	for i := range p.tx {
		p.tx[i].k = netmap.NewKRing(region, nif.TxRing(i), true)
		p.tx[i].ik = itx[i]
		p.txk = append(p.txk, p.tx[i].k)
	}
	for i := range p.rx {
		p.rx[i].k = netmap.NewKRing(region, nif.RxRing(i), false)
		p.rx[i].ik = irx[i]
		p.rxk = append(p.rxk, p.rx[i].k)
	}
	return p, nil
}

// shortName fits a name into netmap_if.ni_name, keeping its end (the
// inner port's own name).
func shortName(n string) string {
	if len(n) >= netmap.IfNameSize {
		n = n[len(n)-netmap.IfNameSize+1:]
	}
	return n
}

// Name is NamePrefix followed by the inner port's name.
func (p *Port) Name() string { return p.name }

// Region is the port's own region, in Config.Mem.
func (p *Port) Region() *netmap.Region { return p.region }

// If is the port's netmap_if.
func (p *Port) If() *netmap.If { return p.nif }

// MemID is the port's own region id, not the inner port's: the two share
// no buffer.
func (p *Port) MemID() uint16 { return p.memID }

// MemFd is the shared-memory object holding the region when New allocated
// it (Config.Mem nil), for handing it to another process; -1 otherwise.
func (p *Port) MemFd() int { return p.mem.Fd() }

// Inner is the port frames are copied to and from.
func (p *Port) Inner() netmap.Port { return p.inner }

// TxRings implements netmap.Port.
func (p *Port) TxRings() []*netmap.KRing { return p.txk }

// RxRings implements netmap.Port.
func (p *Port) RxRings() []*netmap.KRing { return p.rxk }

// Waker is the inner port's: every event a bounce sync waits for (frames
// received, transmit slots completed) is progress of the inner port.
func (p *Port) Waker() netmap.Waker { return p.inner.Waker() }

// Close closes the inner port and releases the region if New allocated
// it. The caller must have stopped syncing the rings (detached the port
// from its loop). A second Close returns netmap.ErrClosed.
func (p *Port) Close() error {
	if !p.closed.CompareAndSwap(false, true) {
		return netmap.ErrClosed
	}
	err := p.inner.Close()
	if err2 := p.mem.Close(); err == nil {
		err = err2
	}
	return err
}

// Stats snapshots the port's counters.
func (p *Port) Stats() Stats {
	var s Stats
	for i := range p.tx {
		c := &p.tx[i].c
		s.TxPackets += c.packets.Load()
		s.TxBytes += c.bytes.Load()
		s.BadSlots += c.bad.Load()
		s.InnerBad += c.innerBad.Load()
	}
	for i := range p.rx {
		c := &p.rx[i].c
		s.RxPackets += c.packets.Load()
		s.RxBytes += c.bytes.Load()
		s.BadSlots += c.bad.Load()
		s.InnerBad += c.innerBad.Load()
	}
	return s
}

// BackendStatsView is what BackendStats returns: the copy path's counters
// and, when the inner port has them, the inner port's.
type BackendStatsView struct {
	Copy  Stats `json:"copy"`
	Inner any   `json:"inner,omitempty"`
}

// BackendStats is Stats for callers that hold a netmap.Port (the daemon's
// stats), with the inner port's own statistics if it offers them.
func (p *Port) BackendStats() any {
	v := BackendStatsView{Copy: p.Stats()}
	if b, ok := p.inner.(interface{ BackendStats() any }); ok {
		v.Inner = b.BackendStats()
	}
	return v
}

// Drops implements netmap.DropCounter: the inner port's drops on ring
// (if it counts them) plus, on RX, the frames dropped here because the
// inner port handed them over in an invalid slot.
func (p *Port) Drops(tx bool, ring int) uint64 {
	var n uint64
	if d, ok := p.inner.(netmap.DropCounter); ok {
		n = d.Drops(tx, ring)
	}
	if !tx && ring >= 0 && ring < len(p.rx) {
		n += p.rx[ring].c.innerBad.Load()
	}
	return n
}

// publish makes head (and cur) the inner ring's application state: in its
// header, where a kernel port reads it, and validated into its KRing, as
// an application's sync does before the backend runs.
func (p *Port) publish(dir string, i int, ik *netmap.KRing, head uint32) error {
	ik.Ring.SetCur(head)
	ik.Ring.SetHead(head)
	if !ik.Prologue(head, head) {
		// Only a bug here (or an inner port that moved its own indexes
		// backwards) gets here: head is always within what it offered.
		ik.Reinit()
		return fmt.Errorf("bounce %s: %s ring %d: inner ring refused head %d (hwcur %d, hwtail %d)", p.name, dir, i, head, ik.HwCur, ik.HwTail)
	}
	return nil
}

// innerErr wraps an error of the inner port's sync. An inner ErrBadSlot
// means the inner ring's indexes or slots were broken: as its application,
// bounce reinitialises that ring, as netmap.TxSync would.
func (p *Port) innerErr(dir string, i int, ik *netmap.KRing, err error) error {
	if errors.Is(err, netmap.ErrBadSlot) {
		ik.Reinit()
	}
	return fmt.Errorf("bounce %s: %s ring %d: inner sync: %w", p.name, dir, i, err)
}

// errBadSlot and errInnerSlot are the data path's own errors, preallocated
// so that a sync that meets a bad slot allocates nothing either.
var (
	errBadSlot   = fmt.Errorf("bounce: the application's slot names an invalid buffer or length: %w", netmap.ErrBadSlot)
	errInnerSlot = fmt.Errorf("bounce: the inner port's TX slot names an invalid buffer: %w", netmap.ErrBadSlot)
)

// TxSync copies the slots [HwCur, RHead) of TX ring i into inner TX ring i
// as far as it has room, pushes them with the inner TxSync, and completes
// every copied slot at once. See the package documentation.
func (p *Port) TxSync(i int, flags int) error {
	if p.closed.Load() {
		return netmap.ErrClosed
	}
	r := &p.tx[i]
	k, ik := r.k, r.ik
	reg, ireg := p.region, p.inner.Region()
	bs, ibs := reg.BufSize(), min(ireg.BufSize(), 0xffff) // a slot's len is 16 bits
	var npk, nby uint64
	var err error
	synced := false
	for {
		// Copy as many queued slots as the inner ring has free slots for.
		m, lim := k.HwCur, k.RHead
		h, space := ik.RHead, ik.TxSpace()
		copied := false
		for m != lim && err == nil {
			s := k.Ring.Slot(m)
			idx, l, fl := s.BufIdx, uint32(s.Len), s.Flags
			if !reg.ValidBuf(idx) || l > bs {
				err = errBadSlot
				r.c.bad.Add(1)
				break
			}
			need := uint32(1)
			if l > ibs {
				need = (l + ibs - 1) / ibs
			}
			if need > space {
				break
			}
			src := reg.Buf(idx)[:l]
			j := h
			for n := need; n > 0; n-- {
				is := ik.Ring.Slot(j)
				iidx := is.BufIdx
				if !ireg.ValidBuf(iidx) {
					err = errInnerSlot
					r.c.innerBad.Add(1)
					break
				}
				c := copy(ireg.Buf(iidx)[:ibs], src)
				src = src[c:]
				is.Len = uint16(c)
				if n > 1 {
					is.Flags = netmap.NSMoreFrag
				} else {
					is.Flags = fl & netmap.NSMoreFrag
				}
				j = ik.Ring.Next(j)
			}
			if err != nil {
				break // the slot is not consumed: h stays before it
			}
			h = j
			space -= need
			m = k.Ring.Next(m)
			npk++
			nby += uint64(l)
			copied = true
		}
		k.HwCur = m
		// Sync the inner ring when there is something to push, or, once
		// per call, when it has slots to reclaim, frames it has not taken
		// yet, or we need room.
		if !copied && (synced || ik.HwCur == ik.RHead && ik.HwTail == netmap.Prev(ik.HwCur, ik.N) &&
			flags&netmap.NAFForceReclaim == 0 && m == lim) {
			break
		}
		if e := p.publish("TX", i, ik, h); e != nil {
			err = e
			break
		}
		iflags := flags
		if m != lim {
			iflags |= netmap.NAFForceReclaim
		}
		e := p.inner.TxSync(i, iflags)
		ik.RTail = ik.HwTail
		synced = true
		if e != nil {
			err = p.innerErr("TX", i, ik, e)
			break
		}
		if err != nil || m == lim || ik.TxSpace() == 0 {
			break
		}
	}
	// Copied slots are free again at once.
	k.HwTail = netmap.Prev(k.HwCur, k.N)
	if npk != 0 {
		r.c.packets.Add(npk)
		r.c.bytes.Add(nby)
	}
	return err
}

// maxRxRounds bounds the copy rounds of one RxSync, so an inner port that
// keeps receiving cannot hold the sync loop on one ring.
const maxRxRounds = 4

// RxSync takes back the slots the application released, then syncs inner
// RX ring i, copies its frames into the free slots of RX ring i and
// releases them to the inner port, until either side runs out.
func (p *Port) RxSync(i int, flags int) error {
	if p.closed.Load() {
		return netmap.ErrClosed
	}
	r := &p.rx[i]
	k, ik := r.k, r.ik
	reg, ireg := p.region, p.inner.Region()
	bs, ibs := reg.BufSize(), ireg.BufSize()
	k.HwCur = k.RHead
	t := k.HwTail
	free := netmap.Dist(t, netmap.Prev(k.HwCur, k.N), k.N)
	var npk, nby, ibad uint64
	var err error
	h := ik.RHead
	for round := 0; ; round++ {
		// Release what was copied (nothing the first time round) and pick
		// up what the inner port received.
		if e := p.publish("RX", i, ik, h); e != nil {
			err = e
			break
		}
		e := p.inner.RxSync(i, flags)
		ik.RTail = ik.HwTail
		if e != nil {
			err = p.innerErr("RX", i, ik, e)
			break
		}
		if err != nil || round == maxRxRounds {
			break // the release above was the last step
		}
		// The inner port's HwTail is its own; keep the walk inside the
		// ring even if it were not.
		itail := ik.HwTail % ik.N
		j := h
		for j != itail && free > 0 {
			is := ik.Ring.Slot(j)
			iidx, l, fl := is.BufIdx, uint32(is.Len), is.Flags
			if !ireg.ValidBuf(iidx) || l > ibs || l > bs {
				ibad++ // dropped: released with the others
				j = ik.Ring.Next(j)
				continue
			}
			s := k.Ring.Slot(t)
			idx := s.BufIdx
			if !reg.ValidBuf(idx) {
				err = errBadSlot
				r.c.bad.Add(1)
				break
			}
			copy(reg.Buf(idx)[:l], ireg.Buf(iidx)[:l])
			s.Len = uint16(l)
			s.Flags = fl & netmap.NSMoreFrag
			t = k.Ring.Next(t)
			free--
			npk++
			nby += uint64(l)
			j = ik.Ring.Next(j)
		}
		if j == h {
			break // nothing consumed since the last inner sync
		}
		h = j // consumed [h, j): the next round releases it
	}
	k.HwTail = t
	if npk != 0 {
		r.c.packets.Add(npk)
		r.c.bytes.Add(nby)
	}
	if ibad != 0 {
		r.c.innerBad.Add(ibad)
	}
	return err
}
