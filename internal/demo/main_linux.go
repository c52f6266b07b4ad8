package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ptbhyve/ptbhyve/internal/testnet"
	"github.com/ptbhyve/ptbhyve/internal/vm"
)

const ifName = "ptbdemo0"

func main() {
	seconds := flag.Int("seconds", 5, "how long the guest sends")
	rate := flag.String("rate", "", "guest send rate cap, e.g. 50k (default unpaced)")
	bin := flag.String("ptbhyve", "bin/ptbhyve", "the ptbhyve binary")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *bin, *seconds, *rate); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "demo: interrupted; everything it made is removed")
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) {
	fmt.Printf("\n== "+format+"\n", args...)
}

func run(ctx context.Context, bin string, seconds int, rate string) error {
	if os.Geteuid() != 0 {
		return errors.New("not root: the demo makes network namespaces, AF_XDP sockets and a VM; run it as root (sudo make demo)")
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if left, _ := testnet.RemoveLeftovers(); len(left) > 0 {
		fmt.Printf("removed namespaces left by a killed run: %v\n", left)
	}
	dir, err := os.MkdirTemp("", "ptbhyve-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	step("building the guest: Debian's cloud kernel + an initramfs with the guest driver's tools")
	g, err := vm.BuildGuest(ctx, vm.DefaultCacheDir(), dir, os.Stdout)
	if err != nil {
		return err
	}

	step("network: namespaces %q (the daemon's side) and %q (the peer), joined by a veth %s", "A", "B", ifName)
	pair, err := testnet.NewPairE(testnet.PairConfig{Queues: 1, IfA: ifName, IfB: ifName})
	if err != nil {
		return err
	}
	defer func() {
		step("cleaning up")
		if err := pair.Close(); err != nil {
			fmt.Println("demo:", err)
		} else {
			fmt.Printf("removed namespaces %s and %s\n", pair.A.Name, pair.B.Name)
		}
	}()
	fmt.Printf("A = %s, B = %s\n", pair.A.Name, pair.B.Name)
	for _, ns := range []*testnet.NS{pair.A, pair.B} {
		exec.Command("ip", "netns", "exec", ns.Name, "sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6").Run()
	}

	conf := filepath.Join(dir, "ptbhyve.toml")
	socket := filepath.Join(dir, "ptbhyve.sock")
	text := fmt.Sprintf("[daemon]\nsocket = %q\nrun_dir = %q\n\n[vm.vm0]\nrings = 1\nslots = 1024\n", socket, filepath.Join(dir, "run"))
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return err
	}
	step("the daemon: ptbhyve serve --config %s (in namespace A)", conf)
	fmt.Print(indent(text))
	daemon := exec.Command("ip", "netns", "exec", pair.A.Name, bin, "serve", "--config", conf)
	daemon.Stdout, daemon.Stderr = prefixed("  serve | "), prefixed("  serve | ")
	if err := daemon.Start(); err != nil {
		return err
	}
	defer func() {
		daemon.Process.Signal(syscall.SIGTERM)
		daemon.Wait()
		fmt.Println("daemon stopped")
	}()
	ctl := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append(args, "--socket", socket)...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("ptbhyve %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out), nil
	}
	if err := waitFor(ctx, 20*time.Second, func() bool { _, err := ctl("list"); return err == nil }); err != nil {
		return fmt.Errorf("the daemon did not come up: %w", err)
	}
	qargs, err := ctl("qemu-args", "vm0")
	if err != nil {
		return err
	}
	step("the VM: qemu-system-x86_64 $(ptbhyve qemu-args vm0) -kernel ... -append 'intel_iommu=on ...'")
	fmt.Print(indent(qargs))
	guestCmd := []string{"/bin/ptnet-pktgen", "-f", "tx", "-d", fmt.Sprintf("%ds", seconds)}
	if rate != "" {
		guestCmd = append(guestCmd, "-R", rate)
	}
	fmt.Printf("the guest runs: %s\n", strings.Join(guestCmd, " "))
	v, err := vm.Start(ctx, vm.Config{Kernel: g.Kernel, Initrd: g.Initrd, Append: "intel_iommu=on",
		Command: guestCmd, Extra: strings.Fields(qargs), Timeout: 3 * time.Minute, Console: prefixed("  vm0   | ")})
	if err != nil {
		return err
	}
	defer v.Stop()
	if _, err := v.Expect(ctx, "waiting up to"); err != nil {
		return fmt.Errorf("the guest did not find its device: %w", err)
	}

	step("ptbhyve attach vm0 xdp:%s   (link up; the guest starts sending)", ifName)
	rx := exec.CommandContext(ctx, "ip", "netns", "exec", pair.B.Name, bin, "pktgen", "-f", "rx", "-d", fmt.Sprintf("%ds", seconds+3), "xdp:"+ifName)
	rx.Stdout, rx.Stderr = prefixed("  peer  | "), prefixed("  peer  | ")
	if err := rx.Start(); err != nil {
		return err
	}
	out, err := ctl("attach", "vm0", "xdp:"+ifName)
	if err != nil {
		return err
	}
	fmt.Print(indent(out))
	if out, err = ctl("list"); err == nil {
		fmt.Print(indent(out))
	}
	res, err := v.Wait()
	if err != nil {
		return err
	}
	rx.Wait()
	step("ptbhyve stats vm0")
	if out, err = ctl("stats", "vm0"); err == nil {
		fmt.Print(indent(out))
	}
	if out, err = ctl("detach", "vm0"); err == nil {
		fmt.Print(indent(out))
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("the guest's ptnet-pktgen exited %d", res.ExitCode)
	}
	fmt.Printf("\nThe guest sent through ptbhyve's device to the peer namespace; QEMU runs under TCG here (no KVM),\nso these rates show function, not speed: see 'ptbhyve bench' for the data path's speed.\n")
	return nil
}

func waitFor(ctx context.Context, d time.Duration, ok func() bool) error {
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}

var outMu sync.Mutex

// prefixed writes each line with a prefix saying whose output it is.
func prefixed(prefix string) io.Writer {
	r, w := io.Pipe()
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			l := sc.Text()
			if strings.Contains(l, "PTNET-PKTGEN-SUMMARY") || strings.HasPrefix(l, "[") {
				continue // machine-readable lines and kernel messages
			}
			outMu.Lock()
			fmt.Println(prefix + l)
			outMu.Unlock()
		}
	}()
	return w
}
