package ptnetmap

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"github.com/ptbhyve/ptbhyve/internal/event"
	"github.com/ptbhyve/ptbhyve/netmap"
	"golang.org/x/sys/unix"
)

// KloopPort is a port netmap's in-kernel sync loop can serve: a kernel
// netmap port bound on a descriptor of its own with NR_EXCLUSIVE
// (netmap/kernel.Port).
type KloopPort interface {
	netmap.Port
	// CSBEnable puts the descriptor in CSB mode over the two arrays
	// (addresses in this process), which the kernel initialises from its
	// rings' state. From then on only the kernel's loop syncs the rings.
	CSBEnable(atok, ktoa uintptr) error
	// SyncKloop runs the kernel's loop in sleep mode, pausing sleepUS
	// between passes, until SyncKloopStop.
	SyncKloop(sleepUS uint32) error
	SyncKloopStop() error
}

// KernelConfig tunes a KernelSync.
type KernelConfig struct {
	// SleepUS is the kernel loop's pause between passes (at most one
	// second); default 100, as netmap's own hypervisors use.
	SleepUS uint32
	// Spin is how long the interrupt notifier keeps scanning the CSB
	// after the last change before it sleeps; default 50µs.
	Spin time.Duration
	// Poll is the longest the notifier sleeps between scans once idle
	// (its pauses double from 20µs up to it), rounded down to
	// milliseconds; default 1ms. A guest waiting for an interrupt after
	// a long idle time waits at most this long after the kernel loop
	// published.
	Poll time.Duration
	// OnError hears why a kernel loop ended without being stopped; its
	// rings are stalled until the guest deletes and recreates them.
	OnError func(error)
}

// KernelSync serves kernel netmap ports with netmap's own sync loop
// (CSB_ENABLE, then SYNC_KLOOP_START on a dedicated thread) instead of
// Loop. In CSB mode the kernel syncs from a private copy of the ring
// state and never rewrites the ring headers the guest's netmap
// applications read, which a loop driving the port with NIOC*SYNC cannot
// avoid (docs/data-path.md).
//
// The kernel loop raises no interrupts where it takes no eventfds
// (FreeBSD), so each Session also runs a notifier: it watches every
// ring's ktoa.hwtail, which only the kernel writes, and raises vector i
// when it moved and the guest set appl_need_kick — the rule the kernel
// itself follows with irqfds (research §6.6, §6.7). Doorbells are drained
// and counted; in sleep mode the kernel never asks for them.
type KernelSync struct {
	cfg KernelConfig
}

// NewKernelSync makes a Syncer for KloopPorts.
func NewKernelSync(cfg KernelConfig) (*KernelSync, error) {
	if cfg.SleepUS == 0 {
		cfg.SleepUS = 100
	}
	if cfg.SleepUS > 1_000_000 {
		return nil, fmt.Errorf("ptnetmap: kernel sync loop sleep of %d µs is over netmap's limit of 1,000,000", cfg.SleepUS)
	}
	if cfg.Spin == 0 {
		cfg.Spin = 50 * time.Microsecond
	}
	if cfg.Poll < time.Millisecond {
		cfg.Poll = time.Millisecond
	}
	return &KernelSync{cfg: cfg}, nil
}

// Serve enables CSB mode on b's port and starts the kernel loop and the
// notifier.
func (s *KernelSync) Serve(b Binding) (Session, error) {
	p, ok := b.Port.(KloopPort)
	if !ok {
		return nil, fmt.Errorf("ptnetmap: port %s cannot run netmap's in-kernel sync loop: only kernel netmap ports (netmap:, valeX:) can", b.Port.Name())
	}
	rings := append(append([]*netmap.KRing{}, p.TxRings()...), p.RxRings()...)
	n := len(rings)
	if n == 0 || len(b.CSB.Atok) != n || len(b.CSB.Ktoa) != n || len(b.Kicks) != n {
		return nil, fmt.Errorf("ptnetmap: port %s has %d rings but %d CSB entries and %d doorbells", p.Name(), n, len(b.CSB.Atok), len(b.Kicks))
	}
	if err := p.CSBEnable(uintptr(unsafe.Pointer(&b.CSB.Atok[0])), uintptr(unsafe.Pointer(&b.CSB.Ktoa[0]))); err != nil {
		return nil, fmt.Errorf("ptnetmap: port %s: %w", p.Name(), err)
	}
	stop, err := event.New()
	if err != nil {
		return nil, err
	}
	k := &kernelSession{cfg: s.cfg, b: b, p: p, rings: rings, ntx: len(p.TxRings()), stop: stop,
		kloopDone: make(chan error, 1), notifyDone: make(chan struct{}),
		counters: make([]ringCounters, n), tails: make([]uint32, n), curs: make([]uint32, n)}
	for i := range b.CSB.Ktoa {
		k.tails[i], k.curs[i] = checkedKtoa(&b.CSB.Ktoa[i], rings[i].N, rings[i].HwTail, rings[i].HwCur)
	}
	go k.kloop()
	go k.notify()
	return k, nil
}

