package vswitch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/ptbhyve/ptbhyve/netmap"
	"golang.org/x/sys/unix"
)

type mac = [6]byte

var (
	bcast = mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	mcast = mac{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}
)

// macOf is the MAC a test gives the VM behind port name.
func macOf(name string) mac { return mac{0x02, 0, 0, 0, 0x10, name[0]} }

// frame builds an Ethernet frame of n bytes (at least 14): header, then a
// payload whose byte i is seed+i.
func frame(dst, src mac, n int, seed byte) []byte {
	f := make([]byte, n)
	copy(f[0:6], dst[:])
	copy(f[6:12], src[:])
	if n >= 14 {
		binary.BigEndian.PutUint16(f[12:14], 0x88b5)
	}
	for i := 14; i < n; i++ {
		f[i] = seed + byte(i)
	}
	return f
}

// newSwitch opens ports with the given names and configurations (one
// config for all, or one per port).
func newSwitch(t testing.TB, cfgs []PortConfig, names ...string) (*Switch, []*Port) {
	t.Helper()
	sw := New("sw"+strings.ReplaceAll(t.Name(), "/", "_"), Config{})
	ports := make([]*Port, len(names))
	for i, n := range names {
		cfg := cfgs[0]
		if len(cfgs) > 1 {
			cfg = cfgs[i]
		}
		p, err := sw.Open(n, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
		t.Cleanup(func() { p.Close() })
	}
	return sw, ports
}

// queue writes one packet, split into the given fragments, into TX ring
// ring of p at head, and advances head and cur. It reports false when the
// ring has no room.
func queue(p *Port, ring int, frags ...[]byte) bool {
	r := p.If().TxRing(ring)
	if r.Space() < uint32(len(frags)) {
		return false
	}
	h := r.Head()
	for i, f := range frags {
		s := r.Slot(h)
		copy(p.Region().Buf(s.BufIdx), f)
		s.Len = uint16(len(f))
		s.Flags = 0
		if i < len(frags)-1 {
			s.Flags = netmap.NSMoreFrag
		}
		h = r.Next(h)
	}
	r.Advance(h)
	return true
}

// send queues single-slot frames on TX ring 0 of p and syncs.
func send(t testing.TB, p *Port, frames ...[]byte) {
	t.Helper()
	for _, f := range frames {
		if !queue(p, 0, f) {
			t.Fatalf("%s: TX ring full", p.Name())
		}
	}
	if err := netmap.TxSync(p); err != nil {
		t.Fatal(err)
	}
}

type rxPacket struct {
	ring int
	data []byte
	lens []int
}

// recv syncs p's RX rings and takes every packet in them, reassembling
// NS_MOREFRAG chains.
func recv(t testing.TB, p *Port) []rxPacket {
	t.Helper()
	if err := netmap.RxSync(p); err != nil {
		t.Fatal(err)
	}
	var out []rxPacket
	for i := range p.If().NumRx() {
		r := p.If().RxRing(i)
		var cur *rxPacket
		h := r.Head()
		for ; h != r.Tail(); h = r.Next(h) {
			s := r.Slot(h)
			if cur == nil {
				out = append(out, rxPacket{ring: i})
				cur = &out[len(out)-1]
			}
			cur.data = append(cur.data, p.Region().Buf(s.BufIdx)[:s.Len]...)
			cur.lens = append(cur.lens, int(s.Len))
			if s.Flags&netmap.NSMoreFrag == 0 {
				cur = nil
			}
		}
		if cur != nil {
			t.Fatalf("%s RX ring %d ends inside a packet", p.Name(), i)
		}
		r.Advance(h)
	}
	// Release what was taken now, as the next sync would, so that senders
	// see the room at once.
	if err := netmap.RxSync(p); err != nil {
		t.Fatal(err)
	}
	return out
}

func drainAll(t testing.TB, ports ...*Port) {
	t.Helper()
	for _, p := range ports {
		recv(t, p)
	}
}

// announce makes the switch learn the MAC of each named port, with a
// broadcast from it, and drains what the broadcasts delivered.
func announce(t testing.TB, ports []*Port, names ...string) {
	t.Helper()
	for _, n := range names {
		for _, p := range ports {
			if strings.HasSuffix(p.Name(), ":"+n) {
				send(t, p, frame(bcast, macOf(n), 60, 0))
			}
		}
	}
	drainAll(t, ports...)
}

func TestForwarding(t *testing.T) {
	names := []string{"a", "b", "c", "d"}
	tests := []struct {
		name     string
		learn    []string // ports announced first
		from     string
		dst      mac
		want     []string
		flooded  uint64
		filtered uint64
	}{
		{name: "broadcast floods all but the source", from: "a", dst: bcast, want: []string{"b", "c", "d"}, flooded: 1},
		{name: "multicast floods", from: "a", dst: mcast, want: []string{"b", "c", "d"}, flooded: 1},
		{name: "unknown unicast floods", from: "a", dst: macOf("b"), want: []string{"b", "c", "d"}, flooded: 1},
		{name: "unknown unicast floods with others learned", learn: []string{"b", "c"}, from: "a", dst: macOf("d"), want: []string{"b", "c", "d"}, flooded: 1},
		{name: "learned unicast goes only to its port", learn: []string{"b"}, from: "a", dst: macOf("b"), want: []string{"b"}},
		{name: "learned unicast with all learned", learn: names, from: "c", dst: macOf("a"), want: []string{"a"}},
		{name: "unicast to a MAC on the source port is filtered", learn: []string{"a"}, from: "a", dst: macOf("a"), filtered: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ports := newSwitch(t, []PortConfig{{Slots: 64}}, names...)
			announce(t, ports, tc.learn...)
			from := ports[slices.Index(names, tc.from)]
			before := from.Stats()
			f := frame(tc.dst, macOf(tc.from), 100, 7)
			send(t, from, f)
			var got []string
			for i, p := range ports {
				for _, pk := range recv(t, p) {
					if !bytes.Equal(pk.data, f) {
						t.Errorf("%s received %x, want %x", names[i], pk.data, f)
					}
					got = append(got, names[i])
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("received by %v, want %v", got, tc.want)
			}
			st := from.Stats()
			if d := st.Flooded - before.Flooded; d != tc.flooded {
				t.Errorf("flooded %d, want %d", d, tc.flooded)
			}
			if d := st.Filtered - before.Filtered; d != tc.filtered {
				t.Errorf("filtered %d, want %d", d, tc.filtered)
			}
			if d := st.TxPackets - before.TxPackets; d != 1 {
				t.Errorf("TxPackets grew by %d, want 1", d)
			}
		})
	}
}

func TestLearningAndClose(t *testing.T) {
	sw, ports := newSwitch(t, []PortConfig{{Slots: 64}}, "a", "b", "c")
	a, b, c := ports[0], ports[1], ports[2]
	announce(t, ports, "a", "b")
	x := macOf("x")
	send(t, a, frame(bcast, x, 60, 0))
	drainAll(t, ports...)
	if port, ok := sw.Lookup(net.HardwareAddr(x[:])); !ok || port != "a" {
		t.Fatalf("Lookup(x) = %q, %v; want a", port, ok)
	}
	if n := a.Stats().LearnedMACs; n != 2 {
		t.Fatalf("a has %d learned MACs, want 2", n)
	}
	// The MAC moves to c: last writer wins.
	send(t, c, frame(bcast, x, 60, 0))
	drainAll(t, ports...)
	if port, _ := sw.Lookup(net.HardwareAddr(x[:])); port != "c" {
		t.Fatalf("after the move Lookup(x) = %q, want c", port)
	}
	send(t, b, frame(x, macOf("b"), 60, 0))
	if n := len(recv(t, c)); n != 1 {
		t.Fatalf("c received %d frames for the moved MAC, want 1", n)
	}
	if n := len(recv(t, a)); n != 0 {
		t.Fatalf("a received %d frames for a MAC that moved away", n)
	}
	// A group source address is never learned.
	send(t, b, frame(bcast, mcast, 60, 0))
	drainAll(t, ports...)
	if _, ok := sw.Lookup(net.HardwareAddr(mcast[:])); ok {
		t.Fatal("a multicast source MAC was learned")
	}

	// Close forgets the port's MACs; the name and index are reusable.
	memID := a.MemID()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); !errors.Is(err, netmap.ErrClosed) {
		t.Fatalf("second Close = %v, want ErrClosed", err)
	}
	if err := a.TxSync(0, 0); !errors.Is(err, netmap.ErrClosed) {
		t.Fatalf("TxSync after Close = %v, want ErrClosed", err)
	}
	ma := macOf("a")
	if _, ok := sw.Lookup(net.HardwareAddr(ma[:])); ok {
		t.Fatal("the closed port's MAC is still learned")
	}
	a2, err := sw.Open("a", PortConfig{Slots: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	if a2.MemID() == memID || a2.MemID() == b.MemID() {
		t.Fatalf("reopened port has MemID %#x; a had %#x, b has %#x", a2.MemID(), memID, b.MemID())
	}
	// Unknown again: b's frame to a floods, and reaches the new a.
	send(t, b, frame(macOf("a"), macOf("b"), 60, 0))
	if n := len(recv(t, a2)); n != 1 {
		t.Fatalf("reopened a received %d, want 1", n)
	}
	if n := len(recv(t, c)); n != 1 {
		t.Fatalf("c received %d of a flood, want 1", n)
	}
}

func TestCopySemantics(t *testing.T) {
	_, ports := newSwitch(t, []PortConfig{{Slots: 64}}, "a", "b")
	a, b := ports[0], ports[1]
	if a.MemID() == b.MemID() || &a.Region().Mem()[0] == &b.Region().Mem()[0] {
		t.Fatal("ports share a region")
	}
	if a.MemFd() == b.MemFd() || a.MemFd() < 0 {
		t.Fatalf("MemFd a=%d b=%d", a.MemFd(), b.MemFd())
	}
	announce(t, ports, "b")
	want := frame(macOf("b"), macOf("a"), 200, 3)
	tr := a.If().TxRing(0)
	ts := tr.Slot(tr.Head())
	send(t, a, want)
	src := a.Region().Buf(ts.BufIdx)[:len(want)]

	if err := netmap.RxSync(b); err != nil {
		t.Fatal(err)
	}
	rr := b.If().RxRing(0)
	if rr.Space() != 1 {
		t.Fatalf("b has %d frames, want 1", rr.Space())
	}
	rs := rr.Slot(rr.Head())
	dst := b.Region().Buf(rs.BufIdx)[:rs.Len]
	if unsafe.SliceData(src) == unsafe.SliceData(dst) {
		t.Fatal("source and destination are the same buffer")
	}
	bm := b.Region().Mem()
	lo, hi := uintptr(unsafe.Pointer(&bm[0])), uintptr(unsafe.Pointer(&bm[len(bm)-1]))
	if p := uintptr(unsafe.Pointer(&dst[0])); p < lo || p > hi {
		t.Fatal("the destination buffer is outside the receiver's region")
	}
	if !bytes.Equal(dst, want) || !bytes.Equal(src, want) {
		t.Fatalf("destination %x, want %x", dst, want)
	}
	for i := range src {
		src[i] = 0xee
	}
	if !bytes.Equal(dst, want) {
		t.Fatal("changing the source after the sync changed the destination")
	}
	// The TX slot came back at once.
	if sp := tr.Space(); sp != 63 {
		t.Fatalf("TX space after the sync = %d, want 63", sp)
	}
	st := b.Stats()
	if st.RxPackets != 1 || st.RxBytes != 200 {
		t.Fatalf("b stats %+v", st)
	}
}

func TestMultiFragment(t *testing.T) {
	tests := []struct {
		name           string
		srcBuf, dstBuf uint32
		frags          []int
		wantLens       []int
		wantDropAtDest bool
	}{
		{name: "two small fragments fit one slot", srcBuf: 2048, dstBuf: 2048, frags: []int{14, 100}, wantLens: []int{114}},
		{name: "full fragments keep their shape", srcBuf: 2048, dstBuf: 2048, frags: []int{2048, 2048, 10}, wantLens: []int{2048, 2048, 10}},
		{name: "partial fragments are packed", srcBuf: 2048, dstBuf: 2048, frags: []int{1000, 1000, 1000}, wantLens: []int{2048, 952}},
		{name: "smaller destination buffers", srcBuf: 2048, dstBuf: 512, frags: []int{1500}, wantLens: []int{512, 512, 476}},
		{name: "zero-length middle fragment", srcBuf: 2048, dstBuf: 2048, frags: []int{60, 0, 40}, wantLens: []int{100}},
		{name: "64 fragments", srcBuf: 64, dstBuf: 2048, frags: slices.Repeat([]int{64}, 64), wantLens: []int{2048, 2048}},
		{name: "more than 64 destination slots is dropped", srcBuf: 2048, dstBuf: 64, frags: []int{2048, 2048, 100}, wantDropAtDest: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ports := newSwitch(t, []PortConfig{{Slots: 256, BufSize: tc.srcBuf}, {Slots: 256, BufSize: tc.dstBuf}}, "a", "b")
			a, b := ports[0], ports[1]
			announce(t, ports, "b")
			total := 0
			for _, n := range tc.frags {
				total += n
			}
			whole := frame(macOf("b"), macOf("a"), total, 5)
			var frags [][]byte
			off := 0
			for _, n := range tc.frags {
				frags = append(frags, whole[off:off+n])
				off += n
			}
			// A single-slot frame after the chain checks ordering.
			tail := frame(macOf("b"), macOf("a"), 60, 9)
			if !queue(a, 0, frags...) || !queue(a, 0, tail) {
				t.Fatal("TX ring full")
			}
			if err := netmap.TxSync(a); err != nil {
				t.Fatal(err)
			}
			if r := a.TxRings()[0].Resets; r != 0 {
				t.Fatalf("TX ring reset %d times", r)
			}
			got := recv(t, b)
			if tc.wantDropAtDest {
				if len(got) != 1 || b.Stats().RxDropped != 1 || a.Stats().TxDropped != 1 {
					t.Fatalf("got %d packets, stats b %+v a %+v; want the big one dropped", len(got), b.Stats(), a.Stats())
				}
				return
			}
			if len(got) != 2 {
				t.Fatalf("received %d packets, want 2", len(got))
			}
			if !bytes.Equal(got[0].data, whole) {
				t.Errorf("reassembled packet differs (len %d, want %d)", len(got[0].data), len(whole))
			}
			if !slices.Equal(got[0].lens, tc.wantLens) {
				t.Errorf("slot lengths %v, want %v", got[0].lens, tc.wantLens)
			}
			if !bytes.Equal(got[1].data, tail) || len(got[1].lens) != 1 {
				t.Errorf("the frame after the chain arrived as %v", got[1].lens)
			}
			if st := b.Stats(); st.RxBytes != uint64(total+60) || st.RxPackets != 2 {
				t.Errorf("b stats %+v", st)
			}
		})
	}
}

// A packet whose last fragment is not queued yet waits; an unfinished chain
// that holds the whole ring can never finish and is a protocol error.
func TestUnfinishedChain(t *testing.T) {
	_, ports := newSwitch(t, []PortConfig{{Slots: 8}}, "a", "b")
	a, b := ports[0], ports[1]
	announce(t, ports, "b")
	whole := frame(macOf("b"), macOf("a"), 300, 1)
	r := a.If().TxRing(0)
	k := a.TxRings()[0]
	// Two of three fragments, the second saying more follow.
	queue(a, 0, whole[:100], whole[100:200], nil)
	r.Advance(netmap.Prev(r.Head(), r.NumSlots())) // un-queue the last
	send(t, a)
	if n := len(recv(t, b)); n != 0 {
		t.Fatalf("received %d packets from an unfinished chain", n)
	}
	if k.HwCur != netmap.Prev(netmap.Prev(r.Head(), 8), 8) || k.Resets != 0 {
		t.Fatalf("hwcur %d head %d resets %d: the chain should wait", k.HwCur, r.Head(), k.Resets)
	}
	// Finish it.
	s := r.Slot(r.Head())
	copy(a.Region().Buf(s.BufIdx), whole[200:])
	s.Len, s.Flags = 100, 0
	r.Advance(r.Next(r.Head()))
	send(t, a)
	got := recv(t, b)
	if len(got) != 1 || !bytes.Equal(got[0].data, whole) {
		t.Fatalf("after finishing the chain got %d packets", len(got))
	}
	// Seven MOREFRAG slots fill the 8-slot ring: reset.
	var frags [][]byte
	for range 7 {
		frags = append(frags, whole[:20])
	}
	queue(a, 0, frags...)
	r.Slot(netmap.Prev(r.Head(), 8)).Flags = netmap.NSMoreFrag
	send(t, a)
	if k.Resets != 1 || a.Stats().BadSlots != 1 {
		t.Fatalf("resets %d bad %d after a chain that fills the ring", k.Resets, a.Stats().BadSlots)
	}
}

func TestBadSlots(t *testing.T) {
	const slots, bufSize = 128, 2048
	type slotSpec struct {
		buf   uint32 // 0: keep the slot's own buffer
		len   int
		more  bool
		frame bool // write a frame header into the buffer
	}
	tests := []struct {
		name    string
		bad     []slotSpec
		noAfter bool // queue nothing after the bad slots
	}{
		{name: "reserved buffer", bad: []slotSpec{{buf: 1, len: 60}}},
		{name: "buffer past the pool", bad: []slotSpec{{buf: 1 << 30, len: 60}}},
		{name: "length past the buffer", bad: []slotSpec{{len: bufSize + 1, frame: true}}},
		{name: "runt", bad: []slotSpec{{len: 13, frame: true}}},
		{name: "bad buffer in a later fragment", bad: []slotSpec{{len: 60, more: true, frame: true}, {buf: 1, len: 60}}},
		{name: "65 fragments", bad: append(slices.Repeat([]slotSpec{{len: 60, more: true, frame: true}}, 64), slotSpec{len: 60, frame: true})},
		{name: "64th fragment says more follow", bad: slices.Repeat([]slotSpec{{len: 60, more: true, frame: true}}, 64), noAfter: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ports := newSwitch(t, []PortConfig{{Slots: slots, BufSize: bufSize}}, "a", "b")
			a, b := ports[0], ports[1]
			announce(t, ports, "b")
			good1 := frame(macOf("b"), macOf("a"), 60, 1)
			good2 := frame(macOf("b"), macOf("a"), 70, 2)
			after := frame(macOf("b"), macOf("a"), 80, 3)
			queue(a, 0, good1)
			queue(a, 0, good2)
			r := a.If().TxRing(0)
			h := r.Head()
			badAt := h
			for _, sp := range tc.bad {
				s := r.Slot(h)
				if sp.frame {
					copy(a.Region().Buf(s.BufIdx), after)
				}
				if sp.buf != 0 {
					s.BufIdx = sp.buf
				}
				s.Len = uint16(sp.len)
				s.Flags = 0
				if sp.more {
					s.Flags = netmap.NSMoreFrag
				}
				h = r.Next(h)
			}
			r.Advance(h)
			if !tc.noAfter {
				queue(a, 0, after)
			}

			// The backend forwards the good packets and stops at the bad one...
			k := a.TxRings()[0]
			if !k.Prologue(r.Head(), r.Cur()) {
				t.Fatal("prologue refused good indexes")
			}
			if err := a.TxSync(0, 0); !errors.Is(err, netmap.ErrBadSlot) {
				t.Fatalf("TxSync = %v, want ErrBadSlot", err)
			}
			if k.HwCur != badAt {
				t.Fatalf("hwcur %d, want %d (just past the good packets)", k.HwCur, badAt)
			}
			// ...and netmap.TxSync, meeting the bad packet again, resets
			// the ring: the application gets it back from the bad slot.
			if err := netmap.TxSync(a); err != nil {
				t.Fatal(err)
			}
			if k.Resets != 1 {
				t.Fatalf("Resets = %d, want 1", k.Resets)
			}
			if r.Head() != badAt || r.Tail() != netmap.Prev(badAt, slots) {
				t.Fatalf("after the reset head %d tail %d; want %d, %d", r.Head(), r.Tail(), badAt, netmap.Prev(badAt, slots))
			}
			// Reinit sanitised the slots it could: bad buffers point at
			// buffer 0, lengths past the buffer are 0.
			for j, sp := range tc.bad {
				s := r.Slot(netmap.Add(badAt, uint32(j), slots))
				if sp.buf != 0 && (s.BufIdx != 0 || s.Len != 0) || sp.len > bufSize && s.Len != 0 {
					t.Fatalf("bad slot %d not sanitised: buf %d len %d", j, s.BufIdx, s.Len)
				}
			}
			got := recv(t, b)
			if len(got) != 2 || !bytes.Equal(got[0].data, good1) || !bytes.Equal(got[1].data, good2) {
				t.Fatalf("b received %d packets; want the 2 good ones before the bad one", len(got))
			}
			if st := a.Stats(); st.BadSlots != 2 || st.TxPackets != 2 {
				t.Fatalf("a stats %+v; want 2 bad syncs and 2 packets", st)
			}
		})
	}
}

