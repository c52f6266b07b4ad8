package vmm

import (
	"errors"
	"fmt"
	"math"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// VM is an open /dev/vmm/NAME: a bhyve VM that bhyve created and runs.
// Its methods may be called concurrently.
type VM struct {
	name string
	f    *os.File
	rc   syscall.RawConn // f's: Close cannot pull f from under an ioctl
	abi  *abi
}

// Open opens the VM that bhyve runs under name (bhyve's last argument).
// It needs root: vmm(4)'s device files are 0600 root:wheel on 14 and 15.
func Open(name string) (*VM, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	f, rc, err := openDev("/dev/vmm/" + name)
	if err != nil {
		return nil, openError(name, err, vmmLoaded)
	}
	v := &VM{name: name, f: f, rc: rc}
	v.abi, err = detectABI(func(cmd uint32) error {
		m := memseg{Segid: 0}
		return v.ioctl(cmd, unsafe.Pointer(&m))
	})
	if err != nil {
		f.Close()
		return nil, ioctlError(name, "detecting the vmm(4) ABI", err)
	}
	return v, nil
}

// openDev opens a vmm(4) device file read-write. unix.Open then
// os.NewFile keeps the descriptor blocking and out of the netpoller,
// which has nothing to wait for on these devices.
func openDev(path string) (*os.File, syscall.RawConn, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	f := os.NewFile(uintptr(fd), path)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, rc, nil
}

// vmmLoaded reports whether vmm(4) is in the kernel: /dev/vmm only
// appears with the first VM, so its absence proves nothing.
func vmmLoaded() bool {
	name, err := unix.BytePtrFromString("vmm")
	if err != nil {
		return false
	}
	_, _, errno := unix.Syscall(unix.SYS_MODFIND, uintptr(unsafe.Pointer(name)), 0, 0)
	return errno == 0
}

// ioctl issues cmd with arg, a pointer to the command's struct.
func (v *VM) ioctl(cmd uint32, arg unsafe.Pointer) error {
	var errno syscall.Errno
	err := v.rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, uintptr(cmd), uintptr(arg))
	})
	if err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// nextMap implements memsegs with VM_MMAP_GETNEXT.
func (v *VM) nextMap(gpa uint64) (memmap, bool, error) {
	m := memmap{GPA: gpa}
	err := v.ioctl(cmdMmapGetnext, unsafe.Pointer(&m))
	if errors.Is(err, syscall.ENOENT) { // here ENOENT is the end of the map
		return memmap{}, false, nil
	}
	if err != nil {
		return memmap{}, false, fmt.Errorf("VM_MMAP_GETNEXT: %w", err)
	}
	return m, true, nil
}

// segment implements memsegs with VM_GET_MEMSEG.
func (v *VM) segment(id int32) (segment, error) {
	m := memseg{Segid: id}
	err := v.ioctl(v.abi.getMemseg, unsafe.Pointer(&m))
	if errors.Is(err, syscall.EINVAL) {
		return segment{}, errNoSegment
	}
	if err != nil {
		return segment{}, fmt.Errorf("VM_GET_MEMSEG %d: %w", id, err)
	}
	return segment{id: id, len: m.Len, name: unix.ByteSliceToString(m.Name[:])}, nil
}

// Memory maps the guest's RAM: each sysmem range of the memory map is
// mapped from /dev/vmm/NAME at file offset = guest-physical address,
// shared and read-write (vmm(4) refuses PROT_EXEC), and left out of core
// dumps as bhyve does, since it can be many gigabytes of guest data.
func (v *VM) Memory() (*GuestMemory, error) {
	g, err := mapGuestMemory(v, func(gpa, n uint64) ([]byte, error) {
		return mmap(v.rc, gpa, n)
	})
	if err != nil {
		return nil, ioctlError(v.name, "mapping guest memory ("+v.abi.name+" vmm)", err)
	}
	return g, nil
}

// Devmem maps all of the devmem segment segname, which bhyve (or a
// bhyve plugin) allocated with VM_ALLOC_MEMSEG and which the kernel
// exposes as /dev/vmm.io/NAME.SEGNAME. The segment, and so the mapping,
// lasts until the VM is destroyed, across guest reboots.
func (v *VM) Devmem(segname string) ([]byte, error) {
	if err := checkSegName(segname); err != nil {
		return nil, err
	}
	seg, err := findDevmem(v, v.abi.segments, segname)
	if err != nil {
		return nil, ioctlError(v.name, "mapping devmem", err)
	}
	path := "/dev/vmm.io/" + v.name + "." + segname
	f, rc, err := openDev(path)
	if err != nil {
		return nil, ioctlError(v.name, "opening "+path, err)
	}
	defer f.Close() // the mapping holds the segment, not the descriptor
	b, err := mmap(rc, 0, seg.len)
	if err != nil {
		return nil, ioctlError(v.name, "mapping "+path, err)
	}
	return b, nil
}

func mmap(rc syscall.RawConn, off, n uint64) (b []byte, err error) {
	if n > math.MaxInt || off > math.MaxInt64 {
		return nil, fmt.Errorf("%d bytes at %#x do not fit this process", n, off)
	}
	cerr := rc.Control(func(fd uintptr) {
		b, err = unix.Mmap(int(fd), int64(off), int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_NOCORE)
	})
	if cerr != nil {
		return nil, cerr
	}
	return b, err
}

// RaiseMSI raises an MSI in the guest (VM_LAPIC_MSI). The kernel takes no
// vCPU or memory lock for it, so it costs one ioctl from any thread.
func (v *VM) RaiseMSI(addr uint64, data uint32) error {
	msi := lapicMSI{Msg: uint64(data), Addr: addr}
	if err := v.ioctl(cmdLapicMSI, unsafe.Pointer(&msi)); err != nil {
		return ioctlError(v.name, fmt.Sprintf("VM_LAPIC_MSI address %#x data %#x", addr, data), err)
	}
	return nil
}

// Close closes /dev/vmm/NAME. Mappings from Memory and Devmem stay valid.
func (v *VM) Close() error {
	return v.f.Close()
}
