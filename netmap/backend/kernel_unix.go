//go:build linux || freebsd

package backend

import (
	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/netmap/kernel"
)

// openKernel binds a kernel netmap port; the kernel owns its ring and slot
// geometry, which the name's @conf: can request.
func openKernel(n netmap.Name, _ Options) (netmap.Port, error) {
	p, err := kernel.OpenPort(n)
	if err != nil {
		return nil, err
	}
	return p, nil
}
