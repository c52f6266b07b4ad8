package vmm

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Fake is a VM inside this process, for tests of code that takes a
// Machine. It answers like vmm(4) under bhyve: guest RAM is one memory
// file whose offset is the guest-physical address (bhyve's sysmem
// segment: [0, LowMem) and [4 GiB, 4 GiB+HighMem), the 3-4 GiB hole
// unused), devmem segments are memory files of their own, and Memory and
// Devmem run the same map walk and segment lookup as on a VM. RaiseMSI
// records the MSI. After Destroy every call fails with ErrGone.
type Fake struct {
	onMSI func(MSI)

	mu     sync.Mutex
	ram    *os.File
	devmem map[string]*os.File
	segs   []segment // by id: 0 is RAM, then the devmem segments
	maps   []memmap  // by guest-physical address
	msis   []MSI
	gone   bool
	closed bool
}

// FakeConfig lays out a Fake's guest memory.
type FakeConfig struct {
	// LowMem is the RAM at guest-physical 0, at most 3 GiB (bhyve's
	// default lowmem limit). HighMem is the RAM at 4 GiB, bhyve's home
	// for memory beyond 3 GiB. Both are page-aligned; LowMem is not 0.
	LowMem, HighMem uint64
	// Devmem are the named segments, with ids 1, 2 and so on.
	Devmem []FakeSegment
	// OnMSI, if set, is called with each MSI after it is recorded.
	OnMSI func(MSI)
}

// FakeSegment is a devmem segment of a Fake.
type FakeSegment struct {
	Name string
	Len  uint64 // page-aligned
	// GPA, if not 0, is where the segment appears in the guest's memory
	// map, as bhyve maps its boot ROM below 4 GiB or a BAR's memory.
	GPA uint64
}

// MSI is an MSI as the guest programmed it: address and data.
type MSI struct {
	Addr uint64
	Data uint32
}

const (
	lowMemLimit = 3 << 30
	highMemBase = 4 << 30
)

// NewFake creates a Fake whose memory is zeroed.
func NewFake(cfg FakeConfig) (*Fake, error) {
	page := uint64(os.Getpagesize())
	if cfg.LowMem == 0 || cfg.LowMem > lowMemLimit || cfg.LowMem%page != 0 || cfg.HighMem%page != 0 {
		return nil, fmt.Errorf("fake VM: lowmem %#x and highmem %#x must be page-aligned, lowmem in (0, 3 GiB]", cfg.LowMem, cfg.HighMem)
	}
	if cfg.HighMem > math.MaxInt64-highMemBase {
		return nil, fmt.Errorf("fake VM: highmem %#x is too large", cfg.HighMem)
	}
	if 1+len(cfg.Devmem) > int(abi15.segments) {
		return nil, fmt.Errorf("fake VM: %d devmem segments; vmm(4) has %d segment ids", len(cfg.Devmem), abi15.segments)
	}
	f := &Fake{onMSI: cfg.OnMSI, devmem: map[string]*os.File{}}
	sysmem := cfg.LowMem
	f.maps = append(f.maps, memmap{GPA: 0, Segid: 0, Len: cfg.LowMem})
	if cfg.HighMem != 0 {
		sysmem = highMemBase + cfg.HighMem
		f.maps = append(f.maps, memmap{GPA: highMemBase, Segid: 0, Segoff: highMemBase, Len: cfg.HighMem})
	}
	f.segs = append(f.segs, segment{id: 0, len: sysmem})
	for i, d := range cfg.Devmem {
		id := int32(i + 1)
		if err := checkSegName(d.Name); err != nil {
			return nil, fmt.Errorf("fake VM: %w", err)
		}
		if d.Len == 0 || d.Len%page != 0 || d.GPA%page != 0 || d.Len > math.MaxInt64 {
			return nil, fmt.Errorf("fake VM: segment %s: length %#x and address %#x must be page-aligned, length not 0", d.Name, d.Len, d.GPA)
		}
		if _, dup := f.devmem[d.Name]; dup {
			return nil, fmt.Errorf("fake VM: two segments named %s", d.Name)
		}
		f.devmem[d.Name] = nil // reserved; the file comes below
		f.segs = append(f.segs, segment{id: id, len: d.Len, name: d.Name})
		if d.GPA != 0 {
			f.maps = append(f.maps, memmap{GPA: d.GPA, Segid: id, Len: d.Len})
		}
	}
	slices.SortFunc(f.maps, func(a, b memmap) int { return cmpUint64(a.GPA, b.GPA) })
	for i := 1; i < len(f.maps); i++ {
		if prev := f.maps[i-1]; prev.GPA+prev.Len > f.maps[i].GPA || prev.GPA+prev.Len < prev.GPA {
			return nil, fmt.Errorf("fake VM: maps at %#x and %#x overlap", prev.GPA, f.maps[i].GPA)
		}
	}
	var err error
	if f.ram, err = anonFile("ram", int64(sysmem)); err != nil {
		return nil, fmt.Errorf("fake VM: guest RAM: %w", err)
	}
	for _, d := range cfg.Devmem {
		if f.devmem[d.Name], err = anonFile(d.Name, int64(d.Len)); err != nil {
			f.Close()
			return nil, fmt.Errorf("fake VM: segment %s: %w", d.Name, err)
		}
	}
	return f, nil
}

