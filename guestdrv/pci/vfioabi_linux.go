package pci

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// VFIO's ioctls, as linux/vfio.h numbers them: _IO(';', 100 + n), with no
// size or direction bits; each argument structure begins with argsz instead.
const vfioBase = ';'<<8 | 100

const (
	vfioGetAPIVersion = vfioBase + iota
	vfioCheckExtension
	vfioSetIOMMU
	vfioGroupGetStatus
	vfioGroupSetContainer
	_ // VFIO_GROUP_UNSET_CONTAINER
	vfioGroupGetDeviceFD
	_ // VFIO_DEVICE_GET_INFO
	vfioDeviceGetRegionInfo
	vfioDeviceGetIRQInfo
	vfioDeviceSetIRQs
)

const (
	vfioAPIVersion   = 0 // what VFIO_GET_API_VERSION returns
	vfioType1v2IOMMU = 3 // the IOMMU model for VFIO_CHECK_EXTENSION and VFIO_SET_IOMMU

	groupFlagViable = 1 << 0 // vfio_group_status.flags: every device in the group is VFIO's or driverless

	regionFlagMmap = 1 << 2 // vfio_region_info.flags: the region can be mmapped

	// vfio-pci's region and IRQ indexes.
	regionBAR0   = 0
	regionBAR2   = 2
	regionConfig = 7
	irqMSIX      = 2

	// vfio_irq_set.flags: what data follows the header, and what to do.
	irqSetDataNone      = 1 << 0
	irqSetDataEventfd   = 1 << 2
	irqSetActionTrigger = 1 << 5
)

// vfioGroupStatus is struct vfio_group_status.
type vfioGroupStatus struct {
	Argsz uint32
	Flags uint32
}

// vfioRegionInfo is struct vfio_region_info: the region's size, and the
// offset at which to pread, pwrite or mmap it on the device descriptor.
type vfioRegionInfo struct {
	Argsz     uint32
	Flags     uint32
	Index     uint32
	CapOffset uint32
	Size      uint64
	Offset    uint64
}

// vfioIRQInfo is struct vfio_irq_info.
type vfioIRQInfo struct {
	Argsz uint32
	Flags uint32
	Index uint32
	Count uint32 // how many vectors the index has
}

// irqSetHeaderSize is the size of struct vfio_irq_set before its data:
// argsz, flags, index, start and count, each a u32.
const irqSetHeaderSize = 20

// encodeIRQSet builds the argument of VFIO_DEVICE_SET_IRQS for vectors 0
// to len(fds)-1 of index: the header, then one s32 eventfd per vector.
// With no fds and irqSetDataNone|irqSetActionTrigger it disables the index.
func encodeIRQSet(flags, index uint32, fds []int) []byte {
	buf := make([]byte, irqSetHeaderSize+4*len(fds))
	ne := binary.NativeEndian
	ne.PutUint32(buf[0:], uint32(len(buf)))
	ne.PutUint32(buf[4:], flags)
	ne.PutUint32(buf[8:], index)
	ne.PutUint32(buf[12:], 0) // start
	ne.PutUint32(buf[16:], uint32(len(fds)))
	for i, fd := range fds {
		ne.PutUint32(buf[irqSetHeaderSize+4*i:], uint32(int32(fd)))
	}
	return buf
}

// ioctl issues a request whose argument is an integer, and returns what
// the kernel returned.
func ioctl(fd int, req, arg uintptr) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, arg)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// ioctlPtr issues a request whose argument is a pointer. Taking it as an
// unsafe.Pointer keeps the pointee alive, and converting it to uintptr
// within the Syscall call is the conversion the unsafe rules allow.
func ioctlPtr(fd int, req uintptr, arg unsafe.Pointer) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}
