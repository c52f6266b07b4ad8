package config

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func TestExample(t *testing.T) {
	got, err := Load("testdata/example.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Daemon: Daemon{
			Socket:     defaultRunDir + "/ptbhyve.sock",
			RunDir:     defaultRunDir,
			Spin:       20 * time.Microsecond,
			SafetyPoll: time.Second,
			CPU:        -1,
			KloopSleep: 100 * time.Microsecond,
		},
		VMs: []VM{
			{Name: "vm0", VMM: DefaultVMM, Rings: 1, Slots: 1024, BufSize: 2048, MAC: mac("02:00:00:00:00:01"), Port: "xdp:eth0", Memory: "m0", Datapath: "auto", Sync: "auto", Line: 14},
			{Name: "vm1", VMM: DefaultVMM, Rings: 1, Slots: 1024, BufSize: 2048, MAC: defaultMAC("vm1"), Memory: "m0", Datapath: "auto", Sync: "auto", Line: 31},
			{Name: "vm2", VMM: DefaultVMM, Rings: 1, Slots: 1024, BufSize: 2048, MAC: defaultMAC("vm2"), Memory: "vm2", Datapath: "auto", Sync: "auto", Line: 35},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
	// The example's [daemon] table documents the defaults; keep them honest.
	if got.Daemon != Default().Daemon {
		t.Errorf("example [daemon] = %+v, Default() = %+v", got.Daemon, Default().Daemon)
	}
}

func TestDefaults(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     *Config
	}{
		{"empty", "", Default()},
		{"comments only", "# nothing\n\n", Default()},
		{"empty daemon", "[daemon]\n", Default()},
		{"empty vm table", "[vm]\n", Default()},
		{
			"vm with defaults", "[vm.a]\n",
			&Config{Daemon: Default().Daemon, VMs: []VM{
				{Name: "a", VMM: DefaultVMM, Rings: 1, Slots: 1024, BufSize: 2048, MAC: defaultMAC("a"), Memory: "a", Datapath: "auto", Sync: "auto", Line: 1},
			}},
		},
		{
			"file order, not name order", "[vm.z]\n[vm.a]\n[vm.m]\n",
			&Config{Daemon: Default().Daemon, VMs: []VM{
				{Name: "z", VMM: DefaultVMM, Rings: 1, Slots: 1024, BufSize: 2048, MAC: defaultMAC("z"), Memory: "z", Datapath: "auto", Sync: "auto", Line: 1},
				{Name: "a", VMM: DefaultVMM, Rings: 1, Slots: 1024, BufSize: 2048, MAC: defaultMAC("a"), Memory: "a", Datapath: "auto", Sync: "auto", Line: 2},
				{Name: "m", VMM: DefaultVMM, Rings: 1, Slots: 1024, BufSize: 2048, MAC: defaultMAC("m"), Memory: "m", Datapath: "auto", Sync: "auto", Line: 3},
			}},
		},
		{
			"dotted keys and inline tables", "vm.b.rings = 2\nvm.a = { slots = 64, buf_size = 4096 }\n",
			&Config{Daemon: Default().Daemon, VMs: []VM{
				{Name: "b", VMM: DefaultVMM, Rings: 2, Slots: 1024, BufSize: 2048, MAC: defaultMAC("b"), Memory: "b", Datapath: "auto", Sync: "auto", Line: 1},
				{Name: "a", VMM: DefaultVMM, Rings: 1, Slots: 64, BufSize: 4096, MAC: defaultMAC("a"), Memory: "a", Datapath: "auto", Sync: "auto", Line: 2},
			}},
		},
		{
			"daemon bounds", "[daemon]\nspin = \"0s\"\nsafety_poll = \"1m\"\ncpu = 1023\nsocket = \"/s\"\nrun_dir = \"/r\"\nkloop_sleep = \"1s\"\n",
			&Config{Daemon: Daemon{Socket: "/s", RunDir: "/r", Spin: 0, SafetyPoll: time.Minute, CPU: 1023, KloopSleep: time.Second}},
		},
		{
			"bhyve data path", "[vm.a]\nvmm = \"bhyve\"\ndatapath = \"copy\"\nsync = \"ptbhyve\"\n",
			&Config{Daemon: Default().Daemon, VMs: []VM{
				{Name: "a", VMM: VMMBhyve, Rings: 1, Slots: 1024, BufSize: 2048, MAC: defaultMAC("a"), Memory: "a", Datapath: "copy", Sync: "ptbhyve", Line: 1},
			}},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in), "t.toml")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestDefaultPath(t *testing.T) {
	if !filepath.IsAbs(DefaultPath) || !strings.HasSuffix(DefaultPath, "/ptbhyve.toml") {
		t.Errorf("DefaultPath = %q", DefaultPath)
	}
}

func TestDefaultMAC(t *testing.T) {
	// Pinned (sha256sum of "ptbhyve vm vm0", bit 0x02 set, bit 0x01 clear):
	// a change would renumber every guest that relies on it.
	if got, want := defaultMAC("vm0").String(), "b2:f1:bd:f1:e6:4c"; got != want {
		t.Errorf("defaultMAC(vm0) = %s, want %s", got, want)
	}
	seen := map[string]string{}
	for _, name := range []string{"vm0", "vm1", "vm2", "a", "A", "web-1"} {
		m := defaultMAC(name)
		if len(m) != 6 || m[0]&0x01 != 0 || m[0]&0x02 == 0 {
			t.Errorf("defaultMAC(%s) = %s: want 6 bytes, unicast, locally administered", name, m)
		}
		if !reflect.DeepEqual(m, defaultMAC(name)) {
			t.Errorf("defaultMAC(%s) is not stable", name)
		}
		if other, dup := seen[m.String()]; dup {
			t.Errorf("defaultMAC(%s) = defaultMAC(%s) = %s", name, other, m)
		}
		seen[m.String()] = name
	}
}

func TestVMAndMembers(t *testing.T) {
	cfg, err := Parse([]byte("[vm.a]\nmemory = \"p\"\n[vm.b]\n[vm.c]\nmemory = \"p\"\n"), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	if vm, ok := cfg.VM("b"); !ok || vm.Name != "b" || vm.Memory != "b" {
		t.Errorf("VM(b) = %+v, %v", vm, ok)
	}
	if vm, ok := cfg.VM("x"); ok {
		t.Errorf("VM(x) = %+v, true", vm)
	}
	names := func(vms []VM) (s []string) {
		for _, v := range vms {
			s = append(s, v.Name)
		}
		return s
	}
	for _, tt := range []struct {
		memory string
		want   []string
	}{{"p", []string{"a", "c"}}, {"b", []string{"b"}}, {"a", nil}, {"", nil}} {
		if got := names(cfg.Members(tt.memory)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Members(%q) = %v, want %v", tt.memory, got, tt.want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.toml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
	path := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(path, []byte("[vm.vm0]\nslots = 1000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if want := path + ":2: vm.vm0.slots: 1000 is not a power of two; use 1024"; err == nil || err.Error() != want {
		t.Errorf("Load(bad) = %v, want %s", err, want)
	}
}

// FuzzParse checks that no input makes Parse (the TOML decoder, the line
// scanner or the checks) panic or hang, and that a success is valid.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("testdata/example.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	for _, s := range []string{
		"", "[vm.a]\n", "vm = {a = {rings = 2}, b = {\n slots = 64,\n}}\n",
		"[daemon]\nspin = 5\n", "a = \"\"\"x\ny\"\"\"\"\n[vm.'q.r']\nmac = 'ff:ff:ff:ff:ff:ff'\n",
		"[[vm]]\nx=1\n", "t = 1979-05-27 07:32:00Z\n[vm.\"a\\u0062\"]\n", "a = [1, [2, {b = 3}]] # c\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "f.toml")
		if err != nil {
			return
		}
		for _, vm := range cfg.VMs {
			if !nameRE.MatchString(vm.Name) || len(vm.MAC) != 6 || vm.Slots&(vm.Slots-1) != 0 {
				t.Errorf("accepted invalid VM %+v", vm)
			}
		}
		keyLines(string(data)) // also on its own
	})
}
