// Package shmdev is the ptnet device carried in one shared-memory BAR, for
// VMMs that can share memory and ring doorbells but cannot host a custom
// PCI function: QEMU's stock ivshmem-doorbell. The memory holds a device
// page per VM (the ptnet and memdev registers as a snapshot the guest reads
// directly, a link word and a mailbox for register writes), a CSB page per
// VM, and the netmap region the port lives in. docs/device-abi.md is the
// versioned specification; this package is both ends of it: Device on the
// host, Guest in the guest driver.
//
// Doorbells and interrupts use the transport's vectors: ring i (TX rings,
// then RX rings) is vector i both ways, and the last vector is the control
// vector (the guest rings it after posting a mailbox request; the host
// raises it when a request is done and when the link changes).
package shmdev

import (
	"fmt"
	"math/bits"
	"sync/atomic"
	"unsafe"

	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
)

// ABI constants (docs/device-abi.md).
const (
	Magic   = 0x564e5450 // "PTNV" little-endian
	Version = 1

	PageSize       = 4096
	DevicePageSize = 2 * PageSize // registers + mailbox page, then the CSB page
	MaxDevices     = 2            // a pipe has two ends
	MaxRings       = ptnetmap.MaxRings / 2

	// Header page.
	HdrMagic        = 0x00
	HdrVersion      = 0x04
	HdrDevices      = 0x08
	HdrRegionOffset = 0x10
	HdrRegionSize   = 0x18

	// Device page, relative to the device's page.
	DevPtnetRegs  = 0x000 // ptnet registers, as ptnet's BAR0 (256 bytes)
	DevMemdevRegs = 0x100 // memdev registers, as memdev's BAR0 (128 bytes)
	DevLink       = 0x180 // 0 down, 1 up
	DevGeneration = 0x184 // bumped by every link change
	DevVectors    = 0x188 // vectors the device uses: 2*rings + 1
	DevCtlVector  = 0x18c // the control vector: vectors - 1
	DevMboxReq    = 0x200 // guest: sequence number of the posted request
	DevMboxOp     = 0x204
	DevMboxReg    = 0x208
	DevMboxVal    = 0x20c
	DevMboxAck    = 0x240 // host: sequence number of the last request done
	DevMboxResult = 0x244 // host: 0 or an errno
	DevCSB        = PageSize

	// Mailbox operations.
	OpWrite = 1 // write ptnet register Reg with Val

	// Mailbox results besides 0.
	ResultEINVAL  = 22 // unknown operation
	ResultENOLINK = 67 // no port attached: the link is down
)

// Geometry is what a device memory must hold: Devices VMs (two for the ends
// of a pipe) of Rings rings per direction, Slots slots per ring and buffers
// of BufSize bytes.
type Geometry struct {
	Devices int
	Rings   int
	Slots   uint32
	BufSize uint32
}

// Layout is where things are in a device memory.
type Layout struct {
	Geometry
	Size         uint64 // a power of two: a PCI BAR
	RegionOffset uint64
	RegionSize   uint64
}

// LayoutFor sizes a device memory for g. The region is sized as the
// backends size theirs (netmap.ParamsFor with one interface per device), so
// any port of at most g.Rings rings fits, and so do both ends of a pipe.
func LayoutFor(g Geometry) (Layout, error) {
	if g.Devices < 1 || g.Devices > MaxDevices {
		return Layout{}, fmt.Errorf("shmdev: %d devices in one memory; want 1..%d", g.Devices, MaxDevices)
	}
	if g.Rings < 1 || g.Rings > MaxRings {
		return Layout{}, fmt.Errorf("shmdev: %d rings per direction; want 1..%d", g.Rings, MaxRings)
	}
	info, err := netmap.Layout(netmap.ParamsFor(g.Devices, g.Rings, g.Rings, g.Slots, g.Slots, g.BufSize, 0))
	if err != nil {
		return Layout{}, fmt.Errorf("shmdev: %w", err)
	}
	l := Layout{Geometry: g, RegionOffset: PageSize + uint64(g.Devices)*DevicePageSize, RegionSize: info.MemSize}
	l.Size = 1 << bits.Len64(l.RegionOffset+l.RegionSize-1)
	return l, nil
}

// Vectors is the number of doorbell and interrupt vectors a device of
// rings rings per direction uses; the transport must offer that many.
func Vectors(rings int) int { return 2*rings + 1 }

// DeviceOffset is where device i's page starts.
func DeviceOffset(i int) uint64 { return PageSize + uint64(i)*DevicePageSize }

// word is a 32-bit field of shared memory. Every access is atomic: the
// other side is another VM's vCPU or another goroutine.
func word(mem []byte, off uint64) *uint32 { return (*uint32)(unsafe.Pointer(&mem[off])) }

func load(mem []byte, off uint64) uint32     { return atomic.LoadUint32(word(mem, off)) }
func store(mem []byte, off uint64, v uint32) { atomic.StoreUint32(word(mem, off), v) }

func load64(mem []byte, off uint64) uint64 {
	return uint64(load(mem, off)) | uint64(load(mem, off+4))<<32
}

func store64(mem []byte, off uint64, v uint64) {
	store(mem, off, uint32(v))
	store(mem, off+4, uint32(v>>32))
}
