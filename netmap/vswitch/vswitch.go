// Package vswitch is a learning L2 switch in a process, after netmap's VALE:
// the untrusted path between VMs. Every port has its own netmap region, so a
// VM mapping its port's region sees only its own rings and buffers, and the
// switch copies each frame from the sender's TX buffers into buffers of the
// receiver's RX ring. A slow or hostile receiver cannot hold up a sender: a
// frame that finds no room in a destination RX ring is dropped for that
// destination and counted, and the sender's TX slots always complete at once.
//
// # Concurrency
//
// Each ring is synced by one goroutine at a time (the netmap.Port contract),
// but different rings, of the same port or of different ports, are synced
// concurrently, typically by the host sync loops of different VMs. Who
// writes what:
//
//   - A TX ring's KRing and its scratch forwarding table belong to the
//     goroutine syncing that ring; nothing else touches them.
//   - An RX ring has many producers (the TxSync of every other port) and one
//     consumer (its own RxSync). Producers are serialised by a mutex per
//     destination RX ring, as VALE serialises them on the destination ring's
//     lock. A sender groups its batch by destination first and takes each
//     destination's lock once per batch, never per packet or fragment.
//     (VALE goes further: it reserves slots under the lock and copies outside
//     it, so that several senders copy into one ring in parallel; here the
//     copy runs under the lock, which keeps the ring's state trivially
//     consistent.) Producers publish the filled-up-to index with an atomic
//     store after writing slots and buffers; the consumer loads it. The
//     consumer publishes the released-up-to index with an atomic store;
//     producers load it to compute space. The consumer takes no lock.
//   - The MAC table is a fixed-size direct-mapped array of atomic words,
//     one (MAC, port) pair per word, so learning and lookup are single
//     atomic loads and stores with no lock, and a collision or a MAC seen on
//     another port simply overwrites the entry: last writer wins, as in VALE.
//   - The set of ports changes only in Open and Close. Every TX ring has a
//     gate, an RWMutex its TxSync read-locks for the length of a batch;
//     Open and Close write-lock the gates of every open port before they
//     change the port set, so a sender never copies into a port that is
//     being torn down and never reads a half-updated port list. Each sender
//     touches only its own gate, so the gates cost the data path no shared
//     cache line (VALE takes a bridge-wide read lock for the same purpose).
//
// Entries of the MAC table do not age out; a port's entries are removed
// when it closes, and a MAC that moves is relearned on its first frame.
package vswitch

import (
	"fmt"
	"math/bits"
	"net"
	"sync"
	"sync/atomic"

	"github.com/ptbhyve/ptbhyve/internal/event"
	"github.com/ptbhyve/ptbhyve/internal/shm"
	"github.com/ptbhyve/ptbhyve/netmap"
)

// Limits of a switch, VALE's.
const (
	MaxPorts = 254  // NM_BDG_MAXPORTS
	MaxRings = 16   // NM_BDG_MAXRINGS
	MaxSlots = 4096 // NM_BDG_MAXSLOTS

	// DefaultMACTable is the default number of MAC table entries.
	DefaultMACTable = 4096
	maxMACTable     = 1 << 20

	minFrame = 14 // an Ethernet header: the first fragment must hold it
)

// Config configures a switch.
type Config struct {
	// MACTable is the number of entries of the learning table, rounded up
	// to a power of two (default DefaultMACTable, at most 1<<20).
	MACTable int
}

// PortConfig sizes a port. Zero fields take the defaults.
type PortConfig struct {
	Rings   int    // TX and RX rings each, 1..MaxRings (default 1)
	Slots   uint32 // slots per ring, 2..MaxSlots (default 1024)
	BufSize uint32 // buffer size, 64..65536 (default 2048)
	// ExtraBufs are left free in the port's region for whoever maps it.
	ExtraBufs uint32
	// Mem, if set, is where the port's region is built (a VM's device
	// memory); it must hold the layout and stays the caller's.
	Mem []byte
}

