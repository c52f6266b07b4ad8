package pci

import (
	"fmt"
	"os"
	"path/filepath"
)

// OpenSysfs maps d's BAR0 (registers) and BAR2 (memory) through its sysfs
// resource files, for a driver that polls: there are no interrupts. It
// also turns on memory decoding, without which the mappings read all ones.
// d needs no driver.
func OpenSysfs(d Device) (*Mapped, error) {
	return system.openSysfs(d.Addr)
}

func (p paths) openSysfs(addr string) (_ *Mapped, err error) {
	dir := p.device(addr)
	m := &Mapped{mode: "sysfs"}
	defer func() {
		if err != nil {
			m.Close()
			err = fmt.Errorf("pci %s: %w", addr, err)
		}
	}()
	if err := enableMemory(filepath.Join(dir, "config")); err != nil {
		return nil, err
	}
	if m.Regs, err = m.mapResource(filepath.Join(dir, "resource0")); err != nil {
		return nil, err
	}
	if m.Mem, err = m.mapResource(filepath.Join(dir, "resource2")); err != nil {
		return nil, err
	}
	return m, nil
}

// enableMemory sets the memory-decoding bit through the sysfs config file.
// Firmware normally sets it; no driver has enabled this device, so make
// sure.
func enableMemory(config string) error {
	f, err := os.OpenFile(config, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("%w%s", err, rootHint(err))
	}
	defer f.Close()
	if err := setCommand(int(f.Fd()), 0, cmdMemory); err != nil {
		return fmt.Errorf("%s: %w", config, err)
	}
	return nil
}

// mapResource maps a whole sysfs resource file, whose size is the BAR's.
// The mapping outlives the descriptor.
func (m *Mapped) mapResource(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_SYNC, 0)
	if err != nil {
		return nil, fmt.Errorf("%w%s", err, rootHint(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() == 0 {
		return nil, fmt.Errorf("%s: empty: the device does not implement this BAR", path)
	}
	b, err := m.mmap(int(f.Fd()), 0, int(fi.Size()))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}
