//go:build linux

package xdp

import (
	"errors"
	"fmt"
	"net"

	"github.com/ptbhyve/ptbhyve/internal/rtnl"
	"github.com/ptbhyve/ptbhyve/netmap"
	"golang.org/x/sys/unix"
)

// OpenPort opens xdp:IF (every queue the device has) or xdp:IF-Q (queue
// Q) in the calling thread's network namespace: it lays out the region,
// binds an AF_XDP socket per queue with the region's buffer pool as UMEM,
// loads the redirect program, points its XSKMAP at the sockets and
// attaches it, native mode first. In generic mode every frame arrives on
// queue 0, so xdp:IF then binds queue 0 only.
func OpenPort(n netmap.Name, c PortConfig) (*Port, error) {
	if n.Family != netmap.FamilyXDP {
		return nil, fmt.Errorf("xdp: %s is not an xdp: port", n)
	}
	ifi, err := net.InterfaceByName(n.Port)
	if err != nil {
		return nil, fmt.Errorf("xdp: no interface %s in this network namespace (ip link show %s): %w", n.Port, n.Port, err)
	}
	if n.Conf.TxSlots != 0 {
		c.Slots = n.Conf.TxSlots
	}
	prog, err := LoadProgram(maxQueues)
	if err != nil {
		return nil, err
	}
	att, err := Attach(prog, ifi.Index, ModeNative)
	if err != nil {
		prog.Close()
		return nil, err
	}
	var queues []int
	switch {
	case n.Mode == netmap.RegOneNIC:
		queues = []int{int(n.RingID)}
	case att.Mode == ModeGeneric:
		queues = []int{0}
	default:
		queues = deviceQueues(ifi.Index)
	}
	p, err := newPort(n.String(), n.Port, ifi.Index, queues, c)
	for err != nil && n.Mode != netmap.RegOneNIC && len(queues) > 1 && errors.Is(err, unix.EINVAL) {
		// More queues allocated than real: bind the ones that are.
		queues = queues[:len(queues)-1]
		p, err = newPort(n.String(), n.Port, ifi.Index, queues, c)
	}
	if err != nil {
		att.Close()
		prog.Close()
		return nil, err
	}
	for i, q := range queues {
		if err := prog.SetSocket(q, p.socks[i].Fd()); err != nil {
			p.Close()
			att.Close()
			prog.Close()
			return nil, err
		}
	}
	p.prog, p.att = prog, att
	return p, nil
}

// maxQueues bounds the XSKMAP: queue ids above it cannot be bound.
const maxQueues = 64

// deviceQueues lists the RX queues the device reports, for xdp:IF; newPort
// failing to bind the top ones (allocated but not real) trims the list.
func deviceQueues(ifindex int) []int {
	n := 1
	if c, err := rtnl.Dial(-1); err == nil {
		if l, err := c.LinkByIndex(ifindex); err == nil && l.NumRxQueues > 1 {
			n = min(int(l.NumRxQueues), maxQueues)
		}
		c.Close()
	}
	q := make([]int, n)
	for i := range q {
		q[i] = i
	}
	return q
}
