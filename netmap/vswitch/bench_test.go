package vswitch

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ptbhyve/ptbhyve/netmap"
)

// benchPorts opens a and b, with b's MAC learned, and writes a frame header
// for b into every TX buffer of a, so a steady-state sender only sets
// lengths and advances head.
func benchPorts(b *testing.B, slots uint32, frameLen int) (pa, pb *Port) {
	_, ports := newSwitch(b, []PortConfig{{Slots: slots}}, "a", "b")
	pa, pb = ports[0], ports[1]
	announce(b, ports, "b")
	f := frame(macOf("b"), macOf("a"), frameLen, 0)
	r := pa.If().TxRing(0)
	for i := range r.NumSlots() {
		copy(pa.Region().Buf(r.Slot(i).BufIdx), f)
	}
	return pa, pb
}

// fill queues n frames of length l on TX ring 0 of p.
func fill(p *Port, n int, l uint16) {
	r := p.If().TxRing(0)
	h := r.Head()
	for range n {
		s := r.Slot(h)
		s.Len, s.Flags = l, 0
		h = r.Next(h)
	}
	r.Advance(h)
}

// drain releases every packet of RX ring 0 of p and reports how many.
func drain(p *Port) int {
	r := p.If().RxRing(0)
	n := r.Space()
	r.Advance(r.Tail())
	return int(n)
}

// BenchmarkUnicast is a two-port unicast stream on one goroutine: an op is
// one round of a batch of frames: the application queues them, TxSync
// copies them to the other port, RxSync hands them over, the application
// releases them.
func BenchmarkUnicast(b *testing.B) {
	for _, bc := range []struct{ batch, size int }{{1, 60}, {32, 60}, {256, 60}, {32, 1514}} {
		b.Run(fmt.Sprintf("batch=%d/size=%d", bc.batch, bc.size), func(b *testing.B) {
			pa, pb := benchPorts(b, 1024, bc.size)
			got := 0
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				fill(pa, bc.batch, uint16(bc.size))
				if err := netmap.TxSync(pa); err != nil {
					b.Fatal(err)
				}
				if err := netmap.RxSync(pb); err != nil {
					b.Fatal(err)
				}
				got += drain(pb)
			}
			b.StopTimer()
			if want := b.N * bc.batch; got != want || pb.Stats().RxDropped != 0 {
				b.Fatalf("received %d of %d frames (%d dropped)", got, want, pb.Stats().RxDropped)
			}
			reportRate(b, got)
		})
	}
}

// BenchmarkUnicastConcurrent runs the sender and the receiver on two
// goroutines, as two sync loops would: an op is one frame.
func BenchmarkUnicastConcurrent(b *testing.B) {
	const batch = 64
	pa, pb := benchPorts(b, 1024, 60)
	var done atomic.Bool
	var got int
	finished := make(chan struct{})
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		defer close(finished)
		for !done.Load() {
			if err := netmap.RxSync(pb); err != nil {
				b.Error(err)
				return
			}
			n := drain(pb)
			got += n
			if n == 0 {
				runtime.Gosched()
			}
		}
	}()
	r := pa.If().TxRing(0)
	for sent := 0; sent < b.N; {
		n := min(batch, b.N-sent, int(r.Space()))
		fill(pa, n, 60)
		if err := netmap.TxSync(pa); err != nil {
			b.Fatal(err)
		}
		sent += n
	}
	// Let the receiver take what is in flight.
	deadline := time.Now().Add(time.Second)
	for uint64(b.N) != pb.Stats().RxPackets+pb.Stats().RxDropped && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	b.StopTimer()
	done.Store(true)
	<-finished
	got += func() int { netmap.RxSync(pb); return drain(pb) }()
	drops := pb.Stats().RxDropped
	if uint64(got)+drops != uint64(b.N) {
		b.Fatalf("received %d + dropped %d of %d frames", got, drops, b.N)
	}
	b.ReportMetric(float64(drops)/float64(b.N), "drops/op")
	reportRate(b, b.N)
}

func reportRate(b *testing.B, frames int) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(frames)/s/1e6, "Mpps")
		b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(frames), "ns/frame")
	}
}
