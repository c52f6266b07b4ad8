package tapbridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ptbhyve/ptbhyve/guestdrv"
	"github.com/ptbhyve/ptbhyve/internal/rtnl"
)

// Config describes the interface to create. Zero fields take defaults.
type Config struct {
	// Name is the interface name; a "%d" lets the kernel number it.
	// Default "ptnet%d".
	Name string
	// MAC is the interface's Ethernet address, normally the device's;
	// nil keeps the random one the kernel picks.
	MAC net.HardwareAddr
	// MTU defaults to 1500. A frame (MTU + 14-byte header) must fit in a
	// ring buffer.
	MTU int
	// Addrs are assigned to the interface, e.g. 10.99.0.1/24 or
	// fd00::1/64.
	Addrs []netip.Prefix
}

// ethHeader is the Ethernet header a frame adds to the MTU.
const ethHeader = 14

// Stats counts what the bridge moved and dropped.
type Stats struct {
	ToRingFrames, ToRingBytes uint64 // TAP -> device TX ring
	ToTapFrames, ToTapBytes   uint64 // device RX ring -> TAP
	// RingFull counts TAP frames discarded because the TX ring stayed
	// full for ringFullWait: the device is not draining it.
	RingFull uint64
	// Oversize counts TAP frames larger than a ring buffer.
	Oversize uint64
	// BadSlot counts RX slots naming no buffer or a length past it.
	BadSlot uint64
	// TapErrors counts RX frames the TAP refused (interface down).
	TapErrors uint64
}

// stats is Stats updated by the two copy goroutines and read by Stats.
type stats struct {
	toRingFrames, toRingBytes atomic.Uint64
	toTapFrames, toTapBytes   atomic.Uint64
	ringFull, oversize        atomic.Uint64
	badSlot, tapErrors        atomic.Uint64
}

// Bridge copies frames between a TAP device and a guest's rings.
type Bridge struct {
	r       guestdrv.Rings
	tap     *os.File
	name    string
	bufSize int
	st      stats

	closeOnce sync.Once
	closeErr  error
}

// New creates and configures the TAP device in the calling thread's
// network namespace: address, MTU, addresses, link up. Frames move once
// Run is called.
//
// r is driven from two goroutines at once: one calls only TxSync and
// fills TX rings, the other only RxSync and drains RX rings, and both call
// Wait. The Rings must allow that, as netmap allows one thread per
// direction.
func New(r guestdrv.Rings, c Config) (*Bridge, error) {
	if r.NumTx() == 0 || r.NumRx() == 0 {
		return nil, fmt.Errorf("tapbridge: the device has %d TX and %d RX rings; a bridge needs at least one of each", r.NumTx(), r.NumRx())
	}
	if c.Name == "" {
		c.Name = "ptnet%d"
	}
	if c.MTU == 0 {
		c.MTU = 1500
	}
	bufSize := int(r.TxRing(0).Header().BufSize)
	if c.MTU < 68 || c.MTU+ethHeader > bufSize {
		return nil, fmt.Errorf("tapbridge: MTU %d: use 68..%d, so a frame fits the device's %d-byte ring buffers", c.MTU, bufSize-ethHeader, bufSize)
	}
	if c.MAC != nil && len(c.MAC) != 6 {
		return nil, fmt.Errorf("tapbridge: MAC %v: give a 6-byte Ethernet address such as 02:00:00:00:00:01", c.MAC)
	}
	tap, name, err := openTap(c.Name)
	if err != nil {
		return nil, err
	}
	b := &Bridge{r: r, tap: tap, name: name, bufSize: bufSize}
	if err := b.configure(c); err != nil {
		return nil, errors.Join(err, b.Close())
	}
	return b, nil
}

// configure applies c to the new device through rtnetlink.
func (b *Bridge) configure(c Config) error {
	if c.MAC != nil {
		if err := setMAC(b.tap, b.name, c.MAC); err != nil {
			return err
		}
	}
	nl, err := rtnl.Dial(-1)
	if err != nil {
		return fmt.Errorf("tapbridge: configure %s: %w", b.name, err)
	}
	defer nl.Close()
	l, err := nl.LinkByName(b.name)
	if err != nil {
		return fmt.Errorf("tapbridge: configure %s: %w", b.name, err)
	}
	if err := nl.SetMTU(l.Index, uint32(c.MTU)); err != nil {
		return fmt.Errorf("tapbridge: configure %s: %w", b.name, err)
	}
	for _, p := range c.Addrs {
		if err := nl.AddAddr(l.Index, p); err != nil {
			return fmt.Errorf("tapbridge: configure %s: %w", b.name, err)
		}
	}
	if err := nl.SetUp(l.Index); err != nil {
		return fmt.Errorf("tapbridge: configure %s: %w", b.name, err)
	}
	return nil
}

// Name is the TAP device's name, with any "%d" resolved.
func (b *Bridge) Name() string { return b.name }

// Stats returns the counters so far; safe to call while Run runs.
func (b *Bridge) Stats() Stats {
	s := &b.st
	return Stats{
		ToRingFrames: s.toRingFrames.Load(), ToRingBytes: s.toRingBytes.Load(),
		ToTapFrames: s.toTapFrames.Load(), ToTapBytes: s.toTapBytes.Load(),
		RingFull: s.ringFull.Load(), Oversize: s.oversize.Load(),
		BadSlot: s.badSlot.Load(), TapErrors: s.tapErrors.Load(),
	}
}

// Run copies frames both ways until ctx ends (returning nil) or a copy
// fails (returning the first error). Call it once.
func (b *Bridge) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The TAP reader sleeps in the runtime poller; an expired deadline is
	// what wakes it when the run ends.
	stop := context.AfterFunc(ctx, func() { _ = b.tap.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	errs := make(chan error, 2)
	for _, loop := range []func(context.Context) error{b.tapToRing, b.ringToTap} {
		go func() {
			err := loop(ctx)
			if err != nil {
				cancel()
			}
			errs <- err
		}()
	}
	return errors.Join(<-errs, <-errs)
}

// Close removes the TAP device (it is not persistent, so closing its
// descriptor deletes it) and stops a running Run.
func (b *Bridge) Close() error {
	b.closeOnce.Do(func() {
		if err := b.tap.Close(); err != nil {
			b.closeErr = fmt.Errorf("tapbridge: close TAP device %s: %w", b.name, err)
		}
	})
	return b.closeErr
}
