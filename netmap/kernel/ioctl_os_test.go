//go:build linux || freebsd

package kernel

import (
	"runtime"
	"testing"
)

func TestBuildOSIoctls(t *testing.T) {
	want, eventfds := LinuxIoctls(), true
	if runtime.GOOS == "freebsd" {
		want, eventfds = FreeBSDIoctls(), false
	}
	if nioc != want || kloopEventfds != eventfds {
		t.Errorf("%s: nioc %#x, eventfds %v; want %#x, %v", runtime.GOOS, nioc, kloopEventfds, want, eventfds)
	}
}
