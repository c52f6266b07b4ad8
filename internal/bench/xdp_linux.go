package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/ptbhyve/ptbhyve/internal/event"
	"github.com/ptbhyve/ptbhyve/internal/seqframe"
	"github.com/ptbhyve/ptbhyve/internal/shm"
	"github.com/ptbhyve/ptbhyve/internal/testnet"
	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/netmap/xdp"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
	"golang.org/x/sys/unix"
)

// The xdp benchmark: two namespaces joined by a veth. The sender is a child
// process in both measurements: the guest driving a ptnet device whose
// port is xdp:A, served by the host loop in this process (the path), or a
// plain AF_XDP sender that opens xdp:A itself (the reference). One
// receiver, an xdp: port on B in this process, counts the frames. The
// ratio is ptbhyve's extra hop on the same veth.

type xdpSenderConfig struct {
	NSPath string
	Ifname string
	Frames uint64
	Slots  uint32
	Burst  int
	CPU    int
}

// runXDPSender is the reference's sender child: it enters the namespace,
// opens xdp:IF and streams frames with plain netmap syncs.
func runXDPSender() error {
	var c xdpSenderConfig
	if err := childConfig(&c); err != nil {
		return err
	}
	runtime.LockOSThread() // this thread changes namespace and never leaves it
	fd, err := unix.Open(c.NSPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter %s: %w", c.NSPath, err)
	}
	p, err := xdp.OpenPort(netmap.Name{Family: netmap.FamilyXDP, Port: c.Ifname, Mode: netmap.RegAllNIC}, xdp.PortConfig{Slots: c.Slots})
	if err != nil {
		return err
	}
	defer p.Close()
	out := newReporter()
	if err := out.send(map[string]bool{"ready": true}); err != nil {
		return err
	}
	if !out.waitLine() {
		return nil
	}
	pin(c.CPU)
	hdr := newFrame([6]byte{2, 0x70, 0x74, 0, 0, 9}, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	ring, region := p.If().TxRing(0), p.Region()
	var sent uint64
	start := time.Now()
	for sent < c.Frames {
		sent = seqframe.Fill(ring, region, hdr, sent, sent+min(uint64(c.Burst), c.Frames-sent))
		if err := netmap.TxSync(p); err != nil {
			return err
		}
	}
	if err := out.send(guestResult{Frames: sent, Elapsed: time.Since(start)}); err != nil {
		return err
	}
	out.waitLine()
	return nil
}

// xdpReceiver counts the benchmark's frames arriving on an xdp: port.
type xdpReceiver struct {
	p              *xdp.Port
	next, got      uint64
	first, last    time.Time
	reordered      bool
	stop, finished chan struct{}
}

// run receives until frames are accounted for or, once stop is closed,
// nothing has arrived for lossIdle.
func (r *xdpReceiver) run(frames uint64) {
	defer close(r.finished)
	ring, region := r.p.If().RxRing(0), r.p.Region()
	var idle time.Time
	for r.next < frames {
		netmap.RxSync(r.p)
		h, t := ring.Head(), ring.Tail()
		for ; h != t; h = ring.Next(h) {
			b := region.Buf(ring.Slot(h).BufIdx)
			if b[12] != 0x88 || b[13] != 0xb5 {
				continue // the kernel's own traffic
			}
			v := binary.LittleEndian.Uint64(b[seqframe.Off:])
			if v < r.next {
				r.reordered = true
			}
			if r.got == 0 {
				r.first = time.Now()
			}
			r.next, r.got, r.last = v+1, r.got+1, time.Now()
		}
		ring.Advance(h)
		select {
		case <-r.stop:
			if h != t {
				idle = time.Time{}
			} else if idle.IsZero() {
				idle = time.Now()
			} else if time.Since(idle) > lossIdle {
				return
			}
		default:
		}
	}
}

// xdpRig is the two namespaces, the receiver's port and, for the path,
// the host port with its device.
type xdpRig struct {
	pair *testnet.Pair
	rx   *xdp.Port
}

func newXDPRig(o Options) (*xdpRig, error) {
	if reason := testnet.Unavailable(); reason != "" {
		return nil, fmt.Errorf("bench: the xdp backend builds network namespaces: %s", reason)
	}
	pair, err := testnet.NewPairE(testnet.PairConfig{Queues: 1})
	if err != nil {
		return nil, err
	}
	r := &xdpRig{pair: pair}
	if err := pair.B.Do(func() error {
		r.rx, err = xdp.OpenPort(netmap.Name{Family: netmap.FamilyXDP, Port: pair.BName, Mode: netmap.RegAllNIC}, xdp.PortConfig{Slots: 2048})
		return err
	}); err != nil {
		pair.Close()
		return nil, err
	}
	return r, nil
}

func (r *xdpRig) close() {
	if r.rx != nil {
		r.rx.Close()
	}
	r.pair.Close()
}

// measure starts the receiver, tells child c to go, and returns the
// delivered rate and the loss.
func (r *xdpRig) measure(c *child, frames uint64) (mpps, lossPct float64, g guestResult, err error) {
	rcv := &xdpReceiver{p: r.rx, stop: make(chan struct{}), finished: make(chan struct{})}
	// Take what is already queued (neighbour discovery) out of the way.
	netmap.RxSync(r.rx)
	ring := r.rx.If().RxRing(0)
	ring.Advance(ring.Tail())
	go rcv.run(frames)
	if err := c.send(map[string]bool{"go": true}); err != nil {
		return 0, 0, g, err
	}
	err = c.recv(&g)
	close(rcv.stop)
	<-rcv.finished
	if err != nil {
		return 0, 0, g, err
	}
	if rcv.reordered {
		return 0, 0, g, fmt.Errorf("bench: frames arrived out of order on %s", r.pair.BName)
	}
	if rcv.got == 0 {
		return 0, 0, g, fmt.Errorf("bench: no frame reached %s", r.pair.BName)
	}
	secs := rcv.last.Sub(rcv.first).Seconds()
	if secs <= 0 {
		secs = g.Elapsed.Seconds()
	}
	return float64(rcv.got) / secs / 1e6, 100 * float64(frames-rcv.got) / float64(frames), g, nil
}

// xdpRun is one run of the xdp benchmark: the reference, then the path.
func xdpRun(o Options) (RunResult, error) {
	r, err := newXDPRig(o)
	if err != nil {
		return RunResult{}, err
	}
	defer r.close()

	// Reference: a plain AF_XDP sender in a child, on the same veth.
	ref, err := spawn("xdpsend", xdpSenderConfig{NSPath: "/run/netns/" + r.pair.A.Name, Ifname: r.pair.AName,
		Frames: o.Frames, Slots: o.Slots, Burst: o.Burst, CPU: o.GuestCPU}, nil)
	if err != nil {
		return RunResult{}, err
	}
	var ready map[string]bool
	if err := ref.recv(&ready); err != nil {
		ref.wait()
		return RunResult{}, err
	}
	refMpps, _, _, err := r.measure(ref, o.Frames)
	ref.wait()
	if err != nil {
		return RunResult{}, err
	}

	// Path: the guest's device over xdp:A, served by the host loop here.
	// The reference child's socket is released by the kernel a moment
	// after the child exits: retry while the queue is still busy.
	var host *xdp.Port
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		err = r.pair.A.Do(func() error {
			var err error
			host, err = xdp.OpenPort(netmap.Name{Family: netmap.FamilyXDP, Port: r.pair.AName, Mode: netmap.RegAllNIC}, xdp.PortConfig{Slots: o.Slots})
			return err
		})
		if err == nil || !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		return RunResult{}, err
	}
	defer host.Close()
	ram, err := shm.New("guest-ram", ramSize)
	if err != nil {
		return RunResult{}, err
	}
	defer ram.Close()
	loop, err := ptnetmap.NewLoop(ptnetmap.LoopConfig{Spin: o.Spin, CPU: o.HelperCPU})
	if err != nil {
		return RunResult{}, err
	}
	loop.Start()
	defer loop.Stop()
	evs, err := event.NewN(4) // kick and interrupt for the TX and RX ring
	if err != nil {
		return RunResult{}, err
	}
	defer func() {
		for _, e := range evs {
			e.Close()
		}
	}()
	dev, err := ptnetmap.NewPtnet(ptnetmap.PtnetConfig{Port: host, MAC: [6]byte{2, 0x70, 0x74, 0, 0, 0},
		Mem: ptnetmap.FlatMemory(ram.Bytes()), Irq: ptnetmap.EventInterrupts(evs[2:]), Kicks: evs[:2], Loop: loop})
	if err != nil {
		return RunResult{}, err
	}
	defer dev.Reset()
	info, err := ptnetmap.Probe(dev, ptnetmap.NewMemdev(host.Region().Info()))
	if err != nil {
		return RunResult{}, err
	}
	d := guestDev{Info: info, Atok: 8192, Ktoa: 12288}
	if err := ptnetmap.Create(dev, d.Atok, d.Ktoa); err != nil {
		return RunResult{}, err
	}
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	add := func(fd int, name string) int {
		nfd, err := unix.Dup(fd)
		if err != nil {
			nfd = -1
		}
		files = append(files, os.NewFile(uintptr(nfd), name))
		return 2 + len(files)
	}
	add(ram.Fd(), "ram")
	d.Region = add(host.MemFd(), "region")
	for _, e := range evs[:2] {
		d.Kicks = append(d.Kicks, add(e.WriteFd(), "kick"))
	}
	for _, e := range evs[2:] {
		d.Irqs = append(d.Irqs, add(e.Fd(), "irq"))
	}
	c, err := spawn("guest", guestConfig{RAMSize: ramSize, Devices: []guestDev{d}, Frames: o.Frames, Burst: o.Burst,
		CPU: o.GuestCPU, TxOnly: true}, files)
	if err != nil {
		return RunResult{}, err
	}
	defer c.wait()
	if err := c.recv(&ready); err != nil {
		return RunResult{}, err
	}
	cpu0 := processCPU()
	mpps, loss, g, err := r.measure(c, o.Frames)
	busy := processCPU() - cpu0
	if err != nil {
		return RunResult{}, err
	}
	st := dev.Stats()
	secs := g.Elapsed.Seconds()
	dir := Direction{Name: "guest->" + r.pair.BName, Mpps: mpps, LossPct: loss,
		HelperCPUSeconds: busy.Seconds(), GuestCPUSeconds: g.CPU.Seconds(),
		HelperCPUPct: 100 * busy.Seconds() / secs, GuestCPUPct: 100 * g.CPU.Seconds() / secs,
		KicksPerPacket:      float64(st[0].Kicks+st[1].Kicks) / float64(o.Frames),
		InterruptsPerPacket: float64(st[0].Interrupts+st[1].Interrupts) / float64(o.Frames)}
	time.Sleep(o.Spin + 50*time.Millisecond)
	idle0 := processCPU()
	time.Sleep(o.Idle)
	res := RunResult{Mpps: mpps, ReferenceMpps: refMpps, Ratio: mpps / refMpps, HelperCPUPct: dir.HelperCPUPct,
		GuestCPUPct: dir.GuestCPUPct, KicksPerPacket: dir.KicksPerPacket, InterruptsPerPacket: dir.InterruptsPerPacket,
		HelperIdleCPUPct: 100 * (processCPU() - idle0).Seconds() / o.Idle.Seconds(), Directions: []Direction{dir}}
	return res, nil
}
