package event

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// New makes an eventfd.
func New() (*Event, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("event: eventfd: %w", err)
	}
	return &Event{r: fd, w: fd}, nil
}

var one = [8]byte{1}

// Signal wakes the waiter. It never blocks: a full counter or pipe already
// holds a wakeup.
func (e *Event) Signal() {
	_, _ = unix.Write(e.w, one[:])
}

func (e *Event) isPipe() bool { return e.r != e.w }
