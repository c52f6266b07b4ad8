package pktgen

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ptbhyve/ptbhyve/guestdrv"
	"github.com/ptbhyve/ptbhyve/netmap/pipe"
)

// pipeRings opens both ends of a fresh pipe as guest rings: what a
// transmits on TX ring i arrives on b's RX ring i and back.
func pipeRings(tb testing.TB, slots uint32) (a, b guestdrv.Rings) {
	tb.Helper()
	key := fmt.Sprintf("pktgen-%s-%d", tb.Name(), time.Now().UnixNano())
	m, err := pipe.Open(key, true, pipe.Config{Rings: 1, Slots: slots})
	if err != nil {
		tb.Fatal(err)
	}
	s, err := pipe.Open(key, false, pipe.Config{})
	if err != nil {
		m.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close(); s.Close() })
	return guestdrv.HostPort(m), guestdrv.HostPort(s)
}

type result struct {
	s   Summary
	err error
}

// start runs Run in a goroutine; the result arrives on the channel.
func start(ctx context.Context, r guestdrv.Rings, c Config) <-chan result {
	ch := make(chan result, 1)
	go func() {
		s, err := Run(ctx, r, c, nil)
		ch <- result{s, err}
	}()
	return ch
}

func must(tb testing.TB, r result) Summary {
	tb.Helper()
	if r.err != nil {
		tb.Fatal(r.err)
	}
	return r.s
}

// txrx sends n frames from one end and receives them on the other.
func txrx(tb testing.TB, a, b guestdrv.Rings, c Config, n uint64) (tx, rx Summary) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.Count = n
	rc := c
	rc.Mode = RX
	rxc := start(ctx, b, rc)
	c.Mode = TX
	txc := start(ctx, a, c)
	return must(tb, <-txc), must(tb, <-rxc)
}

