// Package config reads the configuration of the ptbhyve daemon (`ptbhyve
// serve`): where its control socket lives, how its sync loop waits, and which
// VMs get a ptnet device with which geometry.
//
// The file is TOML (parsed with github.com/BurntSushi/toml). Every key is
// optional and the [daemon] values below are the defaults;
// testdata/example.toml is a complete example:
//
//	# /etc/ptbhyve.toml (Linux) or /usr/local/etc/ptbhyve.toml (FreeBSD)
//	[daemon]
//	socket = "/run/ptbhyve/ptbhyve.sock"  # control API (HTTP+JSON), created mode 0600
//	run_dir = "/run/ptbhyve"              # per-VM device sockets: RUN_DIR/VM.ivshmem
//	spin = "20us"                         # sync loop: poll this long before sleeping (Go duration, 0..10ms)
//	safety_poll = "1s"                    # upper bound of a sleep (1ms..1m)
//	cpu = -1                              # pin the sync loop thread, -1 = no pin
//	kloop_sleep = "100us"                 # netmap's in-kernel sync loop: pause between passes (1us..1s)
//
//	[vm.vm0]
//	vmm = "qemu"         # "qemu" (ivshmem-doorbell) or "bhyve" (the plugin); default bhyve on FreeBSD, qemu elsewhere
//	rings = 1            # rings per direction, 1..16 (default 1)
//	slots = 1024         # slots per ring, power of two, 64..4096 (default 1024)
//	buf_size = 2048      # 2048 or 4096 (default 2048)
//	mac = "02:00:00:00:00:01"  # default: locally administered, derived from the VM name (stable hash)
//	port = "xdp:eth0"    # optional: attached when the daemon starts
//	memory = "m0"        # optional: VMs naming the same memory share one region (trusted with
//	                     # each other; needed to join two VMs with a zero-copy pipe). Default: the VM's own.
//	datapath = "auto"    # bhyve: "auto", "zero-copy" or "copy" (docs/data-path.md)
//	sync = "auto"        # bhyve: "auto", "kernel" (netmap's in-kernel loop) or "ptbhyve"
//
// Durations are Go duration strings; a bare number is an error rather than
// nanoseconds. VM and memory names are 1 to 32 letters, digits, '_' or '-',
// starting with a letter or digit, because they become file names. A VM's own
// memory is named after the VM, so memory = "vm0" in [vm.vm1] shares vm0's
// region. At most two VMs share a memory (a pipe has two ends) and they must
// agree on rings, slots and buf_size, which fix the region's layout.
//
// Parse and Load report every problem at once, in file order, each as an
// *Error whose text is FILE:LINE: KEY: MSG.
package config

import (
	"crypto/sha256"
	"net"
	"os"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is a parsed and validated configuration file.
type Config struct {
	Daemon Daemon
	VMs    []VM // in file order
}

// Daemon holds the settings of the daemon itself, the [daemon] table.
type Daemon struct {
	Socket     string        // control API socket, absolute path
	RunDir     string        // directory of the per-VM device sockets, absolute path
	Spin       time.Duration // how long the sync loop polls before it sleeps
	SafetyPoll time.Duration // longest sleep, in case a wakeup is lost
	CPU        int           // CPU the sync loop thread is pinned to; -1 = not pinned
	KloopSleep time.Duration // pause between passes of netmap's in-kernel sync loop
}

// VM is one [vm.NAME] table: a VM that gets a ptnet device. Parse fills in the
// defaults, so every field but Port is set.
type VM struct {
	Name string
	// VMM is how the VM reaches its device: VMMQEMU (ivshmem-doorbell,
	// RUN_DIR/VM.ivshmem) or VMMBhyve (the bhyve plugin,
	// RUN_DIR/VM.plugin). Default DefaultVMM: bhyve on FreeBSD, QEMU
	// elsewhere.
	VMM     string
	Rings   int    // rings per direction
	Slots   uint32 // slots per ring
	BufSize uint32 // bytes per buffer
	// MAC is the guest's address: always 6 bytes, unicast and not zero.
	// net.HardwareAddr rather than [6]byte because that is what net and
	// netlink take and print.
	MAC    net.HardwareAddr
	Port   string // netmap port attached at start; "" = none
	Memory string // name of the memory region; the VM's own name unless shared
	// Datapath and Sync choose how a bhyve VM's port reaches its devmem
	// segment and which loop serves it (bhyve.DatapathAuto, ...); "auto"
	// by default.
	Datapath string
	Sync     string
	Line     int // line where the VM's table starts, for messages about it
}

// VMMs the daemon serves.
const (
	VMMQEMU  = "qemu"
	VMMBhyve = "bhyve"
)

// Default returns the daemon defaults and no VMs: what an empty file means.
func Default() *Config {
	return &Config{Daemon: Daemon{
		Socket:     defaultRunDir + "/ptbhyve.sock",
		RunDir:     defaultRunDir,
		Spin:       20 * time.Microsecond,
		SafetyPoll: time.Second,
		CPU:        -1,
		KloopSleep: 100 * time.Microsecond,
	}}
}

// Load reads and parses the file at path. A missing file is an error like any
// other (errors.Is(err, fs.ErrNotExist)); whether that means "use Default()" is
// the caller's decision.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// Parse parses and validates a configuration. file names the source in
// errors. On error the result is nil and the error joins one *Error per
// problem, in line order.
func Parse(data []byte, file string) (*Config, error) {
	var doc map[string]any
	md, err := toml.Decode(string(data), &doc)
	if err != nil {
		return nil, syntaxError(file, data, err)
	}
	c := &checker{file: file, lines: keyLines(string(data))}
	cfg := c.config(doc, md.Keys())
	if len(c.errs) > 0 {
		return nil, join(c.errs)
	}
	return cfg, nil
}

// VM returns the VM called name.
func (c *Config) VM(name string) (VM, bool) {
	for _, v := range c.VMs {
		if v.Name == name {
			return v, true
		}
	}
	return VM{}, false
}

// Members returns the VMs whose devices share the memory region called
// memory, in file order: one or two VMs, or none if no VM uses that memory.
func (c *Config) Members(memory string) []VM {
	var vms []VM
	for _, v := range c.VMs {
		if v.Memory == memory {
			vms = append(vms, v)
		}
	}
	return vms
}

// defaultMAC derives a VM's MAC from its name, so a guest keeps its address
// (and its DHCP lease, and its interface name on some systems) across daemon
// restarts without the operator assigning one. It is the start of the
// SHA-256 of the name with the locally administered bit set, which keeps it
// out of vendor space, and the multicast bit clear.
func defaultMAC(name string) net.HardwareAddr {
	sum := sha256.Sum256([]byte("ptbhyve vm " + name))
	mac := net.HardwareAddr(sum[:6])
	mac[0] = mac[0]&^0x01 | 0x02
	return mac
}
