package ptnetmap

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/ptbhyve/ptbhyve/internal/event"
	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/netmap/pipe"
)

// kloopPort plays the kernel side of CSB mode for the notifier's tests:
// the test publishes ktoa itself, as the kernel loop would. What the real
// kernel loop does with the rings is tested against the netmap model in
// netmap/kernel.
type kloopPort struct {
	netmap.Port
	mu         sync.Mutex
	atok, ktoa uintptr
	enables    int
	running    bool
	stopping   bool
	stops      int
	lost       int // stops that found no loop running
	cond       *sync.Cond
	fail       error // SyncKloop returns this at once
}

func newKloopPort(t *testing.T) *kloopPort {
	key := fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano())
	cfg := pipe.Config{Rings: 1, Slots: 64, BufSize: 2048}
	m, err := pipe.Open(key, true, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	p := &kloopPort{Port: m}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *kloopPort) CSBEnable(atok, ktoa uintptr) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running {
		return errors.New("EBUSY")
	}
	p.atok, p.ktoa = atok, ktoa
	p.enables++
	return nil
}

func (p *kloopPort) SyncKloop(sleepUS uint32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return p.fail
	}
	p.running = true
	p.cond.Broadcast()
	for !p.stopping {
		p.cond.Wait()
	}
	p.running, p.stopping = false, false
	return nil
}

// SyncKloopStop is forgotten when no loop runs, like File.SyncKloopStop.
func (p *kloopPort) SyncKloopStop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stops++
	if !p.running {
		p.lost++
		return nil
	}
	p.stopping = true
	p.cond.Broadcast()
	return nil
}

type irqCounts struct{ n []atomic.Uint64 }

func (c *irqCounts) Interrupt(v int) { c.n[v].Add(1) }

