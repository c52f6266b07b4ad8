package pci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Device is a PCI function as sysfs describes it.
type Device struct {
	Addr     string // domain:bus:device.function, e.g. "0000:00:03.0"
	Vendor   uint16
	DeviceID uint16
	Driver   string // the bound driver's name, "" if none
}

// Find lists the PCI functions with the given vendor and device IDs, sorted
// by address. Finding none is not an error: the caller knows what it
// expected.
func Find(vendor, device uint16) ([]Device, error) {
	return system.find(vendor, device)
}

func (p paths) find(vendor, device uint16) ([]Device, error) {
	dir := filepath.Join(p.pci, "devices")
	// os.ReadDir sorts by name, and the names are the addresses.
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("pci: list devices: %w: is sysfs mounted on /sys?", err)
	}
	var found []Device
	for _, e := range ents {
		d, err := readDevice(filepath.Join(dir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // not a PCI function: it has no vendor or device file
		}
		if err != nil {
			return nil, err
		}
		if d.Vendor == vendor && d.DeviceID == device {
			found = append(found, d)
		}
	}
	return found, nil
}

// readDevice reads the identity and driver of the function whose sysfs
// directory is dir.
func readDevice(dir string) (Device, error) {
	d := Device{Addr: filepath.Base(dir)}
	var err error
	if d.Vendor, err = readID(filepath.Join(dir, "vendor")); err != nil {
		return Device{}, err
	}
	if d.DeviceID, err = readID(filepath.Join(dir, "device")); err != nil {
		return Device{}, err
	}
	if d.Driver, err = driverOf(dir); err != nil {
		return Device{}, err
	}
	return d, nil
}

// readID parses a sysfs ID file, which holds "0x1af4\n".
func readID(path string) (uint16, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("pci: %w", err)
	}
	s := strings.TrimSpace(string(b))
	hex, ok := strings.CutPrefix(s, "0x")
	v, err := strconv.ParseUint(hex, 16, 16)
	if !ok || err != nil {
		return 0, fmt.Errorf("pci: %s: %q is not a 16-bit ID like 0x1af4", path, s)
	}
	return uint16(v), nil
}

// driverOf names the driver bound to the function whose sysfs directory is
// dir: its "driver" link points at .../drivers/NAME, and is absent while
// no driver is bound.
func driverOf(dir string) (string, error) {
	link, err := os.Readlink(filepath.Join(dir, "driver"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("pci: %w", err)
	}
	return filepath.Base(link), nil
}
