package pci

import (
	"strings"
	"testing"
)

func TestMSIXTableSize(t *testing.T) {
	cfg := func(caps ...[]byte) []byte {
		b := make([]byte, 256)
		b[6] = 1 << 4
		b[0x34] = 0x40
		at := 0x40
		for i, c := range caps {
			copy(b[at:], c)
			if i < len(caps)-1 {
				b[at+1] = byte(at + 0x10)
			}
			at += 0x10
		}
		return b
	}
	loop := cfg([]byte{0x05, 0, 0, 0})
	loop[0x41] = 0x40 // points at itself
	cases := []struct {
		name string
		cfg  []byte
		want int
		err  string
	}{
		{"msix first", cfg([]byte{0x11, 0, 0x02, 0x80}), 3, ""},
		{"after msi", cfg([]byte{0x05, 0, 0, 0}, []byte{0x11, 0, 0xff, 0x07}), 2048, ""},
		{"none", cfg([]byte{0x05, 0, 0, 0}), 0, "no MSI-X capability"},
		{"loop", loop, 0, "no MSI-X capability"},
		{"no list", make([]byte, 256), 0, "no capability list"},
		{"short", make([]byte, 10), 0, "too short"},
	}
	for _, c := range cases {
		got, err := msixTableSize(c.cfg)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: %d, %v; want %d", c.name, got, err, c.want)
		}
	}
}
