package vmm

import (
	"errors"
	"math"
	"strings"
	"syscall"
	"testing"
)

// script is vmm(4) as a scripted sequence of VM_MMAP_GETNEXT answers and
// a table of segments; it fails the test if the walk asks out of order.
type script struct {
	t       *testing.T
	answers []answer
	segs    map[int32]segment
	segErr  error
}

type answer struct {
	ask uint64 // the address the walk should ask for
	m   memmap
	end bool // ENOENT: no map at or above ask
	err error
}

func (s *script) nextMap(gpa uint64) (memmap, bool, error) {
	s.t.Helper()
	if len(s.answers) == 0 {
		s.t.Fatalf("GETNEXT %#x after the end of the script", gpa)
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	if gpa != a.ask {
		s.t.Errorf("GETNEXT asked for %#x, want %#x", gpa, a.ask)
	}
	return a.m, !a.end && a.err == nil, a.err
}

func (s *script) segment(id int32) (segment, error) {
	if s.segErr != nil {
		return segment{}, s.segErr
	}
	if id < 0 || id >= abi15.segments {
		return segment{}, errNoSegment
	}
	seg, ok := s.segs[id]
	if !ok {
		return segment{id: id}, nil
	}
	return seg, nil
}

const (
	kib = 1 << 10
	mib = 1 << 20
	gib = 1 << 30
)

// bhyve14 is a 6 GiB FreeBSD 14 guest with a 1 MiB boot ROM below 4 GiB.
var bhyve14 = map[int32]segment{
	0: {id: 0, len: 4*gib + 3*gib},
	1: {id: 1, len: mib, name: "bootrom"},
}

func TestWalk(t *testing.T) {
	tests := []struct {
		name    string
		answers []answer
		segs    map[int32]segment
		segErr  error
		want    []mapping
		wantErr string
		gone    bool
	}{{
		name: "bhyve 14, 6 GiB and a boot ROM",
		answers: []answer{
			{ask: 0, m: memmap{GPA: 0, Segid: 0, Len: 3 * gib}},
			{ask: 3 * gib, m: memmap{GPA: 4*gib - mib, Segid: 1, Len: mib}},
			{ask: 4 * gib, m: memmap{GPA: 4 * gib, Segid: 0, Segoff: 4 * gib, Len: 3 * gib}},
			{ask: 7 * gib, end: true},
		},
		segs: bhyve14,
		want: []mapping{
			{gpa: 0, len: 3 * gib, seg: bhyve14[0]},
			{gpa: 4*gib - mib, len: mib, seg: bhyve14[1]},
			{gpa: 4 * gib, len: 3 * gib, segoff: 4 * gib, seg: bhyve14[0]},
		},
	}, {
		name: "bhyve 15, two NUMA domains and a framebuffer",
		answers: []answer{
			{ask: 0, m: memmap{GPA: 0, Segid: 0, Len: 2 * gib}},
			{ask: 2 * gib, m: memmap{GPA: 2 * gib, Segid: 1, Len: gib}},
			{ask: 3 * gib, m: memmap{GPA: 0xc0000000 + 16*mib, Segid: 9, Len: 16 * mib}},
			{ask: 0xc0000000 + 32*mib, end: true},
		},
		segs: map[int32]segment{
			0: {id: 0, len: 2 * gib},
			1: {id: 1, len: gib},
			9: {id: 9, len: 16 * mib, name: "fbuf"},
		},
		want: []mapping{
			{gpa: 0, len: 2 * gib, seg: segment{id: 0, len: 2 * gib}},
			{gpa: 2 * gib, len: gib, seg: segment{id: 1, len: gib}},
			{gpa: 0xc0000000 + 16*mib, len: 16 * mib, seg: segment{id: 9, len: 16 * mib, name: "fbuf"}},
		},
	}, {
		name:    "no memory yet",
		answers: []answer{{ask: 0, end: true}},
	}, {
		name: "map at the top of the address space",
		answers: []answer{
			{ask: 0, m: memmap{GPA: math.MaxUint64 - 4*kib + 1, Segid: 0, Len: 4 * kib}},
		},
		segs: map[int32]segment{0: {id: 0, len: 4 * kib}},
		want: []mapping{{gpa: math.MaxUint64 - 4*kib + 1, len: 4 * kib, seg: segment{id: 0, len: 4 * kib}}},
	}, {
		name: "VM destroyed during the walk",
		answers: []answer{
			{ask: 0, m: memmap{GPA: 0, Segid: 0, Len: 3 * gib}},
			{ask: 3 * gib, err: syscall.ENXIO},
		},
		segs: bhyve14,
		gone: true,
	}, {
		name:    "segment lookup on a destroyed VM",
		answers: []answer{{ask: 0, m: memmap{GPA: 0, Segid: 0, Len: 3 * gib}}},
		segErr:  syscall.ENXIO,
		gone:    true,
	}, {
		name:    "empty map",
		answers: []answer{{ask: 0, m: memmap{GPA: 0, Segid: 0, Len: 0}}},
		segs:    bhyve14,
		wantErr: "map of 0 bytes",
	}, {
		name: "map below the address asked for",
		answers: []answer{
			{ask: 0, m: memmap{GPA: 4 * gib, Segid: 0, Len: gib}},
			{ask: 5 * gib, m: memmap{GPA: 0, Segid: 0, Len: gib}},
		},
		segs:    bhyve14,
		wantErr: "map of 1073741824 bytes at 0x0",
	}, {
		name:    "map of an unallocated segment",
		answers: []answer{{ask: 0, m: memmap{GPA: 0, Segid: 2, Len: gib}}},
		segs:    bhyve14,
		wantErr: "segment 2 mapped at 0x0 is not allocated",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &script{t: t, answers: tt.answers, segs: tt.segs, segErr: tt.segErr}
			got, err := walk(s)
			switch {
			case tt.gone:
				if !errors.Is(err, syscall.ENXIO) {
					t.Fatalf("err = %v, want ENXIO", err)
				}
				return
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if len(s.answers) != 0 {
				t.Errorf("walk stopped with %d answers left", len(s.answers))
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d maps %+v, want %+v", len(got), got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("map %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestFindDevmem(t *testing.T) {
	segs := map[int32]segment{
		0:  {id: 0, len: 7 * gib},
		3:  {id: 3, len: 2 * mib, name: "ptnetmap"},
		9:  {id: 9, len: 16 * mib, name: "fbuf"},
		10: {id: 10, len: mib, name: "beyond14"},
	}
	tests := []struct {
		name    string
		n       int32
		seg     string
		segErr  error
		want    int32
		wantErr string
		wantIs  error
	}{
		{name: "found", n: abi15.segments, seg: "ptnetmap", want: 3},
		{name: "15 id", n: abi15.segments, seg: "fbuf", want: 9},
		{name: "missing", n: abi15.segments, seg: "nope", wantErr: "bhyve has not created memory segment nope"},
		{name: "sysmem has no name", n: abi15.segments, seg: "", wantErr: "has not created"},
		{name: "only the ABI's ids", n: abi14.segments, seg: "beyond14", wantErr: "has not created"},
		{name: "past the kernel's ids", n: 100, seg: "nope", wantErr: "has not created"},
		{name: "VM destroyed", n: abi15.segments, seg: "ptnetmap", segErr: syscall.ENXIO, wantIs: syscall.ENXIO},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := findDevmem(&script{t: t, segs: segs, segErr: tt.segErr}, tt.n, tt.seg)
			if tt.wantIs != nil {
				if !errors.Is(err, tt.wantIs) {
					t.Fatalf("err = %v, want %v", err, tt.wantIs)
				}
				return
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.id != tt.want {
				t.Fatalf("got %+v, %v; want id %d", got, err, tt.want)
			}
		})
	}
}
