// Package pci gives a userspace guest driver a PCI device's registers,
// memory and interrupts, without a kernel driver of its own. The device is
// QEMU's ivshmem-doorbell: BAR0 holds its registers, BAR2 the shared memory,
// and its only interrupts are MSI-X.
//
// There are two ways in. OpenSysfs maps the BARs through sysfs resource
// files: it needs nothing but root, and the driver polls, because sysfs
// offers no interrupts and uio cannot enable MSI-X. OpenVFIO binds the
// device to vfio-pci and also delivers each MSI-X vector to an eventfd; it
// needs an IOMMU in the guest (QEMU -device intel-iommu, kernel
// intel_iommu=on), since this kernel has no vfio no-IOMMU mode.
//
// The package is Linux-only; elsewhere it is empty.
package pci
