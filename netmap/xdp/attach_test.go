//go:build linux

package xdp

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ptbhyve/ptbhyve/internal/rtnl"
	"github.com/ptbhyve/ptbhyve/internal/testnet"
)

// newPair is a veth pair A-B, each end in its own namespace, that the
// testnet cleanup deletes with its namespaces.
func newPair(t *testing.T, queues, mtu uint32) *testnet.Pair {
	t.Helper()
	requireBPF(t)
	return testnet.NewPair(t, testnet.PairConfig{Queues: queues, MTU: mtu})
}

// xdpState is what rtnetlink says is attached to B: IFLA_XDP_ATTACHED
// and the program id.
func xdpState(t *testing.T, pr *testnet.Pair) (uint8, uint32) {
	t.Helper()
	c, err := rtnl.Dial(pr.B.Fd())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l, err := c.LinkByName(pr.BName)
	if err != nil {
		t.Fatal(err)
	}
	return l.XDPAttached, l.XDPProgID
}

func wantState(t *testing.T, pr *testnet.Pair, attached uint8, id uint32, when string) {
	t.Helper()
	if gotA, gotID := xdpState(t, pr); gotA != attached || gotID != id {
		t.Errorf("%s: %s has XDP attached mode %d program id %d; want mode %d id %d", when, pr.BName, gotA, gotID, attached, id)
	}
}

// attachIn attaches p to B from a thread inside B's namespace, and closes
// the attachment at the end of the test.
func attachIn(t *testing.T, pr *testnet.Pair, p *Program, want Mode, useLink bool) (*Attachment, error) {
	t.Helper()
	var a *Attachment
	err := pr.B.Do(func() error {
		var err error
		a, err = attach(p, pr.BIndex, want, useLink)
		return err
	})
	if a != nil {
		t.Cleanup(func() { a.Close() })
	}
	return a, err
}

func how(useLink bool) string {
	if useLink {
		return "link"
	}
	return "netlink"
}

