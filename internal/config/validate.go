package config

import (
	"fmt"
	"maps"
	"math/bits"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/BurntSushi/toml"
)

// Known keys, in the order messages list them.
const (
	daemonKeys = "socket, run_dir, spin, safety_poll, cpu, kloop_sleep"
	vmKeys     = "vmm, rings, slots, buf_size, mac, port, memory, datapath, sync"
)

// nameRE is the rule for VM and memory names, which become file names
// (RUN_DIR/VM.ivshmem, shared memory objects): short, no separators, no
// leading dot or dash.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`)

const nameRule = "use 1 to 32 letters, digits, '_' or '-', starting with a letter or digit (it becomes a file name)"

// checker turns the generic decoded document into a Config. The document is
// decoded into maps rather than straight into structs so that every problem
// is found in one pass (the struct decoder stops at the first type error),
// keys are matched case-sensitively as TOML specifies (the struct decoder
// also accepts "Rings"), and each message can name the key and its line.
type checker struct {
	file  string
	lines map[string]int // from keyLines
	errs  []*Error
}

func (c *checker) errorf(key toml.Key, format string, args ...any) {
	c.errs = append(c.errs, &Error{File: c.file, Line: c.lines[key.String()], Key: key.String(), Msg: fmt.Sprintf(format, args...)})
}

// written reports whether key appears in the file, as opposed to having its
// default.
func (c *checker) written(key toml.Key) bool {
	_, ok := c.lines[key.String()]
	return ok
}

// at returns the first of vm's fields written in the file, or the VM's own
// key: where a message about a cross-VM conflict should point.
func (c *checker) at(vm VM, fields ...string) toml.Key {
	for _, f := range fields {
		if k := (toml.Key{"vm", vm.Name, f}); c.written(k) {
			return k
		}
	}
	return toml.Key{"vm", vm.Name}
}

func (c *checker) config(doc map[string]any, keys []toml.Key) *Config {
	cfg := Default()
	for _, name := range slices.Sorted(maps.Keys(doc)) {
		key := toml.Key{name}
		switch name {
		case "daemon":
			if t, ok := c.table(key, doc[name]); ok {
				c.daemon(&cfg.Daemon, t)
			}
		case "vm":
			if t, ok := c.table(key, doc[name]); ok {
				cfg.VMs = c.vms(t, keys)
			}
		default:
			c.errorf(key, "unknown key; known tables: [daemon], [vm.NAME]")
		}
	}
	return cfg
}

func (c *checker) daemon(d *Daemon, t map[string]any) {
	for _, name := range slices.Sorted(maps.Keys(t)) {
		key, v := toml.Key{"daemon", name}, t[name]
		switch name {
		case "socket":
			if s, ok := c.absPath(key, v); ok {
				d.Socket = s
			}
		case "run_dir":
			if s, ok := c.absPath(key, v); ok {
				d.RunDir = s
			}
		case "spin":
			if dur, ok := c.duration(key, v, 0, 10*time.Millisecond, "0..10ms"); ok {
				d.Spin = dur
			}
		case "safety_poll":
			if dur, ok := c.duration(key, v, time.Millisecond, time.Minute, "1ms..1m"); ok {
				d.SafetyPoll = dur
			}
		case "cpu":
			// 1023: the fixed-size affinity masks of both systems (Linux
			// CPU_SETSIZE, FreeBSD CPU_MAXSIZE) hold 1024 CPUs.
			if n, ok := c.integer(key, v, -1, 1023); ok {
				d.CPU = int(n)
			}
		case "kloop_sleep":
			if dur, ok := c.duration(key, v, time.Microsecond, time.Second, "1us..1s"); ok {
				d.KloopSleep = dur
			}
		default:
			c.errorf(key, "unknown key; known keys in [daemon]: %s", daemonKeys)
		}
	}
}

// vms checks each [vm.NAME] table and then the rules between VMs. The VMs
// come in file order, which MetaData.Keys keeps and maps do not.
func (c *checker) vms(t map[string]any, keys []toml.Key) []VM {
	var vms, good []VM
	seen := map[string]bool{}
	for _, k := range keys {
		if len(k) < 2 || k[0] != "vm" || seen[k[1]] {
			continue
		}
		seen[k[1]] = true
		vm, ok := c.vm(k[1], t[k[1]])
		vms = append(vms, vm)
		if ok {
			good = append(good, vm)
		}
	}
	// VMs with errors of their own are left out of the memory rules: the
	// defaults standing in for their bad values would make for confusing
	// follow-on conflicts.
	c.uniqueMACs(vms)
	c.sharedMemory(good)
	return vms
}

