// Package vcpu runs bhyve/plugin's test driver, which plays bhyve's vCPU
// threads through the plugin protocol's portable C file, for Go tests of
// the daemon's side: one command line in, one reply line out.
package vcpu

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
)

// Build builds bhyve/plugin with the system's C compiler and returns the
// driver's path. Without a compiler the test skips, or fails where
// PTBHYVE_REQUIRE_QEMU=1 says everything must run (CI).
func Build(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("cc"); err != nil {
		if os.Getenv("PTBHYVE_REQUIRE_QEMU") == "1" {
			t.Fatal("no C compiler (cc): the plugin protocol file cannot be tested")
		}
		t.Skip("vcpu: SKIP: no C compiler (cc) to build bhyve/plugin")
	}
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "bhyve", "plugin")
	if out, err := exec.Command("make", "-C", dir, "all").CombinedOutput(); err != nil {
		t.Fatalf("make -C bhyve/plugin: %v\n%s", err, out)
	}
	return filepath.Join(dir, "build", "vcpu")
}

// VCPU is a running driver connected to a daemon's plugin socket.
type VCPU struct {
	t     testing.TB
	in    io.WriteCloser
	lines chan string
	// Welcome is the driver's first line: "welcome NTX NRX MAC MEMSIZE
	// SEGNAME" or "error ERRNO MESSAGE".
	Welcome string
}

// Start runs the driver bin for vm on the socket at path; it is stopped
// when the test ends.
func Start(t testing.TB, bin, path, vm string) *VCPU {
	t.Helper()
	cmd := exec.Command(bin, path, vm)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	v := &VCPU{t: t, in: in, lines: make(chan string)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			v.lines <- sc.Text()
		}
		close(v.lines)
	}()
	t.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
	v.Welcome = v.line()
	return v
}

func (v *VCPU) line() string {
	v.t.Helper()
	select {
	case l, ok := <-v.lines:
		if !ok {
			return "EOF"
		}
		return l
	case <-time.After(10 * time.Second):
		v.t.Fatal("vcpu did not answer within 10 s")
		return ""
	}
}

// Do sends one command and returns its reply.
func (v *VCPU) Do(format string, args ...any) string {
	v.t.Helper()
	fmt.Fprintf(v.in, format+"\n", args...)
	return v.line()
}

// Quit ends the driver (it closes the connection with GOODBYE).
func (v *VCPU) Quit() { fmt.Fprintln(v.in, "quit") }

// Regs are one function's registers as the guest reaches them through
// bhyve: fn 0 is ptnet, 1 the memdev. They implement ptnetmap.Registers.
type Regs struct {
	V  *VCPU
	Fn int
}

// Read implements ptnetmap.Registers.
func (r Regs) Read(off uint32) uint32 {
	l := r.V.Do("read %d %d", r.Fn, off)
	n, err := strconv.ParseUint(strings.TrimPrefix(l, "value "), 10, 32)
	if err != nil || !strings.HasPrefix(l, "value ") {
		r.V.t.Fatalf("read %d %d: %q", r.Fn, off, l)
	}
	return uint32(n)
}

// Write implements ptnetmap.Registers.
func (r Regs) Write(off, val uint32) {
	if l := r.V.Do("write %d %d %d", r.Fn, off, val); l != "done" && !strings.HasPrefix(l, "kicked") {
		r.V.t.Fatalf("write %d %d %d: %q", r.Fn, off, val, l)
	}
}
