package bounce

import (
	"fmt"
	"testing"

	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/netmap/pipe"
)

// benchFrames pushes b.N frames of size bytes from the application of src
// to that of dst, in batches of up to 64, one goroutine playing both: the
// same workload BenchmarkCopy and BenchmarkDirect run, so their ratio is
// the cost of the copy path. One op is one frame.
func benchFrames(b *testing.B, src, dst netmap.Port, size uint16) {
	tx, rx := src.TxRings()[0], dst.RxRings()[0]
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; {
		r := tx.Ring
		h := r.Head()
		for n := 0; n < 64 && sent < b.N && h != r.Tail(); n++ {
			r.Slot(h).Len = size
			h = r.Next(h)
			sent++
		}
		r.Advance(h)
		syncRing(src, tx, 0)
		syncRing(dst, rx, 0)
		rx.Ring.Advance(rx.Ring.Tail())
		syncRing(dst, rx, 0) // release, so the pipe has room again
	}
}

func BenchmarkCopy(b *testing.B) {
	for _, size := range []uint16{60, 1514} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			p, peer := newBounce(b, pipe.Config{Slots: 256}, Config{})
			benchFrames(b, p, peer, size)
		})
	}
}

func BenchmarkDirect(b *testing.B) {
	for _, size := range []uint16{60, 1514} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			a, peer := openPipe(b, pipe.Config{Slots: 256})
			b.Cleanup(func() { a.Close() })
			benchFrames(b, a, peer, size)
		})
	}
}
