package ptnetmap

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ptbhyve/ptbhyve/internal/event"
	"github.com/ptbhyve/ptbhyve/netmap"
	"golang.org/x/sys/unix"
)

// Interrupter raises the guest's interrupt vector for a ring (MSI-X vector
// i serves ring i, TX rings then RX rings).
type Interrupter interface {
	Interrupt(vector int)
}

// LoopConfig tunes a sync loop.
type LoopConfig struct {
	// Spin is how long the loop keeps polling the CSB and the backends
	// after the last progress before it asks for doorbells and sleeps.
	// Zero sleeps at once; either way an idle device costs no CPU.
	Spin time.Duration
	// SafetyPoll bounds a sleep, so a lost notification (the guest's
	// missing store-load fence, research §6.8) stalls a ring for at most
	// this long. Default one second.
	SafetyPoll time.Duration
	// CPU pins the loop's thread when >= 0 (Linux only; ignored elsewhere).
	CPU int
}

// RingStats are the counters of one ring, updated once per batch.
type RingStats struct {
	Ring       int    `json:"ring"`
	Dir        string `json:"dir"`
	Packets    uint64 `json:"packets"`
	Bytes      uint64 `json:"bytes"`
	Syncs      uint64 `json:"syncs"`
	Kicks      uint64 `json:"kicks"`
	Interrupts uint64 `json:"interrupts"`
	Resets     uint64 `json:"resets"`
	// Drops are frames the port dropped outside the ring (a full
	// receiver, an empty AF_XDP FILL ring), for ports that count them
	// (netmap.DropCounter); 0 otherwise.
	Drops uint64 `json:"drops"`
}

// Add adds o's counters to s.
func (s *RingStats) Add(o RingStats) {
	s.Packets += o.Packets
	s.Bytes += o.Bytes
	s.Syncs += o.Syncs
	s.Kicks += o.Kicks
	s.Interrupts += o.Interrupts
	s.Resets += o.Resets
	s.Drops += o.Drops
}

type ringCounters struct {
	packets, bytes, syncs, kicks, interrupts, resets atomic.Uint64
	_                                                [16]byte
}

// Syncer serves a device's rings between PTCTL CREATE and DELETE: it
// takes over the CSB the guest handed in and runs the host half of the
// sync protocol until the Session is detached.
type Syncer interface {
	Serve(Binding) (Session, error)
}

// Session is one Binding being served.
type Session interface {
	// Detach stops serving the binding and returns once nothing touches
	// its CSB, rings or doorbells any more.
	Detach()
	// Stats snapshots the per-ring counters, TX rings then RX rings.
	Stats() []RingStats
}

// Binding is one device's rings as a loop serves them: a port, the CSB its
// guest publishes through (TX entries then RX), a doorbell per ring, and
// the way to interrupt the guest.
type Binding struct {
	Port  netmap.Port
	CSB   CSB
	Kicks []*event.Event
	Irq   Interrupter
}

// Attachment is a Binding being served by a Loop.
type Attachment struct {
	loop     *Loop
	b        Binding
	rings    []*netmap.KRing // TX then RX, CSB order
	ntx      int
	bad      []badIdx
	counters []ringCounters
}

type badIdx struct {
	set       bool
	head, cur uint32
}

// maxPasses bounds the sync passes over one ring per visit, so one busy
// ring cannot starve the others.
const maxPasses = 8

// Loop is a host sync loop: netmap_sync_kloop's rules over any netmap.Port,
// on one goroutine locked to an OS thread, serving the rings of one or more
// devices. Devices attach and detach while it runs; the loop reads its
// binding list through an atomic pointer, so the data path takes no lock.
type Loop struct {
	cfg      LoopConfig
	bindings atomic.Pointer[[]*Attachment]
	mu       sync.Mutex // serialises Attach/Detach
	wake     *event.Event
	pass     atomic.Uint64
	stopping atomic.Bool
	done     chan struct{}
	err      error

	pfds []unix.PollFd // rebuilt when the binding list changes
	seen *[]*Attachment
}