func TestTxRx(t *testing.T) {
	for _, tc := range []struct {
		name  string
		c     Config
		slots uint32
		n     uint64
	}{
		{"min frames", Config{}, 256, 20000},
		{"full frames", Config{Size: 1514, Burst: 32}, 256, 5000},
		{"burst above ring", Config{Burst: 1000}, 64, 5000},
		{"paced", Config{Rate: 50000}, 256, 2000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := pipeRings(t, tc.slots)
			tx, rx := txrx(t, a, b, tc.c, tc.n)
			size := uint64(max(tc.c.Size, minSize))
			if tx.Packets != tc.n || tx.Bytes != tc.n*size {
				t.Errorf("tx sent %d frames, %d bytes; want %d, %d", tx.Packets, tx.Bytes, tc.n, tc.n*size)
			}
			want := Summary{Mode: RX, Packets: tc.n, Bytes: tc.n * size, Received: tc.n}
			got := rx
			got.Elapsed, got.PPS, got.BPS = 0, 0, 0
			if got != want {
				t.Errorf("rx summary\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// A paced sender never gets ahead of rate × elapsed; unpaced, the same
// run would send orders of magnitude more.
func TestRateCap(t *testing.T) {
	a, b := pipeRings(t, 256)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rxc := start(ctx, b, Config{Mode: RX})
	const rate = 2000
	tx := must(t, <-start(ctx, a, Config{Mode: TX, Rate: rate, Duration: 300 * time.Millisecond}))
	cancel()
	rx := must(t, <-rxc)
	if limit := uint64(rate*tx.Elapsed.Seconds()) + 1; tx.Packets == 0 || tx.Packets > limit {
		t.Errorf("paced at %d pps for %v, sent %d; want 1..%d", rate, tx.Elapsed, tx.Packets, limit)
	}
	if rx.Received != tx.Packets || rx.Lost != 0 || rx.Bad != 0 {
		t.Errorf("rx got %+v for %d sent", rx, tx.Packets)
	}
}

func TestPingPong(t *testing.T) {
	a, b := pipeRings(t, 256)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pongCtx, stopPong := context.WithCancel(ctx)
	pongc := start(pongCtx, b, Config{Mode: Pong})
	const k = 300
	ping := must(t, <-start(ctx, a, Config{Mode: Ping, Count: k, Size: 128}))
	stopPong()
	pong := must(t, <-pongc)
	if ping.Packets != k || ping.Lost != 0 || ping.Bad != 0 || ping.Received != k {
		t.Errorf("ping %+v; want %d rounds, all answered", ping, k)
	}
	r := ping.RTT
	if !(r.Min > 0 && r.Min <= r.P50 && r.P50 <= r.P99 && r.P99 <= r.Max && r.Min <= r.Avg && r.Avg <= r.Max) {
		t.Errorf("RTT %+v is not ordered min <= p50 <= p99 <= max", r)
	}
	if pong.Packets != k || pong.Received != k || pong.Bad != 0 {
		t.Errorf("pong %+v; want %d echoed", pong, k)
	}
}

// Unanswered pings time out and count as lost, not hang.
func TestPingLost(t *testing.T) {
	a, _ := pipeRings(t, 64)
	s := must(t, <-start(context.Background(), a, Config{Mode: Ping, Count: 3, Timeout: 5 * time.Millisecond}))
	if s.Packets != 3 || s.Lost != 3 || s.RTT != (RTT{}) {
		t.Errorf("ping to nobody: %+v; want 3 rounds, 3 lost", s)
	}
}

// inject transmits frames as given (bytes and slot length) on r's TX ring 0.
func inject(t *testing.T, r guestdrv.Rings, frames [][]byte, lens []int) {
	t.Helper()
	ring := r.TxRing(0)
	h := ring.Head()
	for i, f := range frames {
		s := ring.Slot(h)
		copy(r.Buf(s.BufIdx), f)
		s.Len = uint16(lens[i])
		h = ring.Next(h)
	}
	ring.Advance(h)
	if err := r.TxSync(); err != nil {
		t.Fatal(err)
	}
}

// A damaged frame between good ones is counted bad and breaks nothing:
// the sequence around it shows no loss.
func TestBadFrame(t *testing.T) {
	c, err := Config{Size: 100}.withDefaults(2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		damage func(f []byte) int // returns the slot length
	}{
		{"wrong magic", func(f []byte) int { f[offMagic] ^= 0xff; return len(f) }},
		{"bad IPv4 checksum", func(f []byte) int { f[offIP+8]--; return len(f) }},
		{"truncated", func(f []byte) int { return len(f) - 1 }},
		{"trailing bytes", func(f []byte) int { return len(f) + 4 }},
		{"runt", func([]byte) int { return 20 }},
		{"empty", func([]byte) int { return 0 }},
		{"not IPv4", func(f []byte) int { f[12], f[13] = 0x86, 0xdd; return len(f) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := pipeRings(t, 64)
			var frames [][]byte
			var lens []int
			for seq := range uint64(11) {
				// Spare bytes after the frame, for "trailing bytes".
				f := make([]byte, c.Size+8)
				copy(f, template(c))
				stamp(f, seq, 0)
				l := c.Size
				if seq == 5 {
					l = tc.damage(f[:c.Size])
				}
				frames, lens = append(frames, f), append(lens, l)
			}
			inject(t, a, frames, lens)
			s := must(t, <-start(context.Background(), b, Config{Mode: RX, Count: 11}))
			// The bad frame took sequence number 5: the rest are 0..4
			// and 6..10, one gap.
			if s.Received != 11 || s.Bad != 1 || s.Lost != 1 || s.Reordered != 0 || s.Duplicated != 0 {
				t.Errorf("%+v; want 11 received, 1 bad, 1 lost (its sequence number)", s)
			}
		})
	}
}

// The tx and rx loops allocate nothing per packet: a hundred times the
// packets costs no more allocations than a few.
func TestNoAllocPerPacket(t *testing.T) {
	a, b := pipeRings(t, 256)
	mallocs := func(n uint64) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		txrx(t, a, b, Config{}, n)
		runtime.ReadMemStats(&after)
		return after.Mallocs - before.Mallocs
	}
	mallocs(1000) // warm up
	few, many := mallocs(1000), mallocs(100000)
	if many > few+1000 {
		t.Errorf("100000 frames cost %d allocations, 1000 cost %d: something allocates per packet", many, few)
	}
}

// Reports arrive about once a second and add up to the summary.
func TestReports(t *testing.T) {
	a, b := pipeRings(t, 256)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rxc := start(ctx, b, Config{Mode: RX})
	var mu sync.Mutex
	var reports []Report
	s, err := Run(ctx, a, Config{Rate: 20000, Duration: 2500 * time.Millisecond}, func(r Report) {
		mu.Lock()
		defer mu.Unlock()
		reports = append(reports, r)
	})
	cancel()
	must(t, <-rxc)
	if err != nil {
		t.Fatal(err)
	}
	// Two on an idle machine; a loaded one may push the second past the
	// end of the run.
	if len(reports) < 1 || len(reports) > 2 {
		t.Fatalf("%d reports in a %v run, want 1 or 2: %v", len(reports), s.Elapsed, reports)
	}
	var sum uint64
	for _, r := range reports {
		sum += r.Packets
		if r.TotalPackets != sum || r.Interval < reportEvery {
			t.Errorf("report %+v: total %d after adding intervals, interval below %v", r, sum, reportEvery)
		}
	}
	if sum > s.Packets {
		t.Errorf("reports count %d packets, more than the summary's %d", sum, s.Packets)
	}
}

func BenchmarkTxRx(b *testing.B) {
	for _, size := range []int{60, 1514} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			ta, tb := pipeRings(b, 1024)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			tx, _ := txrx(b, ta, tb, Config{Size: size, Burst: 256}, uint64(b.N))
			b.ReportMetric(tx.PPS/1e6, "Mpps")
		})
	}
}
