// Package backend opens a netmap.Port by name, choosing the backend from the
// name's family: ptbhyve's in-process pipes for pipe: and switches for
// switchX:, kernel netmap for netmap: and valeX: where /dev/netmap exists,
// AF_XDP for xdp: on Linux.
package backend

import (
	"fmt"

	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/netmap/pipe"
)

// Options are defaults for what a name does not say.
type Options struct {
	Rings   int    // rings per direction for ports created on the fly
	Slots   uint32 // slots per ring
	BufSize uint32
	// Mem, if set, is where a port that builds its own region builds it:
	// a VM's device memory, so the guest sees the rings and buffers with
	// no copy. It stays the caller's. Kernel netmap ports ask netmap to
	// build theirs there (EXTMEM), which netmap may refuse; AF_XDP ports
	// put their UMEM there.
	Mem []byte
}

// KernelParams are the pools a kernel port opened in Options.Mem asks
// netmap for: the rings the options describe plus one host ring pair,
// whose netmap_if entries and buffers a port may carry although it binds
// only hardware rings. Size the memory with netmap.Layout of them.
func KernelParams(o Options) netmap.PoolParams {
	return netmap.ParamsFor(1, o.Rings+1, o.Rings+1, o.Slots, o.Slots, o.BufSize, 0)
}

// Open parses name and opens the port it names.
func Open(name string, o Options) (netmap.Port, error) {
	n, err := netmap.ParseName(name)
	if err != nil {
		return nil, err
	}
	switch n.Family {
	case netmap.FamilyPipe:
		return openPipe(n, o)
	case netmap.FamilyNetmap, netmap.FamilyVale:
		return openKernel(n, o)
	case netmap.FamilyXDP:
		return openXDP(n, o)
	case netmap.FamilySwitch:
		return openSwitch(n, o)
	}
	return nil, fmt.Errorf("%s: no backend for family %s", name, n.Family)
}

func openPipe(n netmap.Name, o Options) (netmap.Port, error) {
	slots := o.Slots
	if n.Conf.TxSlots != 0 {
		slots = n.Conf.TxSlots
	}
	if n.Conf.RxSlots != 0 && n.Conf.RxSlots != slots {
		return nil, fmt.Errorf("%s: a pipe's two directions have one ring size; give slots=, not different tx-slots and rx-slots", n)
	}
	return pipe.Open(n.Port+"/"+n.PipeID, n.PipeRole == netmap.PipeMaster, pipe.Config{Rings: o.Rings, Slots: slots, BufSize: o.BufSize, Mem: o.Mem})
}
