package vmm

import (
	"errors"
	"fmt"
	"syscall"
)

// ioc encodes an ioctl command the way FreeBSD's <sys/ioccom.h> does:
// direction in the top 3 bits, the argument's size in the next 13, then
// the group letter and the number. The kernel copies exactly that many
// bytes in and out, so a struct of the wrong size is a different command
// (ENOTTY), never a short copy.
func ioc(dir uint32, group byte, num uint8, size uintptr) uint32 {
	return dir | uint32(size&iocParamMask)<<16 | uint32(group)<<8 | uint32(num)
}

// <sys/ioccom.h> directions and the size mask.
const (
	iocVoid      = 0x20000000
	iocOut       = 0x40000000
	iocIn        = 0x80000000
	iocInOut     = iocIn | iocOut
	iocParamMask = 0x1fff
)

// IOCNUM values of machine/vmm_dev.h (amd64), the same on 14 and 15.
const (
	iocnumGetMemseg   = 15
	iocnumMmapGetnext = 17
	iocnumLapicMSI    = 36
)

// memmap is struct vm_memmap: one entry of the guest physical memory
// map, a range of a memory segment mapped at a guest-physical address.
type memmap struct {
	GPA    uint64
	Segid  int32
	_      [4]byte
	Segoff uint64
	Len    uint64
	Prot   int32
	Flags  int32
}

// memseg is struct vm_memseg as of FreeBSD 15. FreeBSD 14's struct is the
// first 32 bytes of it (up to Name), so one buffer serves both ABIs and
// only the command, which carries the size, differs. The NUMA fields are
// for VM_ALLOC_MEMSEG and stay zero (DSMask is a user pointer: nil).
type memseg struct {
	Segid      int32
	_          [4]byte
	Len        uint64
	Name       [segNameSize]byte
	DSMask     uint64
	DSMaskSize uint64
	DSPolicy   int32
	_          [4]byte
}

// segNameSize is VM_MAX_SUFFIXLEN+1: a segment name is at most 15 bytes.
const segNameSize = 16

// lapicMSI is struct vm_lapic_msi: Msg is the MSI data word and Addr the
// MSI address, as the guest programmed them into the device.
type lapicMSI struct {
	Msg  uint64
	Addr uint64
}

// Commands the package issues. VM_MMAP_GETNEXT and VM_LAPIC_MSI are the
// same on 14 and 15; VM_GET_MEMSEG is per abi.
var (
	cmdMmapGetnext = ioc(iocInOut, 'v', iocnumMmapGetnext, 40)
	cmdLapicMSI    = ioc(iocIn, 'v', iocnumLapicMSI, 16)
)

// abi is what differs between the vmm(4) of FreeBSD 14 and of 15.
type abi struct {
	name      string
	getMemseg uint32 // VM_GET_MEMSEG
	// segments is VM_MAX_MEMSEGS, the number of segment ids. Segment ids
	// are renumbered too (14: sysmem 0, bootrom 1, framebuffer 2, PCI ROM
	// 3; 15: sysmem 0-7, one per NUMA domain, then 8, 9, 10), but this
	// package tells sysmem from devmem by name, so only the count matters.
	segments int32
}

var (
	abi14 = abi{name: "FreeBSD 14", getMemseg: ioc(iocInOut, 'v', iocnumGetMemseg, 32), segments: 4}
	abi15 = abi{name: "FreeBSD 15", getMemseg: ioc(iocInOut, 'v', iocnumGetMemseg, 56), segments: 11}
)

// detectABI asks the kernel which VM_GET_MEMSEG it knows, newest first;
// probe issues one on segment 0 (harmless: a shared-lock read that
// succeeds with length 0 before bhyve allocates memory).
//
// Asking beats reading kern.osreldate: the command number is exactly what
// the kernel accepts (an unknown command is ENOTTY on both 14 and 15), it
// needs no table of __FreeBSD_version values for when the struct grew in
// 15-CURRENT, and it is right for a 14 kernel with a backported vmm. The
// order matters: a 15 kernel built with COMPAT_FREEBSD14 (GENERIC is)
// also accepts the 14 command but shifts the segment id it is given
// (1 becomes 8), while VM_MMAP_GETNEXT reports 15 ids untranslated, so
// using the 14 command on 15 would look up the wrong segments.
func detectABI(probe func(cmd uint32) error) (*abi, error) {
	var failed []error
	for _, a := range []*abi{&abi15, &abi14} {
		err := probe(a.getMemseg)
		if err == nil {
			return a, nil
		}
		if !errors.Is(err, syscall.ENOTTY) {
			return nil, err
		}
		failed = append(failed, fmt.Errorf("%s VM_GET_MEMSEG %#x: %w", a.name, a.getMemseg, err))
	}
	return nil, fmt.Errorf("vmm(4) accepts neither the FreeBSD 15 nor the 14 memory-segment ioctl: %w", errors.Join(failed...))
}
