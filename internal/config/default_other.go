//go:build !freebsd

package config

// DefaultPath is where `ptbhyve serve` reads its configuration unless told
// otherwise.
const DefaultPath = "/etc/ptbhyve.toml"

// defaultRunDir holds the sockets.
const defaultRunDir = "/run/ptbhyve"

// DefaultVMM is the VMM of a VM whose table does not say.
const DefaultVMM = VMMQEMU
