package vmm

import (
	"errors"
	"fmt"
)

// memsegs is the part of vmm(4) that describes guest memory: the two
// ioctls the map walk and the segment lookup use. The VM implements it
// with ioctls, Fake with its table, tests with scripts.
type memsegs interface {
	// nextMap is VM_MMAP_GETNEXT: the map with the lowest guest-physical
	// address at or above gpa; ok is false when there is none (ENOENT).
	nextMap(gpa uint64) (m memmap, ok bool, err error)
	// segment is VM_GET_MEMSEG: length 0 if id is not allocated,
	// errNoSegment if id is past the last segment id (EINVAL).
	segment(id int32) (segment, error)
}

// segment is a memory segment: sysmem (guest RAM) when it has no name,
// devmem (mappable by this name under /dev/vmm.io) otherwise.
type segment struct {
	id   int32
	len  uint64
	name string
}

var errNoSegment = errors.New("no such segment id")

// mapping is one entry of the guest's memory map with its segment.
type mapping struct {
	gpa, len, segoff uint64
	seg              segment
}

func (m mapping) sysmem() bool { return m.seg.name == "" }

// walk lists the guest's memory map the way libvmmapi does: GETNEXT from
// guest-physical 0, continuing at the end of each map, and GET_MEMSEG on
// each map's segment to learn its kind. The map can change while it is
// walked (bhyve places devmem at BAR addresses the guest programs); a
// walk is a snapshot and a caller wanting a later one walks again.
func walk(s memsegs) ([]mapping, error) {
	var maps []mapping
	segs := map[int32]segment{}
	for gpa := uint64(0); ; {
		m, ok, err := s.nextMap(gpa)
		if err != nil {
			return nil, fmt.Errorf("listing guest memory at %#x: %w", gpa, err)
		}
		if !ok {
			return maps, nil
		}
		if m.GPA < gpa || m.Len == 0 {
			return nil, fmt.Errorf("listing guest memory at %#x: the kernel answered a map of %d bytes at %#x", gpa, m.Len, m.GPA)
		}
		seg, seen := segs[m.Segid]
		if !seen {
			if seg, err = s.segment(m.Segid); err != nil {
				return nil, fmt.Errorf("memory segment %d mapped at %#x: %w", m.Segid, m.GPA, err)
			}
			if seg.len == 0 {
				return nil, fmt.Errorf("memory segment %d mapped at %#x is not allocated", m.Segid, m.GPA)
			}
			segs[m.Segid] = seg
		}
		maps = append(maps, mapping{gpa: m.GPA, len: m.Len, segoff: m.Segoff, seg: seg})
		end := m.GPA + m.Len
		if end < m.GPA { // the map reaches the top of the address space
			return maps, nil
		}
		gpa = end
	}
}

// findDevmem looks up the devmem segment named name among segment ids
// [0, n). Segments outlive the maps of them (a guest reboot removes
// devmem maps), so the segments are searched, not the map.
func findDevmem(s memsegs, n int32, name string) (segment, error) {
	for id := int32(0); id < n; id++ {
		seg, err := s.segment(id)
		if errors.Is(err, errNoSegment) {
			break
		}
		if err != nil {
			return segment{}, fmt.Errorf("looking for memory segment %s: %w", name, err)
		}
		if seg.len != 0 && seg.name != "" && seg.name == name { // sysmem has no name
			return seg, nil
		}
	}
	return segment{}, fmt.Errorf("bhyve has not created memory segment %s: is the VM running with the ptnet device?", name)
}
