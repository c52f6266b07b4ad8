package config

import (
	"errors"
	"strings"
	"testing"
)

func TestErrors(t *testing.T) {
	const f = "/etc/ptbhyve.toml"
	for _, tt := range []struct {
		name, in string
		want     string // the joined messages, one per line
	}{
		// Syntax and types.
		{"syntax", "[daemon]\nspin = \"20us\"\ncpu = = 1\n", f + ":3: expected value but found '=' instead"},
		{"newline in string", "[vm.a]\nport = \"x\nmac = 1\n", f + ":2: strings cannot contain newlines"},
		{"escape in multi-line string", "[vm.a]\nport = \"\"\"\nabc\n\\q\"\"\"\n", f + ":4: invalid escape in string '\\q'"},
		{"duplicate key", "[vm.a]\nrings = 1\n\nrings = 2\n", f + ":4: Key 'vm.a.rings' has already been defined."},
		{"unterminated table", "[vm.vm0\nrings = 1\n", f + ":1: expected '.' or ']' to end table name, but got '\\n' instead"},
		{"daemon not a table", "daemon = 1\n", f + ":1: daemon: want a table, got an integer"},
		{"vm array of tables", "[[vm]]\nrings = 1\n", f + ":1: vm: want a table, got an array of tables"},
		{"vm not a table", "vm.vm0 = \"x\"\n", f + ":1: vm.vm0: want a table, got a string"},
		{"string for int", "[vm.vm0]\nrings = \"2\"\n", f + ":2: vm.vm0.rings: want an integer, got a string"},
		{"float for int", "[vm.vm0]\n\nslots = 1024.0\n", f + ":3: vm.vm0.slots: want an integer, got a float"},
		{"int for string", "[daemon]\nsocket = 1\n", f + ":2: daemon.socket: want a string, got an integer"},
		{"bool for duration", "[daemon]\nspin = true\n", f + ":2: daemon.spin: want a string, got a boolean"},
		{"array for string", "[vm.a]\nport = [\"x\"]\n", f + ":2: vm.a.port: want a string, got an array"},
		{"date for string", "[vm.a]\nmemory = 1979-05-27\n", f + ":2: vm.a.memory: want a string, got a date or time"},

		// Unknown keys.
		{"unknown top", "\n[deamon]\nspin = \"1us\"\n", f + ":2: deamon: unknown key; known tables: [daemon], [vm.NAME]"},
		{"unknown daemon key", "[daemon]\nsokcet = \"/x\"\n", f + ":2: daemon.sokcet: unknown key; known keys in [daemon]: socket, run_dir, spin, safety_poll, cpu, kloop_sleep"},
		{"unknown vm key", "[vm.vm0]\nrings = 1\nRings = 2\n", f + ":3: vm.vm0.Rings: unknown key; known keys in [vm.NAME]: vmm, rings, slots, buf_size, mac, port, memory, datapath, sync"},
		{"unknown vmm", "[vm.vm0]\nvmm = \"kvm\"\n", f + `:2: vm.vm0.vmm: "kvm" is not a VMM ptbhyve serves; use "qemu" or "bhyve"`},
		{"bhyve shares memory", "[vm.a]\nvmm = \"bhyve\"\n[vm.b]\nmemory = \"a\"\n", f + `:4: vm.b.memory: memory "a": a bhyve VM's netmap region is its own devmem segment, which no other VM maps; bhyve VMs cannot share memory (join them through a switch)`},
		{"unknown vm subtable", "[vm.vm0]\n[vm.vm0.extra]\nx = 1\n", f + ":2: vm.vm0.extra: unknown key; known keys in [vm.NAME]: vmm, rings, slots, buf_size, mac, port, memory, datapath, sync"},

		// [daemon] values.
		{"socket relative", "[daemon]\nsocket = \"run/p.sock\"\n", f + ":2: daemon.socket: \"run/p.sock\" is not an absolute path"},
		{"run_dir relative", "[daemon]\nrun_dir = \"\"\n", f + ":2: daemon.run_dir: \"\" is not an absolute path"},
		{"spin not duration", "[daemon]\nspin = \"20\"\n", f + ":2: daemon.spin: \"20\" is not a duration; write one such as \"20us\" or \"1s\""},
		{"spin too long", "[daemon]\nspin = \"11ms\"\n", f + ":2: daemon.spin: 11ms is out of range 0..10ms"},
		{"spin negative", "[daemon]\nspin = \"-1us\"\n", f + ":2: daemon.spin: -1us is out of range 0..10ms"},
		{"safety_poll short", "[daemon]\nsafety_poll = \"999us\"\n", f + ":2: daemon.safety_poll: 999us is out of range 1ms..1m"},
		{"safety_poll long", "[daemon]\nsafety_poll = \"61s\"\n", f + ":2: daemon.safety_poll: 61s is out of range 1ms..1m"},
		{"cpu low", "[daemon]\ncpu = -2\n", f + ":2: daemon.cpu: -2 is out of range -1..1023"},
		{"cpu high", "[daemon]\ncpu = 1024\n", f + ":2: daemon.cpu: 1024 is out of range -1..1023"},
		{"kloop_sleep zero", "[daemon]\nkloop_sleep = \"0s\"\n", f + ":2: daemon.kloop_sleep: 0s is out of range 1us..1s"},
		{"kloop_sleep long", "[daemon]\nkloop_sleep = \"2s\"\n", f + ":2: daemon.kloop_sleep: 2s is out of range 1us..1s"},

		// [vm.NAME] values.
		{"vm name", "[vm.\"a b\"]\n", f + ":1: vm.\"a b\": \"a b\" is not a valid VM name: use 1 to 32 letters, digits, '_' or '-', starting with a letter or digit (it becomes a file name)"},
		{"vm name dash", "[vm.-a]\n", f + ":1: vm.-a: \"-a\" is not a valid VM name: use 1 to 32 letters, digits, '_' or '-', starting with a letter or digit (it becomes a file name)"},
		{"vm name long", "[vm.a23456789012345678901234567890123]\n", f + ":1: vm.a23456789012345678901234567890123: \"a23456789012345678901234567890123\" is not a valid VM name: use 1 to 32 letters, digits, '_' or '-', starting with a letter or digit (it becomes a file name)"},
		{"rings 0", "[vm.vm0]\nrings = 0\n", f + ":2: vm.vm0.rings: 0 is out of range 1..16"},
		{"rings 17", "[vm.vm0]\nrings = 17\n", f + ":2: vm.vm0.rings: 17 is out of range 1..16"},
		{"slots not power", "[vm.vm0]\nslots = 1000\n", f + ":2: vm.vm0.slots: 1000 is not a power of two; use 1024"},
		{"slots not power high", "[vm.vm0]\nslots = 2049\n", f + ":2: vm.vm0.slots: 2049 is not a power of two; use 4096"},
		{"slots small", "[vm.vm0]\nslots = 32\n", f + ":2: vm.vm0.slots: 32 is out of range 64..4096"},
		{"slots large", "[vm.vm0]\nslots = 8192\n", f + ":2: vm.vm0.slots: 8192 is out of range 64..4096"},
		{"buf_size", "[vm.vm0]\nbuf_size = 3000\n", f + ":2: vm.vm0.buf_size: 3000 is not a supported buffer size; use 2048 or 4096"},
		{"datapath", "[vm.vm0]\ndatapath = \"zerocopy\"\n", f + `:2: vm.vm0.datapath: "zerocopy" is not one of ["auto" "zero-copy" "copy"]`},
		{"sync", "[vm.vm0]\nsync = 1\n", f + ":2: vm.vm0.sync: want a string, got an integer"},
		{"kernel sync of a copy", "[vm.vm0]\ndatapath = \"copy\"\nsync = \"kernel\"\n", f + `:3: vm.vm0.sync: "kernel" needs the kernel's rings in the VM's memory, which datapath = "copy" does not give; use datapath = "auto" or "zero-copy", or sync = "ptbhyve"`},
		{"buf_size large", "[vm.vm0]\nbuf_size = 9000\n", f + ":2: vm.vm0.buf_size: 9000 is out of range 2048..4096"},
		{"mac syntax", "[vm.vm0]\nmac = \"02:00:00:00:00\"\n", f + ":2: vm.vm0.mac: \"02:00:00:00:00\" is not a MAC address; write six bytes such as \"02:00:00:00:00:01\""},
		{"mac eui64", "[vm.vm0]\nmac = \"02:00:00:00:00:00:00:01\"\n", f + ":2: vm.vm0.mac: \"02:00:00:00:00:00:00:01\" is not a 6-byte Ethernet address"},
		{"mac multicast", "[vm.vm0]\nmac = \"03:00:00:00:00:01\"\n", f + ":2: vm.vm0.mac: 03:00:00:00:00:01 is a multicast address; a VM needs a unicast one (even first byte, such as 02)"},
		{"mac broadcast", "[vm.vm0]\nmac = \"FF:FF:FF:FF:FF:FF\"\n", f + ":2: vm.vm0.mac: ff:ff:ff:ff:ff:ff is a multicast address; a VM needs a unicast one (even first byte, such as 02)"},
		{"mac zero", "[vm.vm0]\nmac = \"00-00-00-00-00-00\"\n", f + ":2: vm.vm0.mac: 00:00:00:00:00:00 is the zero address; remove the key to derive a MAC from the VM name"},
		{"port empty", "[vm.vm0]\nport = \"\"\n", f + ":2: vm.vm0.port: empty; remove the key to start the VM with no port"},
		{"port space", "[vm.vm0]\nport = \"xdp: eth0\"\n", f + ":2: vm.vm0.port: \"xdp: eth0\" contains white space"},
		{"memory name", "[vm.vm0]\nmemory = \"../m\"\n", f + ":2: vm.vm0.memory: \"../m\" is not a valid memory name: use 1 to 32 letters, digits, '_' or '-', starting with a letter or digit (it becomes a file name)"},

		// Rules between VMs.
		{"duplicate mac", "[vm.a]\nmac = \"02:00:00:00:00:01\"\n[vm.b]\nmac = \"02:00:00:00:00:01\"\n", f + ":4: vm.b.mac: 02:00:00:00:00:01 is also the MAC of a (line 2); every VM needs its own"},
		{"explicit mac equals derived", "[vm.a]\n[vm.b]\nmac = \"" + defaultMAC("a").String() + "\"\n", f + ":3: vm.b.mac: " + defaultMAC("a").String() + " is also the MAC of a (line 1); every VM needs its own"},
		{"derived mac equals explicit", "[vm.b]\nmac = \"" + defaultMAC("a").String() + "\"\n[vm.a]\n", f + ":3: vm.a: the MAC derived from the name, " + defaultMAC("a").String() + ", is also the MAC of b (line 2); set mac"},
		{"shared memory slots", "[vm.a]\nmemory = \"m\"\nslots = 512\n[vm.b]\nmemory = \"m\"\n", f + ":5: vm.b.memory: b has slots = 1024 but a, which shares memory \"m\", has 512; VMs sharing a memory must agree on rings, slots and buf_size"},
		{"shared memory all three", "[vm.a]\n[vm.b]\nmemory = \"a\"\nrings = 2\nslots = 64\nbuf_size = 4096\n", strings.Join([]string{
			f + ":4: vm.b.rings: b has rings = 2 but a, which shares memory \"a\", has 1; VMs sharing a memory must agree on rings, slots and buf_size",
			f + ":5: vm.b.slots: b has slots = 64 but a, which shares memory \"a\", has 1024; VMs sharing a memory must agree on rings, slots and buf_size",
			f + ":6: vm.b.buf_size: b has buf_size = 4096 but a, which shares memory \"a\", has 2048; VMs sharing a memory must agree on rings, slots and buf_size",
		}, "\n")},
		{"shared memory by default name", "[vm.a]\nmemory = \"b\"\nrings = 4\n[vm.b]\n", f + ":4: vm.b: b has rings = 1 but a, which shares memory \"b\", has 4; VMs sharing a memory must agree on rings, slots and buf_size"},
		{"three in a memory", "[vm.a]\nmemory = \"m\"\n[vm.b]\nmemory = \"m\"\n[vm.c]\nmemory = \"m\"\n", f + ":6: vm.c.memory: memory \"m\" is already shared by a and b; a memory joins at most two VMs (the two ends of a pipe)"},
		{"bad vm left out of cross checks", "[vm.a]\nmemory = \"m\"\n[vm.b]\nmemory = \"m\"\nslots = 1000\n", f + ":5: vm.b.slots: 1000 is not a power of two; use 1024"},

		// Keys found in unusual places.
		{"inline table", "vm = { a = { rings = 1 },\n  b = { slots = 3 } }\n", f + ":2: vm.b.slots: 3 is out of range 64..4096"},
		{"after multi-line string", "[vm.a]\nport = \"\"\"\nrings = 99\n\"\"\"\nrings = 0\n", f + ":2: vm.a.port: \"rings = 99\\n\" contains white space\n" + f + ":5: vm.a.rings: 0 is out of range 1..16"},
		{"quoted key", "[vm.\"a\"]\n'slots' = 1\n", f + ":2: vm.a.slots: 1 is out of range 64..4096"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.in), f)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("Parse returned a config with an error")
			}
			if err.Error() != tt.want {
				t.Errorf("error\n%s\nwant\n%s", err, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("no *Error in %#v", err)
			}
		})
	}
}

