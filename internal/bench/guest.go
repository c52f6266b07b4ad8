package bench

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/ptbhyve/ptbhyve/internal/event"
	"github.com/ptbhyve/ptbhyve/internal/shm"
	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
)

// guestConfig is everything the guest child learns from the rig: what a
// guest driver would read from the device registers, plus its descriptors.
type guestConfig struct {
	Pools   netmap.PoolsInfo
	RAMSize int
	Devices []guestDev
	Frames  uint64
	// Both sends device 0 -> 1 and 1 -> 0 at once, each direction on its
	// own goroutines sleeping on interrupts; otherwise one busy-polling
	// goroutine streams 0 -> 1.
	Both  bool
	Burst int
	CPU   int
}

type guestDev struct {
	Info       ptnetmap.DeviceInfo
	Atok, Ktoa uint64 // guest-physical CSB addresses
	Kicks      []int  // descriptor numbers in the child
	Irqs       []int
}

// guestResult is the child's report for one run.
type guestResult struct {
	Frames   uint64        `json:"frames"`
	Elapsed  time.Duration `json:"elapsed"`
	CPU      time.Duration `json:"cpu"` // the child's CPU time over the phase
	Kicks    uint64        `json:"kicks"`
	BadFrame string        `json:"bad_frame,omitempty"`
}

type fdKicker []*event.Event

func (k fdKicker) Kick(ring int) { k[ring].Signal() }

// runGuest is the guest child: it maps the region and RAM, attaches to both
// devices, waits for "go", moves the frames and reports, then idles with
// interrupts enabled until its stdin closes.
func runGuest() error {
	var c guestConfig
	if err := childConfig(&c); err != nil {
		return err
	}
	region, err := shm.Map(3, int(c.Pools.MemSize))
	if err != nil {
		return err
	}
	ram, err := shm.Map(4, c.RAMSize)
	if err != nil {
		return err
	}
	var guests []*ptnetmap.Guest
	var irqs [][]*event.Event
	for _, d := range c.Devices {
		n := uint64(d.Info.NumTx + d.Info.NumRx)
		mem := guestRAM(ram.Bytes())
		gh, err := mem.Slice(d.Atok, n*ptnetmap.CSBEntrySize)
		if err != nil {
			return err
		}
		hg, err := mem.Slice(d.Ktoa, n*ptnetmap.CSBEntrySize)
		if err != nil {
			return err
		}
		var kicks, irq []*event.Event
		for _, fd := range d.Kicks {
			kicks = append(kicks, event.FromFds(fd, fd))
		}
		for _, fd := range d.Irqs {
			irq = append(irq, event.FromFds(fd, fd))
		}
		g, err := ptnetmap.NewGuest(ptnetmap.GuestConfig{Mem: region.Bytes(), Pools: c.Pools, NifpOfs: d.Info.NifpOfs,
			NumTx: d.Info.NumTx, NumRx: d.Info.NumRx, CSB: ptnetmap.CSBFromBytes(gh, hg, int(n)), Kick: fdKicker(kicks)})
		if err != nil {
			return err
		}
		guests = append(guests, g)
		irqs = append(irqs, irq)
	}
	out := newReporter()
	if err := out.send(map[string]bool{"ready": true}); err != nil {
		return err
	}
	// One phase per "go" from the parent: both ways at once (the test), or
	// one streaming direction per phase (the benchmark: 0 -> 1, then 1 -> 0).
	for phase := 0; out.waitLine(); phase++ {
		cpu0 := processCPU()
		var res guestResult
		if c.Both {
			res = both(guests, irqs, c.Frames)
		} else {
			src, dst := phase%2, 1-phase%2
			runtime.LockOSThread()
			pin(c.CPU)
			res = stream(guests[src].Tx[0], guests[dst].Rx[0], guests[src].Region, c.Frames, c.Burst)
			runtime.UnlockOSThread()
		}
		res.CPU = processCPU() - cpu0
		for _, g := range guests {
			for _, r := range append(append([]*ptnetmap.GuestRing{}, g.Tx...), g.Rx...) {
				res.Kicks += r.Kicks
				r.Kicks = 0
			}
		}
		if err := out.send(res); err != nil {
			return err
		}
		if c.Both || phase == 1 {
			break
		}
	}
	// Idle like a guest blocked in poll(): ask for interrupts and sleep
	// until the parent closes stdin.
	for _, g := range guests {
		for _, r := range g.Rx {
			r.NoIntr = false
			r.Sync(0)
		}
	}
	out.waitLine()
	return nil
}