func (c PortConfig) withDefaults() PortConfig {
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

// PortStats are a port's counters.
type PortStats struct {
	// TxPackets and TxBytes count the packets taken from the port's TX
	// rings, whatever became of them.
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
	// RxPackets and RxBytes count the packets copied into the port's RX
	// rings.
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	// Flooded counts TX packets sent to every other port: broadcast,
	// multicast and unknown unicast.
	Flooded uint64 `json:"flooded"`
	// TxDropped counts copies of this port's packets that a destination
	// had no room for (its RX ring was full); a flooded packet may count
	// once per destination.
	TxDropped uint64 `json:"tx_dropped"`
	// RxDropped counts packets for this port dropped because its RX ring
	// was full (or because the packet would need more than
	// netmap.MaxFrags of its buffers).
	RxDropped uint64 `json:"rx_dropped"`
	// Filtered counts TX packets for a MAC learned on this same port,
	// which a bridge does not send back.
	Filtered uint64 `json:"filtered"`
	// BadSlots counts TX syncs stopped by a malformed slot (a bad buffer
	// index or length, or a fragment chain that is too long): the packet
	// is dropped and the ring reinitialised (netmap.ErrBadSlot).
	BadSlots uint64 `json:"bad_slots"`
	// LearnedMACs is how many MAC table entries point at this port.
	LearnedMACs int `json:"learned_macs"`
}

// Switch is a learning switch joining up to MaxPorts ports.
type Switch struct {
	name string

	// mu serialises Open and Close (and guards byName). The fields below it
	// change only with mu held and every open port's TX gates write-locked;
	// a TxSync reads them under its own gate.
	mu     sync.Mutex
	byName map[string]*Port
	ports  [MaxPorts]*Port // by index
	active []*Port         // the open ports, replaced (never edited) on change

	macs    []atomic.Uint64
	macBits uint
}

// New makes an empty switch.
func New(name string, cfg Config) *Switch {
	n := cfg.MACTable
	if n <= 0 {
		n = DefaultMACTable
	}
	n = min(n, maxMACTable)
	b := uint(bits.Len(uint(n - 1)))
	return &Switch{name: name, byName: map[string]*Port{}, macs: make([]atomic.Uint64, 1<<b), macBits: b}
}

// Name is the switch's name.
func (s *Switch) Name() string { return s.name }

// Lookup reports which port MAC mac is learned on.
func (s *Switch) Lookup(mac net.HardwareAddr) (port string, ok bool) {
	if len(mac) != 6 {
		return "", false
	}
	var v uint64
	for i := 5; i >= 0; i-- {
		v = v<<8 | uint64(mac[i])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	idx, ok := s.lookup(v)
	if !ok || s.ports[idx] == nil {
		return "", false
	}
	return s.ports[idx].port, true
}

// MAC table: entry = mac | (port+1)<<48, 0 when empty. A MAC is packed
// little-endian (byte 0 in the low bits), so bit 0 is the group bit.
const macMask = 1<<48 - 1

func (s *Switch) slot(mac uint64) *atomic.Uint64 {
	return &s.macs[(mac*0x9e3779b97f4a7c15)>>(64-s.macBits)&(1<<s.macBits-1)]
}

// learn records that mac is behind port; it writes the shared entry only
// when it changes, so a steady stream costs one load.
func (s *Switch) learn(mac uint64, port int) {
	e := s.slot(mac)
	if want := mac | uint64(port+1)<<48; e.Load() != want {
		e.Store(want)
	}
}

func (s *Switch) lookup(mac uint64) (int, bool) {
	v := s.slot(mac).Load()
	if v>>48 == 0 || v&macMask != mac {
		return 0, false
	}
	return int(v>>48) - 1, true
}

func (s *Switch) countMACs(port int) int {
	n := 0
	for i := range s.macs {
		if s.macs[i].Load()>>48 == uint64(port+1) {
			n++
		}
	}
	return n
}

func (s *Switch) forgetMACs(port int) {
	for i := range s.macs {
		if v := s.macs[i].Load(); v>>48 == uint64(port+1) {
			s.macs[i].CompareAndSwap(v, 0)
		}
	}
}

// lockGates stops every TxSync of the given ports (s.active as it is) and
// waits for the running ones to finish their batch.
func lockGates(ports []*Port) {
	for _, p := range ports {
		for _, t := range p.tx {
			t.gate.Lock()
		}
	}
}

func unlockGates(ports []*Port) {
	for _, p := range ports {
		for _, t := range p.tx {
			t.gate.Unlock()
		}
	}
}

// memIDs hands out region ids. Private regions of the pipe backend count up
// from 0x8000, the kernel's from 1; switch ports use [0x4000, 0x8000).
var memIDs atomic.Uint32

func nextMemID() uint16 { return uint16(0x4000 + (memIDs.Add(1)-1)%0x4000) }

// Open adds port to the switch with its own region.
func (s *Switch) Open(port string, cfg PortConfig) (*Port, error) {
	c := cfg.withDefaults()
	errf := func(format string, args ...any) error {
		return fmt.Errorf("vswitch %s: port %s: "+format, append([]any{s.name, port}, args...)...)
	}
	switch {
	case port == "":
		return nil, fmt.Errorf("vswitch %s: empty port name", s.name)
	case c.Rings < 1 || c.Rings > MaxRings:
		return nil, errf("%d rings; want 1..%d", c.Rings, MaxRings)
	case c.Slots < 2 || c.Slots > MaxSlots:
		return nil, errf("%d slots; want 2..%d", c.Slots, MaxSlots)
	case c.BufSize < 64 || c.BufSize > 65536:
		return nil, errf("buffer size %d; want 64..65536", c.BufSize)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byName[port] != nil {
		return nil, errf("already open")
	}
	idx := -1
	for i, q := range s.ports {
		if q == nil {
			idx = i
			break
		}
	}
	if idx < 0 {
		return nil, errf("switch is full (%d ports)", MaxPorts)
	}
	p, err := newPort(s, port, idx, c)
	if err != nil {
		return nil, errf("%w", err)
	}
	old := s.active
	next := append(append(make([]*Port, 0, len(old)+1), old...), p)
	lockGates(old)
	s.ports[idx] = p
	s.active = next
	unlockGates(old)
	s.byName[port] = p
	return p, nil
}

func newPort(s *Switch, port string, idx int, c PortConfig) (*Port, error) {
	info, err := netmap.Layout(netmap.ParamsFor(1, c.Rings, c.Rings, c.Slots, c.Slots, c.BufSize, c.ExtraBufs))
	if err != nil {
		return nil, err
	}
	info.MemID = nextMemID()
	label := "ptbhyve-vswitch-" + s.name + "-" + port
	if len(label) > 200 {
		label = label[:200]
	}
	mem, err := shm.Place(c.Mem, label, int(info.MemSize))
	if err != nil {
		return nil, err
	}
	region, err := netmap.NewRegion(mem.Bytes(), info)
	if err != nil {
		mem.Close()
		return nil, err
	}
	name := s.name + ":" + port
	p := &Port{sw: s, port: port, name: name, idx: idx, mem: mem, region: region, memID: info.MemID}
	p.nif, err = region.NewIf(netmap.IfConfig{Name: shortName(name), TxRings: c.Rings, RxRings: c.Rings, TxSlots: c.Slots, RxSlots: c.Slots})
	if err != nil {
		mem.Close()
		return nil, err
	}
	for i := range c.Rings {
		tk := netmap.NewKRing(region, p.nif.TxRing(i), true)
		t := &txRing{k: tk, frags: make([]frag, tk.N), pkts: make([]pkt, tk.N), dsts: make([]uint8, 0, MaxPorts)}
		for d := range t.lists {
			t.lists[d] = list{-1, -1}
		}
		p.tx = append(p.tx, t)
		p.txk = append(p.txk, tk)
		rk := netmap.NewKRing(region, p.nif.RxRing(i), false)
		p.rx = append(p.rx, &rxRing{k: rk, ring: rk.Ring, n: rk.N})
		p.rxk = append(p.rxk, rk)
	}
	if p.waker, err = event.NewWaker(p.pending); err != nil {
		mem.Close()
		return nil, err
	}
	return p, nil
}

// shortName fits a port name into netmap_if.ni_name, keeping its end.
func shortName(n string) string {
	if len(n) >= netmap.IfNameSize {
		n = n[len(n)-netmap.IfNameSize+1:]
	}
	return n
}

// Port is one port of a switch; it implements netmap.Port.
type Port struct {
	sw     *Switch
	port   string
	name   string
	idx    int
	mem    *shm.Mem
	region *netmap.Region
	memID  uint16
	nif    *netmap.If

	tx       []*txRing
	rx       []*rxRing
	txk, rxk []*netmap.KRing

	waker  *event.Waker
	closed atomic.Bool // set with every gate of the switch write-locked
}

var _ netmap.Port = (*Port)(nil)

// Name implements netmap.Port: "switch:port".
func (p *Port) Name() string { return p.name }

// Region implements netmap.Port.
func (p *Port) Region() *netmap.Region { return p.region }

// MemFd is the shared-memory object holding the port's region, for handing
// it to another process (the VM the port serves).
// It is -1 when the region lives in memory the caller gave (Config.Mem).
func (p *Port) MemFd() int { return p.mem.Fd() }

// If implements netmap.Port.
func (p *Port) If() *netmap.If { return p.nif }

// MemID implements netmap.Port; every port has its own.
func (p *Port) MemID() uint16 { return p.memID }

// TxRings implements netmap.Port.
func (p *Port) TxRings() []*netmap.KRing { return p.txk }

// RxRings implements netmap.Port.
func (p *Port) RxRings() []*netmap.KRing { return p.rxk }

// Waker implements netmap.Port.
func (p *Port) Waker() netmap.Waker { return p.waker }

// Stats snapshots the port's counters.
func (p *Port) Stats() PortStats {
	var st PortStats
	for _, t := range p.tx {
		st.TxPackets += t.packets.Load()
		st.TxBytes += t.bytes.Load()
		st.Flooded += t.flooded.Load()
		st.TxDropped += t.dropped.Load()
		st.Filtered += t.filtered.Load()
		st.BadSlots += t.bad.Load()
	}
	for _, r := range p.rx {
		st.RxPackets += r.packets.Load()
		st.RxBytes += r.bytes.Load()
		st.RxDropped += r.dropped.Load()
	}
	s := p.sw
	s.mu.Lock()
	if !p.closed.Load() {
		st.LearnedMACs = s.countMACs(p.idx)
	}
	s.mu.Unlock()
	return st
}

// Close removes the port from the switch, forgets the MACs learned on it
// and releases its region. The caller must have stopped syncing the port's
// rings; other ports may keep running: Close waits for any of their
// batches that might be copying into this port.
func (p *Port) Close() error {
	s := p.sw
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.closed.Load() {
		return netmap.ErrClosed
	}
	old := s.active
	next := make([]*Port, 0, len(old))
	for _, q := range old {
		if q != p {
			next = append(next, q)
		}
	}
	lockGates(old)
	p.closed.Store(true)
	s.ports[p.idx] = nil
	s.active = next
	s.forgetMACs(p.idx)
	unlockGates(old)
	delete(s.byName, p.port)
	err := p.waker.Close()
	if err2 := p.mem.Close(); err == nil {
		err = err2
	}
	return err
}

// pending reports whether senders have filled an RX ring past what the
// port's sync loop has seen. TX rings never wait: copies complete at once.
func (p *Port) pending() bool {
	for _, r := range p.rx {
		if r.tail.Load() != r.k.HwTail {
			return true
		}
	}
	return false
}

// BackendStats is Stats for callers that hold a netmap.Port (the daemon's
// stats): bytes each way and the drops of a full receiver.
func (p *Port) BackendStats() any { return p.Stats() }

// Drops implements netmap.DropCounter. The switch counts drops per port,
// not per ring, so they are reported on ring 0: on TX the copies of this
// port's frames a destination had no room for, on RX the frames for this
// port its full RX rings refused.
func (p *Port) Drops(tx bool, ring int) uint64 {
	if ring != 0 {
		return 0
	}
	s := p.Stats()
	if tx {
		return s.TxDropped
	}
	return s.RxDropped
}
