package pci

import (
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"
)

const addr = "0000:00:03.0"

// sysfsDevice adds resource and config files to a fake function: regular
// files mmap like the sysfs ones. IVPosition (BAR0+8) reads 7.
func sysfsDevice(t *testing.T, memSize int, command uint16) (paths, string) {
	t.Helper()
	p := fakeTree(t, fakeFn{addr: addr, vendor: "0x1af4\n", device: "0x1110\n"})
	dir := p.device(addr)
	regs := make([]byte, 256)
	binary.LittleEndian.PutUint32(regs[8:], 7)
	writeFile(t, filepath.Join(dir, "resource0"), string(regs))
	writeFile(t, filepath.Join(dir, "resource2"), string(make([]byte, memSize)))
	cfg := make([]byte, 256)
	binary.LittleEndian.PutUint16(cfg[cfgCommand:], command)
	writeFile(t, filepath.Join(dir, "config"), string(cfg))
	return p, dir
}

func TestOpenSysfs(t *testing.T) {
	p, dir := sysfsDevice(t, 1<<16, 0x0400)
	m, err := p.openSysfs(addr)
	if err != nil {
		t.Fatal(err)
	}
	if m.Mode() != "sysfs" || m.Irqs != nil {
		t.Errorf("Mode() = %q, Irqs = %v; want sysfs and none", m.Mode(), m.Irqs)
	}
	if len(m.Regs) != 256 || len(m.Mem) != 1<<16 {
		t.Fatalf("len(Regs), len(Mem) = %d, %d; want 256, 65536", len(m.Regs), len(m.Mem))
	}
	if got := m.Read32(8); got != 7 {
		t.Errorf("Read32(8) = %d, want the IVPosition 7", got)
	}
	m.Write32(12, 0x0001_0002) // ring peer 1, vector 2
	m.Mem[4096] = 0xab
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if m.Regs != nil || m.Mem != nil {
		t.Error("Close left Regs or Mem set")
	}

	regs := readFile(t, filepath.Join(dir, "resource0"))
	if got := regs[12:16]; got != "\x02\x00\x01\x00" {
		t.Errorf("doorbell bytes = % x, want 02 00 01 00", got)
	}
	if strings.Trim(regs[:8]+regs[16:], "\x00") != "" {
		t.Error("Write32(12) wrote outside bytes 12-15")
	}
	if got := readFile(t, filepath.Join(dir, "resource2"))[4096]; got != 0xab {
		t.Errorf("Mem[4096] in the file = %#x, want 0xab", got)
	}
	cfg := readFile(t, filepath.Join(dir, "config"))
	if got := binary.LittleEndian.Uint16([]byte(cfg[cfgCommand:])); got != 0x0402 {
		t.Errorf("command register = %#04x, want memory decoding added: 0x0402", got)
	}
}

func TestOpenSysfsErrors(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(t *testing.T, dir string)
		want    string
	}{
		{"no BAR2", func(t *testing.T, dir string) { removeFile(t, filepath.Join(dir, "resource2")) }, "resource2"},
		{"empty BAR2", func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "resource2"), "") }, "resource2: empty"},
		{"no BAR0", func(t *testing.T, dir string) { removeFile(t, filepath.Join(dir, "resource0")) }, "resource0"},
		{"no config", func(t *testing.T, dir string) { removeFile(t, filepath.Join(dir, "config")) }, "config"},
		{"short config", func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "config"), "\x00\x00") }, "command register"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, dir := sysfsDevice(t, 4096, 0)
			tt.breakIt(t, dir)
			m, err := p.openSysfs(addr)
			if err == nil {
				m.Close()
				t.Fatal("openSysfs succeeded")
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "pci "+addr+": ") || !strings.Contains(msg, tt.want) {
				t.Fatalf("error %q; want it to start with the address and mention %q", msg, tt.want)
			}
		})
	}
}
