package config

// DefaultPath is where `ptbhyve serve` reads its configuration unless told
// otherwise; FreeBSD keeps the configuration of ports under /usr/local/etc.
const DefaultPath = "/usr/local/etc/ptbhyve.toml"

// defaultRunDir holds the sockets; FreeBSD has no /run.
const defaultRunDir = "/var/run/ptbhyve"

// DefaultVMM is the VMM of a VM whose table does not say.
const DefaultVMM = VMMBhyve
