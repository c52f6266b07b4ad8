package bench

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/ptbhyve/ptbhyve/internal/event"
	"github.com/ptbhyve/ptbhyve/internal/seqframe"
	"github.com/ptbhyve/ptbhyve/internal/shm"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
)

// guestConfig is everything the guest child learns from the rig: what a
// guest driver would read from the device registers, plus its descriptors.
type guestConfig struct {
	RAMSize int
	Devices []guestDev
	Frames  uint64
	// Both sends device 0 -> 1 and 1 -> 0 at once, each direction on its
	// own goroutines sleeping on interrupts; otherwise one busy-polling
	// goroutine streams 0 -> 1.
	Both  bool
	Burst int
	CPU   int
	// Window caps frames sent but not yet released by the receiver (0: no
	// cap). A copying backend needs it; a pipe's flow control is end to end.
	Window uint64
	// TxOnly sends Frames on device 0 once and receives nothing: the
	// receiver is elsewhere (the xdp benchmark's peer interface).
	TxOnly bool
}

type guestDev struct {
	Info       ptnetmap.DeviceInfo // what Probe read, pools included
	Region     int                 // descriptor of the memdev's region
	Atok, Ktoa uint64              // guest-physical CSB addresses
	Kicks      []int               // descriptor numbers in the child
	Irqs       []int
}

