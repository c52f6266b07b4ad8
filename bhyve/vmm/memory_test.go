package vmm

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSliceBoundaries runs Slice on bhyve's layout for a 4 GiB guest:
// 3 GiB at 0, the hole, 1 GiB at 4 GiB. The memory is a sparse file, so
// only the pages touched cost anything.
func TestSliceBoundaries(t *testing.T) {
	f, err := NewFake(FakeConfig{LowMem: 3 * gib, HighMem: gib})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := f.Memory()
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if want := []Range{{0, 3 * gib}, {4 * gib, gib}}; !slices.Equal(g.Ranges(), want) {
		t.Fatalf("ranges %v, want %v", g.Ranges(), want)
	}
	tests := []struct {
		name      string
		gpa, size uint64
		ok        bool
	}{
		{"start of lowmem", 0, 64, true},
		{"end of lowmem", 3*gib - 64, 64, true},
		{"into the hole", 3*gib - 8, 16, false},
		{"in the hole", 3 * gib, 8, false},
		{"across the hole", 3*gib - 8, gib + 16, false},
		{"from the hole into highmem", 4*gib - 8, 16, false},
		{"start of highmem", 4 * gib, 64, true},
		{"end of highmem", 5*gib - 64, 64, true},
		{"past the end", 5*gib - 64, 65, false},
		{"after the end", 5 * gib, 1, false},
		{"empty at the end", 5 * gib, 0, true},
		{"gpa+size wraps", math.MaxUint64 - 7, 16, false},
		{"size wraps", 8, math.MaxUint64, false},
		{"size wraps in highmem", 4*gib + 8, math.MaxUint64 - 4*gib, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := g.Slice(tt.gpa, tt.size)
			if !tt.ok {
				if err == nil {
					t.Fatalf("Slice(%#x, %d) = %d bytes, want an error", tt.gpa, tt.size, len(b))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if uint64(len(b)) != tt.size || uint64(cap(b)) != tt.size {
				t.Fatalf("len %d cap %d, want %d", len(b), cap(b), tt.size)
			}
			// The slice is that guest-physical range: what is written
			// through it is what the guest reads there.
			for j := range b {
				b[j] = byte(i + j)
			}
			got := make([]byte, tt.size)
			if _, err := f.RAM().ReadAt(got, int64(tt.gpa)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, b) {
				t.Fatalf("guest RAM at %#x holds %x, want %x", tt.gpa, got, b)
			}
		})
	}
}

// Adjacent ranges (two NUMA domains on 15) are separate mappings: a range
// fits either, not both.
func TestSliceAdjacentRanges(t *testing.T) {
	g := &GuestMemory{ranges: []ramRange{
		{gpa: 0, mem: make([]byte, 4*kib)},
		{gpa: 4 * kib, mem: make([]byte, 4*kib)},
	}}
	g.ranges[1].mem[0] = 0xaa
	b, err := g.Slice(4*kib, 8)
	if err != nil || b[0] != 0xaa {
		t.Fatalf("Slice(4 KiB, 8) = %x, %v; want the second range", b, err)
	}
	if b, err := g.Slice(4*kib-4, 8); err == nil {
		t.Fatalf("Slice across two ranges = %x, want an error", b)
	}
}

// mapGuestMemory maps only sysmem, at offset = guest-physical address,
// and unmaps what it mapped when a later mapping fails.
func TestMapGuestMemory(t *testing.T) {
	answers := func() []answer {
		return []answer{
			{ask: 0, m: memmap{GPA: 0, Segid: 0, Len: 64 * kib}},
			{ask: 64 * kib, m: memmap{GPA: 4*gib - 64*kib, Segid: 1, Len: 64 * kib}},
			{ask: 4 * gib, m: memmap{GPA: 4 * gib, Segid: 0, Segoff: 4 * gib, Len: 128 * kib}},
			{ask: 4*gib + 128*kib, end: true},
		}
	}
	segs := map[int32]segment{0: {id: 0, len: 4*gib + 128*kib}, 1: {id: 1, len: 64 * kib, name: "bootrom"}}
	var mapped []Range
	anon := func(gpa, n uint64) ([]byte, error) {
		mapped = append(mapped, Range{gpa, n})
		return unix.Mmap(-1, 0, int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	}
	g, err := mapGuestMemory(&script{t: t, answers: answers(), segs: segs}, anon)
	if err != nil {
		t.Fatal(err)
	}
	want := []Range{{0, 64 * kib}, {4 * gib, 128 * kib}}
	if !slices.Equal(mapped, want) || !slices.Equal(g.Ranges(), want) {
		t.Errorf("mmap asked for %v, ranges %v; want %v", mapped, g.Ranges(), want)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Slice(0, 1); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Slice after Close: %v, want closed", err)
	}
	if err := g.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	// The second mmap fails: the first mapping must not leak.
	var live [][]byte
	failing := func(gpa, n uint64) ([]byte, error) {
		if gpa != 0 {
			return nil, syscall.ENOMEM
		}
		b, err := anon(gpa, n)
		live = append(live, b)
		return b, err
	}
	if _, err := mapGuestMemory(&script{t: t, answers: answers(), segs: segs}, failing); !errors.Is(err, syscall.ENOMEM) {
		t.Fatalf("err = %v, want ENOMEM", err)
	}
	if err := unix.Munmap(live[0]); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("munmap of the first range after the failure: %v, want EINVAL (already unmapped)", err)
	}

	// Before bhyve has mapped RAM there is nothing to map.
	if _, err := mapGuestMemory(&script{t: t, answers: []answer{{ask: 0, end: true}}}, anon); err == nil || !strings.Contains(err.Error(), "no RAM") {
		t.Errorf("empty map: %v, want no RAM", err)
	}
}
