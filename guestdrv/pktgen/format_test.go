package pktgen

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestReportString(t *testing.T) {
	for _, tc := range []struct {
		r    Report
		want string
	}{
		{Report{PPS: 12.345e6, BPS: 6.3e9, Packets: 123456, Bytes: 7.9e6, Interval: time.Second},
			"12.345 Mpps 6.3 Gbps (123456 pkts 7.9 MB in 1.000 s)"},
		{Report{PPS: 999, BPS: 479520, Packets: 999, Bytes: 59940, Interval: 1002 * time.Millisecond},
			"999.000 pps 479.5 Kbps (999 pkts 59.9 KB in 1.002 s)"},
		{Report{Interval: time.Second}, "0.000 pps 0.0 bps (0 pkts 0 B in 1.000 s)"},
		{Report{PPS: 1.5e12, BPS: 2e15, Packets: 1, Bytes: 999, Interval: time.Second},
			"1.500 Tpps 2000.0 Tbps (1 pkts 999 B in 1.000 s)"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("%+v:\n got %q\nwant %q", tc.r, got, tc.want)
		}
	}
}

func TestSummaryString(t *testing.T) {
	base := Summary{Elapsed: 2 * time.Second, Packets: 2000, Bytes: 120000, PPS: 1000, BPS: 480000}
	rx, ping, pong := base, base, base
	rx.Mode, rx.Received, rx.Bad, rx.Lost, rx.Reordered, rx.Duplicated = RX, 2000, 1, 2, 3, 4
	ping.Mode, ping.Lost, ping.RTT = Ping, 10, RTT{Min: 1500, Avg: 2 * time.Microsecond, Max: time.Millisecond, P50: 1900, P99: 900 * time.Microsecond}
	pong.Mode, pong.Received, pong.Bad = Pong, 2001, 1
	for _, tc := range []struct {
		s    Summary
		want string
	}{
		{base, "tx: 2000 pkts 120.0 KB in 2.000 s, 1.000 Kpps 480.0 Kbps"},
		{rx, "rx: 2000 pkts 120.0 KB in 2.000 s, 1.000 Kpps 480.0 Kbps; 1 bad, 2 lost, 3 reordered, 4 duplicated"},
		{ping, "ping: 2000 pkts 120.0 KB in 2.000 s, 1.000 Kpps 480.0 Kbps; 1990 answered, 10 lost, 0 bad; rtt min/avg/max/p50/p99 1.5µs/2µs/1ms/1.9µs/900µs"},
		{pong, "pong: 2000 pkts 120.0 KB in 2.000 s, 1.000 Kpps 480.0 Kbps; 2001 received, 1 bad"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("%v summary:\n got %q\nwant %q", tc.s.Mode, got, tc.want)
		}
	}
}

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mode
		err  bool
	}{
		{"tx", TX, false}, {"rx", RX, false}, {"ping", Ping, false}, {"PONG", Pong, false},
		{"", 0, true}, {"txrx", 0, true},
	} {
		got, err := ParseMode(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseMode(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
		if err == nil && got.String() != strings.ToLower(tc.in) {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), strings.ToLower(tc.in))
		}
	}
	var m Mode
	if err := m.Set("pong"); err != nil || m != Pong {
		t.Errorf("Set(pong) = %v, mode %v", err, m)
	}
	if got := Mode(9).String(); got != "Mode(9)" {
		t.Errorf("Mode(9).String() = %q", got)
	}
}

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		err  bool
	}{
		{"0", 0, false}, {"1000", 1000, false}, {"100k", 100000, false},
		{"14.88M", 14880000, false}, {"1G", 1e9, false},
		{"", 0, true}, {"-5", 0, true}, {"fast", 0, true}, {"NaN", 0, true}, {"5T", 0, true},
	} {
		got, err := ParseRate(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := Config{}.withDefaults(2048)
	if err != nil {
		t.Fatal(err)
	}
	if c.Size != 60 || c.Burst != 64 || c.Timeout != time.Second || c.SrcPort != 1234 ||
		c.DstIP != netip.MustParseAddr("10.1.0.1") || c.Dst.String() != "ff:ff:ff:ff:ff:ff" {
		t.Errorf("defaults %+v", c)
	}
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Size: 59}, "frame size 59"},
		{Config{Size: 2049}, "use 60..2048"},
		{Config{Burst: -1}, "burst -1"},
		{Config{Duration: -1}, "negative duration"},
		{Config{Src: net.HardwareAddr{1, 2}}, "6-byte"},
		{Config{SrcIP: netip.MustParseAddr("fe80::1")}, "IPv4"},
		{Config{Mode: 7}, "unknown mode"},
	} {
		if _, err := tc.c.withDefaults(2048); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one saying %q", tc.c, err, tc.want)
		}
	}
}
