package bench

import (
	"fmt"
	"os"
	"time"

	"github.com/ptbhyve/ptbhyve/internal/event"
	"github.com/ptbhyve/ptbhyve/internal/shm"
	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/netmap/pipe"
	"github.com/ptbhyve/ptbhyve/netmap/vswitch"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
	"golang.org/x/sys/unix"
)

// A rig is the host half of the benchmark: two ptnet devices joined by a
// backend (the two ends of a pipe, or two ports of a switch), one host sync
// loop serving both, and guest RAM holding the CSBs. The guest half runs in
// a child process that maps the devices' regions and the RAM.
type rig struct {
	ports  [2]sharedPort
	sw     *vswitch.Switch
	ram    *shm.Mem
	loop   *ptnetmap.Loop
	devs   [2]*ptnetmap.Ptnet
	events []*event.Event

	cfg   guestConfig
	files []*os.File
}

// ramSize holds the CSBs of both devices, two pages each from 8 KiB up
// (guest-physical 0 means "no CSB").
const ramSize = 3 * 8192

// sharedPort is a port whose region lives in shared memory another process
// can map.
type sharedPort interface {
	netmap.Port
	MemFd() int
}

// rigConfig sizes a rig.
type rigConfig struct {
	Backend   string // pipe or switch
	Slots     uint32
	Spin      time.Duration
	HelperCPU int
}

var rigSeq int

func newRig(c rigConfig) (r *rig, err error) {
	r = &rig{}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	rigSeq++
	key := fmt.Sprintf("bench-%d-%d", os.Getpid(), rigSeq)
	switch c.Backend {
	case "pipe":
		for i, master := range []bool{true, false} {
			e, err := pipe.Open(key, master, pipe.Config{Slots: c.Slots})
			if err != nil {
				return r, err
			}
			r.ports[i] = e
		}
	case "switch":
		r.sw = vswitch.New(key, vswitch.Config{})
		for i, name := range []string{"vm0", "vm1"} {
			p, err := r.sw.Open(name, vswitch.PortConfig{Slots: c.Slots})
			if err != nil {
				return r, err
			}
			r.ports[i] = p
		}
	default:
		return r, fmt.Errorf("bench: backend %q: want pipe or switch", c.Backend)
	}
	if r.ram, err = shm.New("guest-ram", ramSize); err != nil {
		return r, err
	}
	if r.loop, err = ptnetmap.NewLoop(ptnetmap.LoopConfig{Spin: c.Spin, CPU: c.HelperCPU}); err != nil {
		return r, err
	}
	r.loop.Start()
	r.cfg.RAMSize = ramSize
	r.addFile(r.ram.Fd(), "ram")
	for i, p := range r.ports {
		n := len(p.TxRings()) + len(p.RxRings())
		evs, err := event.NewN(2 * n)
		if err != nil {
			return r, err
		}
		r.events = append(r.events, evs...)
		kicks, irqs := evs[:n], evs[n:]
		r.devs[i], err = ptnetmap.NewPtnet(ptnetmap.PtnetConfig{Port: p, MAC: [6]byte{0x02, 0x70, 0x74, 0, 0, byte(i)},
			Mem: ptnetmap.FlatMemory(r.ram.Bytes()), Irq: ptnetmap.EventInterrupts(irqs), Kicks: kicks, Loop: r.loop})
		if err != nil {
			return r, err
		}
		// What the guest driver does at attach, done here on its behalf:
		// the child learns the results from its configuration.
		info, err := ptnetmap.Probe(r.devs[i], ptnetmap.NewMemdev(p.Region().Info()))
		if err != nil {
			return r, err
		}
		d := guestDev{Info: info, Atok: uint64(i+1) * 8192, Ktoa: uint64(i+1)*8192 + 4096,
			Region: r.addFile(p.MemFd(), "region")}
		if err := ptnetmap.Create(r.devs[i], d.Atok, d.Ktoa); err != nil {
			return r, err
		}
		for _, e := range kicks {
			d.Kicks = append(d.Kicks, r.addFile(e.WriteFd(), "kick"))
		}
		for _, e := range irqs {
			d.Irqs = append(d.Irqs, r.addFile(e.Fd(), "irq"))
		}
		r.cfg.Devices = append(r.cfg.Devices, d)
	}
	return r, nil
}

// addFile adds a duplicate of fd to the child's descriptors and returns its
// number there. The rig owns the duplicate, so the original's owner keeps
// closing its own descriptor.
func (r *rig) addFile(fd int, name string) int {
	d, err := unix.Dup(fd)
	if err != nil {
		d = -1 // the child will fail on it with a clear error
	}
	unix.CloseOnExec(d)
	r.files = append(r.files, os.NewFile(uintptr(d), name))
	return 2 + len(r.files)
}

func (r *rig) stats() [2][]ptnetmap.RingStats {
	return [2][]ptnetmap.RingStats{r.devs[0].Stats(), r.devs[1].Stats()}
}

func (r *rig) close() {
	for _, d := range r.devs {
		if d != nil {
			d.Reset()
		}
	}
	if r.loop != nil {
		r.loop.Stop()
	}
	for _, e := range r.events {
		e.Close()
	}
	for _, f := range r.files {
		f.Close()
	}
	if r.ram != nil {
		r.ram.Close()
	}
	for _, p := range r.ports {
		if p != nil {
			p.Close()
		}
	}
}
