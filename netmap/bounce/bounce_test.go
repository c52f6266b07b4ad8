package bounce

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/netmap/pipe"
)

// openPipe opens both ends of a fresh pipe; the caller closes a (through
// the bounce port that owns it, usually), the cleanup closes b.
func openPipe(t testing.TB, cfg pipe.Config) (a, b *pipe.Endpoint) {
	t.Helper()
	key := fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())
	a, err := pipe.Open(key, true, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err = pipe.Open(key, false, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

// newBounce puts a bounce port in front of pipe end a; the cleanup closes
// both.
func newBounce(t testing.TB, pcfg pipe.Config, cfg Config) (*Port, *pipe.Endpoint) {
	t.Helper()
	a, b := openPipe(t, pcfg)
	p, err := New(a, cfg)
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, b
}

// pattern is the payload frames carry: frame seq is pattern[seq%251:] cut
// to its length, with seq in its first 8 bytes.
var pattern = func() []byte {
	b := make([]byte, 251+65536)
	for i := range b {
		b[i] = byte(i*31 + 7)
	}
	return b
}()

// frameLen gives frame seq a length in [60, max], covering both ends.
func frameLen(seq uint64, max uint32) uint32 { return 60 + uint32(seq%uint64(max-59)) }

func fill(buf []byte, seq uint64) {
	copy(buf, pattern[seq%251:])
	binary.LittleEndian.PutUint64(buf, seq)
}

// sender is an application filling TX ring 0 of a port.
type sender struct {
	p      netmap.Port
	seq    uint64
	maxLen uint32
}

// send queues frames up to end as the ring has room and syncs; it returns
// how many it queued.
func (s *sender) send(end uint64) (int, error) {
	r := s.p.If().TxRing(0)
	reg := s.p.Region()
	n := 0
	h := r.Head()
	for ; s.seq < end && h != r.Tail(); h = r.Next(h) {
		sl := r.Slot(h)
		l := frameLen(s.seq, s.maxLen)
		fill(reg.Buf(sl.BufIdx)[:l], s.seq)
		sl.Len, sl.Flags = uint16(l), 0
		s.seq++
		n++
	}
	r.Advance(h)
	return n, netmap.TxSync(s.p)
}

// receiver is an application draining RX ring 0 of a port, reassembling
// NS_MOREFRAG chains and checking every frame's length, payload and order.
type receiver struct {
	p      netmap.Port
	seq    uint64
	maxLen uint32
	acc    []byte
	frags  uint64 // slots that carried NS_MOREFRAG
}

func (rc *receiver) recv() (int, error) {
	if err := netmap.RxSync(rc.p); err != nil {
		return 0, err
	}
	r := rc.p.If().RxRing(0)
	reg := rc.p.Region()
	n := 0
	h := r.Head()
	for ; h != r.Tail(); h = r.Next(h) {
		sl := r.Slot(h)
		rc.acc = append(rc.acc, reg.Buf(sl.BufIdx)[:sl.Len]...)
		if sl.Flags&netmap.NSMoreFrag != 0 {
			rc.frags++
			continue
		}
		if err := rc.check(); err != nil {
			r.Advance(h)
			return n, err
		}
		rc.acc = rc.acc[:0]
		rc.seq++
		n++
	}
	r.Advance(h)
	return n, nil
}

func (rc *receiver) check() error {
	l := frameLen(rc.seq, rc.maxLen)
	a := rc.acc
	if uint32(len(a)) != l {
		return fmt.Errorf("frame %d: %d bytes, want %d", rc.seq, len(a), l)
	}
	if got := binary.LittleEndian.Uint64(a); got != rc.seq {
		return fmt.Errorf("frame %d: carries sequence %d", rc.seq, got)
	}
	off := rc.seq % 251
	if !bytes.Equal(a[8:], pattern[off+8:off+uint64(l)]) {
		return fmt.Errorf("frame %d: payload differs", rc.seq)
	}
	return nil
}

// stream runs total frames each way at once between the application of p
// and that of b, on four goroutines (TX and RX of the same port run
// concurrently), and checks that all arrive, intact and in order.
func stream(t *testing.T, p *Port, b netmap.Port, total uint64, pLen, bLen uint32) (toB, toP *receiver) {
	t.Helper()
	toB = &receiver{p: b, maxLen: pLen}
	toP = &receiver{p: p, maxLen: bLen}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	deadline := time.Now().Add(60 * time.Second)
	for _, s := range []*sender{{p: p, maxLen: pLen}, {p: b, maxLen: bLen}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Until every frame is queued and the port has taken them
			// all: frames a full inner ring left queued need more syncs.
			for (s.seq < total || s.p.If().TxRing(0).TxPending()) && time.Now().Before(deadline) {
				n, err := s.send(total)
				if err != nil {
					errs <- fmt.Errorf("%s send: %w", s.p.Name(), err)
					return
				}
				if n == 0 {
					runtime.Gosched()
				}
			}
		}()
	}
	for _, rc := range []*receiver{toB, toP} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rc.seq < total && time.Now().Before(deadline) {
				n, err := rc.recv()
				if err != nil {
					errs <- fmt.Errorf("%s receive: %w", rc.p.Name(), err)
					return
				}
				if n == 0 {
					runtime.Gosched()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if toB.seq != total || toP.seq != total {
		t.Fatalf("received %d frames on %s and %d on %s, want %d each", toB.seq, b.Name(), toP.seq, p.Name(), total)
	}
	return toB, toP
}

// 100,000 frames each way, of every length from 60 bytes to a full buffer,
// cross a bounce port and the pipe behind it, none lost, none reordered,
// none altered: for ring sizes equal and unequal to the inner port's, and
// for buffers larger than the inner port's (frames split into NS_MOREFRAG
// chains on the way out).
func TestPipeBothWays(t *testing.T) {
	const total = 100000
	for _, c := range []struct {
		name  string
		pipe  pipe.Config
		cfg   Config
		split bool
	}{
		{"same sizes", pipe.Config{Slots: 256}, Config{}, false},
		{"bounce rings larger", pipe.Config{Slots: 64}, Config{Slots: 1024}, false},
		{"bounce rings smaller", pipe.Config{Slots: 512}, Config{Slots: 32}, false},
		{"larger buffers split", pipe.Config{Slots: 128, BufSize: 512}, Config{Slots: 64, BufSize: 2048}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, b := newBounce(t, c.pipe, c.cfg)
			bs, ibs := p.Region().BufSize(), b.Region().BufSize()
			toB, _ := stream(t, p, b, total, bs, ibs)
			if c.split != (toB.frags != 0) {
				t.Errorf("%d fragments arrived; split = %v", toB.frags, c.split)
			}
			st := p.Stats()
			var want uint64
			for seq := range uint64(total) {
				want += uint64(frameLen(seq, bs))
			}
			if st.TxPackets != total || st.RxPackets != total || st.TxBytes != want || st.BadSlots+st.InnerBad != 0 {
				t.Errorf("stats %+v; want %d packets each way, %d TX bytes, nothing bad", st, total, want)
			}
		})
	}
}

// syncRing is what a sync loop does for one ring: the prologue with the
// application's head and cur, then the port's sync; it returns the sync's
// error and leaves a ring whose prologue failed reinitialised.
func syncRing(p netmap.Port, k *netmap.KRing, i int) error {
	if !k.Prologue(k.Ring.Head(), k.Ring.Cur()) {
		k.Reinit()
		return errors.New("prologue refused the application's indexes")
	}
	var err error
	if k.Tx {
		err = p.TxSync(i, 0)
	} else {
		err = p.RxSync(i, 0)
	}
	k.Finalize()
	return err
}

// A receiver that does not drain holds up the sender: the bounce port takes
// what the inner ring has room for, keeps the rest queued in its own ring
// (HwCur does not pass it, no frame is dropped), and moves it on as soon
// as the receiver releases slots.
func TestFlowControl(t *testing.T) {
	p, b := newBounce(t, pipe.Config{Slots: 64}, Config{Slots: 128})
	bs := p.Region().BufSize()
	s := &sender{p: p, maxLen: bs}
	rc := &receiver{p: b, maxLen: bs}
	// The bounce ring offers 127 slots; the pipe takes 63 of them (its
	// peer's RX ring holds them), and completing those frees 63 more.
	if n, err := s.send(1000); n != 127 || err != nil {
		t.Fatalf("first send queued %d (%v), want 127", n, err)
	}
	k := p.TxRings()[0]
	if k.HwCur != 63 || k.RHead != 127 || k.HwTail != 62 {
		t.Fatalf("after the first sync hwcur %d head %d hwtail %d; want 63, 127, 62", k.HwCur, k.RHead, k.HwTail)
	}
	if n, err := s.send(1000); n != 63 || err != nil {
		t.Fatalf("second send queued %d (%v), want 63", n, err)
	}
	for range 3 { // the inner ring stays full: nothing moves
		if n, err := s.send(1000); n != 0 || err != nil || k.HwCur != 63 {
			t.Fatalf("send into a full pipe queued %d (%v), hwcur %d; want 0, 63", n, err, k.HwCur)
		}
	}
	if st := p.Stats(); st.TxPackets != 63 {
		t.Fatalf("%d frames copied with the receiver stalled, want 63", st.TxPackets)
	}
	// The receiver drains; each release lets the next batch through.
	for i := 0; rc.seq < s.seq; i++ {
		if i > 100 {
			t.Fatalf("stalled: %d of %d frames received", rc.seq, s.seq)
		}
		if _, err := rc.recv(); err != nil {
			t.Fatal(err)
		}
		netmap.RxSync(b) // hand the released slots back to the pipe
		if _, err := s.send(s.seq); err != nil {
			t.Fatal(err)
		}
	}
	if rc.seq != 190 {
		t.Fatalf("received %d frames, want all 190", rc.seq)
	}
}

// badCase corrupts one slot of a ring and says which sync meets it.
type badCase struct {
	name string
	tx   bool
	idx  func(p *Port) uint32 // the slot's new buffer index
	len  func(p *Port) uint16
}

// An application's slot with a buffer that is not one of the region's, or a
// length past the buffer, stops the sync with an error wrapping
// netmap.ErrBadSlot after the good frames before it; nothing is copied from
// or to outside the region (the memory around it is left as it was), the
// ring reinitialises to a sane state, and traffic resumes once the
// application repairs the slot.
func TestBadSlot(t *testing.T) {
	keep := func(p *Port) uint32 { return 0 } // 0 = keep the slot's buffer
	l60 := func(*Port) uint16 { return 60 }
	cases := []badCase{}
	for _, dir := range []bool{true, false} {
		d := map[bool]string{true: "tx", false: "rx"}[dir]
		cases = append(cases,
			badCase{d + " buffer 0", dir, func(*Port) uint32 { return 0xffffffff }, l60},
			badCase{d + " reserved buffer 1", dir, func(*Port) uint32 { return 1 }, l60},
			badCase{d + " buffer past the pool", dir, func(p *Port) uint32 { return p.Region().NumBufs() }, l60},
			badCase{d + " huge buffer index", dir, func(*Port) uint32 { return 1 << 31 }, l60},
		)
	}
	cases = append(cases, badCase{"tx length past the buffer", true, keep, func(p *Port) uint16 { return uint16(p.Region().BufSize() + 1) }})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			const guard = 1 << 16
			outer := make([]byte, 4<<20)
			for i := range outer {
				outer[i] = 0xA5
			}
			a, b := openPipe(t, pipe.Config{Slots: 16})
			p, err := New(a, Config{Mem: outer[guard : len(outer)-guard]})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			bs := p.Region().BufSize()
			if c.tx {
				testBadTx(t, p, b, c, bs)
			} else {
				testBadRx(t, p, b, c, bs)
			}
			for _, g := range [][]byte{outer[:guard], outer[len(outer)-guard:]} {
				for i, v := range g {
					if v != 0xA5 {
						t.Fatalf("memory around the region changed at %d", i)
					}
				}
			}
			if st := p.Stats(); st.BadSlots != 1 {
				t.Errorf("BadSlots = %d, want 1", st.BadSlots)
			}
		})
	}
}

