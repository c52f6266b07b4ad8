package vmm

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"
)

func TestOpenError(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		loaded bool
		want   string
	}{
		{"no vmm.ko", syscall.ENOENT, false, "/dev/vmm does not exist: vmm(4) is not loaded; kldload vmm"},
		{"no such VM", syscall.ENOENT, true, "no VM named vm0: /dev/vmm/vm0 does not exist; is bhyve running?"},
		{"not root", syscall.EACCES, true, "run ptbhyve as root"},
		{"jail without allow.vmm", syscall.EPERM, true, "run ptbhyve as root"},
		{"other", syscall.EIO, true, "cannot open /dev/vmm/vm0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := openError("vm0", tt.err, func() bool { return tt.loaded })
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%v, want %q", err, tt.want)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("%v does not wrap %v", err, tt.err)
			}
		})
	}
}

func TestIoctlError(t *testing.T) {
	tests := []struct {
		err  error
		gone bool
	}{
		{syscall.ENXIO, true},
		{syscall.ENOENT, true},
		{fmt.Errorf("wrapped: %w", syscall.ENXIO), true},
		{syscall.EINVAL, false},
		{syscall.ENOTTY, false},
		{fs.ErrClosed, false},
	}
	for _, tt := range tests {
		err := ioctlError("vm0", "VM_LAPIC_MSI", tt.err)
		if errors.Is(err, ErrGone) != tt.gone || !errors.Is(err, tt.err) {
			t.Errorf("ioctlError(%v) = %v: ErrGone %v, want %v", tt.err, err, errors.Is(err, ErrGone), tt.gone)
		}
		if !strings.HasPrefix(err.Error(), "vm vm0: VM_LAPIC_MSI: ") {
			t.Errorf("%q does not name the VM and the call", err)
		}
	}
}

func TestNames(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"vm0", true}, {strings.Repeat("a", maxNameLen), true},
		{"", false}, {".", false}, {"..", false}, {"../vmmctl", false}, {"a\x00b", false},
		{strings.Repeat("a", maxNameLen+1), false},
	} {
		if err := checkName(tt.name); (err == nil) != tt.ok {
			t.Errorf("checkName(%q) = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"ptnetmap", true}, {strings.Repeat("s", segNameSize-1), true},
		{"", false}, {strings.Repeat("s", segNameSize), false}, {"a/b", false},
	} {
		if err := checkSegName(tt.name); (err == nil) != tt.ok {
			t.Errorf("checkSegName(%q) = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}
