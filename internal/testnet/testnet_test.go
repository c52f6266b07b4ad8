//go:build linux

package testnet

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ptbhyve/ptbhyve/internal/rtnl"
	"golang.org/x/sys/unix"
)

// TestMain fails the run if this process left any namespace or link
// behind, whatever the individual tests reported.
func TestMain(m *testing.M) {
	code := m.Run()
	if Unavailable() == "" {
		left, err := scan(func(pid int) bool { return pid == os.Getpid() })
		if err != nil {
			fmt.Fprintf(os.Stderr, "testnet: leak check: %v\n", err)
			code = 1
		}
		if len(left) > 0 {
			fmt.Fprintf(os.Stderr, "testnet: this test process left behind: %s\n", strings.Join(left, ", "))
			code = 1
		}
	}
	os.Exit(code)
}

func requireRoot(t *testing.T) {
	t.Helper()
	if reason := Unavailable(); reason != "" {
		t.Skipf("testnet: SKIP: %s", reason)
	}
}

// ipNetnsList returns the names `ip netns list` prints.
func ipNetnsList(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v\n%s", err, out)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

// assertGone checks that the namespaces are no longer visible anywhere a
// human or iproute2 would look, and that no interface of that name remains
// in the root namespace.
func assertGone(t *testing.T, names ...string) {
	t.Helper()
	listed := ipNetnsList(t)
	root, err := rtnl.Dial(-1)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, n := range names {
		if _, err := os.Lstat(filepath.Join(netnsDir, n)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s/%s still exists (err %v)", netnsDir, n, err)
		}
		if slices.Contains(listed, n) {
			t.Errorf("`ip netns list` still shows %s: %v", n, listed)
		}
		if _, err := root.LinkByName(n); !rtnl.IsNotExist(err) {
			t.Errorf("interface %s in the root namespace: want ENODEV, got %v", n, err)
		}
	}
}

func TestPairQueuesMTUUp(t *testing.T) {
	t.Parallel()
	p := NewPair(t, PairConfig{Queues: 2})
	if len(p.AName) > 15 || len(p.BName) > 15 || p.AName == p.BName {
		t.Fatalf("bad names %q %q", p.AName, p.BName)
	}
	for _, end := range []struct {
		ns    *NS
		name  string
		index int
		other string
	}{{p.A, p.AName, p.AIndex, p.BName}, {p.B, p.BName, p.BIndex, p.AName}} {
		c, err := rtnl.DialNamed(end.ns.Fd(), end.ns.Name)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		l, err := c.LinkByName(end.name)
		if err != nil {
			t.Fatal(err)
		}
		if l.Index != end.index || l.Name != end.name || l.MTU != 1500 || l.NumTxQueues != 2 || l.NumRxQueues != 2 {
			t.Errorf("%s: got %+v, want index %d, MTU 1500, 2/2 queues", end.name, l, end.index)
		}
		if l.Flags&unix.IFF_UP == 0 {
			t.Errorf("%s is not up: flags %#x", end.name, l.Flags)
		}
		if l.XDPAttached != rtnl.XDPAttachedNone || l.XDPProgID != 0 {
			t.Errorf("%s: unexpected XDP state %+v", end.name, l)
		}
		byIndex, err := c.LinkByIndex(end.index)
		if err != nil || byIndex != l {
			t.Errorf("LinkByIndex(%d) = %+v, %v; want %+v", end.index, byIndex, err, l)
		}
		lo, err := c.LinkByName("lo")
		if err != nil || lo.Flags&unix.IFF_UP == 0 {
			t.Errorf("loopback in %s not up: %+v, %v", end.ns.Name, lo, err)
		}
		// The other end lives in the other namespace only.
		_, err = c.LinkByName(end.other)
		if !errors.Is(err, unix.ENODEV) {
			t.Fatalf("LinkByName(%s) in %s: want ENODEV, got %v", end.other, end.ns.Name, err)
		}
		if want := "no such interface " + end.other + " in namespace " + end.ns.Name; !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestPairIPShow cross-checks the pair with iproute2, independently of rtnl
// (and of the /run/netns bind mount, which `ip -n` needs).
func TestPairIPShow(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("iproute2 `ip` not installed")
	}
	p := NewPair(t, PairConfig{Queues: 2, MTU: 1400})
	head := regexp.MustCompile(`^(\d+): ([^:@]+)(@\S+)?: <([^>]*)> mtu (\d+) `)
	queues := regexp.MustCompile(`numtxqueues (\d+) numrxqueues (\d+)`)
	for _, end := range []struct {
		ns    string
		name  string
		index int
	}{{p.A.Name, p.AName, p.AIndex}, {p.B.Name, p.BName, p.BIndex}} {
		// stdout only: ip warns on stderr ("Peer netns reference is
		// invalid") when other tests' namespaces come and go meanwhile.
		out, err := exec.Command("ip", "-n", end.ns, "-d", "link", "show", end.name).Output()
		if err != nil {
			t.Fatalf("ip -n %s -d link show %s: %v\n%s", end.ns, end.name, err, out)
		}
		text := string(out)
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Scan()
		m := head.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("cannot parse the first line of:\n%s", text)
		}
		if m[1] != strconv.Itoa(end.index) || m[2] != end.name || m[5] != "1400" {
			t.Errorf("ip shows index %s name %s mtu %s; want %d %s 1400\n%s", m[1], m[2], m[5], end.index, end.name, text)
		}
		if !slices.Contains(strings.Split(m[4], ","), "UP") {
			t.Errorf("ip shows flags <%s>, want UP among them", m[4])
		}
		q := queues.FindStringSubmatch(text)
		if q == nil || q[1] != "2" || q[2] != "2" {
			t.Errorf("ip shows queues %v, want numtxqueues 2 numrxqueues 2\n%s", q, text)
		}
		if !regexp.MustCompile(`(?m)^\s+veth\b`).MatchString(text) {
			t.Errorf("ip does not show a veth:\n%s", text)
		}
	}
}

func TestPairUDP(t *testing.T) {
	for _, tc := range []struct{ name, a, b string }{
		{"ipv4", "10.99.0.1/24", "10.99.0.2/24"},
		{"ipv6", "fd00:99::1/64", "fd00:99::2/64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := netip.MustParsePrefix(tc.a), netip.MustParsePrefix(tc.b)
			p := NewPair(t, PairConfig{Queues: 1, AddrA: a, AddrB: b})
			var rx *net.UDPConn
			err := p.B.Do(func() error {
				var err error
				rx, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(b.Addr(), 0)))
				return err
			})
			if err != nil {
				t.Fatalf("listen on %v in %s: %v", b.Addr(), p.B.Name, err)
			}
			defer rx.Close()
			to := rx.LocalAddr().(*net.UDPAddr).AddrPort()
			msg := []byte("hello from " + p.A.Name)
			err = p.A.Do(func() error {
				tx, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a.Addr(), 0)), net.UDPAddrFromAddrPort(to))
				if err != nil {
					return err
				}
				defer tx.Close()
				_, err = tx.Write(msg)
				return err
			})
			if err != nil {
				t.Fatalf("send from %v in %s to %v: %v", a.Addr(), p.A.Name, to, err)
			}
			rx.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 256)
			n, from, err := rx.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatalf("receive in %s: %v", p.B.Name, err)
			}
			if !bytes.Equal(buf[:n], msg) || from.Addr().Unmap() != a.Addr() {
				t.Errorf("got %q from %v, want %q from %v", buf[:n], from, msg, a.Addr())
			}
		})
	}
}

