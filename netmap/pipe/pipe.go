// Package pipe is netmap's zero-copy pipe in a process: two ports sharing
// one region, where a packet sent on one endpoint's TX ring i appears on
// the other endpoint's RX ring i by swapping buffer indexes, never copying
// bytes. It is the trusted path between two VMs: both map the same region.
//
// The TX ring of one endpoint and the RX ring it feeds have the same size
// and are paired slot for slot: a transmit of TX slot m swaps its buffer
// with RX slot m. Each side publishes one index to the other through an
// atomic counter (the RX tail the sender filled up to, the RX head the
// receiver released up to), so the two endpoints' sync loops run on
// different threads with no lock.
package pipe

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ptbhyve/ptbhyve/internal/event"
	"github.com/ptbhyve/ptbhyve/internal/shm"
	"github.com/ptbhyve/ptbhyve/netmap"
)

// Config sizes a pipe.
type Config struct {
	Rings   int    // ring pairs per endpoint (default 1)
	Slots   uint32 // slots per ring (default 1024)
	BufSize uint32 // default 2048
	// ExtraBufs are left free in the region for whoever maps it.
	ExtraBufs uint32
	// Mem, if set, is where the region is built (the shared memory of the
	// VMs at both ends); it must hold the layout and stays the caller's.
	Mem []byte
}

func (c Config) withDefaults() Config {
	if c.Rings == 0 {
		c.Rings = 1
	}
	if c.Slots == 0 {
		c.Slots = 1024
	}
	if c.BufSize == 0 {
		c.BufSize = 2048
	}
	return c
}

// MaxSlots is netmap's NM_PIPE_MAXSLOTS.
const MaxSlots = 4096

// index is a counter one side publishes to the other, on its own cache line
// so the two sides do not false-share.
type index struct {
	v atomic.Uint32
	_ [60]byte
}

// Endpoint is one end of a pipe; it implements netmap.Port.
type Endpoint struct {
	name   string
	pair   *pair
	master bool
	nif    *netmap.If
	tx, rx []*netmap.KRing
	peer   *Endpoint

	// rxTail[i] is how far the peer has filled our RX ring i; rxHead[i] is
	// how far we have released it. Both are read by the other side.
	rxTail, rxHead []index
	// seenRx[i] and seenTx[i] mirror the rings' HwTail after each sync, so
	// that the waker's check may run on another goroutine than the sync
	// (an application with a TX and an RX goroutine, each waiting).
	seenRx, seenTx []atomic.Uint32

	waker *event.Waker
}

type pair struct {
	key    string
	mem    *shm.Mem
	region *netmap.Region
	memID  uint16
	ends   [2]*Endpoint
	open   [2]bool
}

var (
	mu     sync.Mutex
	pipes  = map[string]*pair{}
	nextID = uint16(0x8000) // private regions get ids away from the kernel's
)

// Open opens endpoint master ('{') or slave ('}') of the pipe called key,
// creating the pipe on first use. cfg matters only to the first opener.
func Open(key string, master bool, cfg Config) (*Endpoint, error) {
	mu.Lock()
	defer mu.Unlock()
	p := pipes[key]
	if p == nil {
		var err error
		if p, err = newPair(key, cfg.withDefaults()); err != nil {
			return nil, err
		}
		pipes[key] = p
	}
	side := 1
	if master {
		side = 0
	}
	if p.open[side] {
		return nil, fmt.Errorf("pipe %s: endpoint %s is already open", key, p.ends[side].name)
	}
	p.open[side] = true
	return p.ends[side], nil
}

func newPair(key string, c Config) (*pair, error) {
	if c.Rings < 1 || c.Rings > netmap.MaxRings {
		return nil, fmt.Errorf("pipe %s: %d rings; want 1..%d", key, c.Rings, netmap.MaxRings)
	}
	if c.Slots < 2 || c.Slots > MaxSlots {
		return nil, fmt.Errorf("pipe %s: %d slots; want 2..%d", key, c.Slots, MaxSlots)
	}
	info, err := netmap.Layout(netmap.ParamsFor(2, c.Rings, c.Rings, c.Slots, c.Slots, c.BufSize, c.ExtraBufs))
	if err != nil {
		return nil, fmt.Errorf("pipe %s: %w", key, err)
	}
	nextID++
	info.MemID = nextID
	mem, err := shm.Place(c.Mem, "ptbhyve-pipe-"+key, int(info.MemSize))
	if err != nil {
		return nil, fmt.Errorf("pipe %s: %w", key, err)
	}
	region, err := netmap.NewRegion(mem.Bytes(), info)
	if err != nil {
		mem.Close()
		return nil, fmt.Errorf("pipe %s: %w", key, err)
	}
	p := &pair{key: key, mem: mem, region: region, memID: info.MemID}
	for side, brace := range []string{"{", "}"} {
		e := &Endpoint{name: "pipe:" + key + brace, pair: p, master: side == 0,
			rxTail: make([]index, c.Rings), rxHead: make([]index, c.Rings),
			seenRx: make([]atomic.Uint32, c.Rings), seenTx: make([]atomic.Uint32, c.Rings)}
		e.nif, err = region.NewIf(netmap.IfConfig{Name: shortName(key, brace), TxRings: c.Rings, RxRings: c.Rings, TxSlots: c.Slots, RxSlots: c.Slots})
		if err != nil {
			mem.Close()
			return nil, fmt.Errorf("pipe %s: %w", key, err)
		}
		for i := range c.Rings {
			e.tx = append(e.tx, netmap.NewKRing(region, e.nif.TxRing(i), true))
			e.rx = append(e.rx, netmap.NewKRing(region, e.nif.RxRing(i), false))
			e.seenTx[i].Store(e.tx[i].HwTail)
			e.seenRx[i].Store(e.rx[i].HwTail)
		}
		if e.waker, err = event.NewWaker(e.pending); err != nil {
			mem.Close()
			return nil, fmt.Errorf("pipe %s: %w", key, err)
		}
		p.ends[side] = e
	}
	p.ends[0].peer, p.ends[1].peer = p.ends[1], p.ends[0]
	return p, nil
}