// TestAttachNative attaches in native mode by each method, sees it with
// rtnetlink, and detaches with Close, called from the test's goroutine
// outside B's namespace.
func TestAttachNative(t *testing.T) {
	for _, useLink := range []bool{true, false} {
		t.Run(how(useLink), func(t *testing.T) {
			pr := newPair(t, 2, 1500)
			p := loadProgram(t, 2)
			a, err := attachIn(t, pr, p, ModeNative, useLink)
			if err != nil {
				t.Fatal(err)
			}
			if a.Mode != ModeNative || a.ByLink != useLink || a.NativeRefused != nil || a.Note() != "" ||
				a.Ifindex != pr.BIndex || a.Iface != pr.BName {
				t.Errorf("attachment %+v", a)
			}
			t.Log(a)
			wantState(t, pr, rtnl.XDPAttachedDrv, p.ID(), "attached")
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			wantState(t, pr, rtnl.XDPAttachedNone, 0, "after Close")
			if err := a.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

// TestAttachGeneric: ModeGeneric attaches in generic (SKB) mode.
func TestAttachGeneric(t *testing.T) {
	for _, useLink := range []bool{true, false} {
		t.Run(how(useLink), func(t *testing.T) {
			pr := newPair(t, 1, 1500)
			p := loadProgram(t, 1)
			a, err := attachIn(t, pr, p, ModeGeneric, useLink)
			if err != nil {
				t.Fatal(err)
			}
			if a.Mode != ModeGeneric || a.ByLink != useLink || a.NativeRefused != nil {
				t.Errorf("attachment %+v", a)
			}
			wantState(t, pr, rtnl.XDPAttachedSKB, p.ID(), "attached")
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			wantState(t, pr, rtnl.XDPAttachedNone, 0, "after Close")
		})
	}
}

// TestAttachMTUFallback: with the peer at MTU 9000 veth refuses native
// XDP with ERANGE; Attach settles for generic mode and says why.
func TestAttachMTUFallback(t *testing.T) {
	for _, useLink := range []bool{true, false} {
		t.Run(how(useLink), func(t *testing.T) {
			pr := newPair(t, 1, 9000)
			p := loadProgram(t, 1)
			a, err := attachIn(t, pr, p, ModeNative, useLink)
			if err != nil {
				t.Fatal(err)
			}
			if a.Mode != ModeGeneric || a.ByLink != useLink {
				t.Errorf("attachment %+v, want generic mode", a)
			}
			if a.NativeRefused == nil || !errors.Is(a.NativeRefused, unix.ERANGE) {
				t.Fatalf("NativeRefused = %v, want ERANGE", a.NativeRefused)
			}
			if got, want := a.Note(), "native XDP refused: peer MTU too large (ERANGE); using generic mode"; got != want {
				t.Errorf("Note() = %q, want %q", got, want)
			}
			t.Logf("%v\n\trefusal: %v", a, a.NativeRefused)
			wantState(t, pr, rtnl.XDPAttachedSKB, p.ID(), "attached")
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			wantState(t, pr, rtnl.XDPAttachedNone, 0, "after Close")

			// Native only is not an option Attach offers, but the refusal
			// it records is the kernel's answer to native mode alone.
			err = pr.B.Do(func() error {
				b, perr := attachMode(p, pr.BIndex, pr.BName, ModeNative, useLink)
				if perr != nil {
					return perr
				}
				b.Close()
				return nil
			})
			if !errors.Is(err, unix.ERANGE) || !strings.Contains(err.Error(), "peer MTU too large") {
				t.Errorf("native attach with the peer at MTU 9000: %v, want ERANGE saying the peer MTU is too large", err)
			}
		})
	}
}

// TestAttachNoNativeDriver: loopback has no native XDP (EOPNOTSUPP), so
// Attach asked for native mode settles for generic mode and says why.
func TestAttachNoNativeDriver(t *testing.T) {
	for _, useLink := range []bool{true, false} {
		t.Run(how(useLink), func(t *testing.T) {
			pr := newPair(t, 1, 1500)
			p := loadProgram(t, 1)
			var a *Attachment
			err := pr.B.Do(func() (err error) {
				a, err = attach(p, 1, ModeNative, useLink) // lo
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if a.Mode != ModeGeneric || a.Iface != "lo" || !errors.Is(a.NativeRefused, unix.EOPNOTSUPP) {
				t.Errorf("attachment %v, refusal %v; want generic mode on lo after EOPNOTSUPP", a, a.NativeRefused)
			}
			if got, want := a.Note(), "native XDP refused: driver has no native XDP (EOPNOTSUPP); using generic mode"; got != want {
				t.Errorf("Note() = %q, want %q", got, want)
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestAttachQueueMismatch: a veth end with fewer RX queues than its peer
// has TX queues refuses native XDP (ENOSPC on 6.x, "XDP expects number of
// rx queues not less than peer tx queues"); Attach settles for generic.
func TestAttachQueueMismatch(t *testing.T) {
	for _, useLink := range []bool{true, false} {
		t.Run(how(useLink), func(t *testing.T) {
			pr := newPair(t, 1, 1500)
			p := loadProgram(t, 1)
			c, err := rtnl.Dial(pr.B.Fd())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.CreateVeth(rtnl.VethConfig{Name: "qm0", PeerName: "qm1", PeerNSFd: -1, TxQueues: 2, RxQueues: 1}); err != nil {
				t.Fatal(err)
			}
			l, err := c.LinkByName("qm0")
			if err != nil {
				t.Fatal(err)
			}
			var a *Attachment
			err = pr.B.Do(func() (err error) {
				a, err = attach(p, l.Index, ModeNative, useLink)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			t.Logf("%v\n\trefusal: %v", a, a.NativeRefused)
			if a.Mode != ModeGeneric || a.ByLink != useLink || a.NativeRefused == nil {
				t.Fatalf("attachment %v; want generic after a native refusal", a)
			}
			if !useLink && !strings.Contains(a.NativeRefused.Kernel, "queues") {
				t.Errorf("the refusal lacks the kernel's explanation from netlink: %v", a.NativeRefused)
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			if l, err := c.LinkByName("qm0"); err != nil || l.XDPProgID != 0 {
				t.Errorf("after Close: %+v, %v", l, err)
			}
		})
	}
}

// TestAttachLinksUnsupported plays a kernel before 5.9, where
// BPF_LINK_CREATE answers EINVAL: Attach falls back to netlink, in native
// mode when it works and in generic mode when veth refuses native.
func TestAttachLinksUnsupported(t *testing.T) {
	linkCreateHook = func(int, int, uint32, uint32) (int, unix.Errno) { return -1, unix.EINVAL }
	t.Cleanup(func() { linkCreateHook = linkCreate })
	for _, c := range []struct {
		mtu   uint32
		mode  Mode
		state uint8
	}{
		{1500, ModeNative, rtnl.XDPAttachedDrv},
		{9000, ModeGeneric, rtnl.XDPAttachedSKB},
	} {
		t.Run(fmt.Sprint("mtu", c.mtu), func(t *testing.T) {
			pr := newPair(t, 1, c.mtu)
			p := loadProgram(t, 1)
			a, err := attachIn(t, pr, p, ModeNative, true)
			if err != nil {
				t.Fatal(err)
			}
			if a.ByLink || a.Mode != c.mode {
				t.Errorf("attachment %v, want %v by netlink", a, c.mode)
			}
			wantState(t, pr, c.state, p.ID(), "attached")
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			wantState(t, pr, rtnl.XDPAttachedNone, 0, "after Close")
		})
	}
}

// TestAttachBusy: a second program on the same interface gets the clear
// busy error, whichever method attached the first and tries the second,
// and whether the first runs in the same mode or the other one.
func TestAttachBusy(t *testing.T) {
	for _, c := range []struct {
		firstLink, secondLink bool
		firstMode             Mode
	}{
		{true, true, ModeNative},
		{true, false, ModeNative},
		{false, true, ModeNative},
		{false, false, ModeNative},
		{true, true, ModeGeneric},
		{false, false, ModeGeneric},
	} {
		t.Run(fmt.Sprintf("%s-%v-then-%s", how(c.firstLink), c.firstMode, how(c.secondLink)), func(t *testing.T) {
			pr := newPair(t, 1, 1500)
			p := loadProgram(t, 1)
			p2 := loadProgram(t, 1)
			first, err := attachIn(t, pr, p, c.firstMode, c.firstLink)
			if err != nil {
				t.Fatal(err)
			}
			_, err = attachIn(t, pr, p2, ModeNative, c.secondLink)
			var pe *ProgError
			if !errors.As(err, &pe) || !(errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST)) {
				t.Fatalf("second attach: %v, want a *ProgError with EBUSY or EEXIST", err)
			}
			want := fmt.Sprintf("interface %s already has an XDP program: detach it (ip link set dev %s xdp off", pr.BName, pr.BName)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("second attach: %v\nwant it to say %q", err, want)
			}
			t.Log(err)
			state := uint8(rtnl.XDPAttachedDrv)
			if c.firstMode == ModeGeneric {
				state = rtnl.XDPAttachedSKB
			}
			wantState(t, pr, state, p.ID(), "after the refused second attach")
			if err := first.Close(); err != nil {
				t.Fatal(err)
			}
			wantState(t, pr, rtnl.XDPAttachedNone, 0, "after Close")
		})
	}
}

// TestAttachNetlinkCloseLeavesOthers: a netlink attachment's Close does not
// detach a program that replaced ours.
func TestAttachNetlinkCloseLeavesOthers(t *testing.T) {
	pr := newPair(t, 1, 1500)
	p := loadProgram(t, 1)
	p2 := loadProgram(t, 1)
	a, err := attachIn(t, pr, p, ModeNative, false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rtnl.Dial(pr.B.Fd())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Replace ours behind its back (no UPDATE_IF_NOEXIST).
	if err := c.SetXDP(pr.BIndex, p2.Fd(), rtnl.XDPFlagsDrvMode); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.SetXDP(pr.BIndex, -1, rtnl.XDPFlagsDrvMode) })
	if err := a.Close(); !errors.Is(err, unix.EBUSY) || !strings.Contains(err.Error(), "left it attached") {
		t.Errorf("Close with another program attached: %v, want EBUSY saying it left it attached", err)
	}
	wantState(t, pr, rtnl.XDPAttachedDrv, p2.ID(), "after Close")
	if err := c.SetXDP(pr.BIndex, -1, rtnl.XDPFlagsDrvMode); err != nil {
		t.Fatal(err)
	}
	wantState(t, pr, rtnl.XDPAttachedNone, 0, "after detaching the other")
}

// TestAttachLinkFdClose: closing a link's fd, with no detach call, detaches
// the program.
func TestAttachLinkFdClose(t *testing.T) {
	pr := newPair(t, 1, 1500)
	p := loadProgram(t, 1)
	a, err := attachIn(t, pr, p, ModeNative, true)
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, pr, rtnl.XDPAttachedDrv, p.ID(), "attached")
	a.mu.Lock()
	unix.Close(a.linkFd)
	a.linkFd = -1
	a.mu.Unlock()
	wantState(t, pr, rtnl.XDPAttachedNone, 0, "after closing the link fd")
}

// crashChildEnv makes TestAttachLinkCrashChild the child process of
// TestAttachLinkCrash.
const crashChildEnv = "PTBHYVE_XDP_CRASH_CHILD"

// TestAttachLinkCrashChild, in the child only, attaches by link in the
// namespace on fd 3, reports the program id, and waits to be killed.
func TestAttachLinkCrashChild(t *testing.T) {
	ifindex := os.Getenv(crashChildEnv)
	if ifindex == "" {
		t.Skip("the child process of TestAttachLinkCrash")
	}
	fail := func(err error) {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	runtime.LockOSThread()
	if err := unix.Setns(3, unix.CLONE_NEWNET); err != nil {
		fail(err)
	}
	idx, _ := strconv.Atoi(ifindex)
	p, err := LoadProgram(1)
	if err != nil {
		fail(err)
	}
	a, err := Attach(p, idx, ModeNative)
	if err != nil {
		fail(err)
	}
	if !a.ByLink {
		fail(fmt.Errorf("attached by netlink, not by link: %v", a))
	}
	fmt.Println("attached", p.ID())
	select {} // until SIGKILL
}

// TestAttachLinkCrash: a process that attached by link and dies without
// closing anything leaves nothing attached.
func TestAttachLinkCrash(t *testing.T) {
	pr := newPair(t, 1, 1500)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	d, err := unix.FcntlInt(uintptr(pr.B.Fd()), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ns := os.NewFile(uintptr(d), "netns")
	defer ns.Close()
	cmd := exec.Command(exe, "-test.run=^TestAttachLinkCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+strconv.Itoa(pr.BIndex))
	cmd.ExtraFiles = []*os.File{ns}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("child: %q, %v", line, err)
	}
	var id uint32
	if _, err := fmt.Sscanf(line, "attached %d", &id); err != nil {
		t.Fatalf("child said %q", line)
	}
	wantState(t, pr, rtnl.XDPAttachedDrv, id, "child attached")
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	// The kernel releases the link when the dead process's files close;
	// give it a moment.
	deadline := time.Now().Add(5 * time.Second)
	for {
		a, got := xdpState(t, pr)
		if a == rtnl.XDPAttachedNone && got == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after the child died %s still has XDP mode %d program %d", pr.BName, a, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAttachArgs: errors before any attach is tried.
func TestAttachArgs(t *testing.T) {
	p := loadProgram(t, 1)
	if _, err := Attach(p, 1<<30, ModeNative); !errors.Is(err, unix.ENODEV) || !strings.Contains(err.Error(), "namespace") {
		t.Errorf("Attach to a missing ifindex: %v, want ENODEV pointing at the namespace", err)
	}
	if _, err := Attach(p, 1, Mode(7)); !errors.Is(err, unix.EINVAL) {
		t.Errorf("Attach with Mode(7): %v, want EINVAL", err)
	}
	if _, err := Attach(nil, 1, ModeNative); !errors.Is(err, unix.EBADF) {
		t.Errorf("Attach(nil): %v, want EBADF", err)
	}
	q := loadProgram(t, 1)
	q.Close()
	if _, err := Attach(q, 1, ModeNative); !errors.Is(err, unix.EBADF) || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Attach of a closed program: %v, want EBADF", err)
	}
	if ModeNative.String() != "native" || ModeGeneric.String() != "generic" || Mode(7).String() != "Mode(7)" {
		t.Error("Mode.String")
	}
}
