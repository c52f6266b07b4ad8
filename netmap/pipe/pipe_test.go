package pipe

import (
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ptbhyve/ptbhyve/netmap"
)

func openPair(t *testing.T, cfg Config) (m, s *Endpoint) {
	t.Helper()
	key := fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())
	m, err := Open(key, true, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err = Open(key, false, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// send queues up to n frames carrying consecutive sequence numbers from seq
// on TX ring 0 and syncs; it returns how many it queued.
func send(t *testing.T, p netmap.Port, seq uint64, n int) int {
	r := p.If().TxRing(0)
	sent := 0
	for h := r.Head(); sent < n && h != r.Tail(); h = r.Next(h) {
		s := r.Slot(h)
		buf := p.Region().Buf(s.BufIdx)
		binary.LittleEndian.PutUint64(buf, seq+uint64(sent))
		s.Len = 64
		sent++
		r.Advance(r.Next(h))
	}
	if err := netmap.TxSync(p); err != nil {
		t.Error(err)
	}
	return sent
}

// recv drains RX ring 0, checking sequence numbers from *seq.
func recv(t *testing.T, p netmap.Port, seq *uint64) int {
	if err := netmap.RxSync(p); err != nil {
		t.Error(err)
	}
	r := p.If().RxRing(0)
	got := 0
	h := r.Head()
	for ; h != r.Tail(); h = r.Next(h) {
		s := r.Slot(h)
		if s.Len != 64 {
			t.Fatalf("slot %d len %d, want 64", h, s.Len)
		}
		if v := binary.LittleEndian.Uint64(p.Region().Buf(s.BufIdx)); v != *seq {
			t.Fatalf("frame %d carries sequence %d", *seq, v)
		}
		*seq++
		got++
	}
	r.Advance(h)
	return got
}

func TestPipeOrderAndBackpressure(t *testing.T) {
	m, s := openPair(t, Config{Slots: 64})
	// Fill the pipe: 63 frames fit the TX ring, the RX ring then holds them
	// and the sender gets no space back until the receiver releases.
	if n := send(t, m, 0, 1000); n != 63 {
		t.Fatalf("first send queued %d, want 63", n)
	}
	if n := send(t, m, 63, 1000); n != 0 {
		t.Fatalf("send into a full pipe queued %d, want 0", n)
	}
	var seq uint64
	if n := recv(t, s, &seq); n != 63 {
		t.Fatalf("received %d, want 63", n)
	}
	// The release becomes TX space on the next sync.
	netmap.RxSync(s)
	netmap.TxSync(m)
	if sp := m.If().TxRing(0).Space(); sp != 63 {
		t.Fatalf("TX space after release = %d, want 63", sp)
	}
	// Buffers are swapped, never lost: every buffer is in exactly one slot.
	checkBuffers(t, m, s)
}

// checkBuffers checks that the four rings of the pipe together hold every
// ring buffer exactly once.
func checkBuffers(t *testing.T, ends ...*Endpoint) {
	t.Helper()
	seen := map[uint32]string{}
	for _, e := range ends {
		for i, k := range append(append([]*netmap.KRing{}, e.tx...), e.rx...) {
			for j := range k.N {
				idx := k.Ring.Slot(j).BufIdx
				where := fmt.Sprintf("%s ring %d slot %d", e.name, i, j)
				if prev, dup := seen[idx]; dup {
					t.Fatalf("buffer %d in both %s and %s", idx, prev, where)
				}
				if !e.Region().ValidBuf(idx) {
					t.Fatalf("%s holds invalid buffer %d", where, idx)
				}
				seen[idx] = where
			}
		}
	}
}

// Two goroutines stream frames through the pipe; under -race this checks
// the index publication between the endpoints.
func TestPipeConcurrent(t *testing.T) {
	const total = 200000
	m, s := openPair(t, Config{Slots: 256})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := uint64(0); seq < total; {
			seq += uint64(send(t, m, seq, int(total-seq)))
		}
	}()
	var seq uint64
	deadline := time.Now().Add(30 * time.Second)
	for seq < total && time.Now().Before(deadline) {
		recv(t, s, &seq)
	}
	wg.Wait()
	if seq != total {
		t.Fatalf("received %d of %d frames", seq, total)
	}
	checkBuffers(t, m, s)
}

func TestPipeBadSlotResetsRing(t *testing.T) {
	m, s := openPair(t, Config{Slots: 16})
	r := m.If().TxRing(0)
	r.Slot(0).Len = 64
	r.Slot(1).BufIdx = 1 // reserved
	r.Slot(1).Len = 64
	r.Advance(2)
	netmap.TxSync(m)
	k := m.TxRings()[0]
	if k.Resets != 1 {
		t.Fatalf("Resets = %d, want 1", k.Resets)
	}
	if r.Head() != 1 || r.Slot(1).BufIdx != 0 {
		t.Fatalf("after reset head=%d slot1.buf=%d; want head 1 (the good slot went), buf 0", r.Head(), r.Slot(1).BufIdx)
	}
	var seq uint64
	binary.LittleEndian.PutUint64(m.Region().Buf(s.rx[0].Ring.Slot(0).BufIdx), 0)
	if n := recv(t, s, &seq); n != 1 {
		t.Fatalf("peer received %d frames, want the 1 good one", n)
	}
}

func TestOpenTwiceFails(t *testing.T) {
	m, _ := openPair(t, Config{})
	key := m.pair.key
	if _, err := Open(key, true, Config{}); err == nil {
		t.Fatal("second open of the master endpoint succeeded")
	}
}