// TestCloseRemovesEverything closes a pair while a socket still holds
// namespace A alive, and checks the veth is gone anyway and neither
// namespace is visible any more.
func TestCloseRemovesEverything(t *testing.T) {
	requireRoot(t)
	p, err := NewPairE(PairConfig{Queues: 2})
	if err != nil {
		t.Fatal(err)
	}
	hold, err := rtnl.DialNamed(p.A.Fd(), p.A.Name)
	if err != nil {
		p.Close()
		t.Fatal(err)
	}
	defer hold.Close()
	if _, err := hold.LinkByName(p.AName); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if p.A.Fd() != -1 || p.B.Fd() != -1 {
		t.Errorf("descriptors still open after Close: %d %d", p.A.Fd(), p.B.Fd())
	}
	assertGone(t, p.A.Name, p.B.Name)
	if _, err := hold.LinkByName(p.AName); !rtnl.IsNotExist(err) {
		t.Errorf("veth %s survives in the still-referenced namespace: %v", p.AName, err)
	}
	if err := p.A.Do(func() error { return nil }); err == nil {
		t.Error("Do on a closed namespace succeeded")
	}
}

const childEnv = "PTB_TESTNET_FAILNOW_CHILD"

// TestCleanupAfterFailNow runs a subtest that calls t.FailNow right after
// NewPair. Because a failing subtest fails its parent, it runs in a child
// copy of this test binary; the child checks, after the nested t.Run
// returns, that the cleanup ran, and the parent checks again once the child
// is dead.
func TestCleanupAfterFailNow(t *testing.T) {
	if os.Getenv(childEnv) == "1" {
		failNowChild(t)
		return
	}
	requireRoot(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCleanupAfterFailNow$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("child should fail with exit 1, got %v:\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{"--- FAIL: TestCleanupAfterFailNow/inner", "CHILD-CLEANUP-OK"} {
		if !strings.Contains(text, want) {
			t.Fatalf("child output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "left behind") {
		t.Fatalf("child leaked:\n%s", text)
	}
	m := regexp.MustCompile(`CHILD-NAMES (\S+) (\S+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("child did not report its names:\n%s", text)
	}
	assertGone(t, m[1], m[2])
	left, err := Leftovers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range left {
		if strings.HasSuffix(l, "-"+strconv.Itoa(cmd.Process.Pid)) {
			t.Errorf("child left %s behind", l)
		}
	}
}

func failNowChild(t *testing.T) {
	var names []string
	t.Run("inner", func(t *testing.T) {
		p := NewPair(t, PairConfig{Queues: 2, AddrA: netip.MustParsePrefix("10.98.0.1/24")})
		names = []string{p.A.Name, p.B.Name}
		fmt.Printf("CHILD-NAMES %s %s\n", p.A.Name, p.B.Name)
		t.FailNow()
	})
	if len(names) != 2 {
		t.Fatal("inner subtest did not create a pair")
	}
	for _, n := range names {
		if _, err := os.Lstat(filepath.Join(netnsDir, n)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s survived t.FailNow: %v", n, err)
		}
	}
	fmt.Println("CHILD-CLEANUP-OK")
}

func TestNSDo(t *testing.T) {
	requireRoot(t)
	n, err := NewNS("do")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if !strings.HasPrefix(n.Name, "ptb-do-") || !strings.HasSuffix(n.Name, "-"+strconv.Itoa(os.Getpid())) {
		t.Errorf("name %q, want ptb-do-PID", n.Name)
	}
	var want unix.Stat_t
	if err := unix.Fstat(n.Fd(), &want); err != nil {
		t.Fatal(err)
	}
	inode := func() (uint64, error) {
		var st unix.Stat_t
		err := unix.Stat("/proc/thread-self/ns/net", &st)
		return st.Ino, err
	}
	var inside uint64
	if err := n.Do(func() (err error) { inside, err = inode(); return }); err != nil {
		t.Fatal(err)
	}
	if inside != want.Ino {
		t.Errorf("Do ran in namespace inode %d, want %d", inside, want.Ino)
	}
	// The calling goroutine's threads are untouched; run a few times so
	// another goroutine would likely land on a recycled thread if Do leaked
	// one.
	for range 20 {
		if err := n.Do(func() error { return nil }); err != nil {
			t.Fatal(err)
		}
		if out, _ := inode(); out == want.Ino {
			t.Fatal("the test goroutine's thread ended up in the namespace")
		}
	}
	sentinel := errors.New("boom")
	if err := n.Do(func() error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("Do did not return f's error: %v", err)
	}
	if err := n.Do(func() error { runtime.Goexit(); return nil }); err == nil || !strings.Contains(err.Error(), "Goexit") {
		t.Errorf("Goexit inside Do: got %v", err)
	}
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "kaboom") {
				t.Errorf("panic not re-raised in the caller: %v", r)
			}
		}()
		_ = n.Do(func() error { panic("kaboom") })
	}()
	if _, err := NewNS("do"); !errors.Is(err, unix.EEXIST) {
		t.Errorf("second NewNS(do): want EEXIST, got %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, n.Name)
}

func TestLeftovers(t *testing.T) {
	requireRoot(t)
	// A PID that certainly exited: a child we waited for.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run `true` to get a dead PID: %v", err)
	}
	dead := cmd.Process.Pid
	if !pidDead(dead) {
		t.Skipf("PID %d was reused already", dead)
	}
	// A stale /run/netns entry as a killed process leaves it (here just the
	// mount point, which is what remains after a reboot).
	name := fmt.Sprintf("ptb-leak-%d", dead)
	stale := filepath.Join(netnsDir, name)
	if err := os.WriteFile(stale, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(stale)
	// A live one of ours must not be listed.
	p := NewPair(t, PairConfig{})
	left, err := Leftovers()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(left, "netns "+name) {
		t.Errorf("Leftovers() = %v, want it to list netns %s", left, name)
	}
	for _, l := range left {
		if strings.Contains(l, p.A.Name) || strings.Contains(l, p.B.Name) {
			t.Errorf("Leftovers lists live %s", l)
		}
	}
	removed, err := RemoveLeftovers()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(removed, "netns "+name) {
		t.Errorf("RemoveLeftovers() = %v, want it to remove %s", removed, name)
	}
	if _, err := os.Lstat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists: %v", stale, err)
	}
}

// TestManyPairs makes pairs concurrently, as parallel tests do, which also
// exercises the retry on a clash of random name tags.
func TestManyPairs(t *testing.T) {
	requireRoot(t)
	const n = 24
	type made struct {
		p   *Pair
		err error
	}
	ch := make(chan made, n)
	for range n {
		go func() {
			p, err := NewPairE(PairConfig{Queues: 1})
			ch <- made{p, err}
		}()
	}
	seen := map[string]bool{}
	for range n {
		m := <-ch
		if m.err != nil {
			t.Error(m.err)
			continue
		}
		if seen[m.p.AName] || seen[m.p.BName] {
			t.Errorf("duplicate names %s %s", m.p.AName, m.p.BName)
		}
		seen[m.p.AName], seen[m.p.BName] = true, true
		if err := m.p.Close(); err != nil {
			t.Error(err)
		}
	}
}

const killEnv = "PTB_TESTNET_KILL_CHILD"

// TestRemoveLeftoversAfterKill has a child process make a pair and die by
// SIGKILL, so no Close runs; Leftovers must then list the child's
// namespaces and RemoveLeftovers must clear them.
func TestRemoveLeftoversAfterKill(t *testing.T) {
	if os.Getenv(killEnv) == "1" {
		p, err := NewPairE(PairConfig{})
		if err != nil {
			fmt.Println("CHILD-ERROR", err)
			os.Exit(3)
		}
		fmt.Printf("CHILD-NAMES %s %s\n", p.A.Name, p.B.Name)
		select {} // wait for SIGKILL
	}
	requireRoot(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestRemoveLeftoversAfterKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), killEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	cmd.Process.Kill()
	cmd.Wait()
	f := strings.Fields(line)
	if err != nil || len(f) != 3 || f[0] != "CHILD-NAMES" {
		t.Fatalf("child said %q (%v)", line, err)
	}
	names := f[1:]
	left, err := Leftovers()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if !slices.Contains(left, "netns "+n) {
			t.Errorf("Leftovers() = %v, want netns %s of the killed child", left, n)
		}
	}
	removed, err := RemoveLeftovers()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("removed %v", removed)
	assertGone(t, names...)
}

func TestOwner(t *testing.T) {
	for name, want := range map[string]int{"ptb-x1a-123": 123, "ptb-a-b-7": 7, "ptb-x": 0, "eth0": 0, "ptb-x-0": 0, "ptb--12": 12} {
		got, ok := owner(name)
		if got != want || ok != (want > 0) {
			t.Errorf("owner(%q) = %d, %v; want %d", name, got, ok, want)
		}
	}
}

// Named ends: both may carry the same name, one per namespace.
func TestPairIfNames(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("iproute2 `ip` not installed")
	}
	p := NewPair(t, PairConfig{IfA: "ptbv0", IfB: "ptbv0"})
	if p.AName != "ptbv0" || p.BName != "ptbv0" {
		t.Fatalf("names %q %q", p.AName, p.BName)
	}
	for _, ns := range []string{p.A.Name, p.B.Name} {
		if out, err := exec.Command("ip", "-n", ns, "link", "show", "ptbv0", "up").CombinedOutput(); err != nil || !strings.Contains(string(out), "ptbv0@") {
			t.Errorf("ip -n %s link show ptbv0 up: %v\n%s", ns, err, out)
		}
	}
}
