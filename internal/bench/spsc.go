package bench

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/ptbhyve/ptbhyve/internal/shm"
	"golang.org/x/sys/unix"
)

// The reference: the limit for moving frames through a shared ring on this
// machine. A producer writes a 64-byte frame with a sequence number into a
// buffer and publishes the buffer's index on a single-producer/single-
// consumer ring; the consumer reads the index and checks the sequence. No
// CSB, no validation, no notifications: both sides busy-poll, batching 32.
//
// Layout of the shared object: producer index (own cache line), consumer
// index (own cache line), the ring of uint32 buffer indexes, the buffers.
const (
	spscBatch    = 32
	spscRingOff  = 128
	spscBufSize  = 2048
	spscMaxSlots = 4096
)

type spscConfig struct {
	Slots  uint32
	Frames uint64
	CPU    int
}

type spscRing struct {
	prod, cons *atomic.Uint64
	ring       []uint32
	bufs       []byte
	mask       uint64
}

func spscSize(slots uint32) int {
	bufOff := (spscRingOff + 4*int(slots) + 4095) &^ 4095
	return bufOff + int(slots)*spscBufSize
}

func mapSPSC(b []byte, slots uint32) spscRing {
	bufOff := (spscRingOff + 4*int(slots) + 4095) &^ 4095
	return spscRing{
		prod: (*atomic.Uint64)(unsafe.Pointer(&b[0])),
		cons: (*atomic.Uint64)(unsafe.Pointer(&b[64])),
		ring: unsafe.Slice((*uint32)(unsafe.Pointer(&b[spscRingOff])), slots),
		bufs: b[bufOff:],
		mask: uint64(slots - 1),
	}
}

func (r *spscRing) buf(idx uint32) []byte {
	off := uint64(idx&uint32(r.mask)) * spscBufSize
	return r.bufs[off : off+spscBufSize]
}

// runProducer is the reference's producer child.
func runProducer() error {
	var c spscConfig
	if err := childConfig(&c); err != nil {
		return err
	}
	m, err := shm.Map(3, spscSize(c.Slots))
	if err != nil {
		return err
	}
	r := mapSPSC(m.Bytes(), c.Slots)
	out := newReporter()
	if err := out.send(map[string]bool{"ready": true}); err != nil {
		return err
	}
	if !out.waitLine() {
		return nil
	}
	runtime.LockOSThread()
	pin(c.CPU)
	var payload [64]byte
	slots := uint64(c.Slots)
	var p, cons uint64
	for p < c.Frames {
		if p-cons >= slots {
			cons = r.cons.Load()
			continue
		}
		n := min(spscBatch, slots-(p-cons), c.Frames-p)
		for j := range n {
			idx := uint32((p + j) & r.mask)
			buf := r.buf(idx)
			copy(buf[:64], payload[:])
			binary.LittleEndian.PutUint64(buf, p+j)
			r.ring[idx] = idx
		}
		p += n
		r.prod.Store(p)
	}
	if err := out.send(map[string]bool{"done": true}); err != nil {
		return err
	}
	out.waitLine()
	return nil
}

// reference runs the SPSC reference once and returns frames per second.
func reference(frames uint64, slots uint32, consumerCPU, producerCPU int) (float64, error) {
	if slots&(slots-1) != 0 || slots > spscMaxSlots {
		return 0, fmt.Errorf("bench: reference ring needs a power-of-two slot count up to %d, not %d", spscMaxSlots, slots)
	}
	m, err := shm.New("spsc", spscSize(slots))
	if err != nil {
		return 0, err
	}
	defer m.Close()
	fd, err := unix.Dup(m.Fd())
	if err != nil {
		return 0, err
	}
	f := os.NewFile(uintptr(fd), "spsc")
	defer f.Close()
	c, err := spawn("spsc", spscConfig{Slots: slots, Frames: frames, CPU: producerCPU}, []*os.File{f})
	if err != nil {
		return 0, err
	}
	defer c.wait()
	var ready map[string]bool
	if err := c.recv(&ready); err != nil {
		return 0, err
	}
	r := mapSPSC(m.Bytes(), slots)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pin(consumerCPU)
	if err := c.send(map[string]bool{"go": true}); err != nil {
		return 0, err
	}
	start := time.Now()
	var got, prod uint64
	for got < frames {
		if got == prod {
			prod = r.prod.Load()
			continue
		}
		for ; got != prod; got++ {
			idx := r.ring[got&r.mask]
			if v := binary.LittleEndian.Uint64(r.buf(idx)); v != got {
				return 0, fmt.Errorf("bench: reference ring delivered frame %d as %d", got, v)
			}
		}
		r.cons.Store(got)
	}
	elapsed := time.Since(start)
	return float64(frames) / elapsed.Seconds(), nil
}
