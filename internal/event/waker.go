package event

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Waker lets a sync loop sleep on a backend whose producers publish
// progress as indexes in memory (pipes, the switch): producers call Signal
// after publishing, and it costs them a system call only when the loop is
// actually asleep. It implements netmap.Waker.
type Waker struct {
	ev    *Event
	armed atomic.Uint32
	// pending reports whether progress the loop has not yet seen is
	// already published.
	pending func() bool
}

// NewWaker makes a Waker; pending is called by Arm, on the sleeper's
// goroutine.
func NewWaker(pending func() bool) (*Waker, error) {
	ev, err := New()
	if err != nil {
		return nil, err
	}
	return &Waker{ev: ev, pending: pending}, nil
}

// Fd is the descriptor to poll.
func (w *Waker) Fd() int { return w.ev.Fd() }

// Events is what to poll Fd for.
func (w *Waker) Events() int16 { return unix.POLLIN }

// Arm announces a sleep, then re-checks for published progress. The store
// to armed and the producers' index stores are sequentially consistent, so
// either a producer sees armed set and signals, or pending sees its index.
func (w *Waker) Arm() bool {
	w.armed.Store(1)
	if w.pending() {
		w.armed.Store(0)
		return false
	}
	return true
}

// Disarm ends a sleep and clears the notification.
func (w *Waker) Disarm() {
	w.armed.Store(0)
	w.ev.Drain()
}

// Signal wakes the sleeper if there is one; of several producers, one wins
// the swap and writes.
func (w *Waker) Signal() {
	if w.armed.Load() != 0 && w.armed.CompareAndSwap(1, 0) {
		w.ev.Signal()
	}
}

// Close releases the descriptor.
func (w *Waker) Close() error { return w.ev.Close() }