// vm checks one [vm.NAME] table and reports whether it was free of problems.
func (c *checker) vm(name string, v any) (VM, bool) {
	key := toml.Key{"vm", name}
	vm := VM{Name: name, VMM: DefaultVMM, Rings: 1, Slots: 1024, BufSize: 2048, Memory: name, Datapath: "auto", Sync: "auto", Line: c.lines[key.String()]}
	nerrs := len(c.errs)
	if !nameRE.MatchString(name) {
		c.errorf(key, "%q is not a valid VM name: %s", name, nameRule)
	}
	t, _ := c.table(key, v)
	for _, field := range slices.Sorted(maps.Keys(t)) {
		key, v := toml.Key{"vm", name, field}, t[field]
		switch field {
		case "vmm":
			if s, ok := c.str(key, v); ok {
				if s != VMMQEMU && s != VMMBhyve {
					c.errorf(key, "%q is not a VMM ptbhyve serves; use %q or %q", s, VMMQEMU, VMMBhyve)
				} else {
					vm.VMM = s
				}
			}
		case "rings":
			if n, ok := c.integer(key, v, 1, 16); ok {
				vm.Rings = int(n)
			}
		case "slots":
			if n, ok := c.integer(key, v, 64, 4096); ok {
				if n&(n-1) != 0 {
					c.errorf(key, "%d is not a power of two; use %d", n, 1<<bits.Len64(uint64(n)))
				} else {
					vm.Slots = uint32(n)
				}
			}
		case "buf_size":
			if n, ok := c.integer(key, v, 2048, 4096); ok {
				if n != 2048 && n != 4096 {
					c.errorf(key, "%d is not a supported buffer size; use 2048 or 4096", n)
				} else {
					vm.BufSize = uint32(n)
				}
			}
		case "mac":
			if s, ok := c.str(key, v); ok {
				if mac, ok := c.mac(key, s); ok {
					vm.MAC = mac
				}
			}
		case "port":
			if s, ok := c.str(key, v); ok {
				switch {
				case s == "":
					c.errorf(key, "empty; remove the key to start the VM with no port")
				case strings.ContainsFunc(s, unicode.IsSpace):
					c.errorf(key, "%q contains white space", s)
				default:
					vm.Port = s
				}
			}
		case "memory":
			if s, ok := c.str(key, v); ok {
				if !nameRE.MatchString(s) {
					c.errorf(key, "%q is not a valid memory name: %s", s, nameRule)
				} else {
					vm.Memory = s
				}
			}
		case "datapath":
			if s, ok := c.oneOf(key, v, "auto", "zero-copy", "copy"); ok {
				vm.Datapath = s
			}
		case "sync":
			if s, ok := c.oneOf(key, v, "auto", "kernel", "ptbhyve"); ok {
				vm.Sync = s
			}
		default:
			c.errorf(key, "unknown key; known keys in [vm.NAME]: %s", vmKeys)
		}
	}
	if vm.MAC == nil {
		vm.MAC = defaultMAC(name)
	}
	if vm.Datapath == "copy" && vm.Sync == "kernel" {
		c.errorf(toml.Key{"vm", name, "sync"}, "\"kernel\" needs the kernel's rings in the VM's memory, which datapath = \"copy\" does not give; use datapath = \"auto\" or \"zero-copy\", or sync = \"ptbhyve\"")
	}
	return vm, len(c.errs) == nerrs
}

// oneOf checks that v is one of the strings allowed.
func (c *checker) oneOf(key toml.Key, v any, allowed ...string) (string, bool) {
	s, ok := c.str(key, v)
	if !ok {
		return "", false
	}
	if !slices.Contains(allowed, s) {
		c.errorf(key, "%q is not one of %q", s, allowed)
		return "", false
	}
	return s, true
}

func (c *checker) mac(key toml.Key, s string) (net.HardwareAddr, bool) {
	mac, err := net.ParseMAC(s)
	switch {
	case err != nil:
		c.errorf(key, "%q is not a MAC address; write six bytes such as \"02:00:00:00:00:01\"", s)
	case len(mac) != 6:
		c.errorf(key, "%q is not a 6-byte Ethernet address", s)
	case mac[0]&0x01 != 0:
		c.errorf(key, "%s is a multicast address; a VM needs a unicast one (even first byte, such as 02)", mac)
	case string(mac) == "\x00\x00\x00\x00\x00\x00":
		c.errorf(key, "%s is the zero address; remove the key to derive a MAC from the VM name", mac)
	default:
		return mac, true
	}
	return nil, false
}

