package ptnetmap

import "github.com/ptbhyve/ptbhyve/netmap"

// Memdev is the register file of the ptnetmap-memdev function: read-only
// facts about one netmap region, which the function exposes as BAR1.
type Memdev struct {
	info netmap.PoolsInfo
}

// NewMemdev describes region info.
func NewMemdev(info netmap.PoolsInfo) *Memdev { return &Memdev{info: info} }

// Read returns the register at off; unknown offsets read as 0.
func (m *Memdev) Read(off uint32) uint32 {
	i := m.info
	switch off {
	case RegMemsizeLo:
		return uint32(i.MemSize)
	case RegMemsizeHi:
		return uint32(i.MemSize >> 32)
	case RegMemID:
		return uint32(i.MemID)
	case RegIfPoolOfs:
		return uint32(i.IfPoolOffset)
	case RegIfPoolObjNum:
		return i.IfPoolObjTotal
	case RegIfPoolObjSz:
		return i.IfPoolObjSize
	case RegRingPoolOfs:
		return uint32(i.RingPoolOffset)
	case RegRingPoolObjNum:
		return i.RingPoolObjTotal
	case RegRingPoolObjSz:
		return i.RingPoolObjSize
	case RegBufPoolOfs:
		return uint32(i.BufPoolOffset)
	case RegBufPoolObjNum:
		return i.BufPoolObjTotal
	case RegBufPoolObjSz:
		return i.BufPoolObjSize
	}
	return 0
}

// Write ignores the write: every memdev register is read-only.
func (m *Memdev) Write(off, val uint32) {}
