// Package event is a one-bit, pollable notification between goroutines,
// threads or processes: an eventfd on Linux, a pipe elsewhere. Signals
// coalesce; a waiter polls Fd for readability and then Drains.
package event

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Event is a pollable notification. Both ends are non-blocking.
type Event struct {
	r, w int
}

// FromFds wraps descriptors received from elsewhere (a parent process, a
// VMM): r is polled and drained, w is written by Signal. For an eventfd pass
// the same descriptor twice.
func FromFds(r, w int) *Event { return &Event{r: r, w: w} }

// Fd is the descriptor to poll for POLLIN.
func (e *Event) Fd() int { return e.r }

// WriteFd is the descriptor Signal writes to.
func (e *Event) WriteFd() int { return e.w }

// Files returns the descriptors as files to hand to a child process
// (exec.Cmd.ExtraFiles); for an eventfd both are the same descriptor.
func (e *Event) Files(name string) (r, w *os.File) {
	return os.NewFile(uintptr(e.r), name+"-r"), os.NewFile(uintptr(e.w), name+"-w")
}

// Drain consumes pending signals and returns how many were coalesced
// (an eventfd counts them; a pipe counts the bytes written).
func (e *Event) Drain() uint64 {
	var buf [64]byte
	if !e.isPipe() {
		if n, err := unix.Read(e.r, buf[:8]); n == 8 && err == nil {
			return binary.NativeEndian.Uint64(buf[:8])
		}
		return 0
	}
	var total uint64
	for {
		n, err := unix.Read(e.r, buf[:])
		if n <= 0 || err != nil {
			return total
		}
		total += uint64(n)
	}
}

// Wait blocks until the event is signalled or timeoutMs elapses (-1: no
// limit), then drains it. It reports whether it was signalled.
func (e *Event) Wait(timeoutMs int) (bool, error) {
	fds := []unix.PollFd{{Fd: int32(e.r), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, timeoutMs)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("event: poll: %w", err)
		}
		if n > 0 {
			e.Drain()
			return true, nil
		}
		return false, nil
	}
}

// Close releases the descriptors.
func (e *Event) Close() error {
	err := unix.Close(e.r)
	if e.w != e.r {
		if err2 := unix.Close(e.w); err == nil {
			err = err2
		}
	}
	return err
}

// NewN makes n events, one per ring or vector; on failure it closes the
// ones it made.
func NewN(n int) ([]*Event, error) {
	evs := make([]*Event, 0, n)
	for range n {
		e, err := New()
		if err != nil {
			for _, x := range evs {
				x.Close()
			}
			return nil, err
		}
		evs = append(evs, e)
	}
	return evs, nil
}