// frameLen is the benchmark's frame: 64 bytes on the wire less the CRC.
const frameLen = 60

// stream sends frames on tx and receives them on rx from one busy-polling
// goroutine: the guest side of two VMs on one vCPU. Each frame carries its
// sequence number, checked on receipt.
func stream(tx, rx *ptnetmap.GuestRing, region *netmap.Region, frames uint64, burst int) guestResult {
	tx.NoIntr, rx.NoIntr = true, true
	var payload [64]byte
	var sent, got uint64
	start := time.Now()
	for got < frames {
		ring := tx.Ring
		h, t := ring.Head(), ring.Tail()
		for n := 0; n < burst && sent < frames && h != t; n++ {
			s := ring.Slot(h)
			buf := region.Buf(s.BufIdx)
			copy(buf[:64], payload[:])
			binary.LittleEndian.PutUint64(buf, sent)
			s.Len = frameLen
			sent++
			h = ring.Next(h)
		}
		ring.Advance(h)
		tx.Sync(0)

		rx.Sync(0)
		ring = rx.Ring
		h, t = ring.Head(), ring.Tail()
		for ; h != t; h = ring.Next(h) {
			s := ring.Slot(h)
			if v := binary.LittleEndian.Uint64(region.Buf(s.BufIdx)); v != got || s.Len != frameLen {
				return guestResult{Frames: got, Elapsed: time.Since(start),
					BadFrame: fmt.Sprintf("expected frame %d, got %d (len %d)", got, v, s.Len)}
			}
			got++
		}
		ring.Advance(h)
	}
	return guestResult{Frames: got, Elapsed: time.Since(start)}
}

// both sends frames each way between the two devices at once, each
// direction a sender and a receiver goroutine that sleep on the TX and RX
// interrupts whenever they must wait.
func both(guests []*ptnetmap.Guest, irqs [][]*event.Event, frames uint64) guestResult {
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	res := guestResult{}
	for dir := range 2 {
		src, dst := guests[dir], guests[1-dir]
		srcIrq, dstIrq := irqs[dir][0], irqs[1-dir][len(src.Tx)]
		wg.Add(2)
		go func() {
			defer wg.Done()
			sendAll(src.Tx[0], src.Region, srcIrq, frames)
		}()
		go func() {
			defer wg.Done()
			n, bad := recvAll(dst.Rx[0], dst.Region, dstIrq, frames)
			mu.Lock()
			res.Frames += n
			if bad != "" {
				res.BadFrame = bad
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	return res
}

func sendAll(r *ptnetmap.GuestRing, region *netmap.Region, irq *event.Event, frames uint64) {
	for seq := uint64(0); seq < frames; {
		ring := r.Ring
		h := ring.Head()
		for ; seq < frames && h != ring.Tail(); h = ring.Next(h) {
			s := ring.Slot(h)
			binary.LittleEndian.PutUint64(region.Buf(s.BufIdx), seq)
			s.Len = frameLen
			seq++
		}
		ring.Advance(h)
		r.Sync(0)
		if ring.Space() == 0 && r.WantsInterrupt() {
			irq.Wait(1000)
		}
	}
}

func recvAll(r *ptnetmap.GuestRing, region *netmap.Region, irq *event.Event, frames uint64) (uint64, string) {
	var seq uint64
	deadline := time.Now().Add(5 * time.Minute)
	for seq < frames && time.Now().Before(deadline) {
		r.Sync(0)
		ring := r.Ring
		h := ring.Head()
		for ; h != ring.Tail(); h = ring.Next(h) {
			s := ring.Slot(h)
			if v := binary.LittleEndian.Uint64(region.Buf(s.BufIdx)); v != seq || s.Len != frameLen {
				return seq, fmt.Sprintf("expected frame %d, got %d (len %d)", seq, v, s.Len)
			}
			seq++
		}
		ring.Advance(h)
		if ring.Empty() {
			r.Sync(0)
			if ring.Empty() && r.WantsInterrupt() {
				irq.Wait(1000)
			}
		}
	}
	return seq, ""
}

// reporter writes the child's messages to stdout and reads the parent's
// cues from stdin.
type reporter struct {
	in *os.File
}

func newReporter() *reporter { return &reporter{in: os.Stdin} }

func (r *reporter) send(v any) error { return writeJSON(os.Stdout, v) }

// waitLine blocks until the parent writes a line; false when stdin closed.
func (r *reporter) waitLine() bool {
	var b [1]byte
	for {
		n, err := r.in.Read(b[:])
		if n == 0 || err != nil {
			return false
		}
		if b[0] == '\n' {
			return true
		}
	}
}