func corrupt(p *Port, sl *netmap.Slot, c badCase) {
	if idx := c.idx(p); idx != 0 {
		if idx == 0xffffffff {
			idx = 0
		}
		sl.BufIdx = idx
	}
	sl.Len = c.len(p)
}

func testBadTx(t *testing.T, p *Port, b *pipe.Endpoint, c badCase, bs uint32) {
	k := p.TxRings()[0]
	r := k.Ring
	reg := p.Region()
	// Slots 0 and 1 are good frames, slot 2 is bad, slot 3 good.
	for j := range uint32(4) {
		fill(reg.Buf(r.Slot(j).BufIdx), uint64(j))
		r.Slot(j).Len = uint16(frameLen(uint64(j), bs))
	}
	orig := *r.Slot(2)
	corrupt(p, r.Slot(2), c)
	r.Advance(4)
	err := syncRing(p, k, 0)
	if !errors.Is(err, netmap.ErrBadSlot) {
		t.Fatalf("sync over a bad slot returned %v, want netmap.ErrBadSlot", err)
	}
	if k.HwCur != 2 {
		t.Fatalf("hwcur %d after the bad slot, want 2 (the good frames before it consumed)", k.HwCur)
	}
	k.Reinit()
	if r.Head() != 2 || r.Cur() != 2 || k.RHead != 2 || r.Tail() != k.HwTail || k.HwTail != 1 {
		t.Fatalf("after Reinit head %d cur %d rhead %d tail %d hwtail %d; want 2, 2, 2, 1, 1", r.Head(), r.Cur(), k.RHead, r.Tail(), k.HwTail)
	}
	if s := r.Slot(2); reg.ValidBuf(s.BufIdx) && uint32(s.Len) > bs {
		t.Fatalf("Reinit left slot 2 with buffer %d length %d", s.BufIdx, s.Len)
	}
	rc := &receiver{p: b, maxLen: bs}
	if _, err := rc.recv(); err != nil || rc.seq != 2 {
		t.Fatalf("peer received %d frames (%v), want the 2 before the bad slot", rc.seq, err)
	}
	// The application repairs the slot and sends again from it.
	*r.Slot(2) = orig
	r.Advance(4)
	if err := syncRing(p, k, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.recv(); err != nil || rc.seq != 4 {
		t.Fatalf("peer has %d frames after the repair (%v), want 4", rc.seq, err)
	}
}

func testBadRx(t *testing.T, p *Port, b *pipe.Endpoint, c badCase, bs uint32) {
	ibs := b.Region().BufSize()
	s := &sender{p: b, maxLen: ibs}
	k := p.RxRings()[0]
	r := k.Ring
	// The application releases slots 0..3 after receiving 4 frames, then
	// rewrites slot 1 (which the next frames land in) with a bad buffer.
	if n, err := s.send(4); n != 4 || err != nil {
		t.Fatal(n, err)
	}
	rc := &receiver{p: p, maxLen: ibs}
	if _, err := rc.recv(); err != nil || rc.seq != 4 {
		t.Fatalf("received %d (%v), want 4", rc.seq, err)
	}
	if n, err := s.send(8); n != 4 || err != nil {
		t.Fatal(n, err)
	}
	// Our ring: hwcur 4 (released), frames go to 4.. ; corrupt slot 5.
	orig := *r.Slot(5)
	corrupt(p, r.Slot(5), c)
	err := syncRing(p, k, 0)
	if !errors.Is(err, netmap.ErrBadSlot) {
		t.Fatalf("sync into a bad slot returned %v, want netmap.ErrBadSlot", err)
	}
	if k.HwTail != 5 {
		t.Fatalf("hwtail %d, want 5 (one frame landed before the bad slot)", k.HwTail)
	}
	k.Reinit()
	if r.Head() != 4 || r.Cur() != 4 || r.Tail() != 5 {
		t.Fatalf("after Reinit head %d cur %d tail %d; want 4, 4, 5", r.Head(), r.Cur(), r.Tail())
	}
	*r.Slot(5) = orig
	for range 4 {
		if _, err := rc.recv(); err != nil {
			t.Fatal(err)
		}
	}
	if rc.seq != 8 {
		t.Fatalf("received %d frames after the repair, want 8", rc.seq)
	}
}

// badInner hands over RX slots it has corrupted, as a broken inner port
// (or the untrusted peer of a pipe) might, and counts drops of its own. It
// puts the buffers back when the slots are released, so the pipe itself
// stays sound.
type badInner struct {
	*pipe.Endpoint
	every uint32            // corrupt RX slot j when j%every is 0 (index) or 1 (length)
	saved map[uint32]uint32 // slot -> its real buffer
}

func (x *badInner) RxSync(i int, flags int) error {
	k := x.RxRings()[i]
	for j, idx := range x.saved {
		k.Ring.Slot(j).BufIdx = idx
		delete(x.saved, j)
	}
	old := k.HwTail
	err := x.Endpoint.RxSync(i, flags)
	for j := old; j != k.HwTail; j = k.Ring.Next(j) {
		switch j % x.every {
		case 0:
			x.saved[j] = k.Ring.Slot(j).BufIdx
			k.Ring.Slot(j).BufIdx = 1 << 30
		case 1:
			k.Ring.Slot(j).Len = 0xffff
		}
	}
	return err
}

func (x *badInner) Drops(tx bool, ring int) uint64 { return 1000 }

// Frames the inner port hands over in invalid slots are dropped and
// counted, never copied from outside its region; the inner port's own drop
// count is passed through.
func TestInnerBadSlotsDropped(t *testing.T) {
	a, b := openPipe(t, pipe.Config{Slots: 32})
	p, err := New(&badInner{Endpoint: a, every: 8, saved: map[uint32]uint32{}}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s := &sender{p: b, maxLen: 200}
	var got []uint64
	for range 20 {
		s.send(s.seq + 10)
		netmap.RxSync(p)
		r := p.If().RxRing(0)
		h := r.Head()
		for ; h != r.Tail(); h = r.Next(h) {
			got = append(got, binary.LittleEndian.Uint64(p.Region().Buf(r.Slot(h).BufIdx)))
		}
		r.Advance(h)
	}
	st := p.Stats()
	if st.InnerBad == 0 || st.RxPackets+st.InnerBad != s.seq || uint64(len(got)) != st.RxPackets {
		t.Fatalf("sent %d, received %d, stats %+v: want every frame either copied or counted bad", s.seq, len(got), st)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("frames out of order: %v", got)
		}
	}
	if d := p.Drops(false, 0); d != 1000+st.InnerBad {
		t.Errorf("Drops(rx, 0) = %d, want the inner port's 1000 + %d", d, st.InnerBad)
	}
	if d := p.Drops(true, 0); d != 1000 {
		t.Errorf("Drops(tx, 0) = %d, want the inner port's 1000", d)
	}
}

// The whole region — netmap_if, every ring, every buffer a slot names —
// lies in the memory given, and the port describes itself as documented.
func TestRegionInMem(t *testing.T) {
	mem := make([]byte, 8<<20)
	a, _ := openPipe(t, pipe.Config{Rings: 3, Slots: 128})
	p, err := New(a, Config{Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(mem)))
	hi := lo + uintptr(len(mem))
	in := func(what string, ptr unsafe.Pointer, size uintptr) {
		if a := uintptr(ptr); a < lo || a+size > hi {
			t.Fatalf("%s at %#x+%d is outside the given memory [%#x, %#x)", what, a, size, lo, hi)
		}
	}
	reg := p.Region()
	in("region", unsafe.Pointer(unsafe.SliceData(reg.Mem())), uintptr(len(reg.Mem())))
	in("netmap_if", unsafe.Pointer(&mem[p.If().Offset()]), netmap.IfHeaderSize)
	bufs := 0
	for _, k := range append(append([]*netmap.KRing{}, p.TxRings()...), p.RxRings()...) {
		in("ring header", unsafe.Pointer(k.Ring.Header()), netmap.RingHeaderSize)
		last := k.Ring.Slot(k.N - 1)
		in("ring slots", unsafe.Pointer(last), netmap.SlotSize)
		for j := range k.N {
			idx := k.Ring.Slot(j).BufIdx
			if !reg.ValidBuf(idx) {
				t.Fatalf("slot %d holds buffer %d", j, idx)
			}
			in("buffer", reg.BufPtr(idx), uintptr(reg.BufSize()))
			bufs++
		}
		if k.Ring.Header().BufSize != DefaultBufSize {
			t.Errorf("ring advertises %d-byte buffers, want %d", k.Ring.Header().BufSize, DefaultBufSize)
		}
	}
	if bufs != 6*128 {
		t.Errorf("checked %d buffers, want %d", bufs, 6*128)
	}
	if len(p.TxRings()) != 3 || len(p.RxRings()) != 3 || p.If().NumTx() != 3 || p.If().NumRx() != 3 {
		t.Errorf("%d/%d rings, want the inner port's 3/3", len(p.TxRings()), len(p.RxRings()))
	}
	if p.Name() != "copy:"+a.Name() || p.MemID() == a.MemID() || p.MemFd() != -1 || p.Inner() != netmap.Port(a) {
		t.Errorf("name %q memid %d (inner %d) memfd %d", p.Name(), p.MemID(), a.MemID(), p.MemFd())
	}
	if p.Waker() != a.Waker() {
		t.Error("the waker is not the inner port's")
	}
}

func TestNewErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		pipe pipe.Config
		cfg  Config
		want string
	}{
		{"buffers smaller than the inner port's", pipe.Config{BufSize: 4096}, Config{BufSize: 2048}, "smaller than the inner port's 4096-byte buffers"},
		{"memory too small", pipe.Config{}, Config{Mem: make([]byte, 1<<16)}, "too small"},
		{"frame needs too many inner slots", pipe.Config{Slots: 4, BufSize: 64}, Config{BufSize: 1024}, "more than its TX ring 0 can hold"},
		{"too many slots", pipe.Config{}, Config{Slots: 1 << 20}, "ring pool"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, _ := openPipe(t, c.pipe)
			defer a.Close()
			p, err := New(a, c.cfg)
			if err == nil {
				p.Close()
				t.Fatal("New succeeded")
			}
			if !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
		})
	}
	if _, err := New(nil, Config{}); err == nil {
		t.Fatal("New(nil) succeeded")
	}
}

