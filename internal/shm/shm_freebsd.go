package shm

import (
	"golang.org/x/sys/unix"
)

// sysShmOpen2 is shm_open2(2), FreeBSD 13+; x/sys/unix has no wrapper.
const (
	sysShmOpen2 = 571
	shmAnon     = 1 // SHM_ANON: an anonymous object, as memfd_create makes
)

func create(string) (int, error) {
	fd, _, errno := unix.Syscall6(sysShmOpen2, shmAnon, unix.O_RDWR|unix.O_CLOEXEC, 0o600, 0, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}
