package pktgen

import (
	"fmt"
	"strconv"
	"strings"
)

// Mode is what Run does with the rings.
type Mode int

const (
	// TX sends frames as fast as the rings (or Config.Rate) allow.
	TX Mode = iota
	// RX receives frames and checks them.
	RX
	// Ping sends one frame at a time and waits for its echo.
	Ping
	// Pong echoes every frame it receives with the MAC addresses swapped.
	Pong
)

var modeNames = [...]string{TX: "tx", RX: "rx", Ping: "ping", Pong: "pong"}

// String is the mode's command-line name.
func (m Mode) String() string {
	if m >= 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// ParseMode reads a mode name: tx, rx, ping or pong (pkt-gen's -f values).
func ParseMode(s string) (Mode, error) {
	for m, name := range modeNames {
		if strings.EqualFold(s, name) {
			return Mode(m), nil
		}
	}
	return 0, fmt.Errorf("pktgen: unknown mode %q: use tx, rx, ping or pong", s)
}

// Set implements flag.Value, so a command can declare
// flag.Var(&cfg.Mode, "f", "tx, rx, ping or pong").
func (m *Mode) Set(s string) error {
	v, err := ParseMode(s)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// ParseRate reads a packet rate as pkt-gen's -R takes it, with an optional
// SI suffix: "1000", "100k", "14.88M", "1G". Zero means unpaced.
func ParseRate(s string) (uint64, error) {
	num, mult := s, 1.0
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			num, mult = s[:n-1], 1e3
		case 'm', 'M':
			num, mult = s[:n-1], 1e6
		case 'g', 'G':
			num, mult = s[:n-1], 1e9
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || !(v >= 0 && v*mult <= 1e12) { // also refuses NaN
		return 0, fmt.Errorf("pktgen: bad rate %q: give packets per second, optionally with a k, M or G suffix, such as 14.88M", s)
	}
	return uint64(v*mult + 0.5), nil
}

// MarshalText writes the mode's name (JSON summaries).
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }
