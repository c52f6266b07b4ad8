package pci

import (
	"encoding/binary"
	"testing"
)

// Read32 and Write32 touch exactly the four little-endian bytes at off,
// and refuse misaligned or out-of-range offsets.
func TestRegisterAccess(t *testing.T) {
	tests := []struct {
		off       uint32
		wantPanic bool
	}{
		{off: 0}, {off: 8}, {off: 12}, {off: 252},
		{off: 2, wantPanic: true},
		{off: 13, wantPanic: true},
		{off: 256, wantPanic: true},
		{off: 0xffff_fffc, wantPanic: true},
	}
	for _, tt := range tests {
		m := &Mapped{Regs: make([]byte, 256)}
		panicked := func(f func()) (p bool) {
			defer func() { p = recover() != nil }()
			f()
			return false
		}
		if p := panicked(func() { m.Write32(tt.off, 0xdead_beef) }); p != tt.wantPanic {
			t.Errorf("Write32(%#x) panicked = %v, want %v", tt.off, p, tt.wantPanic)
			continue
		}
		if tt.wantPanic {
			if p := panicked(func() { m.Read32(tt.off) }); !p {
				t.Errorf("Read32(%#x) did not panic", tt.off)
			}
			continue
		}
		want := make([]byte, 256)
		binary.LittleEndian.PutUint32(want[tt.off:], 0xdead_beef)
		if string(m.Regs) != string(want) {
			t.Errorf("Write32(%#x) wrote the wrong bytes", tt.off)
		}
		if got := m.Read32(tt.off); got != 0xdead_beef {
			t.Errorf("Read32(%#x) = %#x, want 0xdeadbeef", tt.off, got)
		}
	}
}
