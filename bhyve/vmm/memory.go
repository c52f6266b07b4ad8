package vmm

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"golang.org/x/sys/unix"
)

// GuestMemory is the guest's RAM mapped into this process, one mapping
// per sysmem range of the guest's memory map (with bhyve's layout,
// [0, lowmem) and, for guests over 3 GiB, [4 GiB, 4 GiB+highmem)). The
// mappings share the VM's memory objects, so stores are seen by the guest
// at once, as a device's DMA would be. It implements ptnetmap.GuestMemory.
//
// The sysmem maps survive guest reboots (VM_REINIT removes only devmem
// maps), so a GuestMemory stays right across them. To re-read the map
// (Remap), Close the old GuestMemory and call Memory again; after
// ErrGone, the VM must be opened anew.
type GuestMemory struct {
	mu     sync.Mutex // Close against Slice; slices handed out are the caller's
	ranges []ramRange // ascending guest-physical addresses, disjoint
}

type ramRange struct {
	gpa uint64
	mem []byte
}

// Range is a range of guest-physical addresses.
type Range struct {
	GPA, Len uint64
}

// String formats r as a half-open interval, "[0x100000000, 0x140000000)".
func (r Range) String() string {
	return fmt.Sprintf("[%#x, %#x)", r.GPA, r.GPA+r.Len)
}

// mapGuestMemory walks s and maps each sysmem range with mmap, which is
// given the range's guest-physical address and length: vmm(4)'s mmap
// takes the address as the file offset.
func mapGuestMemory(s memsegs, mmap func(gpa, len uint64) ([]byte, error)) (*GuestMemory, error) {
	maps, err := walk(s)
	if err != nil {
		return nil, err
	}
	g := &GuestMemory{}
	for _, m := range maps {
		if !m.sysmem() {
			continue
		}
		if m.len > math.MaxInt {
			g.Close()
			return nil, fmt.Errorf("guest RAM at %#x: %d bytes do not fit this process", m.gpa, m.len)
		}
		b, err := mmap(m.gpa, m.len)
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("mapping guest RAM [%#x, %#x): %w", m.gpa, m.gpa+m.len, err)
		}
		g.ranges = append(g.ranges, ramRange{gpa: m.gpa, mem: b})
	}
	if len(g.ranges) == 0 {
		return nil, errors.New("the guest has no RAM mapped yet: has bhyve finished starting the VM?")
	}
	return g, nil
}

// Slice returns guest-physical [gpa, gpa+size) as a slice of this
// process's mapping, or an error unless the range lies in one RAM range:
// a range that runs into the 3-4 GiB hole, or from one range into the
// next, is refused even if both sides are RAM, since the ranges are not
// adjacent here. The slice is valid until Close.
func (g *GuestMemory) Slice(gpa, size uint64) ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range g.ranges {
		if gpa < r.gpa {
			break
		}
		// No sums: gpa+size may wrap.
		off, n := gpa-r.gpa, uint64(len(r.mem))
		if off <= n && size <= n-off {
			return r.mem[off : off+size : off+size], nil
		}
	}
	if g.ranges == nil {
		return nil, errors.New("guest memory is closed")
	}
	return nil, fmt.Errorf("guest-physical %#x+%d is not within one range of guest RAM %v", gpa, size, g.rangesLocked())
}

// Ranges returns the guest-physical ranges of RAM that are mapped.
func (g *GuestMemory) Ranges() []Range {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.rangesLocked()
}

func (g *GuestMemory) rangesLocked() []Range {
	rs := make([]Range, len(g.ranges))
	for i, r := range g.ranges {
		rs[i] = Range{GPA: r.gpa, Len: uint64(len(r.mem))}
	}
	return rs
}

// Close unmaps guest RAM. Every slice from Slice becomes invalid: stop
// the loops that use them first. Close is idempotent.
func (g *GuestMemory) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []error
	for _, r := range g.ranges {
		if err := unix.Munmap(r.mem); err != nil {
			errs = append(errs, fmt.Errorf("unmapping guest RAM at %#x: %w", r.gpa, err))
		}
	}
	g.ranges = nil
	return errors.Join(errs...)
}
