package vm

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ptbhyve/ptbhyve/internal/testnet"
	"github.com/ptbhyve/ptbhyve/internal/vm"
)

var (
	guest   vm.Guest
	ptbhyve string // the host binary under test
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if reason := unavailable(); reason != "" {
		if os.Getenv("PTBHYVE_REQUIRE_QEMU") == "1" {
			fmt.Fprintf(os.Stderr, "tests/vm: FAIL: PTBHYVE_REQUIRE_QEMU=1 but %s\n", reason)
			return 1
		}
		fmt.Fprintf(os.Stderr, "tests/vm: SKIP: %s\n", reason)
		return 0
	}
	dir, err := os.MkdirTemp("", "ptbhyve-vmtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if guest, err = vm.BuildGuest(ctx, vm.DefaultCacheDir(), dir, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "tests/vm:", err)
		return 1
	}
	ptbhyve = filepath.Join(dir, "ptbhyve")
	if out, err := exec.Command("go", "build", "-o", ptbhyve, "github.com/ptbhyve/ptbhyve/cmd/ptbhyve").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "tests/vm: go build ptbhyve: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	if left, err := testnet.Leftovers(); err == nil && len(left) > 0 {
		fmt.Fprintf(os.Stderr, "tests/vm: FAIL: namespaces left behind: %v\n", left)
		code = 1
	}
	// Every daemon, pktgen and QEMU the tests started runs something from
	// dir: none may outlive them.
	if left := processesUsing(dir); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "tests/vm: FAIL: processes left behind: %v\n", left)
		code = 1
	}
	return code
}

// processesUsing lists the processes whose command line mentions dir.
func processesUsing(dir string) []string {
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || filepath.Dir(p) == "/proc/"+fmt.Sprint(os.Getpid()) {
			continue
		}
		if cmd := strings.ReplaceAll(string(b), "\x00", " "); strings.Contains(cmd, dir) {
			out = append(out, filepath.Base(filepath.Dir(p))+": "+cmd)
		}
	}
	return out
}

func unavailable() string {
	if os.Geteuid() != 0 {
		return "not root (the VM tests make namespaces, AF_XDP ports and VMs)"
	}
	if _, err := vm.QEMUPath(); err != nil {
		return err.Error()
	}
	if _, err := os.Stat(vm.Busybox); err != nil {
		return "no " + vm.Busybox + " (apt-get install busybox-static)"
	}
	if r := testnet.Unavailable(); r != "" {
		return r
	}
	return ""
}

// daemon is a running `ptbhyve serve`.
type daemon struct {
	t      *testing.T
	socket string
	cmd    *exec.Cmd
	out    *lockedBuffer
}

