package pci

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// setCommand changes only the bits it is asked to set, at the config
// space's base, and leaves the rest of config space alone.
func TestSetCommand(t *testing.T) {
	tests := []struct {
		name      string
		base      int64
		cmd, bits uint16
		want      uint16
	}{
		{"memory on a disabled device", 0, 0x0000, cmdMemory, 0x0002},
		{"bus master, as the VM showed: 0x0103 -> 0x0107", 0, 0x0103, cmdMemory | cmdBusMaster, 0x0107},
		{"INTx disable survives", 0, 0x0400, cmdMemory, 0x0402},
		{"already set", 0, 0x0007, cmdMemory | cmdBusMaster, 0x0007},
		{"at a VFIO region offset", 7 << 12, 0x0103, cmdBusMaster, 0x0107},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config")
			cfg := make([]byte, tt.base+256)
			for i := range cfg {
				cfg[i] = 0xa5
			}
			binary.LittleEndian.PutUint16(cfg[tt.base+cfgCommand:], tt.cmd)
			writeFile(t, path, string(cfg))
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := setCommand(int(f.Fd()), tt.base, tt.bits); err != nil {
				t.Fatal(err)
			}
			got := []byte(readFile(t, path))
			if cmd := binary.LittleEndian.Uint16(got[tt.base+cfgCommand:]); cmd != tt.want {
				t.Errorf("command = %#04x, want %#04x", cmd, tt.want)
			}
			binary.LittleEndian.PutUint16(got[tt.base+cfgCommand:], tt.cmd)
			if string(got) != string(cfg) {
				t.Error("setCommand wrote outside the command register")
			}
		})
	}
}

func TestSetCommandShortConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	writeFile(t, path, "\x00\x00\x00\x00\x00")
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := setCommand(int(f.Fd()), 0, cmdMemory); err == nil {
		t.Fatal("setCommand on a 5-byte config space succeeded")
	}
}
