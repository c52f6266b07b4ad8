package ptnetmap

import (
	"fmt"

	"github.com/ptbhyve/ptbhyve/internal/event"
)

// FlatMemory is guest memory where a guest-physical address is an offset
// into one shared mapping: what a guest sees through a transport that puts
// the CSB inside the shared region (ivshmem), and what tests and the
// benchmark use for guest RAM.
type FlatMemory []byte

// Slice implements GuestMemory.
func (m FlatMemory) Slice(gpa, size uint64) ([]byte, error) {
	if gpa > uint64(len(m)) || size > uint64(len(m))-gpa {
		return nil, fmt.Errorf("guest-physical %#x+%d is outside the %d bytes of guest memory", gpa, size, len(m))
	}
	return m[gpa : gpa+size : gpa+size], nil
}

// EventInterrupts raises vector i by signalling event i, for a VMM that
// turns an eventfd into an MSI-X message (KVM irqfd, QEMU's ivshmem
// server protocol) and for tests.
type EventInterrupts []*event.Event

// Interrupt implements Interrupter.
func (q EventInterrupts) Interrupt(vector int) { q[vector].Signal() }