// startDaemon runs `ptbhyve serve` with the VM tables vms, inside network
// namespace ns when it is not nil (where its xdp: ports live).
func startDaemon(t *testing.T, ns *testnet.NS, vms string) *daemon {
	t.Helper()
	dir := t.TempDir()
	socket := filepath.Join(dir, "ctl.sock")
	conf := filepath.Join(dir, "ptbhyve.toml")
	text := fmt.Sprintf("[daemon]\nsocket = %q\nrun_dir = %q\n%s", socket, filepath.Join(dir, "run"), vms)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{ptbhyve, "serve", "--config", conf}
	if ns != nil {
		args = append([]string{"ip", "netns", "exec", ns.Name}, args...)
	}
	d := &daemon{t: t, socket: socket, out: &lockedBuffer{}}
	d.cmd = exec.Command(args[0], args[1:]...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.stop)
	for deadline := time.Now().Add(20 * time.Second); ; {
		if _, err := d.ctlErr("list"); err == nil {
			break
		}
		if time.Now().After(deadline) || d.cmd.ProcessState != nil {
			t.Fatalf("ptbhyve serve did not come up:\n%s", d.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return d
}

// stop ends the daemon as an operator would (SIGTERM) and checks it
// cleaned up its sockets.
func (d *daemon) stop() {
	if d.cmd.Process == nil || d.cmd.ProcessState != nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			d.t.Errorf("ptbhyve serve exited with %v:\n%s", err, d.out)
		}
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		<-done
		d.t.Errorf("ptbhyve serve ignored SIGTERM for 20 s:\n%s", d.out)
	}
	if _, err := os.Stat(d.socket); !os.IsNotExist(err) {
		d.t.Errorf("control socket %s left behind", d.socket)
	}
	if d.t.Failed() {
		d.t.Logf("daemon log:\n%s", d.out)
	}
}

func (d *daemon) ctlErr(args ...string) (string, error) {
	args = append(args, "--socket", d.socket)
	out, err := exec.Command(ptbhyve, args...).CombinedOutput()
	return string(out), err
}

// ctl runs a client command against the daemon and fails the test if it
// fails.
func (d *daemon) ctl(args ...string) string {
	d.t.Helper()
	out, err := d.ctlErr(args...)
	if err != nil {
		d.t.Fatalf("ptbhyve %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// boot starts VM name's QEMU with the flags the daemon prints, running
// command in the guest.
func (d *daemon) boot(name string, command ...string) *vm.VM {
	d.t.Helper()
	var args []string
	if err := json.Unmarshal([]byte(d.ctl("qemu-args", "--json", name)), &args); err != nil {
		d.t.Fatal(err)
	}
	console := &prefixWriter{t: d.t, prefix: name + ": "}
	v, err := vm.Start(context.Background(), vm.Config{Kernel: guest.Kernel, Initrd: guest.Initrd, Append: "intel_iommu=on",
		Command: command, Extra: args, Timeout: 4 * time.Minute, Console: console})
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(v.Stop)
	return v
}

// expect waits for a console line of v containing s.
func expect(t *testing.T, v *vm.VM, s string, within time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	line, err := v.Expect(ctx, s)
	if err != nil {
		t.Fatalf("waiting for %q on the console: %v", s, err)
	}
	return line
}

// summary is ptnet-pktgen's and ptbhyve pktgen's JSON summary.
type summary struct {
	Mode       string  `json:"mode"`
	Packets    uint64  `json:"packets"`
	Received   uint64  `json:"received"`
	Bad        uint64  `json:"bad"`
	Lost       uint64  `json:"lost"`
	Reordered  uint64  `json:"reordered"`
	Duplicated uint64  `json:"duplicated"`
	PPS        float64 `json:"pps"`
	RTT        struct {
		Avg time.Duration `json:"avg_ns"`
	} `json:"rtt"`
}

// guestSummary waits for the guest's pktgen to finish and returns its
// summary.
func guestSummary(t *testing.T, v *vm.VM) summary {
	t.Helper()
	res, err := v.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("guest command exited %d", res.ExitCode)
	}
	for _, l := range res.Lines {
		if _, js, ok := strings.Cut(l, "PTNET-PKTGEN-SUMMARY "); ok {
			var s summary
			if err := json.Unmarshal([]byte(js), &s); err != nil {
				t.Fatalf("guest summary %q: %v", js, err)
			}
			return s
		}
	}
	t.Fatal("the guest printed no PTNET-PKTGEN-SUMMARY line")
	return summary{}
}

// hostPktgen is `ptbhyve pktgen` running in a namespace; its per-second
// packet counts arrive on Counts.
type hostPktgen struct {
	cmd    *exec.Cmd
	out    *lockedBuffer
	Counts chan uint64
	done   chan struct{}
}

func startHostPktgen(t *testing.T, ns *testnet.NS, args ...string) *hostPktgen {
	t.Helper()
	full := append([]string{"netns", "exec", ns.Name, ptbhyve, "pktgen", "--json"}, args...)
	h := &hostPktgen{cmd: exec.Command("ip", full...), out: &lockedBuffer{}, Counts: make(chan uint64, 1000), done: make(chan struct{})}
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	h.cmd.Stderr = h.out
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(h.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(h.out, line)
			if i := strings.Index(line, "("); i >= 0 {
				var n uint64
				if _, err := fmt.Sscanf(line[i:], "(%d pkts", &n); err == nil {
					h.Counts <- n
				}
			}
		}
	}()
	t.Cleanup(func() {
		if h.cmd.ProcessState == nil {
			h.cmd.Process.Signal(syscall.SIGINT)
			h.wait()
		}
	})
	return h
}

func (h *hostPktgen) wait() error {
	<-h.done
	return h.cmd.Wait()
}

// summary waits for the host pktgen to end and returns its summary.
func (h *hostPktgen) summary(t *testing.T) summary {
	t.Helper()
	if err := h.wait(); err != nil {
		t.Fatalf("ptbhyve pktgen: %v\n%s", err, h.out)
	}
	lines := strings.Split(strings.TrimSpace(h.out.String()), "\n")
	var s summary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil {
		t.Fatalf("ptbhyve pktgen summary: %v\n%s", err, h.out)
	}
	return s
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// prefixWriter logs a VM's console through the test, so `go test -v`
// interleaves the guests' output with the test's.
type prefixWriter struct {
	t      *testing.T
	prefix string
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log(w.prefix + l)
	}
	return len(p), nil
}

var _ io.Writer = (*prefixWriter)(nil)