func kernelBinding(t *testing.T, p netmap.Port) (Binding, *irqCounts, []*event.Event) {
	n := len(p.TxRings()) + len(p.RxRings())
	atok := make([]byte, n*CSBEntrySize+CSBEntrySize)
	ktoa := make([]byte, n*CSBEntrySize+CSBEntrySize)
	// 64-byte aligned views.
	al := func(b []byte) []byte {
		off := (CSBEntrySize - int(uintptr(unsafe.Pointer(&b[0])))%CSBEntrySize) % CSBEntrySize
		return b[off : off+n*CSBEntrySize]
	}
	irq := &irqCounts{n: make([]atomic.Uint64, n)}
	kicks := newEvents(t, n)
	return Binding{Port: p, CSB: CSBFromBytes(al(atok), al(ktoa), n), Kicks: kicks, Irq: irq}, irq, kicks
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func TestKernelSyncNotifier(t *testing.T) {
	p := newKloopPort(t)
	b, irq, kicks := kernelBinding(t, p)
	var errs []error
	var emu sync.Mutex
	ks, err := NewKernelSync(KernelConfig{OnError: func(err error) { emu.Lock(); errs = append(errs, err); emu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	s, err := ks.Serve(b)
	if err != nil {
		t.Fatal(err)
	}
	if p.atok != uintptr(unsafe.Pointer(&b.CSB.Atok[0])) || p.ktoa != uintptr(unsafe.Pointer(&b.CSB.Ktoa[0])) {
		t.Fatalf("CSB_ENABLE got %#x/%#x, the binding's CSB is at %p/%p", p.atok, p.ktoa, &b.CSB.Atok[0], &b.CSB.Ktoa[0])
	}
	eventually(t, "the kernel loop to start", func() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.running })

	const tx, rx = 0, 1
	n := p.TxRings()[0].N
	steps := []struct {
		name     string
		ring     int
		needKick bool
		cur      uint32
		tail     uint32
		want     [2]uint64 // interrupts per ring after the step
		packets  [2]uint64
	}{
		{"rx tail moves, guest wants interrupts", rx, true, 0, 5, [2]uint64{0, 1}, [2]uint64{0, 5}},
		{"rx tail moves, guest polling", rx, false, 0, 9, [2]uint64{0, 1}, [2]uint64{0, 9}},
		{"rx only hwcur moves: no interrupt", rx, true, 3, 9, [2]uint64{0, 1}, [2]uint64{0, 9}},
		{"tx space returns", tx, true, 10, 9, [2]uint64{1, 1}, [2]uint64{10, 9}},
		{"garbage tail from the guest is ignored", tx, true, 10, n + 7, [2]uint64{1, 1}, [2]uint64{10, 9}},
		{"tx wraps", tx, true, 2, 1, [2]uint64{2, 1}, [2]uint64{uint64(n) - 8 + 10, 9}},
	}
	for _, st := range steps {
		b.CSB.Atok[st.ring].SetApplNeedKick(st.needKick)
		KernWrite(&b.CSB.Ktoa[st.ring], st.cur, st.tail)
		eventually(t, st.name, func() bool {
			got := s.Stats()
			return got[tx].Packets == st.packets[tx] && got[rx].Packets == st.packets[rx]
		})
		time.Sleep(5 * time.Millisecond) // an extra interrupt would show by now
		for r := range 2 {
			if got := irq.n[r].Load(); got != st.want[r] {
				t.Fatalf("%s: ring %d raised %d interrupts, want %d", st.name, r, got, st.want[r])
			}
		}
	}
	kicks[0].Signal()
	kicks[0].Signal()
	eventually(t, "kicks counted", func() bool { return s.Stats()[tx].Kicks >= 1 })

	s.Detach()
	p.mu.Lock()
	running, stops := p.running, p.stops
	p.mu.Unlock()
	if running || stops == 0 {
		t.Fatalf("after Detach: loop running %v after %d stops", running, stops)
	}
	if len(errs) != 0 {
		t.Fatalf("errors reported: %v", errs)
	}
	// CSB mode stays: a new CREATE enables it again and starts a new loop.
	s2, err := ks.Serve(b)
	if err != nil {
		t.Fatal(err)
	}
	s2.Detach()
	if p.enables != 2 {
		t.Fatalf("CSB_ENABLE issued %d times for two CREATEs", p.enables)
	}
}

// A DELETE that lands before the kernel loop started must still stop it.
func TestKernelSyncDetachBeforeStart(t *testing.T) {
	for range 20 {
		p := newKloopPort(t)
		b, _, _ := kernelBinding(t, p)
		ks, err := NewKernelSync(KernelConfig{})
		if err != nil {
			t.Fatal(err)
		}
		s, err := ks.Serve(b)
		if err != nil {
			t.Fatal(err)
		}
		s.Detach()
		p.mu.Lock()
		running := p.running
		p.mu.Unlock()
		if running {
			t.Fatal("the kernel loop outlived Detach")
		}
	}
}

func TestKernelSyncErrors(t *testing.T) {
	t.Run("not a kernel port", func(t *testing.T) {
		p := newKloopPort(t)
		b, _, _ := kernelBinding(t, p)
		b.Port = p.Port
		ks, _ := NewKernelSync(KernelConfig{})
		if _, err := ks.Serve(b); err == nil {
			t.Fatal("a pipe port was accepted for the kernel loop")
		}
	})
	t.Run("loop fails at once", func(t *testing.T) {
		p := newKloopPort(t)
		p.fail = errors.New("EINVAL")
		b, _, _ := kernelBinding(t, p)
		got := make(chan error, 1)
		ks, _ := NewKernelSync(KernelConfig{OnError: func(err error) { got <- err }})
		s, err := ks.Serve(b)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-got:
			if !errors.Is(err, p.fail) {
				t.Fatalf("reported %v, want it to wrap %v", err, p.fail)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a failed kernel loop was not reported")
		}
		s.Detach()
	})
	t.Run("sleep over a second", func(t *testing.T) {
		if _, err := NewKernelSync(KernelConfig{SleepUS: 1_000_001}); err == nil {
			t.Fatal("accepted")
		}
	})
}