// uniqueMACs reports VMs with the same MAC, given or derived: two guests with
// one address break each other's traffic on a shared segment.
func (c *checker) uniqueMACs(vms []VM) {
	owner := map[string]VM{}
	for _, vm := range vms {
		m := vm.MAC.String()
		prev, dup := owner[m]
		if !dup {
			owner[m] = vm
			continue
		}
		prevLine := c.lines[c.at(prev, "mac").String()]
		if k := (toml.Key{"vm", vm.Name, "mac"}); c.written(k) {
			c.errorf(k, "%s is also the MAC of %s (line %d); every VM needs its own", m, prev.Name, prevLine)
		} else {
			c.errorf(toml.Key{"vm", vm.Name}, "the MAC derived from the name, %s, is also the MAC of %s (line %d); set mac", m, prev.Name, prevLine)
		}
	}
}

// sharedMemory enforces the rules of a shared memory region: its layout is
// fixed by the rings, slots and buffer size of its devices, so they must
// agree, and it joins at most the two ends of one pipe.
func (c *checker) sharedMemory(vms []VM) {
	members := map[string][]VM{}
	for _, vm := range vms {
		m := members[vm.Memory]
		if len(m) > 0 && (vm.VMM == VMMBhyve || m[0].VMM == VMMBhyve) {
			c.errorf(c.at(vm, "memory"), "memory %q: a bhyve VM's netmap region is its own devmem segment, which no other VM maps; bhyve VMs cannot share memory (join them through a switch)", vm.Memory)
			continue
		}
		if len(m) == 2 {
			c.errorf(c.at(vm, "memory"), "memory %q is already shared by %s and %s; a memory joins at most two VMs (the two ends of a pipe)", vm.Memory, m[0].Name, m[1].Name)
			continue
		}
		if len(m) == 1 {
			c.agree(m[0], vm)
		}
		members[vm.Memory] = append(m, vm)
	}
}

func (c *checker) agree(first, vm VM) {
	for _, f := range []struct {
		name    string
		had, is uint32
	}{
		{"rings", uint32(first.Rings), uint32(vm.Rings)},
		{"slots", first.Slots, vm.Slots},
		{"buf_size", first.BufSize, vm.BufSize},
	} {
		if f.had != f.is {
			c.errorf(c.at(vm, f.name, "memory"), "%s has %s = %d but %s, which shares memory %q, has %d; VMs sharing a memory must agree on rings, slots and buf_size",
				vm.Name, f.name, f.is, first.Name, vm.Memory, f.had)
		}
	}
}

func (c *checker) table(key toml.Key, v any) (map[string]any, bool) {
	t, ok := v.(map[string]any)
	if !ok {
		c.errorf(key, "want a table, got %s", typeName(v))
	}
	return t, ok
}

func (c *checker) str(key toml.Key, v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		c.errorf(key, "want a string, got %s", typeName(v))
	}
	return s, ok
}

func (c *checker) integer(key toml.Key, v any, lo, hi int64) (int64, bool) {
	n, ok := v.(int64)
	switch {
	case !ok:
		c.errorf(key, "want an integer, got %s", typeName(v))
	case n < lo || n > hi:
		c.errorf(key, "%d is out of range %d..%d", n, lo, hi)
	default:
		return n, true
	}
	return 0, false
}

// duration takes Go duration strings ("20us") only: a bare integer would be
// nanoseconds, which nobody means.
func (c *checker) duration(key toml.Key, v any, lo, hi time.Duration, rng string) (time.Duration, bool) {
	s, ok := c.str(key, v)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		c.errorf(key, "%q is not a duration; write one such as \"20us\" or \"1s\"", s)
	case d < lo || d > hi:
		c.errorf(key, "%s is out of range %s", s, rng)
	default:
		return d, true
	}
	return 0, false
}

func (c *checker) absPath(key toml.Key, v any) (string, bool) {
	s, ok := c.str(key, v)
	if ok && !filepath.IsAbs(s) {
		c.errorf(key, "%q is not an absolute path", s)
		return "", false
	}
	return s, ok
}

// typeName names the TOML type of a decoded value, for type errors.
func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "an array"
	}
	return "a date or time"
}
