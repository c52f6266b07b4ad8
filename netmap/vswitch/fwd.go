package vswitch

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/ptbhyve/ptbhyve/netmap"
)

// floodList is the index of the destination list of flooded packets.
const floodList = MaxPorts

// frag is a validated TX fragment: the slot's buffer and length as read
// once from shared memory, so the guest rewriting the slot after the check
// cannot change what is copied.
type frag struct {
	idx uint32
	len uint32
}

// pkt is a packet of the batch: fragments frags[first:first+nfrags], and the
// next packet of the same destination list (-1 ends the list).
type pkt struct {
	first  int32
	next   int32
	len    uint32
	nfrags uint32
}

type list struct{ head, tail int32 }

// txRing is a TX ring with the scratch state of its forwarding, all owned
// by the goroutine syncing the ring; the counters are atomic only so that
// Stats may read them.
type txRing struct {
	gate sync.RWMutex // read-locked by TxSync for a batch; see the package doc
	k    *netmap.KRing

	frags []frag // one per slot of the ring: a batch is at most N-1 slots
	pkts  []pkt
	lists [MaxPorts + 1]list // per destination port, and floodList
	dsts  []uint8            // the ports with a non-empty list, in first-use order

	packets, bytes, flooded, dropped, filtered, bad atomic.Uint64
	_                                               [netmap.CacheLine]byte
}

// rxRing is an RX ring: its KRing belongs to the consumer (the port's
// RxSync); the producers (other ports' TxSync) share the rest under mu.
type rxRing struct {
	k    *netmap.KRing
	head atomic.Uint32 // released up to here by the consumer; producers load it
	_    [netmap.CacheLine]byte

	mu      sync.Mutex  // serialises producers
	ring    netmap.Ring // the ring and its size, copied at creation
	n       uint32
	tail    atomic.Uint32 // filled up to here; stored under mu, loaded by the consumer
	packets atomic.Uint64 // counters, added under mu once per batch
	bytes   atomic.Uint64
	dropped atomic.Uint64
	_       [netmap.CacheLine]byte
}

// TxSync forwards the packets the application queued, [HwCur, RHead), and
// completes their slots at once: each packet is validated, its source MAC
// learned, its destination looked up, and its bytes copied into the RX
// ring (ring i modulo the destination's ring count) of the learned port,
// or of every other port for broadcast, multicast and unknown unicast.
// A destination without room drops its copy; the sender never waits.
//
// A packet whose last fragment (NS_MOREFRAG chain) is not queued yet is
// left for a later sync. A malformed slot (bad buffer, length beyond the
// buffer, a first fragment shorter than an Ethernet header, more than
// netmap.MaxFrags fragments, or an unfinished chain that fills the whole
// ring) stops the sync with netmap.ErrBadSlot once the packets before it
// are forwarded.
func (p *Port) TxSync(i int, _ int) error {
	t := p.tx[i]
	k := t.k
	if k.HwCur == k.RHead {
		if p.closed.Load() {
			return netmap.ErrClosed
		}
		return nil
	}
	t.gate.RLock()
	if p.closed.Load() {
		t.gate.RUnlock()
		return netmap.ErrClosed
	}
	err := t.forward(p, i)
	t.gate.RUnlock()
	return err
}

// RxSync gives back the slots the application released and picks up what
// the senders have copied in since.
func (p *Port) RxSync(i int, _ int) error {
	r := p.rx[i]
	k := r.k
	if p.closed.Load() {
		return netmap.ErrClosed
	}
	if k.RHead != k.HwCur {
		k.HwCur = k.RHead
		r.head.Store(k.HwCur)
	}
	k.HwTail = r.tail.Load()
	return nil
}

