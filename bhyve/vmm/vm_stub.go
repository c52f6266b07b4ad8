//go:build !(freebsd && amd64)

package vmm

import (
	"errors"
	"fmt"
)

// VM is a bhyve VM. vmm(4) exists only on FreeBSD/amd64: here Open
// always fails and the methods exist so that code using Machine builds.
type VM struct{}

var errUnsupported = fmt.Errorf("bhyve's vmm(4) exists only on FreeBSD/amd64: %w", errors.ErrUnsupported)

// Open fails: there is no vmm(4) on this system.
func Open(name string) (*VM, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("vm %s: %w", name, errUnsupported)
}

// Memory fails: there is no vmm(4) on this system.
func (*VM) Memory() (*GuestMemory, error) { return nil, errUnsupported }

// Devmem fails: there is no vmm(4) on this system.
func (*VM) Devmem(string) ([]byte, error) { return nil, errUnsupported }

// RaiseMSI fails: there is no vmm(4) on this system.
func (*VM) RaiseMSI(uint64, uint32) error { return errUnsupported }

// Close does nothing.
func (*VM) Close() error { return nil }