func TestFullDestinationDrops(t *testing.T) {
	_, ports := newSwitch(t, []PortConfig{{Slots: 64}, {Slots: 16}, {Slots: 64}}, "a", "b", "c")
	a, b, c := ports[0], ports[1], ports[2]
	announce(t, ports, "b", "c") // b receives c's announcement
	seqFrame := func(dst mac, seq int) []byte {
		f := frame(dst, macOf("a"), 60, 0)
		binary.LittleEndian.PutUint32(f[14:], uint32(seq))
		return f
	}
	for batch := range 4 {
		var fs [][]byte
		for i := range 10 {
			fs = append(fs, seqFrame(macOf("b"), batch*10+i))
		}
		send(t, a, fs...)
		if sp := a.If().TxRing(0).Space(); sp != 63 {
			t.Fatalf("sender's TX space %d after batch %d; want 63: a slow receiver must not block it", sp, batch)
		}
	}
	// b's ring holds 15; a broadcast now reaches c but not b.
	send(t, a, frame(bcast, macOf("a"), 60, 0))
	if sb, sa := b.Stats(), a.Stats(); sb.RxPackets != 1+15 || sb.RxDropped != 26 || sa.TxDropped != 26 {
		t.Fatalf("b rx %d dropped %d, a tx dropped %d; want 15, 26, 26", sb.RxPackets, sb.RxDropped, sa.TxDropped)
	}
	// The drops reach per-ring statistics on ring 0 (netmap.DropCounter).
	if b.Drops(false, 0) != 26 || a.Drops(true, 0) != 26 || b.Drops(false, 1) != 0 {
		t.Fatalf("Drops: b rx %d, a tx %d, b rx ring 1 %d; want 26, 26, 0", b.Drops(false, 0), a.Drops(true, 0), b.Drops(false, 1))
	}
	if n := len(recv(t, c)); n != 1 {
		t.Fatalf("c received %d of the broadcast", n)
	}
	got := recv(t, b)
	if len(got) != 15 {
		t.Fatalf("b received %d, want 15", len(got))
	}
	for i, pk := range got {
		if s := binary.LittleEndian.Uint32(pk.data[14:]); s != uint32(i) {
			t.Fatalf("frame %d carries %d: the ring should hold the first 15 in order", i, s)
		}
	}
	// With room again, frames flow.
	send(t, a, seqFrame(macOf("b"), 100), seqFrame(macOf("b"), 101))
	if got := recv(t, b); len(got) != 2 || binary.LittleEndian.Uint32(got[1].data[14:]) != 101 {
		t.Fatalf("after draining, b received %d", len(got))
	}
}

