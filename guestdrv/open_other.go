//go:build !linux

package guestdrv

import "errors"

// Open is Linux only: the driver maps the device through Linux's sysfs and
// vfio-pci.
func Open(Options) (*Port, error) {
	return nil, errors.New("guestdrv: the guest driver runs on Linux guests; FreeBSD guests use the kernel's ptnet(4) driver")
}
