package pci

import (
	"encoding/binary"
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// The PCI command register, at offset 4 of config space, and the bits this
// package sets in it.
const (
	cfgCommand   = 4
	cmdMemory    = 1 << 1 // decode accesses to the memory BARs
	cmdBusMaster = 1 << 2 // let the device write memory: MSI-X messages are memory writes
)

// setCommand ORs bits into the command register of the config space that
// starts at offset base of fd (0 for a sysfs config file, the config
// region's offset for a VFIO device), by one read-modify-write of the
// 16-bit little-endian register. Without the bus-master bit the device's
// MSI-X writes are dropped silently, with MSI-X enabled and no error
// anywhere.
func setCommand(fd int, base int64, bits uint16) error {
	var b [2]byte
	n, err := unix.Pread(fd, b[:], base+cfgCommand)
	if err == nil && n != len(b) {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return fmt.Errorf("read PCI command register: %w", err)
	}
	cmd := binary.LittleEndian.Uint16(b[:])
	if cmd&bits == bits {
		return nil
	}
	binary.LittleEndian.PutUint16(b[:], cmd|bits)
	n, err = unix.Pwrite(fd, b[:], base+cfgCommand)
	if err == nil && n != len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("write PCI command register %#04x: %w%s", cmd|bits, err, rootHint(err))
	}
	return nil
}
