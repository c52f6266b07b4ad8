package vmm

import "golang.org/x/sys/unix"

// Machine is what ptbhyve needs of a VM, so the daemon can run on a real
// bhyve VM (*VM) or, in tests, on a *Fake.
type Machine interface {
	// Memory maps the guest's RAM.
	Memory() (*GuestMemory, error)
	// Devmem maps the whole devmem segment named segname; Unmap releases it.
	Devmem(segname string) ([]byte, error)
	// RaiseMSI delivers an MSI with the address and data the guest
	// programmed into the device's MSI or MSI-X capability.
	RaiseMSI(addr uint64, data uint32) error
	// Close releases the descriptors; the VM itself lives on.
	Close() error
}

var (
	_ Machine = (*VM)(nil)
	_ Machine = (*Fake)(nil)
)

// Unmap releases a mapping that Devmem returned.
func Unmap(b []byte) error {
	return unix.Munmap(b)
}