func TestRingMapping(t *testing.T) {
	_, ports := newSwitch(t, []PortConfig{{Rings: 2, Slots: 32}, {Rings: 1, Slots: 32}, {Rings: 3, Slots: 32}}, "a", "b", "c")
	a, b, c := ports[0], ports[1], ports[2]
	check := func(p *Port, wantRing int) {
		t.Helper()
		got := recv(t, p)
		if len(got) != 1 || got[0].ring != wantRing {
			t.Fatalf("%s: got %d packets (ring %v), want 1 on ring %d", p.Name(), len(got), got, wantRing)
		}
	}
	queue(a, 1, frame(bcast, macOf("a"), 60, 0))
	if err := netmap.TxSync(a); err != nil {
		t.Fatal(err)
	}
	check(b, 0)
	check(c, 1)
	queue(c, 2, frame(bcast, macOf("c"), 60, 0))
	if err := netmap.TxSync(c); err != nil {
		t.Fatal(err)
	}
	check(a, 0)
	check(b, 0)
}

func TestWaker(t *testing.T) {
	_, ports := newSwitch(t, []PortConfig{{Slots: 32}}, "a", "b")
	a, b := ports[0], ports[1]
	w := b.Waker()
	readable := func(ms int) bool {
		fds := []unix.PollFd{{Fd: int32(w.Fd()), Events: w.Events()}}
		n, err := unix.Poll(fds, ms)
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	// Not armed: a busy port pays no signal.
	send(t, a, frame(bcast, macOf("a"), 60, 0))
	if readable(0) {
		t.Fatal("an unarmed waker was signalled")
	}
	if w.Arm() {
		t.Fatal("Arm with a packet pending returned true")
	}
	w.Disarm()
	recv(t, b)
	if !w.Arm() {
		t.Fatal("Arm on an idle port returned false")
	}
	send(t, a, frame(bcast, macOf("a"), 60, 0))
	if !readable(1000) {
		t.Fatal("an armed waker was not signalled")
	}
	w.Disarm()
	if readable(0) {
		t.Fatal("Disarm did not drain the event")
	}
}

func TestOpenErrors(t *testing.T) {
	sw := New("swerr", Config{})
	p, err := sw.Open("vm1", PortConfig{Slots: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Name() != "swerr:vm1" {
		t.Fatalf("Name = %q", p.Name())
	}
	tests := []struct {
		port string
		cfg  PortConfig
		want string
	}{
		{"", PortConfig{}, "empty port name"},
		{"vm1", PortConfig{}, "already open"},
		{"vm2", PortConfig{Rings: MaxRings + 1}, "rings"},
		{"vm2", PortConfig{Slots: MaxSlots + 1}, "slots"},
		{"vm2", PortConfig{Slots: 1}, "slots"},
		{"vm2", PortConfig{BufSize: 32}, "buffer size"},
	}
	for _, tc := range tests {
		_, err := sw.Open(tc.port, tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "swerr") ||
			!strings.Contains(err.Error(), tc.port) {
			t.Errorf("Open(%q, %+v) = %v; want an error naming the switch, the port and %q", tc.port, tc.cfg, err, tc.want)
		}
	}
}

func TestMaxPorts(t *testing.T) {
	sw := New("swmax", Config{})
	cfg := PortConfig{Slots: 2, BufSize: 64}
	var ports []*Port
	defer func() {
		for _, p := range ports {
			p.Close()
		}
	}()
	for i := range MaxPorts {
		p, err := sw.Open(fmt.Sprint("p", i), cfg)
		if err != nil {
			t.Fatalf("port %d: %v", i, err)
		}
		ports = append(ports, p)
	}
	_, err := sw.Open("extra", cfg)
	if err == nil || !strings.Contains(err.Error(), "full") || !strings.Contains(err.Error(), "extra") {
		t.Fatalf("port %d: %v; want a full-switch error", MaxPorts+1, err)
	}
	ports[100].Close()
	p, err := sw.Open("extra", cfg)
	if err != nil {
		t.Fatalf("reopen after a close: %v", err)
	}
	ports[100] = p
	if p.idx != 100 {
		t.Fatalf("the freed index was not reused: %d", p.idx)
	}
}

// Three ports, each with a sender and a receiver goroutine, stream unicast
// frames to the two others with per-pair sequence numbers. Every frame is
// accounted for: received in order, or counted as a drop.
func TestConcurrentStress(t *testing.T) {
	tests := []struct {
		name   string
		batch  int    // frames a sender queues per sync at most
		slots  uint32 // TX and RX ring size
		window int64  // frames a sender lets a receiver lag behind; 0: no limit
		frames int    // per sender
	}{
		{name: "receivers keep up", batch: 256, slots: 4096, window: 1024, frames: 60000},
		{name: "receivers overrun", batch: 256, slots: 64, frames: 60000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			names := []string{"a", "b", "c"}
			_, ports := newSwitch(t, []PortConfig{{Slots: tc.slots}}, names...)
			announce(t, ports, names...)
			const np = 3
			var sent, got [np][np]atomic.Int64
			var sendersDone atomic.Int32
			// A lost frame would stall a sender on its window forever.
			deadline := time.Now().Add(2 * time.Minute)
			var wg sync.WaitGroup
			errc := make(chan error, 2*np)
			var failed atomic.Bool
			fail := func(err error) {
				failed.Store(true)
				errc <- err
			}
			for si := range np {
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer sendersDone.Add(1)
					p := ports[si]
					r := p.If().TxRing(0)
					var seq [np]uint64
					total := 0
					turn := 0
					for total < tc.frames && !failed.Load() {
						queued, skipped := 0, 0
						for queued < tc.batch && total < tc.frames && r.Space() > 0 && skipped < 2 {
							di := (si + 1 + turn%2) % np
							turn++
							if tc.window > 0 && sent[si][di].Load()-got[si][di].Load() >= tc.window {
								skipped++
								continue
							}
							skipped = 0
							s := r.Slot(r.Head())
							b := p.Region().Buf(s.BufIdx)
							m := macOf(names[di])
							copy(b[0:6], m[:])
							sm := macOf(names[si])
							copy(b[6:12], sm[:])
							b[14], b[15] = byte(si), byte(di)
							binary.LittleEndian.PutUint64(b[16:], seq[di])
							seq[di]++
							s.Len, s.Flags = 60, 0
							r.Advance(r.Next(r.Head()))
							sent[si][di].Add(1)
							queued++
							total++
						}
						if err := netmap.TxSync(p); err != nil {
							fail(err)
							return
						}
						if queued == 0 {
							if time.Now().After(deadline) {
								fail(fmt.Errorf("%s: stalled after %d of %d frames: frames were lost", names[si], total, tc.frames))
								return
							}
							runtime.Gosched()
						}
					}
				}()
			}
			for di := range np {
				wg.Add(1)
				go func() {
					defer wg.Done()
					p := ports[di]
					r := p.If().RxRing(0)
					w := p.Waker()
					var next [np]uint64
					fds := []unix.PollFd{{Fd: int32(w.Fd()), Events: w.Events()}}
					for {
						done := sendersDone.Load() == np
						if err := netmap.RxSync(p); err != nil {
							fail(err)
							return
						}
						n := 0
						h := r.Head()
						for ; h != r.Tail(); h = r.Next(h) {
							b := p.Region().Buf(r.Slot(h).BufIdx)
							si, d := int(b[14]), int(b[15])
							seq := binary.LittleEndian.Uint64(b[16:])
							if d != di || si >= np || si == di {
								fail(fmt.Errorf("%s got a frame %d->%d", names[di], si, d))
								return
							}
							if seq < next[si] || (tc.window > 0 && seq != next[si]) {
								fail(fmt.Errorf("%s: frame %d from %s, expected %d", names[di], seq, names[si], next[si]))
								return
							}
							next[si] = seq + 1
							got[si][di].Add(1)
							n++
						}
						r.Advance(h)
						if n > 0 {
							continue
						}
						if done || failed.Load() {
							return
						}
						if w.Arm() {
							unix.Poll(fds, 5)
						}
						w.Disarm()
					}
				}()
			}
			// Read stats concurrently, as a monitor would.
			stop := make(chan struct{})
			var mon sync.WaitGroup
			mon.Add(1)
			go func() {
				defer mon.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					for _, p := range ports {
						_ = p.Stats()
					}
					time.Sleep(time.Millisecond)
				}
			}()
			wg.Wait()
			close(stop)
			mon.Wait()
			close(errc)
			for err := range errc {
				t.Fatal(err)
			}
			var totalSent, totalGot, totalDrop uint64
			for di, q := range ports {
				var in, recvd int64
				for si := range np {
					in += sent[si][di].Load()
					recvd += got[si][di].Load()
				}
				st := q.Stats()
				// The announcement broadcasts arrived before the stream.
				if uint64(recvd)+st.RxDropped != uint64(in) || st.RxPackets != uint64(recvd)+np-1 {
					t.Errorf("%s: sent to it %d, received %d, dropped %d, RxPackets %d", names[di], in, recvd, st.RxDropped, st.RxPackets)
				}
				totalSent += uint64(in)
				totalGot += uint64(recvd)
				totalDrop += st.RxDropped
			}
			var txDrop uint64
			for _, p := range ports {
				st := p.Stats()
				txDrop += st.TxDropped
				if st.Flooded != 1 || st.TxPackets != uint64(tc.frames)+1 {
					t.Errorf("%s: flooded %d, tx %d; want 1, %d", p.Name(), st.Flooded, st.TxPackets, tc.frames+1)
				}
			}
			if txDrop != totalDrop {
				t.Errorf("senders counted %d drops, receivers %d", txDrop, totalDrop)
			}
			if tc.window > 0 && totalDrop != 0 {
				t.Errorf("%d drops with receivers keeping up", totalDrop)
			}
			t.Logf("sent %d, received %d, dropped %d", totalSent, totalGot, totalDrop)
		})
	}
}

