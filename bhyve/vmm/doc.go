// Package vmm reaches a running bhyve VM from another process through
// FreeBSD's vmm(4) device: guest RAM and named device-memory segments
// mapped into this process, and MSIs raised in the guest. ptbhyve needs
// exactly these to run a ptnetmap device next to bhyve: the guest's CSB
// lives in guest RAM, the netmap memory is shared through a devmem
// segment, and interrupts go straight to the guest with VM_LAPIC_MSI
// without a round trip through bhyve.
//
// The kernel interface is the ioctls of /dev/vmm/NAME on FreeBSD/amd64;
// their encodings differ between FreeBSD 14 and 15 (struct vm_memseg grew
// from 32 to 56 bytes and memory-segment ids were renumbered), so Open
// asks the running kernel which VM_GET_MEMSEG it accepts, 15's first.
// Elsewhere Open fails, and Fake stands in for a VM in tests.
//
// A VM outlives every descriptor to it, but it can be destroyed at any
// time (bhyvectl --destroy, bhyve exiting in monitor mode): every call
// then fails with an error that errors.Is reports as ErrGone.
package vmm
