//go:build linux || freebsd

package backend

import (
	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/netmap/kernel"
)

// openKernel binds a kernel netmap port; the kernel owns its ring and slot
// geometry, which the name's @conf: can request. With Options.Mem the
// kernel is asked to build the port's region there (EXTMEM), sized for
// the rings the options describe.
func openKernel(n netmap.Name, o Options) (netmap.Port, error) {
	var p *kernel.Port
	var err error
	if o.Mem != nil {
		p, err = kernel.OpenPortIn(n, o.Mem, KernelParams(o))
	} else {
		p, err = kernel.OpenPort(n)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}
