package vmm

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
)

// ErrGone reports that the VM was destroyed after it was opened: vmm(4)
// answers ENXIO (or ENOENT) on a descriptor whose VM no longer exists.
// Mappings made before stay valid until unmapped, but nothing new can be
// done; the daemon should detach the VM's devices.
var ErrGone = errors.New("the VM has been destroyed")

// maxNameLen is VM_MAX_NAMELEN: SPECNAMELEN minus the device prefix and
// the longest segment suffix, so that /dev/vmm.io/NAME.SEG always fits.
const maxNameLen = 229

// checkName rejects names that cannot be a VM: they would name another
// file under /dev or could never have been created.
func checkName(name string) error {
	switch {
	case name == "", name == ".", name == "..":
		return fmt.Errorf("%q is not a VM name", name)
	case len(name) > maxNameLen:
		return fmt.Errorf("VM name %.20q... is longer than %d bytes", name, maxNameLen)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("VM name %q contains '/' or NUL", name)
	}
	return nil
}

// checkSegName rejects names VM_ALLOC_MEMSEG could not have been given.
func checkSegName(seg string) error {
	if seg == "" || len(seg) >= segNameSize || strings.ContainsAny(seg, "/\x00") {
		return fmt.Errorf("%q is not a memory-segment name: 1 to %d bytes without '/'", seg, segNameSize-1)
	}
	return nil
}

// openError explains why /dev/vmm/NAME would not open, with the fix.
// loaded reports whether vmm(4) is in the kernel, which tells "no such
// VM" from "no hypervisor".
func openError(name string, err error, loaded func() bool) error {
	path := "/dev/vmm/" + name
	switch {
	case errors.Is(err, fs.ErrNotExist) && !loaded():
		return fmt.Errorf("/dev/vmm does not exist: vmm(4) is not loaded; kldload vmm: %w", err)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("no VM named %s: %s does not exist; is bhyve running?: %w", name, path, err)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return fmt.Errorf("cannot open %s: run ptbhyve as root (in a jail, the jail needs allow.vmm): %w", path, err)
	}
	return fmt.Errorf("cannot open %s: %w", path, err)
}

// ioctlError names a failed operation on VM name and marks the errors
// that mean the VM is gone.
func ioctlError(name, op string, err error) error {
	if errors.Is(err, syscall.ENXIO) || errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("vm %s: %s: %w (%w)", name, op, ErrGone, err)
	}
	return fmt.Errorf("vm %s: %s: %w", name, op, err)
}
