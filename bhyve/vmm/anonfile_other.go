//go:build !linux

package vmm

import "os"

// anonFile returns a zeroed, sparse file of size bytes with no name in
// the file system: a temporary file, unlinked at once (x/sys/unix has no
// memfd_create outside Linux).
func anonFile(name string, size int64) (*os.File, error) {
	f, err := os.CreateTemp("", "ptbhyve-vmm-"+name+"-")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