// NewLoop makes a loop; Start runs it.
func NewLoop(cfg LoopConfig) (*Loop, error) {
	if cfg.SafetyPoll == 0 {
		cfg.SafetyPoll = time.Second
	}
	wake, err := event.New()
	if err != nil {
		return nil, err
	}
	l := &Loop{cfg: cfg, wake: wake, done: make(chan struct{})}
	empty := []*Attachment{}
	l.bindings.Store(&empty)
	return l, nil
}

// Attach starts serving b. It first initialises b's CSB from the rings'
// state, as CSB_ENABLE does, so the guest may read it as soon as Attach
// returns.
func (l *Loop) Attach(b Binding) (*Attachment, error) {
	rings := append(append([]*netmap.KRing{}, b.Port.TxRings()...), b.Port.RxRings()...)
	if len(b.CSB.Atok) != len(rings) || len(b.CSB.Ktoa) != len(rings) || len(b.Kicks) != len(rings) {
		return nil, fmt.Errorf("ptnetmap: port %s has %d rings but %d CSB entries and %d doorbells",
			b.Port.Name(), len(rings), len(b.CSB.Atok), len(b.Kicks))
	}
	a := &Attachment{loop: l, b: b, rings: rings, ntx: len(b.Port.TxRings()),
		bad: make([]badIdx, len(rings)), counters: make([]ringCounters, len(rings))}
	for i, k := range rings {
		b.CSB.Atok[i].Init(k.RHead, k.RCur)
		b.CSB.Ktoa[i].Init(k.HwCur, k.HwTail)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.done:
		return nil, fmt.Errorf("ptnetmap: sync loop has stopped: %v", l.err)
	default:
	}
	old := *l.bindings.Load()
	next := append(append(make([]*Attachment, 0, len(old)+1), old...), a)
	l.bindings.Store(&next)
	l.wake.Signal()
	return a, nil
}

// Serve implements Syncer with Attach.
func (l *Loop) Serve(b Binding) (Session, error) {
	a, err := l.Attach(b)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Detach stops serving the binding and returns once the loop no longer
// touches it (its CSB, rings or doorbells).
func (a *Attachment) Detach() {
	l := a.loop
	l.mu.Lock()
	old := *l.bindings.Load()
	next := make([]*Attachment, 0, len(old))
	for _, x := range old {
		if x != a {
			next = append(next, x)
		}
	}
	l.bindings.Store(&next)
	l.mu.Unlock()
	// Two pass boundaries after the swap, the loop has dropped every
	// reference it held to the old list.
	start := l.pass.Load()
	l.wake.Signal()
	for l.pass.Load() < start+2 {
		select {
		case <-l.done:
			return
		case <-time.After(50 * time.Microsecond):
			l.wake.Signal()
		}
	}
	// One last pass from here, now that the loop has let go: whatever the
	// guest published before it asked to stop is honoured, so a later
	// CREATE, which starts the CSB from the rings' state, neither replays
	// frames the guest released nor drops frames it queued.
	for i := range a.rings {
		a.ringWork(i)
	}
}

// Stats snapshots the binding's per-ring counters.
func (a *Attachment) Stats() []RingStats { return snapshot(a.counters, a.ntx, a.b.Port) }

// snapshot reads the counters of rings TX then RX (ntx of them TX), with
// the port's own drop counts if it keeps them.
func snapshot(counters []ringCounters, ntx int, p netmap.Port) []RingStats {
	out := make([]RingStats, len(counters))
	drops, _ := p.(netmap.DropCounter)
	for i := range counters {
		c := &counters[i]
		dir, r := "tx", i
		if i >= ntx {
			dir, r = "rx", i-ntx
		}
		out[i] = RingStats{Ring: r, Dir: dir, Packets: c.packets.Load(), Bytes: c.bytes.Load(), Syncs: c.syncs.Load(),
			Kicks: c.kicks.Load(), Interrupts: c.interrupts.Load(), Resets: c.resets.Load()}
		if drops != nil {
			out[i].Drops = drops.Drops(i < ntx, r)
		}
	}
	return out
}

// Start runs the loop on its own goroutine.
func (l *Loop) Start() { go l.run() }

// Stop ends the loop and waits for it; it returns the error that ended the
// loop early, if any.
func (l *Loop) Stop() error {
	if l.stopping.CompareAndSwap(false, true) {
		l.wake.Signal()
	}
	<-l.done
	return l.err
}

// Done is closed when the loop has ended.
func (l *Loop) Done() <-chan struct{} { return l.done }

func (l *Loop) run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(l.done)
	defer l.wake.Close()
	if l.cfg.CPU >= 0 {
		pinThread(l.cfg.CPU)
	}
	var idleSince time.Time
	for !l.stopping.Load() {
		l.pass.Add(1)
		list := l.bindings.Load()
		progress := false
		for _, a := range *list {
			for i := range a.rings {
				p, err := a.ringWork(i)
				if err != nil {
					l.err = err
					return
				}
				progress = progress || p
			}
		}
		if progress {
			idleSince = time.Time{}
			continue
		}
		if idleSince.IsZero() {
			idleSince = time.Now()
		}
		if l.cfg.Spin > 0 && time.Since(idleSince) < l.cfg.Spin {
			continue
		}
		if err := l.sleep(list); err != nil {
			l.err = err
			return
		}
		idleSince = time.Time{}
	}
}