// guestResult is the child's report for one run.
type guestResult struct {
	Frames   uint64        `json:"frames"` // delivered
	Lost     uint64        `json:"lost"`   // dropped by the backend
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
	ram, err := shm.Map(3, c.RAMSize)
	if err != nil {
		return err
	}
	var guests []*ptnetmap.Guest
	var irqs [][]*event.Event
	for _, d := range c.Devices {
		n := uint64(d.Info.NumTx + d.Info.NumRx)
		mem := ptnetmap.FlatMemory(ram.Bytes())
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
		region, err := shm.Map(d.Region, int(d.Info.Pools.MemSize))
		if err != nil {
			return err
		}
		g, err := ptnetmap.NewGuest(ptnetmap.GuestConfig{Mem: region.Bytes(), Pools: d.Info.Pools, NifpOfs: d.Info.NifpOfs,
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
		switch {
		case c.Both:
			res = both(guests, irqs, c.Frames)
		case c.TxOnly:
			runtime.LockOSThread()
			pin(c.CPU)
			res = sendOnly(guests[0].Tx[0], irqs[0][0], c.Frames, c.Burst)
			runtime.UnlockOSThread()
		default:
			src, dst := phase%2, 1-phase%2
			runtime.LockOSThread()
			pin(c.CPU)
			res = stream(guests[src].Tx[0], guests[dst].Rx[0], newFrame(c.Devices[src].Info.MAC, c.Devices[dst].Info.MAC), c.Frames, c.Burst, c.Window)
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
		if c.Both || c.TxOnly || phase == 1 {
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

// newFrame is the Ethernet header every frame starts with: to dst from
// src, EtherType 0x88b5 (IEEE local experimental). The switch forwards on
// it; the sequence number follows it.
func newFrame(src, dst [6]byte) []byte {
	f := make([]byte, seqframe.Off)
	copy(f[0:6], dst[:])
	copy(f[6:12], src[:])
	f[12], f[13] = 0x88, 0xb5
	return f
}

// stream sends frames on tx and receives them on rx from one busy-polling
// goroutine: the guest side of two VMs on one vCPU. Each frame is the
// template with its sequence number. A frame that arrives out of order or
// twice is an error; a gap is frames the backend dropped (a switch drops
// when a receiver is full, as VALE does) and is counted. The run ends when
// every frame is delivered or counted lost; frames in flight are counted
// lost when nothing arrives for lossIdle.
func stream(tx, rx *ptnetmap.GuestRing, hdr []byte, frames uint64, burst int, window uint64) guestResult {
	tx.NoIntr, rx.NoIntr = true, true
	txr, rxr := tx.Region(), rx.Region()
	// window is flow control, as a real sender over a copying backend
	// keeps: it completes transmits at once and would otherwise let the
	// sender overrun the receiver. It counts frames not yet released by an
	// RX sync.
	if window == 0 {
		window = frames
	}
	var sent, next, got, released uint64 // next: the sequence number expected next
	var idleSince time.Time
	start := time.Now()
	for next < frames {
		if sent-released < window {
			sent = seqframe.Fill(tx.Ring, txr, hdr, sent, sent+min(uint64(burst), frames-sent, window-(sent-released)))
		}
		tx.Sync(0)

		rx.Sync(0) // publishes the release of everything read so far
		released = next
		ring := rx.Ring
		h, t := ring.Head(), ring.Tail()
		arrived := h != t
		for ; h != t; h = ring.Next(h) {
			s := ring.Slot(h)
			v := binary.LittleEndian.Uint64(rxr.Buf(s.BufIdx)[seqframe.Off:])
			if v < next || v >= sent || s.Len != seqframe.Len {
				return guestResult{Frames: got, Lost: next - got, Elapsed: time.Since(start),
					BadFrame: fmt.Sprintf("expected frame %d or later (sent %d), got %d (len %d)", next, sent, v, s.Len)}
			}
			next = v + 1
			got++
		}
		ring.Advance(h)
		// Nothing arriving while the window is full, or after the last
		// send, for lossIdle: the frames in flight were dropped.
		switch {
		case arrived || (sent < frames && sent-released < window):
			idleSince = time.Time{}
		case idleSince.IsZero():
			idleSince = time.Now()
		case time.Since(idleSince) > lossIdle:
			next, released = sent, sent
			if sent == frames {
				next = frames
			}
			idleSince = time.Time{}
		}
	}
	return guestResult{Frames: got, Lost: frames - got, Elapsed: time.Since(start)}
}

// sendOnly streams frames on tx as fast as the ring takes them, sleeping on
// the TX interrupt while the ring is full, as a guest blocked in poll()
// does: the host's transmit work (copy-mode AF_XDP) then has the CPU.
func sendOnly(tx *ptnetmap.GuestRing, irq *event.Event, frames uint64, burst int) guestResult {
	hdr := newFrame([6]byte{2, 0x70, 0x74, 0, 0, 0}, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	region := tx.Region()
	var sent uint64
	start := time.Now()
	for sent < frames {
		sent = seqframe.Fill(tx.Ring, region, hdr, sent, sent+min(uint64(burst), frames-sent))
		tx.Sync(0)
		if tx.Ring.Space() == 0 && tx.WantsInterrupt() {
			irq.Wait(100)
		}
	}
	return guestResult{Frames: sent, Elapsed: time.Since(start)}
}

// lossIdle is how long a sender that has sent everything waits for more
// frames before it counts the missing ones as lost.
const lossIdle = 200 * time.Millisecond

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
			sendAll(src.Tx[0], srcIrq, frames)
		}()
		go func() {
			defer wg.Done()
			n, bad := recvAll(dst.Rx[0], dstIrq, frames)
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

func sendAll(r *ptnetmap.GuestRing, irq *event.Event, frames uint64) {
	region := r.Region()
	for seq := uint64(0); seq < frames; {
		seq = seqframe.Fill(r.Ring, region, nil, seq, frames)
		r.Sync(0)
		if r.Ring.Space() == 0 && r.WantsInterrupt() {
			irq.Wait(1000)
		}
	}
}

func recvAll(r *ptnetmap.GuestRing, irq *event.Event, frames uint64) (uint64, string) {
	region := r.Region()
	var seq uint64
	deadline := time.Now().Add(5 * time.Minute)
	for seq < frames && time.Now().Before(deadline) {
		r.Sync(0)
		if err := seqframe.Check(r.Ring, region, &seq); err != nil {
			return seq, err.Error()
		}
		if r.Sync(0) && r.Ring.Empty() && r.WantsInterrupt() {
			irq.Wait(1000)
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
