package shm

import "golang.org/x/sys/unix"

func create(name string) (int, error) {
	return unix.MemfdCreate(name, unix.MFD_CLOEXEC)
}