func cmpUint64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// RAM is the file behind guest RAM, at offset = guest-physical address:
// what the guest sees, for a test to read or write behind the code under
// test.
func (f *Fake) RAM() *os.File { return f.ram }

// check fails once the fake VM is closed or destroyed: vmm(4) answers
// ENXIO on the descriptor of a destroyed VM.
func (f *Fake) check() error {
	switch {
	case f.closed:
		return os.ErrClosed
	case f.gone:
		return syscall.ENXIO
	}
	return nil
}

// nextMap implements memsegs as VM_MMAP_GETNEXT does.
func (f *Fake) nextMap(gpa uint64) (memmap, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return memmap{}, false, fmt.Errorf("VM_MMAP_GETNEXT: %w", err)
	}
	for _, m := range f.maps {
		if m.GPA >= gpa {
			return m, true, nil
		}
	}
	return memmap{}, false, nil
}

// segment implements memsegs as VM_GET_MEMSEG does, with 15's count of
// segment ids.
func (f *Fake) segment(id int32) (segment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return segment{}, fmt.Errorf("VM_GET_MEMSEG %d: %w", id, err)
	}
	switch {
	case id < 0 || id >= abi15.segments:
		return segment{}, errNoSegment
	case int(id) < len(f.segs):
		return f.segs[id], nil
	}
	return segment{id: id}, nil
}

// Memory maps guest RAM as VM.Memory does.
func (f *Fake) Memory() (*GuestMemory, error) {
	g, err := mapGuestMemory(f, func(gpa, n uint64) ([]byte, error) {
		return fileMmap(f.ram, gpa, n)
	})
	if err != nil {
		return nil, ioctlError("fake", "mapping guest memory", err)
	}
	return g, nil
}

// Devmem maps the segment named segname as VM.Devmem does.
func (f *Fake) Devmem(segname string) ([]byte, error) {
	if err := checkSegName(segname); err != nil {
		return nil, err
	}
	seg, err := findDevmem(f, abi15.segments, segname)
	if err != nil {
		return nil, ioctlError("fake", "mapping devmem", err)
	}
	return fileMmap(f.devmem[seg.name], 0, seg.len)
}

func fileMmap(file *os.File, off, n uint64) ([]byte, error) {
	rc, err := file.SyscallConn()
	if err != nil {
		return nil, err
	}
	var b []byte
	cerr := rc.Control(func(fd uintptr) {
		b, err = unix.Mmap(int(fd), int64(off), int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	})
	if cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, fmt.Errorf("mmap %s at %#x: %w", file.Name(), off, err)
	}
	return b, nil
}

// RaiseMSI records the MSI, then calls FakeConfig.OnMSI.
func (f *Fake) RaiseMSI(addr uint64, data uint32) error {
	f.mu.Lock()
	err := f.check()
	if err == nil {
		f.msis = append(f.msis, MSI{Addr: addr, Data: data})
	}
	f.mu.Unlock()
	if err != nil {
		return ioctlError("fake", fmt.Sprintf("VM_LAPIC_MSI address %#x data %#x", addr, data), err)
	}
	if f.onMSI != nil {
		f.onMSI(MSI{Addr: addr, Data: data})
	}
	return nil
}

// MSIs returns the MSIs raised so far, oldest first.
func (f *Fake) MSIs() []MSI {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.msis)
}

// Destroy simulates the VM's destruction (bhyvectl --destroy): from now
// on every call fails with ErrGone. As with vmm(4), mappings already
// made stay valid.
func (f *Fake) Destroy() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gone = true
}

// Close closes the memory files; mappings already made stay valid.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	var errs []error
	for _, file := range f.devmem {
		if file != nil {
			errs = append(errs, file.Close())
		}
	}
	if f.ram != nil {
		errs = append(errs, f.ram.Close())
	}
	return errors.Join(errs...)
}

// Keep returns f as a Machine whose Close leaves f open: the code under
// test closes what it opened at each disconnect, while the test plays one
// VM across several connections.
func (f *Fake) Keep() Machine { return keptFake{f} }

type keptFake struct{ *Fake }

func (keptFake) Close() error { return nil }