func (l *Loop) setNeedKick(list []*Attachment, on bool) {
	for _, a := range list {
		for i := range a.rings {
			a.b.CSB.Ktoa[i].SetKernNeedKick(on)
		}
	}
}

// sleep asks for doorbells on every ring, re-checks the CSBs (the host half
// of the lost-wakeup double check), arms the backends' wakers and polls.
func (l *Loop) sleep(list *[]*Attachment) error {
	as := *list
	l.setNeedKick(as, true)
	defer l.setNeedKick(as, false)
	// The stores above are sequentially consistent: a guest that published
	// after we looked will see kern_need_kick and ring the doorbell.
	for _, a := range as {
		for i, k := range a.rings {
			head, _, _ := KernRead(&a.b.CSB.Atok[i])
			if head != k.RHead && !a.isBad(i, head) {
				return nil
			}
		}
	}
	armed := 0
	for _, a := range as {
		if !a.b.Port.Waker().Arm() {
			break
		}
		armed++
	}
	defer func() {
		for _, a := range as[:armed] {
			a.b.Port.Waker().Disarm()
		}
	}()
	if armed < len(as) {
		return nil
	}
	if l.seen != list {
		l.seen = list
		l.pfds = l.pfds[:0]
		for _, a := range as {
			for _, k := range a.b.Kicks {
				l.pfds = append(l.pfds, unix.PollFd{Fd: int32(k.Fd()), Events: unix.POLLIN})
			}
		}
		for _, a := range as {
			w := a.b.Port.Waker()
			l.pfds = append(l.pfds, unix.PollFd{Fd: int32(w.Fd()), Events: w.Events()})
		}
		l.pfds = append(l.pfds, unix.PollFd{Fd: int32(l.wake.Fd()), Events: unix.POLLIN})
	}
	// A waker's events may change between sleeps (a kernel port asks for
	// POLLOUT only while a TX ring is full, or it would never sleep).
	wk := len(l.pfds) - 1 - len(as)
	for i, a := range as {
		l.pfds[wk+i].Events = a.b.Port.Waker().Events()
		l.pfds[wk+i].Revents = 0
	}
	ms := int(l.cfg.SafetyPoll / time.Millisecond)
	for {
		_, err := unix.Poll(l.pfds, ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("ptnetmap: sync loop poll: %w", err)
		}
		break
	}
	p := 0
	for _, a := range as {
		for i, k := range a.b.Kicks {
			if l.pfds[p].Revents != 0 {
				a.counters[i].kicks.Add(k.Drain())
			}
			p++
		}
	}
	if l.pfds[len(l.pfds)-1].Revents != 0 {
		l.wake.Drain()
	}
	return nil
}

