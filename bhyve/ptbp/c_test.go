package ptbp

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ptbhyve/ptbhyve/ptnetmap"
)

// vcpu is bhyve/plugin/test/vcpu: the portable C protocol file, driven
// line by line as bhyve's vCPU threads would drive it.
type vcpu struct {
	t   *testing.T
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// buildPlugin builds the C side with the system's compiler.
func buildPlugin(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("cc"); err != nil {
		if os.Getenv("PTBHYVE_REQUIRE_QEMU") == "1" {
			t.Fatal("no C compiler (cc): the plugin protocol file cannot be tested")
		}
		t.Skip("ptbp: SKIP: no C compiler (cc) to build bhyve/plugin")
	}
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "plugin")
	if out, err := exec.Command("make", "-C", dir, "all").CombinedOutput(); err != nil {
		t.Fatalf("make -C bhyve/plugin: %v\n%s", err, out)
	}
	return filepath.Join(dir, "build", "vcpu")
}

func startVCPU(t *testing.T, bin, path, vm string) (*vcpu, string) {
	t.Helper()
	v := &vcpu{t: t, cmd: exec.Command(bin, path, vm)}
	var err error
	if v.in, err = v.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := v.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	v.cmd.Stderr = os.Stderr
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.in.Close(); v.cmd.Process.Kill(); v.cmd.Wait() })
	v.out = bufio.NewScanner(out)
	return v, v.line()
}

func (v *vcpu) line() string {
	v.t.Helper()
	got := make(chan string, 1)
	go func() {
		if v.out.Scan() {
			got <- v.out.Text()
		} else {
			got <- "EOF"
		}
	}()
	select {
	case l := <-got:
		return l
	case <-time.After(10 * time.Second):
		v.t.Fatal("vcpu did not answer within 10 s")
		return ""
	}
}

// do sends one command and returns its reply line.
func (v *vcpu) do(format string, args ...any) string {
	v.t.Helper()
	fmt.Fprintf(v.in, format+"\n", args...)
	return v.line()
}

// cregs are a function's registers reached through the C driver.
type cregs struct {
	v  *vcpu
	fn int
}

func (r cregs) Read(off uint32) uint32 {
	l := r.v.do("read %d %d", r.fn, off)
	n, err := strconv.ParseUint(strings.TrimPrefix(l, "value "), 10, 32)
	if err != nil || !strings.HasPrefix(l, "value ") {
		r.v.t.Fatalf("read %d %d: %q", r.fn, off, l)
	}
	return uint32(n)
}

func (r cregs) Write(off, val uint32) {
	if l := r.v.do("write %d %d %d", r.fn, off, val); l != "done" && !strings.HasPrefix(l, "kicked") {
		r.v.t.Fatalf("write %d %d %d: %q", r.fn, off, val, l)
	}
}

// The C protocol file against the Go server: welcome, register accesses,
// PTCTL CREATE and DELETE, kicks by descriptor, MSI-X programming and the
// interrupts the server raises (recorded by the fake vmm), reset, and a
// reconnect after the daemon restarts; 100,000 frames move through a pipe
// with the guest side of the CSB protocol, none lost.
func TestCPlugin(t *testing.T) {
	bin := buildPlugin(t)
	r := newRig(t)
	v, w := startVCPU(t, bin, r.server.Path(), "vm0")
	if !strings.HasPrefix(w, "welcome 1 1 020000000007 4194304 ptbhyve") {
		t.Fatalf("vcpu said %q", w)
	}
	for i := range 2 {
		if l := v.do("msix %d %d %d %d", i, MSIXEnabled, 0xfee00000, 0x40+i); l != "ok" {
			t.Fatalf("msix: %q", l)
		}
	}
	pt := cregs{v, FnPtnet}
	g := attachGuest(t, r, pt, cregs{v, FnMemdev})
	stream(t, r, g, 100000)
	if r.rec.count() == 0 {
		t.Fatal("no MSI was raised for a guest sleeping on its TX interrupt")
	}
	if l := v.do("reset"); !strings.HasPrefix(l, "done") || r.ptnet.Running() {
		t.Fatalf("reset: %q, running %v", l, r.ptnet.Running())
	}
	if pt.Read(ptnetmap.RegCSBGHBAL) != 0 {
		t.Fatal("reset kept the CSB address")
	}

	// The daemon goes away: bhyve's side reads PTCTL as ENXIO and keeps
	// going; when a daemon listens again it reconnects.
	path := r.server.Path()
	r.server.Close()
	if l := v.do("read 0 4"); l != "value 6" {
		t.Fatalf("PTCTL with no daemon: %q", l)
	}
	if l := v.do("state"); l != "down" {
		t.Fatalf("state: %q", l)
	}
	s2, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	s2.Open = r.server.Open
	go s2.Serve()
	t.Cleanup(func() { s2.Close() })
	if l := v.do("reconnect"); !strings.HasPrefix(l, "welcome 1 1") {
		t.Fatalf("reconnect: %q", l)
	}
	g = attachGuest(t, r, pt, cregs{v, FnMemdev})
	before := r.rec.count()
	stream(t, r, g, 10000)
	if r.rec.count() == before {
		t.Fatal("after the reconnect, the replayed MSI-X table raised nothing")
	}
	if l := v.do("quit"); l != "EOF" && l != "" {
		t.Logf("quit: %q", l)
	}
}
