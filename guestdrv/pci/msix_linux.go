package pci

import (
	"fmt"
	"os"
	"path/filepath"
)

// MSIXVectors reads the size of d's MSI-X table from its configuration
// space, so a driver can bind every vector (OpenVFIO) before it knows
// anything else about the device.
func MSIXVectors(d Device) (int, error) {
	return system.msixVectors(d.Addr)
}

func (p paths) msixVectors(addr string) (int, error) {
	path := filepath.Join(p.device(addr), "config")
	cfg, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("pci %s: %w%s", addr, err, rootHint(err))
	}
	return msixTableSize(cfg)
}

// msixTableSize walks the capability list of a configuration space for the
// MSI-X capability (ID 0x11) and returns its table size (Message Control
// bits 0-10, plus one). The list comes from the device: every pointer is
// checked and a loop ends after 48 steps, the most that fit.
func msixTableSize(cfg []byte) (int, error) {
	const (
		statusCapList = 1 << 4
		capMSIX       = 0x11
	)
	if len(cfg) < 64 {
		return 0, fmt.Errorf("pci: configuration space of %d bytes is too short", len(cfg))
	}
	if cfg[6]&statusCapList == 0 {
		return 0, fmt.Errorf("pci: device has no capability list, so no MSI-X")
	}
	ptr := int(cfg[0x34]) &^ 3
	for range 48 {
		if ptr < 0x40 || ptr+4 > len(cfg) {
			break
		}
		if cfg[ptr] == capMSIX {
			ctl := int(cfg[ptr+2]) | int(cfg[ptr+3])<<8
			return ctl&0x7ff + 1, nil
		}
		ptr = int(cfg[ptr+1]) &^ 3
	}
	return 0, fmt.Errorf("pci: device has no MSI-X capability")
}