func (a *Attachment) isBad(i int, head uint32) bool {
	b := &a.bad[i]
	if !b.set {
		return false
	}
	_, cur, _ := KernRead(&a.b.CSB.Atok[i])
	return b.head == head && b.cur == cur
}

// ringWork runs the sync loop body for ring i until it has nothing more to
// do for now, and reports whether anything moved.
func (a *Attachment) ringWork(i int) (bool, error) {
	k := a.rings[i]
	atok, ktoa := &a.b.CSB.Atok[i], &a.b.CSB.Ktoa[i]
	c := &a.counters[i]
	tx := i < a.ntx
	ring := i
	if !tx {
		ring = i - a.ntx
	}
	progress, notify := false, false
	head, cur, flags := KernRead(atok)
	for range maxPasses {
		if a.bad[i].set {
			if a.isBad(i, head) {
				break
			}
			a.bad[i].set = false
		}
		if !k.Prologue(head, cur) {
			a.reset(i, head, cur)
			break
		}
		oldCur, oldTail := k.HwCur, k.HwTail
		var err error
		if tx {
			if k.TxSpace() <= k.N/2 {
				flags |= netmap.NAFForceReclaim
			}
			err = a.b.Port.TxSync(ring, int(flags))
		} else {
			err = a.b.Port.RxSync(ring, int(flags))
		}
		c.syncs.Add(1)
		if errors.Is(err, netmap.ErrBadSlot) {
			a.reset(i, head, cur)
			break
		}
		if err != nil {
			return progress, fmt.Errorf("ptnetmap: %s ring %d: %w", a.b.Port.Name(), i, err)
		}
		// Count before publishing: once the guest reads the new hwtail,
		// the slots are its own again and it may be rewriting them.
		if tx {
			c.packets.Add(uint64(netmap.Dist(oldCur, k.HwCur, k.N)))
			c.bytes.Add(slotBytes(k, oldCur, k.HwCur))
		} else {
			c.packets.Add(uint64(netmap.Dist(oldTail, k.HwTail, k.N)))
			c.bytes.Add(slotBytes(k, oldTail, k.HwTail))
		}
		KernWrite(ktoa, k.HwCur, k.HwTail)
		moved := k.HwCur != oldCur || k.HwTail != oldTail
		if k.HwTail != k.RTail {
			k.RTail = k.HwTail
			notify = true
		}
		// KernWrite's stores are sequentially consistent, so this load is
		// ordered after them: a guest that set appl_need_kick and then
		// re-read ktoa either sees our hwtail or is seen here.
		if notify && atok.ApplNeedKick() {
			a.b.Irq.Interrupt(i)
			c.interrupts.Add(1)
			notify = false
		}
		progress = progress || moved
		nhead, ncur, nflags := KernRead(atok)
		if !moved && nhead == head && ncur == cur {
			break
		}
		head, cur, flags = nhead, ncur, nflags
	}
	return progress, nil
}

// slotBytes sums the lengths of slots [from, to): the frames a sync just
// moved, whose slots the backend has just read or written (so the loads
// hit the cache) and which the guest does not own until the loop
// publishes. Both indexes were validated (they are the kernel ring's).
func slotBytes(k *netmap.KRing, from, to uint32) uint64 {
	var n uint64
	for j := from; j != to; j = k.Ring.Next(j) {
		n += uint64(k.Ring.Slot(j).Len)
	}
	return n
}

// reset reinitialises ring i after the guest broke the protocol, tells the
// guest the ring's true state, and remembers the bad indexes so the same
// garbage is counted once.
func (a *Attachment) reset(i int, head, cur uint32) {
	k := a.rings[i]
	k.Reinit()
	a.counters[i].resets.Add(1)
	KernWrite(&a.b.CSB.Ktoa[i], k.HwCur, k.HwTail)
	a.bad[i] = badIdx{set: true, head: head, cur: cur}
}