// kernelSession is one binding served by the kernel's loop.
type kernelSession struct {
	cfg   KernelConfig
	b     Binding
	p     KloopPort
	rings []*netmap.KRing // TX then RX: their N and shared slots
	ntx   int

	stop       *event.Event
	kloopDone  chan error
	notifyDone chan struct{}
	detach     sync.Once
	counters   []ringCounters

	// Owned by the notifier goroutine: the hwtail and hwcur last seen.
	tails, curs []uint32
}

// kloop holds a thread in the kernel for the loop's whole run.
func (k *kernelSession) kloop() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err := k.p.SyncKloop(k.cfg.SleepUS)
	k.kloopDone <- err
	if err != nil && k.cfg.OnError != nil {
		k.cfg.OnError(fmt.Errorf("ptnetmap: port %s: kernel sync loop: %w", k.p.Name(), err))
	}
}

// notify scans the CSB while things move, then sleeps between scans
// for a pause that doubles from minPause up to Poll, waking early on a
// doorbell (which a guest rings on forced transmit syncs). Packet counts
// come from the index deltas it samples, so a ring that turns over
// completely between two scans is counted one lap short; scans are
// minPause apart while traffic flows.
func (k *kernelSession) notify() {
	defer close(k.notifyDone)
	pfds := make([]unix.PollFd, 0, len(k.b.Kicks)+1)
	for _, e := range k.b.Kicks {
		pfds = append(pfds, unix.PollFd{Fd: int32(e.Fd()), Events: unix.POLLIN})
	}
	pfds = append(pfds, unix.PollFd{Fd: int32(k.stop.Fd()), Events: unix.POLLIN})
	last, pause := time.Now(), minPause
	for {
		if k.scan() {
			last, pause = time.Now(), minPause
		}
		if time.Since(last) < k.cfg.Spin {
			runtime.Gosched()
			continue
		}
		ms := 0
		if pause < time.Millisecond {
			time.Sleep(pause) // finer than poll(2)'s milliseconds
		} else {
			ms = int(pause / time.Millisecond)
		}
		pause = min(2*pause, k.cfg.Poll)
		_, err := unix.Poll(pfds, ms)
		if err != nil && !errors.Is(err, unix.EINTR) {
			if k.cfg.OnError != nil {
				k.cfg.OnError(fmt.Errorf("ptnetmap: port %s: interrupt notifier: poll: %w", k.p.Name(), err))
			}
			return
		}
		if pfds[len(pfds)-1].Revents != 0 {
			return
		}
		for i := range k.b.Kicks {
			if pfds[i].Revents != 0 {
				k.counters[i].kicks.Add(k.b.Kicks[i].Drain())
				last, pause = time.Now(), minPause // the guest is active: watch closely
			}
		}
	}
}

// minPause is the notifier's first pause after the spin.
const minPause = 20 * time.Microsecond

// scan raises the interrupts the kernel loop would have raised since the
// last scan, counts what moved, and reports whether anything did.
func (k *kernelSession) scan() bool {
	moved := false
	for i, r := range k.rings {
		ktoa := &k.b.CSB.Ktoa[i]
		tail, cur := checkedKtoa(ktoa, r.N, k.tails[i], k.curs[i])
		if tail == k.tails[i] && cur == k.curs[i] {
			continue
		}
		moved = true
		c := &k.counters[i]
		if i < k.ntx {
			c.packets.Add(uint64(netmap.Dist(k.curs[i], cur, r.N)))
		} else {
			c.packets.Add(uint64(netmap.Dist(k.tails[i], tail, r.N)))
		}
		changed := tail != k.tails[i]
		k.tails[i], k.curs[i] = tail, cur
		// The kernel published hwtail before we loaded it; a guest that
		// sets appl_need_kick after this load re-reads ktoa and sees it.
		if changed && k.b.CSB.Atok[i].ApplNeedKick() {
			k.b.Irq.Interrupt(i)
			c.interrupts.Add(1)
		}
	}
	return moved
}

// checkedKtoa reads ktoa's hwtail and hwcur, keeping the old values if
// either is outside the ring: the entry is in guest memory, and a guest
// may scribble on it between the kernel's stores, which the kernel
// overwrites at its next pass.
func checkedKtoa(ktoa *Ktoa, n, oldTail, oldCur uint32) (tail, cur uint32) {
	tail, cur = ApplRead(ktoa)
	if tail >= n || cur >= n {
		return oldTail, oldCur
	}
	return tail, cur
}

// Detach stops the notifier and the kernel loop. SYNC_KLOOP_STOP is
// retried until the loop has ended: a stop that reaches the kernel before
// the START does is not remembered.
func (k *kernelSession) Detach() {
	k.detach.Do(func() {
		k.stop.Signal()
		<-k.notifyDone
		for {
			if err := k.p.SyncKloopStop(); err != nil && k.cfg.OnError != nil {
				k.cfg.OnError(fmt.Errorf("ptnetmap: port %s: stopping the kernel sync loop: %w", k.p.Name(), err))
			}
			select {
			case <-k.kloopDone:
				k.scan() // count what the last passes moved
				k.stop.Close()
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
}

// Stats snapshots the per-ring counters. What only the kernel sees stays
// zero: its syncs and ring resets, and the bytes (by the time the
// notifier sees slots move they belong to the guest or the kernel, and
// reading their lengths would race with the owner).
func (k *kernelSession) Stats() []RingStats { return snapshot(k.counters, k.ntx, k.p) }
