//go:build linux || freebsd

package kernel

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// sysCalls is every system call File makes. The real implementation is
// osCalls; the tests substitute a model of the netmap driver, since no
// netmap kernel exists where they run.
type sysCalls interface {
	open(path string) (int, error)
	close(fd int) error
	// ioctl issues request req on fd with arg (nil for none). arg points
	// into memory from anon.
	ioctl(fd int, req uint32, arg unsafe.Pointer) error
	// mmap maps length bytes of fd at offset 0, shared and read-write.
	mmap(fd int, length int) ([]byte, error)
	munmap(b []byte) error
	// anon returns length bytes of zeroed anonymous memory, outside the Go
	// heap, for request buffers.
	anon(length int) ([]byte, error)
	poll(fds []unix.PollFd, timeoutMS int) (int, error)
}

type osCalls struct{}

func (osCalls) open(path string) (int, error) {
	return unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
}

func (osCalls) close(fd int) error { return unix.Close(fd) }

func (osCalls) ioctl(fd int, req uint32, arg unsafe.Pointer) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
	if e != 0 {
		return e
	}
	return nil
}

func (osCalls) mmap(fd int, length int) ([]byte, error) {
	return unix.Mmap(fd, 0, length, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
}

func (osCalls) munmap(b []byte) error { return unix.Munmap(b) }

func (osCalls) anon(length int) ([]byte, error) {
	return unix.Mmap(-1, 0, length, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
}

func (osCalls) poll(fds []unix.PollFd, timeoutMS int) (int, error) {
	return unix.Poll(fds, timeoutMS)
}
