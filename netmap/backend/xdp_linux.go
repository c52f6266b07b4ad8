package backend

import (
	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/netmap/xdp"
)

// openXDP opens an AF_XDP port in the calling thread's network namespace.
func openXDP(n netmap.Name, o Options) (netmap.Port, error) {
	p, err := xdp.OpenPort(n, xdp.PortConfig{Slots: o.Slots, BufSize: o.BufSize, Mem: o.Mem})
	if err != nil {
		return nil, err
	}
	return p, nil
}
