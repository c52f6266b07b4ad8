//go:build !linux

package event

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// New makes a non-blocking pipe. FreeBSD 13+ has eventfd(2) in libc only,
// not in x/sys/unix; a pipe gives the same semantics for a one-bit event.
func New() (*Event, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("event: pipe: %w", err)
	}
	return &Event{r: p[0], w: p[1]}, nil
}

var one = [1]byte{1}

// Signal wakes the waiter. It never blocks: a full pipe already holds a
// wakeup.
func (e *Event) Signal() {
	_, _ = unix.Write(e.w, one[:])
}

func (e *Event) isPipe() bool { return true }