// A port opens and closes over and over while two others stream frames
// that flood to it or are addressed to it: Close must wait for any batch
// copying into the port before its region goes away, and forget its MAC.
func TestOpenCloseUnderTraffic(t *testing.T) {
	sw, ports := newSwitch(t, []PortConfig{{Slots: 256}}, "a", "b")
	a, b := ports[0], ports[1]
	var stop atomic.Bool
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		bf := frame(bcast, macOf("a"), 60, 0)
		uf := frame(macOf("c"), macOf("a"), 60, 0)
		for i := 0; !stop.Load(); i++ {
			for j := range 32 {
				f := bf
				if (i+j)%2 == 1 {
					f = uf
				}
				if !queue(a, 0, f) {
					break
				}
			}
			if err := netmap.TxSync(a); err != nil {
				errc <- err
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if err := netmap.RxSync(b); err != nil {
				errc <- err
				return
			}
			drain(b)
		}
	}()
	for i := range 100 {
		c, err := sw.Open("c", PortConfig{Slots: 64})
		if err != nil {
			t.Fatal(err)
		}
		send(t, c, frame(bcast, macOf("c"), 60, 0)) // learn c
		recv(t, c)
		if i%2 == 0 {
			time.Sleep(100 * time.Microsecond)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		mc := macOf("c")
		if _, ok := sw.Lookup(net.HardwareAddr(mc[:])); ok {
			t.Fatal("a closed port's MAC is still learned")
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if st := b.Stats(); st.RxPackets == 0 {
		t.Fatal("no traffic flowed during the churn")
	}
}
