package pktgen

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
)

// RegisterFlags adds pkt-gen's flags for c to fs, so the guest tool and
// the host's `ptbhyve pktgen` take the same command line:
//
//	-f tx|rx|ping|pong  -n count  -l size  -R rate  -b burst  -d duration
//	-S src MAC  -D dst MAC  --src-ip  --dst-ip
func RegisterFlags(fs *flag.FlagSet, c *Config) {
	fs.Var(&c.Mode, "f", "function: tx, rx, ping (send one frame, wait for its echo) or pong (echo what arrives)")
	fs.Uint64Var(&c.Count, "n", 0, "frames to send (tx, ping) or receive (rx, pong); 0: no limit")
	fs.IntVar(&c.Size, "l", 60, "frame length in bytes, without FCS")
	fs.Func("R", "rate cap in packets per second, e.g. 100k or 1.5M (default unpaced)", func(s string) error {
		r, err := ParseRate(s)
		c.Rate = r
		return err
	})
	fs.IntVar(&c.Burst, "b", 64, "frames per sync")
	fs.DurationVar(&c.Duration, "d", 0, "stop after this long (0: no limit)")
	fs.DurationVar(&c.Timeout, "timeout", 0, "ping: wait this long for an echo before counting it lost (default 1s)")
	fs.Func("S", "source MAC (default 02:00:00:00:00:01)", func(s string) error { return parseMAC(s, &c.Src) })
	fs.Func("D", "destination MAC (default broadcast)", func(s string) error { return parseMAC(s, &c.Dst) })
	fs.Func("src-ip", "source IPv4 address (default 10.0.0.1)", func(s string) error { return parseIP(s, &c.SrcIP) })
	fs.Func("dst-ip", "destination IPv4 address (default 10.1.0.1)", func(s string) error { return parseIP(s, &c.DstIP) })
}

func parseMAC(s string, dst *net.HardwareAddr) error {
	m, err := net.ParseMAC(s)
	if err != nil || len(m) != 6 {
		return fmt.Errorf("%q is not an Ethernet address; write it as 02:00:00:00:00:01", s)
	}
	*dst = m
	return nil
}

func parseIP(s string, dst *netip.Addr) error {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return fmt.Errorf("%q is not an IPv4 address", s)
	}
	*dst = a
	return nil
}
