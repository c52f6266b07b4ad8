//go:build linux

package xdp

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/ptbhyve/ptbhyve/internal/testnet"
	"github.com/ptbhyve/ptbhyve/netmap"
)

// openIn opens xdp:NAME inside namespace ns.
func openIn(t *testing.T, ns *testnet.NS, name string, c PortConfig) *Port {
	t.Helper()
	var p *Port
	err := ns.Do(func() error {
		// Built, not parsed: test interface names contain '-', which the
		// xdp: grammar cannot express.
		var err error
		p, err = OpenPort(netmap.Name{Family: netmap.FamilyXDP, Port: name, Mode: netmap.RegAllNIC}, c)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// sendFrames queues up to max frames from seq on TX ring 0 and syncs.
func sendFrames(t *testing.T, p *Port, seq uint64, max int) int {
	return sendOn(t, p, 0, seq, max)
}

// sendOn queues up to max frames from seq on TX ring q and syncs.
func sendOn(t *testing.T, p *Port, q int, seq uint64, max int) int {
	r := p.If().TxRing(q)
	n := 0
	h := r.Head()
	for ; n < max && h != r.Tail(); h = r.Next(h) {
		s := r.Slot(h)
		b := p.Region().Buf(s.BufIdx)
		copy(b, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x88, 0xb5})
		binary.LittleEndian.PutUint64(b[14:], seq+uint64(n))
		s.Len = 60
		n++
	}
	r.Advance(h)
	if err := netmap.TxSync(p); err != nil {
		t.Fatal(err)
	}
	if err := checkOwnership(p); err != nil {
		t.Fatalf("after TX sync: %v", err)
	}
	return n
}

// recvFrames syncs RX ring 0 and checks the frames against *seq.
func recvFrames(t *testing.T, p *Port, seq *uint64) int {
	return recvOn(t, p, 0, seq)
}

// recvOn syncs the RX rings and checks ring q's frames against *seq.
func recvOn(t *testing.T, p *Port, q int, seq *uint64) int {
	if err := netmap.RxSync(p); err != nil {
		t.Fatal(err)
	}
	if err := checkOwnership(p); err != nil {
		t.Fatalf("after RX sync: %v", err)
	}
	r := p.If().RxRing(q)
	n := 0
	h := r.Head()
	for ; h != r.Tail(); h = r.Next(h) {
		s := r.Slot(h)
		b := p.Region().Buf(s.BufIdx)
		if b[12] != 0x88 || b[13] != 0xb5 {
			continue // the kernel's own traffic (IPv6 neighbour discovery) reaches the socket too
		}
		if v := binary.LittleEndian.Uint64(b[14:]); v != *seq || s.Len != 60 {
			st, _ := p.socks[q].Stats()
			k := p.rx[q]
			t.Fatalf("expected frame %d, got %d (len %d) in slot %d buffer %d; rx hwcur %d hwtail %d; kernel stats %+v", *seq, v, s.Len, h, s.BufIdx, k.HwCur, k.HwTail, st)
		}
		*seq++
		n++
	}
	r.Advance(h)
	return n
}

// Frames go xdp:A -> veth -> xdp:B and back, paced so nothing is dropped,
// every frame checked by sequence number, and the buffer-ownership
// invariant checked after every sync on both ports.
func TestBothWaysOverVeth(t *testing.T) {
	const total = 100000
	pair := testnet.NewPair(t, testnet.PairConfig{Queues: 1})
	a := openIn(t, pair.A, pair.AName, PortConfig{Slots: 512})
	b := openIn(t, pair.B, pair.BName, PortConfig{Slots: 512})
	for _, dir := range []struct {
		name     string
		src, dst *Port
	}{{"A->B", a, b}, {"B->A", b, a}} {
		var sent, got uint64
		deadline := time.Now().Add(60 * time.Second)
		for got < total && time.Now().Before(deadline) {
			// Pace: frames in flight plus frames read but not yet released
			// (up to as many again) must leave FILL buffers to spare for
			// the kernel's own traffic (IPv6 neighbour discovery) on a
			// 512-slot ring: 2 x 192 does.
			if window := 192 - (sent - got); sent < total && window > 0 {
				sent += uint64(sendFrames(t, dir.src, sent, int(min(window, total-sent))))
			}
			recvFrames(t, dir.dst, &got)
		}
		if got != total {
			st, _ := dir.dst.socks[0].Stats()
			t.Fatalf("%s: received %d of %d (sent %d); receiver stats %+v", dir.name, got, total, sent, st)
		}
		if st, _ := dir.dst.socks[0].Stats(); st.Rx_dropped != 0 || st.Rx_fill_ring_empty_descs != 0 || st.Rx_ring_full != 0 {
			t.Errorf("%s: paced traffic was dropped: %+v", dir.name, st)
		}
		// Let the last completions come back, then every TX buffer is home.
		for i := 0; i < 100 && dir.src.tx[0].HwTail != netmap.Prev(dir.src.tx[0].HwCur, dir.src.tx[0].N); i++ {
			netmap.TxSync(dir.src)
			time.Sleep(time.Millisecond)
		}
		if err := checkOwnership(dir.src); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d frames; program %v", dir.name, total, dir.src.att)
	}
}

// A 2-queue veth in native mode: the port binds both queues, and frames
// sent on TX ring q arrive on the peer's RX ring q.
func TestTwoQueues(t *testing.T) {
	const total = 20000
	pair := testnet.NewPair(t, testnet.PairConfig{Queues: 2})
	a := openIn(t, pair.A, pair.AName, PortConfig{Slots: 256})
	b := openIn(t, pair.B, pair.BName, PortConfig{Slots: 256})
	if len(a.TxRings()) != 2 || len(b.RxRings()) != 2 {
		t.Fatalf("bound %d and %d queues, want 2 (a 2-queue veth in native mode)", len(a.TxRings()), len(b.RxRings()))
	}
	var sent, got [2]uint64
	deadline := time.Now().Add(30 * time.Second)
	for (got[0] < total || got[1] < total) && time.Now().Before(deadline) {
		for q := range 2 {
			if window := 96 - (sent[q] - got[q]); sent[q] < total && window > 0 {
				sent[q] += uint64(sendOn(t, a, q, sent[q], int(min(window, total-sent[q]))))
			}
			recvOn(t, b, q, &got[q])
		}
	}
	st, err := b.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if got != [2]uint64{total, total} {
		t.Fatalf("received %v of %d per queue; %+v", got, total, st)
	}
	if len(st.Queues) != 2 || st.Queues[0].RxPackets < total || st.Queues[1].RxPackets < total || !strings.HasPrefix(st.XDP, "native") {
		t.Errorf("stats disagree with the traffic: %+v", st)
	}
}

// Unpaced traffic overruns the receiver: the kernel drops, the drops show
// in the counters, and every frame is either received in order or counted.
func TestOverloadIsCounted(t *testing.T) {
	const total = 50000
	pair := testnet.NewPair(t, testnet.PairConfig{Queues: 1})
	a := openIn(t, pair.A, pair.AName, PortConfig{Slots: 256})
	b := openIn(t, pair.B, pair.BName, PortConfig{Slots: 64})
	var sent, next, got uint64
	for sent < total {
		sent += uint64(sendFrames(t, a, sent, int(total-sent)))
		// Drain rarely, so the receiver falls behind.
		if sent%4096 < 256 {
			got += drainCounting(t, b, &next)
		}
	}
	for i := 0; i < 50; i++ {
		got += drainCounting(t, b, &next)
		time.Sleep(time.Millisecond)
	}
	st, err := b.Stats()
	if err != nil {
		t.Fatal(err)
	}
	q := st.Queues[0]
	if q.RxDropped == 0 {
		t.Fatalf("no drops counted although %d of %d frames were not received: %+v", total-got, total, q)
	}
	// Nothing received may be out of order or repeated (drainCounting
	// checks), and what arrived plus what the socket counts as dropped
	// cannot exceed what was sent, give or take the kernel's own frames
	// (IPv6 neighbour discovery), which the socket counts too.
	const kernelFrames = 16
	if got+q.RxDropped > total+kernelFrames || got == 0 {
		t.Fatalf("received %d plus dropped %d of %d sent", got, q.RxDropped, total)
	}
	if d := b.Drops(false, 0); d != q.RxDropped+q.RxRingFull || d < total-got-kernelFrames {
		t.Fatalf("Drops says %d; XDP_STATISTICS %+v, %d of %d not received", d, q, total-got, total)
	}
	t.Logf("received %d of %d, socket dropped %d (FILL empty %d, ring full %d)", got, total, q.RxDropped, q.RxFillEmpty, q.RxRingFull)
}

// drainCounting receives what b holds, requiring sequence numbers to
// increase (gaps are drops), and returns how many test frames arrived.
func drainCounting(t *testing.T, p *Port, next *uint64) uint64 {
	if err := netmap.RxSync(p); err != nil {
		t.Fatal(err)
	}
	if err := checkOwnership(p); err != nil {
		t.Fatal(err)
	}
	r := p.If().RxRing(0)
	var n uint64
	h := r.Head()
	for ; h != r.Tail(); h = r.Next(h) {
		b := p.Region().Buf(r.Slot(h).BufIdx)
		if b[12] != 0x88 || b[13] != 0xb5 {
			continue
		}
		v := binary.LittleEndian.Uint64(b[14:])
		if v < *next {
			t.Fatalf("frame %d after %d: reordered or repeated", v, *next-1)
		}
		*next = v + 1
		n++
	}
	r.Advance(h)
	return n
}

// xdp:IF-Q binds queue Q only; a queue the device lacks is refused with
// an error naming the interface and queue; an unknown interface is named.
func TestQueueSelection(t *testing.T) {
	pair := testnet.NewPair(t, testnet.PairConfig{Queues: 2})
	var one *Port
	err := pair.A.Do(func() error {
		var err error
		one, err = OpenPort(netmap.Name{Family: netmap.FamilyXDP, Port: pair.AName, Mode: netmap.RegOneNIC, RingID: 1}, PortConfig{Slots: 64})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(one.TxRings()) != 1 || one.socks[0].queue != 1 {
		t.Errorf("xdp:%s-1 bound %d rings on queue %d; want one ring on queue 1", pair.AName, len(one.TxRings()), one.socks[0].queue)
	}
	one.Close()
	for _, c := range []struct {
		name netmap.Name
		want []string
	}{
		{netmap.Name{Family: netmap.FamilyXDP, Port: pair.AName, Mode: netmap.RegOneNIC, RingID: 7}, []string{pair.AName, "queue 7"}},
		{netmap.Name{Family: netmap.FamilyXDP, Port: "nosuch0", Mode: netmap.RegAllNIC}, []string{"no interface nosuch0"}},
		{netmap.Name{Family: netmap.FamilyPipe, Port: "p", PipeRole: netmap.PipeMaster, PipeID: "0"}, []string{"not an xdp: port"}},
	} {
		err := pair.A.Do(func() error {
			p, err := OpenPort(c.name, PortConfig{Slots: 64})
			if err == nil {
				p.Close()
			}
			return err
		})
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("OpenPort(%v) = %v; want an error mentioning %q", c.name, err, w)
			}
		}
	}
}