// The default buffer size follows a larger inner port's.
func TestDefaultBufSize(t *testing.T) {
	p, _ := newBounce(t, pipe.Config{BufSize: 4096}, Config{})
	if bs := p.Region().BufSize(); bs != 4096 {
		t.Fatalf("buffer size %d, want the inner port's 4096", bs)
	}
}

// Close closes the inner port too, once; syncs after it fail cleanly.
func TestClose(t *testing.T) {
	a, _ := openPipe(t, pipe.Config{})
	p, err := New(a, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); !errors.Is(err, netmap.ErrClosed) {
		t.Fatalf("inner Close after bounce Close = %v, want ErrClosed (already closed)", err)
	}
	if err := p.Close(); !errors.Is(err, netmap.ErrClosed) {
		t.Fatalf("second Close = %v, want ErrClosed", err)
	}
	if err := p.TxSync(0, 0); !errors.Is(err, netmap.ErrClosed) {
		t.Fatalf("TxSync after Close = %v", err)
	}
	if err := p.RxSync(0, 0); !errors.Is(err, netmap.ErrClosed) {
		t.Fatalf("RxSync after Close = %v", err)
	}
}

// A sync that copies a batch allocates nothing, either way.
func TestNoAllocs(t *testing.T) {
	p, b := newBounce(t, pipe.Config{Slots: 256}, Config{})
	ptx, prx := p.TxRings()[0], p.RxRings()[0]
	btx, brx := b.TxRings()[0], b.RxRings()[0]
	const batch = 32
	queue := func(k *netmap.KRing) {
		r := k.Ring
		h := r.Head()
		for range batch {
			r.Slot(h).Len = 60
			h = r.Next(h)
		}
		r.Advance(h)
	}
	drain := func(k *netmap.KRing) {
		k.Ring.Advance(k.Ring.Tail())
	}
	var moved uint64
	allocs := testing.AllocsPerRun(200, func() {
		queue(ptx)
		syncRing(p, ptx, 0) // copies the batch into the pipe
		syncRing(b, brx, 0)
		drain(brx)
		syncRing(b, brx, 0)
		queue(btx)
		syncRing(b, btx, 0)
		syncRing(p, prx, 0) // copies the batch out of the pipe
		drain(prx)
		syncRing(p, prx, 0)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch, want 0", allocs)
	}
	st := p.Stats()
	moved = st.TxPackets + st.RxPackets
	if moved < 2*200*batch {
		t.Fatalf("only %d frames moved: the measured syncs did not copy", moved)
	}
}
