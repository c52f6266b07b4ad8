package daemon

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ptbhyve/ptbhyve/internal/config"
)

func newDaemon(t *testing.T, vms string) (*Daemon, string) {
	t.Helper()
	return newDaemonOpts(t, vms, Options{})
}

func newDaemonOpts(t *testing.T, vms string, opts Options) (*Daemon, string) {
	t.Helper()
	dir := t.TempDir()
	text := fmt.Sprintf("[daemon]\nsocket = %q\nrun_dir = %q\n%s", filepath.Join(dir, "ctl.sock"), filepath.Join(dir, "run"), vms)
	cfg, err := config.Parse([]byte(text), "test.toml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, "test.toml", slog.New(slog.NewTextHandler(io.Discard, nil)), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	return d, filepath.Join(dir, "run")
}

const threeVMs = `
[vm.a]
slots = 256
port = "switchdt:a"
[vm.b]
slots = 256
memory = "c"
[vm.c]
slots = 256
`

func TestAttachDetach(t *testing.T) {
	d, run := newDaemon(t, threeVMs)
	for _, vm := range []string{"a", "b", "c"} {
		if _, err := os.Stat(filepath.Join(run, vm+".ivshmem")); err != nil {
			t.Fatalf("device socket of %s: %v", vm, err)
		}
	}
	l := d.List()
	if len(l) != 3 || !l[0].Link || l[0].Port != "switchdt:a" || l[1].Link || l[1].Memory != "c" || l[1].Bytes != l[2].Bytes {
		t.Fatalf("list: %+v", l)
	}
	// The two VMs sharing memory c: a pipe joins them; a second kind of
	// port in the same memory is refused.
	if _, err := d.Attach("b", "pipe:dt{0"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Attach("c", "switchdt:c"); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "memory c is in use by vm b's port pipe:dt{0") {
		t.Fatalf("switch port into a memory holding a pipe: %v", err)
	}
	if _, err := d.Attach("c", "pipe:dt}0"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Attach("c", "pipe:dt}0"); !errors.Is(err, ErrConflict) {
		t.Fatalf("second attach: %v", err)
	}
	// A pipe end in another VM's memory cannot be seen by that VM.
	if _, err := d.Detach("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Attach("a", "pipe:x{0"); err == nil || !strings.Contains(err.Error(), "give both memory = \"a\"") {
		t.Fatalf("a pipe in a one-VM memory: %v", err)
	}
	if _, err := d.Attach("a", "switchdt:a@conf:slots=2048"); err == nil || !strings.Contains(err.Error(), "at most 1 rings of 256 slots") {
		t.Fatalf("a port bigger than the device: %v", err)
	}
	if _, err := d.Detach("a"); !errors.Is(err, ErrConflict) {
		t.Fatalf("detach with nothing attached: %v", err)
	}
	if _, err := d.Attach("zz", "switch0:x"); !errors.Is(err, ErrNoVM) || !strings.Contains(err.Error(), "[vm.zz]") {
		t.Fatalf("unknown VM: %v", err)
	}
	if _, err := d.Attach("a", "ix0"); err == nil || !strings.Contains(err.Error(), "netmap:ix0") {
		t.Fatalf("bad name: %v", err)
	}
	st, err := d.Stats("b")
	if err != nil || !st.Link || st.Port != "pipe:dt{0" || st.LinkChanges != 1 {
		t.Fatalf("stats: %+v %v", st, err)
	}
	args, err := d.QEMUArgs("b")
	if err != nil || !strings.Contains(strings.Join(args, " "), "ivshmem-doorbell,chardev=ptbhyve-b,vectors=3") {
		t.Fatalf("qemu args: %q %v", args, err)
	}
	for _, vm := range []string{"b", "c"} {
		if _, err := d.Detach(vm); err != nil {
			t.Fatal(err)
		}
	}
	// The memory is free again for any one port.
	if _, err := d.Attach("c", "switchdt:c"); err != nil {
		t.Fatal(err)
	}
	// A switch port's own counters come with the device's.
	if st, err := d.Stats("c"); err != nil || st.Backend == nil {
		t.Fatalf("stats of a switch port: %+v %v", st, err)
	}
	d.Close()
	for _, vm := range []string{"a", "b", "c"} {
		if _, err := os.Stat(filepath.Join(run, vm+".ivshmem")); !os.IsNotExist(err) {
			t.Errorf("device socket of %s left behind: %v", vm, err)
		}
	}
}

func TestStartupPortError(t *testing.T) {
	dir := t.TempDir()
	text := fmt.Sprintf("[daemon]\nrun_dir = %q\n[vm.a]\nport = \"xdp:nosuch0\"\n", dir)
	cfg, err := config.Parse([]byte(text), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(cfg, "t.toml", slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	if err == nil || !strings.Contains(err.Error(), "t.toml:3: vm.a.port:") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a.ivshmem")); !os.IsNotExist(err) {
		t.Fatalf("socket left after a failed start: %v", err)
	}
}
