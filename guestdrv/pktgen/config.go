package pktgen

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Config says what Run does. Every zero field means its default, so a
// command can fill it straight from flags.
type Config struct {
	Mode Mode
	// Size is the frame length without FCS, 60 up to the netmap buffer
	// size; default 60 (a minimum Ethernet frame).
	Size int
	// Count stops tx and ping after sending, rx and pong after receiving,
	// that many frames; 0 runs until Duration or the context ends.
	Count uint64
	// Rate caps tx (and ping rounds) at this many packets per second; 0
	// sends as fast as the rings take them.
	Rate uint64
	// Burst is the most frames queued per sync; default 64.
	Burst int
	// Duration stops the run after this long; 0 means no limit.
	Duration time.Duration
	// Timeout is how long ping waits for an echo before counting the
	// round lost; default 1s.
	Timeout time.Duration
	// Src and Dst are the Ethernet addresses; defaults 02:00:00:00:00:01
	// (locally administered) and broadcast, so any bridge floods them.
	Src, Dst net.HardwareAddr
	// SrcIP and DstIP must be IPv4; defaults 10.0.0.1 and 10.1.0.1, as
	// pkt-gen's.
	SrcIP, DstIP netip.Addr
	// SrcPort and DstPort default to 1234, as pkt-gen's.
	SrcPort, DstPort uint16
}

const (
	minSize      = 60 // Ethernet minimum without FCS; the header and payload fit in it
	defaultBurst = 64
)

// withDefaults fills zero fields and checks the rest; bufSize is the
// rings' buffer size, the largest frame a slot holds.
func (c Config) withDefaults(bufSize int) (Config, error) {
	if c.Mode < TX || c.Mode > Pong {
		return c, fmt.Errorf("pktgen: unknown mode %d: use TX, RX, Ping or Pong", c.Mode)
	}
	if c.Size == 0 {
		c.Size = minSize
	}
	if c.Size < minSize || c.Size > bufSize || c.Size > 0xffff {
		return c, fmt.Errorf("pktgen: frame size %d: use %d..%d (the netmap buffer size)", c.Size, minSize, min(bufSize, 0xffff))
	}
	if c.Burst == 0 {
		c.Burst = defaultBurst
	}
	if c.Burst < 0 {
		return c, fmt.Errorf("pktgen: burst %d: use a positive number of frames per sync, or 0 for %d", c.Burst, defaultBurst)
	}
	if c.Duration < 0 || c.Timeout < 0 {
		return c, fmt.Errorf("pktgen: negative duration %v or timeout %v: use 0 for the default", c.Duration, c.Timeout)
	}
	if c.Timeout == 0 {
		c.Timeout = time.Second
	}
	if c.Src == nil {
		c.Src = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	}
	if c.Dst == nil {
		c.Dst = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	}
	if len(c.Src) != 6 || len(c.Dst) != 6 {
		return c, fmt.Errorf("pktgen: MAC addresses %v and %v: give 6-byte Ethernet addresses such as 02:00:00:00:00:01", c.Src, c.Dst)
	}
	if !c.SrcIP.IsValid() {
		c.SrcIP = netip.AddrFrom4([4]byte{10, 0, 0, 1})
	}
	if !c.DstIP.IsValid() {
		c.DstIP = netip.AddrFrom4([4]byte{10, 1, 0, 1})
	}
	c.SrcIP, c.DstIP = c.SrcIP.Unmap(), c.DstIP.Unmap()
	if !c.SrcIP.Is4() || !c.DstIP.Is4() {
		return c, fmt.Errorf("pktgen: addresses %v -> %v: frames are IPv4, give IPv4 addresses", c.SrcIP, c.DstIP)
	}
	if c.SrcPort == 0 {
		c.SrcPort = 1234
	}
	if c.DstPort == 0 {
		c.DstPort = 1234
	}
	return c, nil
}
