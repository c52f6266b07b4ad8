// Package guestdrv is the guest side of ptbhyve's ptnet device for guests
// whose kernel has no netmap: a userspace driver that finds the device on
// the PCI bus, maps its shared memory and speaks the guest half of the CSB
// protocol, and the interface its tools (traffic generator, TAP bridge)
// drive the rings through.
package guestdrv

import (
	"errors"
	"time"

	"github.com/ptbhyve/ptbhyve/netmap"
	"golang.org/x/sys/unix"
)

// Rings is what a guest application drives, in netmap's own terms: it fills
// TX slots and drains RX slots between head and tail, moves head and cur,
// then syncs, as an application does with NIOCTXSYNC, NIOCRXSYNC and poll
// on a netmap file descriptor.
type Rings interface {
	NumTx() int
	NumRx() int
	TxRing(i int) netmap.Ring
	RxRing(i int) netmap.Ring
	// Buf is the buffer a slot names; nil if idx is not a buffer of the
	// region.
	Buf(idx uint32) []byte
	// TxSync publishes every TX ring's head and cur and reclaims
	// completed slots; RxSync returns consumed RX slots and picks up new
	// packets.
	TxSync() error
	RxSync() error
	// Wait sleeps until a ring may have news (packets arrived, TX space
	// freed) or d passes; callers sync after it returns. A spurious return
	// is allowed, as with poll.
	Wait(d time.Duration) error
}

// HostPort drives a host netmap.Port as an application in this process
// would: the tools' code runs unchanged over a pipe or an AF_XDP port in
// host tests.
func HostPort(p netmap.Port) Rings { return hostPort{p} }

type hostPort struct{ p netmap.Port }

func (h hostPort) NumTx() int               { return len(h.p.TxRings()) }
func (h hostPort) NumRx() int               { return len(h.p.RxRings()) }
func (h hostPort) TxRing(i int) netmap.Ring { return h.p.If().TxRing(i) }
func (h hostPort) RxRing(i int) netmap.Ring { return h.p.If().RxRing(i) }
func (h hostPort) TxSync() error            { return netmap.TxSync(h.p) }
func (h hostPort) RxSync() error            { return netmap.RxSync(h.p) }
func (h hostPort) Buf(idx uint32) []byte {
	r := h.p.Region()
	if !r.ValidBuf(idx) {
		return nil
	}
	return r.Buf(idx)
}

func (h hostPort) Wait(d time.Duration) error {
	w := h.p.Waker()
	if !w.Arm() {
		w.Disarm()
		return nil
	}
	defer w.Disarm()
	fds := []unix.PollFd{{Fd: int32(w.Fd()), Events: w.Events()}}
	ms := int(d / time.Millisecond)
	if d > 0 && ms == 0 {
		ms = 1
	}
	_, err := unix.Poll(fds, ms)
	if errors.Is(err, unix.EINTR) {
		return nil
	}
	return err
}
