package pci

import (
	"path/filepath"
	"time"
)

// paths says where the kernel's interfaces live, so that tests can point
// the package at a fake tree.
type paths struct {
	pci    string        // the sysfs PCI bus: devices/, drivers_probe
	vfio   string        // VFIO's character devices: the container "vfio" and one per IOMMU group
	settle time.Duration // how long a driver bind may take to show up
}

// system is the running kernel. A bind under QEMU TCG takes well under a
// second; the margin is for slow CI machines.
var system = paths{pci: "/sys/bus/pci", vfio: "/dev/vfio", settle: 5 * time.Second}

// device is the sysfs directory of the function at addr.
func (p paths) device(addr string) string {
	return filepath.Join(p.pci, "devices", addr)
}
