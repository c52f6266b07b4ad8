package pci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// iommuGroup names the IOMMU group of the function at addr: the base of
// its iommu_group link (.../kernel/iommu_groups/N). The IOMMU puts every
// device in a group while the kernel boots, long before this runs, so a
// missing link means there is no IOMMU and waiting would not help.
func (p paths) iommuGroup(addr string) (string, error) {
	link, err := os.Readlink(filepath.Join(p.device(addr), "iommu_group"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", errors.New("no IOMMU group: boot the guest with intel_iommu=on and give QEMU -device intel-iommu (or use poll mode)")
	}
	if err != nil {
		return "", err
	}
	return filepath.Base(link), nil
}

// bindVFIO hands the function at addr to vfio-pci, unless it already has
// it, and waits until the group's device node /dev/vfio/GROUP exists.
// driver_override makes vfio-pci the only driver that will take it; the
// current driver must let go first, and drivers_probe then binds it.
func (p paths) bindVFIO(addr, group string) error {
	dir := p.device(addr)
	drv, err := driverOf(dir)
	if err != nil {
		return err
	}
	if drv != "vfio-pci" {
		if err := writeSysfs(filepath.Join(dir, "driver_override"), "vfio-pci"); err != nil {
			return err
		}
		if drv != "" {
			if err := writeSysfs(filepath.Join(dir, "driver", "unbind"), addr); err != nil {
				return fmt.Errorf("unbind from %s: %w", drv, err)
			}
		}
		if err := writeSysfs(filepath.Join(p.pci, "drivers_probe"), addr); err != nil {
			return err
		}
	}
	node := filepath.Join(p.vfio, group)
	bound := func() bool { d, _ := driverOf(dir); return d == "vfio-pci" }
	present := func() bool { _, err := os.Stat(node); return err == nil }
	if waitFor(p.settle, func() bool { return bound() && present() }) {
		return nil
	}
	if !bound() {
		return fmt.Errorf("not bound to vfio-pci after %v: load the vfio-pci module (modprobe vfio-pci)", p.settle)
	}
	return fmt.Errorf("bound to vfio-pci but %s did not appear in %v: mount devtmpfs on /dev", node, p.settle)
}

// writeSysfs writes s to an existing sysfs attribute; sysfs acts on the
// whole write.
func writeSysfs(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("%w%s", err, rootHint(err))
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", s, path, err)
	}
	return nil
}

// waitFor polls cond until it holds or limit passes, and reports whether
// it held. Sysfs offers nothing to wait on for a bind.
func waitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