// shortName fits the endpoint name into netmap_if.ni_name.
func shortName(key, brace string) string {
	n := key + brace
	if len(n) >= netmap.IfNameSize {
		n = n[len(n)-netmap.IfNameSize+1:]
	}
	return n
}

// Name implements netmap.Port.
func (e *Endpoint) Name() string { return e.name }

// Region implements netmap.Port.
func (e *Endpoint) Region() *netmap.Region { return e.pair.region }

// MemFd is the shared-memory object holding the region, for handing the
// region to another process.
// It is -1 when the region lives in memory the caller gave (Config.Mem).
func (e *Endpoint) MemFd() int { return e.pair.mem.Fd() }

// If implements netmap.Port.
func (e *Endpoint) If() *netmap.If { return e.nif }

// MemID implements netmap.Port.
func (e *Endpoint) MemID() uint16 { return e.pair.memID }

// TxRings implements netmap.Port.
func (e *Endpoint) TxRings() []*netmap.KRing { return e.tx }

// RxRings implements netmap.Port.
func (e *Endpoint) RxRings() []*netmap.KRing { return e.rx }

// Waker implements netmap.Port.
func (e *Endpoint) Waker() netmap.Waker { return e.waker }

// TxSync moves the slots the application queued, [HwCur, RHead), to the
// peer's RX ring by buffer swap, then takes back as free TX space what the
// peer has released. A slot with a bad buffer index or length stops the
// sync at that slot with netmap.ErrBadSlot; the slots before it are sent.
func (e *Endpoint) TxSync(i int, _ int) error {
	k := e.tx[i]
	prx := e.peer.rx[i].Ring
	region := e.pair.region
	bufSize := region.BufSize()
	var err error
	m, lim := k.HwCur, k.RHead
	if m != lim {
		for m != lim {
			ts := k.Ring.Slot(m)
			idx, l, fl := ts.BufIdx, ts.Len, ts.Flags
			if !region.ValidBuf(idx) || uint32(l) > bufSize {
				err = netmap.ErrBadSlot
				break
			}
			rs := prx.Slot(m)
			ts.BufIdx = rs.BufIdx
			ts.Flags = netmap.NSBufChanged
			rs.BufIdx, rs.Len = idx, l
			rs.Flags = fl&netmap.NSMoreFrag | netmap.NSBufChanged
			m = k.Ring.Next(m)
		}
		if m != k.HwCur {
			k.HwCur = m
			e.peer.rxTail[i].v.Store(m)
			e.peer.waker.Signal()
		}
	}
	k.HwTail = netmap.Prev(e.peer.rxHead[i].v.Load(), k.N)
	e.seenTx[i].Store(k.HwTail)
	return err
}

// RxSync gives back the slots the application released and picks up what
// the peer has sent since.
func (e *Endpoint) RxSync(i int, _ int) error {
	k := e.rx[i]
	if k.RHead != k.HwCur {
		k.HwCur = k.RHead
		e.rxHead[i].v.Store(k.HwCur)
		e.peer.waker.Signal()
	}
	k.HwTail = e.rxTail[i].v.Load()
	e.seenRx[i].Store(k.HwTail)
	return nil
}

// Close closes this endpoint; the pipe and its region go away with the
// second endpoint.
func (e *Endpoint) Close() error {
	mu.Lock()
	defer mu.Unlock()
	p := e.pair
	side := 1
	if e.master {
		side = 0
	}
	if !p.open[side] {
		return netmap.ErrClosed
	}
	p.open[side] = false
	if p.open[0] || p.open[1] {
		return nil
	}
	delete(pipes, p.key)
	for _, end := range p.ends {
		end.waker.Close()
	}
	return p.mem.Close()
}

// pending reports whether the peer has published progress this endpoint's
// sync loop has not seen: packets for an RX ring, or TX slots released.
func (e *Endpoint) pending() bool {
	for i := range e.rx {
		if e.rxTail[i].v.Load() != e.seenRx[i].Load() {
			return true
		}
		if netmap.Prev(e.peer.rxHead[i].v.Load(), e.tx[i].N) != e.seenTx[i].Load() {
			return true
		}
	}
	return false
}
