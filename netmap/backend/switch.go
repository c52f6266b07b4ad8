package backend

import (
	"sync"

	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/netmap/vswitch"
)

// switches are the in-process switches switchX: names refer to, made on
// first use and kept for the life of the process, as netmap keeps a VALE
// switch while it has ports (an empty one costs a MAC table).
var (
	switchesMu sync.Mutex
	switches   = map[string]*vswitch.Switch{}
)

func openSwitch(n netmap.Name, o Options) (netmap.Port, error) {
	switchesMu.Lock()
	sw := switches[n.Switch]
	if sw == nil {
		sw = vswitch.New("switch"+n.Switch, vswitch.Config{})
		switches[n.Switch] = sw
	}
	switchesMu.Unlock()
	slots := o.Slots
	if n.Conf.TxSlots != 0 {
		slots = n.Conf.TxSlots
	}
	p, err := sw.Open(n.Port, vswitch.PortConfig{Rings: o.Rings, Slots: slots, BufSize: o.BufSize, Mem: o.Mem})
	if err != nil {
		return nil, err
	}
	return p, nil
}
