//go:build linux || freebsd

package backend

import (
	"fmt"

	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/netmap/kernel"
)

// openKernel binds a kernel netmap port; the kernel owns its ring and slot
// geometry, which the name's @conf: can request.
func openKernel(n netmap.Name, o Options) (netmap.Port, error) {
	if o.Mem != nil {
		return nil, fmt.Errorf("%s: a kernel netmap port cannot use the VM's memory yet (it would need @extmem); see docs/data-path.md", n)
	}
	p, err := kernel.OpenPort(n)
	if err != nil {
		return nil, err
	}
	return p, nil
}
