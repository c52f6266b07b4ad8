package vmm

import (
	"os"

	"golang.org/x/sys/unix"
)

// anonFile returns a zeroed, sparse memory file of size bytes with no
// name in the file system: a memfd, which like a vmm(4) memory segment
// is anonymous shared memory.
func anonFile(name string, size int64) (*os.File, error) {
	fd, err := unix.MemfdCreate("ptbhyve-vmm-"+name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("memfd_create", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:"+name)
	if err := f.Truncate(size); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