// TestErrorsTogether checks that one pass finds every problem and lists
// them in line order, whatever order they were found in.
func TestErrorsTogether(t *testing.T) {
	in := `[vm.vm1]
mac = "02:00:00:00:00:01"
slots = 100

[daemon]
spin = "1h"
bogus = 1

[vm.vm0]
rings = 0
mac = "02:00:00:00:00:01"

[vm.vm2]
mac = "02:00:00:00:00:01"
`
	want := []string{
		"c.toml:3: vm.vm1.slots: 100 is not a power of two; use 128",
		"c.toml:6: daemon.spin: 1h is out of range 0..10ms",
		"c.toml:7: daemon.bogus: unknown key; known keys in [daemon]: socket, run_dir, spin, safety_poll, cpu, kloop_sleep",
		"c.toml:10: vm.vm0.rings: 0 is out of range 1..16",
		"c.toml:11: vm.vm0.mac: 02:00:00:00:00:01 is also the MAC of vm1 (line 2); every VM needs its own",
		"c.toml:14: vm.vm2.mac: 02:00:00:00:00:01 is also the MAC of vm1 (line 2); every VM needs its own",
	}
	_, err := Parse([]byte(in), "c.toml")
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
	errs := err.(interface{ Unwrap() []error }).Unwrap()
	if len(errs) != len(want) {
		t.Fatalf("%d errors, want %d", len(errs), len(want))
	}
	for i, e := range errs {
		if _, ok := e.(*Error); !ok {
			t.Errorf("error %d is %T, want *Error", i, e)
		}
	}
}

func TestErrorText(t *testing.T) {
	for _, tt := range []struct {
		e    Error
		want string
	}{
		{Error{"f.toml", 12, "vm.vm0.slots", "bad"}, "f.toml:12: vm.vm0.slots: bad"},
		{Error{"f.toml", 3, "", "syntax"}, "f.toml:3: syntax"},
		{Error{"f.toml", 0, "", "broken"}, "f.toml: broken"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%+v.Error() = %q, want %q", tt.e, got, tt.want)
		}
	}
}
