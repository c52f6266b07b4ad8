// Package shm makes and maps anonymous shared memory that can be handed to
// another process as a file descriptor: a netmap region a guest maps, a CSB,
// a ring between two processes.
package shm

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Mem is a shared-memory object and its mapping in this process.
type Mem struct {
	fd       int
	b        []byte
	borrowed bool
}

// New creates a zeroed shared-memory object of size bytes and maps it.
// name only labels the object (visible in /proc/PID/fd on Linux).
func New(name string, size int) (*Mem, error) {
	fd, err := create(name)
	if err != nil {
		return nil, fmt.Errorf("shm: create %s: %w", name, err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("shm: size %s to %d bytes: %w", name, size, err)
	}
	m, err := Map(fd, size)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return m, nil
}

// Map maps size bytes of an existing shared-memory descriptor (one received
// from a parent process, say) and takes ownership of fd.
func Map(fd, size int) (*Mem, error) {
	b, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("shm: map %d bytes of fd %d: %w", size, fd, err)
	}
	return &Mem{fd: fd, b: b}, nil
}

// Borrow wraps memory that belongs to someone else (a region placed inside
// a VM's device memory) so code written for a Mem can use it; Close leaves
// it mapped and Fd is -1.
func Borrow(b []byte) *Mem { return &Mem{fd: -1, b: b, borrowed: true} }

// ErrTooSmall is Place's error when the memory given cannot hold the
// layout.
var ErrTooSmall = errors.New("the memory given is too small")

// Place returns a borrowed view of the first size bytes of b, or a new
// object when b is nil: how a backend takes the memory its caller chose.
func Place(b []byte, name string, size int) (*Mem, error) {
	if b == nil {
		return New(name, size)
	}
	if len(b) < size {
		return nil, fmt.Errorf("shm: %s needs %d bytes; %w (%d bytes)", name, size, ErrTooSmall, len(b))
	}
	return Borrow(b[:size:size]), nil
}

// Bytes is the mapping.
func (m *Mem) Bytes() []byte { return m.b }

// Fd is the object's descriptor, to pass to another process.
func (m *Mem) Fd() int { return m.fd }

// Close unmaps the memory and closes the descriptor; the object lives on
// while another process holds it.
func (m *Mem) Close() error {
	if m.borrowed {
		m.b = nil
		return nil
	}
	err := unix.Munmap(m.b)
	if err2 := unix.Close(m.fd); err == nil {
		err = err2
	}
	m.b = nil
	return err
}