// forward is TxSync with the gate held.
func (t *txRing) forward(p *Port, ring int) error {
	s := p.sw
	k := t.k
	reg := p.region
	bs := reg.BufSize()
	n := k.N
	var err error
	var npk, nby, flooded, filtered uint64
	np, nf := int32(0), int32(0)

	// Pass 1: validate, learn, look up, and sort the batch into one list
	// per destination.
	m, lim := k.HwCur, k.RHead
	for m != lim {
		first, j := nf, m
		var plen uint32
		complete := false
		for nfr := 1; j != lim; nfr++ {
			sl := k.Ring.Slot(j)
			idx, l, fl := sl.BufIdx, uint32(sl.Len), sl.Flags
			if !reg.ValidBuf(idx) || l > bs || (nfr == 1 && l < minFrame) {
				err = netmap.ErrBadSlot
				break
			}
			t.frags[nf] = frag{idx: idx, len: l}
			nf++
			plen += l
			j = k.Ring.Next(j)
			if fl&netmap.NSMoreFrag == 0 {
				complete = true
				break
			}
			if nfr == netmap.MaxFrags {
				err = netmap.ErrBadSlot // the last allowed fragment says more follow
				break
			}
		}
		if !complete {
			nf = first
			// An unfinished chain holding every slot the application may
			// fill can never be finished.
			if err == nil && netmap.Dist(m, lim, n) == n-1 {
				err = netmap.ErrBadSlot
			}
			break
		}
		m = j
		npk++
		nby += uint64(plen)

		b := reg.Buf(t.frags[first].idx)
		dmac := binary.LittleEndian.Uint64(b[0:8]) & macMask
		smac := binary.LittleEndian.Uint64(b[6:14]) & macMask
		if smac&1 == 0 {
			s.learn(smac, p.idx)
		}
		dst := floodList
		if dmac&1 == 0 {
			if d, ok := s.lookup(dmac); ok && s.ports[d] != nil {
				if d == p.idx {
					filtered++
					continue
				}
				dst = d
			}
		}
		if dst == floodList {
			flooded++
		}
		t.pkts[np] = pkt{first: first, next: -1, len: plen, nfrags: uint32(nf - first)}
		l := &t.lists[dst]
		if l.head < 0 {
			l.head = np
			if dst != floodList {
				t.dsts = append(t.dsts, uint8(dst))
			}
		} else {
			t.pkts[l.tail].next = np
		}
		l.tail = np
		np++
	}

	// Pass 2: copy, one destination (one lock) at a time.
	var dropped uint64
	if fl := t.lists[floodList].head; fl >= 0 {
		for _, q := range s.active {
			if q != p {
				dropped += t.deliver(reg, q, ring%len(q.rx), t.lists[q.idx].head, fl)
			}
		}
		t.lists[floodList] = list{-1, -1}
	} else {
		for _, d := range t.dsts {
			q := s.ports[d]
			dropped += t.deliver(reg, q, ring%len(q.rx), t.lists[d].head, -1)
		}
	}
	for _, d := range t.dsts {
		t.lists[d] = list{-1, -1}
	}
	t.dsts = t.dsts[:0]

	// Copy-out completes every forwarded slot at once.
	k.HwCur = m
	k.HwTail = netmap.Prev(m, n)

	if npk != 0 {
		t.packets.Add(npk)
		t.bytes.Add(nby)
	}
	if flooded != 0 {
		t.flooded.Add(flooded)
	}
	if filtered != 0 {
		t.filtered.Add(filtered)
	}
	if dropped != 0 {
		t.dropped.Add(dropped)
	}
	if err != nil {
		t.bad.Add(1)
	}
	return err
}

// deliver copies the packets of lists a and b, merged in batch order, into
// RX ring r of port q, and returns how many it had to drop for want of
// room. It holds the ring's producer lock for the whole batch.
func (t *txRing) deliver(sreg *netmap.Region, q *Port, r int, a, b int32) uint64 {
	rr := q.rx[r]
	dreg := q.region
	dbs := min(dreg.BufSize(), 0xffff) // a slot's len is 16 bits
	var npk, nby, drop uint64
	rr.mu.Lock()
	tail := rr.tail.Load()
	free := rr.n - 1 - netmap.Dist(rr.head.Load(), tail, rr.n)
	for a >= 0 || b >= 0 {
		var x int32
		if b < 0 || (a >= 0 && a < b) {
			x, a = a, t.pkts[a].next
		} else {
			x, b = b, t.pkts[b].next
		}
		pk := &t.pkts[x]
		need := (pk.len + dbs - 1) / dbs
		if need > free || need > netmap.MaxFrags {
			drop++
			continue
		}
		tail = t.copyPacket(sreg, dreg, rr.ring, tail, pk, dbs)
		free -= need
		npk++
		nby += uint64(pk.len)
	}
	if npk != 0 {
		rr.tail.Store(tail) // publishes the slots and buffers written above
		rr.packets.Add(npk)
		rr.bytes.Add(nby)
	}
	if drop != 0 {
		rr.dropped.Add(drop)
	}
	rr.mu.Unlock()
	if npk != 0 {
		q.waker.Signal()
	}
	return drop
}

// copyPacket copies packet pk into ring from slot tail on, using as many
// slots as its length needs with dbs bytes each (NS_MOREFRAG on all but the
// last), and returns the slot after the last one written. The destination
// slot's buffer index is read once; Region.Buf keeps a bad one inside the
// destination's own region.
func (t *txRing) copyPacket(sreg, dreg *netmap.Region, ring netmap.Ring, tail uint32, pk *pkt, dbs uint32) uint32 {
	fr := t.frags[pk.first : pk.first+int32(pk.nfrags)]
	src := sreg.Buf(fr[0].idx)[:fr[0].len]
	fr = fr[1:]
	rem := int(pk.len)
	for {
		sl := ring.Slot(tail)
		dst := dreg.Buf(sl.BufIdx)[:dbs]
		w := 0
		for w < len(dst) && rem > 0 {
			for len(src) == 0 {
				src = sreg.Buf(fr[0].idx)[:fr[0].len]
				fr = fr[1:]
			}
			c := copy(dst[w:], src)
			w += c
			src = src[c:]
			rem -= c
		}
		sl.Len = uint16(w)
		tail = ring.Next(tail)
		if rem == 0 {
			sl.Flags = 0
			return tail
		}
		sl.Flags = netmap.NSMoreFrag
	}
}
