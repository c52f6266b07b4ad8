package pci

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/ptbhyve/ptbhyve/internal/event"
	"golang.org/x/sys/unix"
)

// Mapped is an opened device: its registers, its memory and, in VFIO mode,
// one event per MSI-X vector. It is not safe for concurrent Close.
type Mapped struct {
	Regs []byte         // BAR0: access it through Read32 and Write32
	Mem  []byte         // BAR2
	Irqs []*event.Event // Irqs[i] fires when the device raises MSI-X vector i; nil in sysfs mode

	mode       string
	maps       [][]byte     // mappings as mmap returned them, for munmap
	fds        []int        // descriptors to close, last opened first
	unbindIRQs func() error // undoes the binding of Irqs; nil when none is bound
}

// Mode is "vfio" or "sysfs": whether Irqs can be waited on or the driver
// must poll.
func (m *Mapped) Mode() string { return m.mode }

// Read32 loads the 32-bit register at byte offset off of BAR0 with exactly
// one 4-byte access: device registers have side effects and must be read
// whole, and the compiler must neither split, merge nor elide the load.
// off must be 4-byte aligned and inside BAR0.
func (m *Mapped) Read32(off uint32) uint32 {
	return atomic.LoadUint32(m.reg(off))
}

// Write32 stores v to the 32-bit register at byte offset off of BAR0 with
// exactly one 4-byte access (the doorbell matches only 4-byte writes).
// off must be 4-byte aligned and inside BAR0.
func (m *Mapped) Write32(off, v uint32) {
	atomic.StoreUint32(m.reg(off), v)
}

// reg is the register at off. PCI registers are little-endian, as are the
// guests this driver runs on (amd64, arm64), so the native load is right.
func (m *Mapped) reg(off uint32) *uint32 {
	if off%4 != 0 {
		panic(fmt.Sprintf("pci: register offset %#x is not 4-byte aligned", off))
	}
	return (*uint32)(unsafe.Pointer(&m.Regs[off : off+4][0]))
}

// mmap maps size bytes of fd at off, shared and writable, and remembers the
// mapping for Close.
func (m *Mapped) mmap(fd int, off int64, size int) ([]byte, error) {
	b, err := unix.Mmap(fd, off, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap %d bytes at %#x: %w", size, off, err)
	}
	m.maps = append(m.maps, b)
	return b, nil
}

// Close disables the interrupts, unmaps the BARs and closes the
// descriptors. The device stays bound to its driver. Closing again does
// nothing.
func (m *Mapped) Close() error {
	var errs []error
	if m.unbindIRQs != nil {
		errs = append(errs, m.unbindIRQs())
		m.unbindIRQs = nil
	}
	for _, e := range m.Irqs {
		errs = append(errs, e.Close())
	}
	m.Irqs = nil
	for _, b := range m.maps {
		errs = append(errs, unix.Munmap(b))
	}
	m.maps, m.Regs, m.Mem = nil, nil, nil
	for i := len(m.fds) - 1; i >= 0; i-- {
		errs = append(errs, unix.Close(m.fds[i]))
	}
	m.fds = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pci: close: %w", err)
	}
	return nil
}
