//go:build linux

package testnet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"

	"github.com/ptbhyve/ptbhyve/internal/rtnl"
	"golang.org/x/sys/unix"
)

// netnsDir is where iproute2 looks for named namespaces.
const netnsDir = "/run/netns"

// prefix starts the name of everything this package creates.
const prefix = "ptb-"

// NS is a network namespace owned by this process. It lives while this
// process holds its descriptor or the /run/netns mount exists; Close ends
// both, and the namespace and its links vanish once nothing else (a socket
// created inside it, a process in it) still refers to it.
type NS struct {
	// Name is the full name, "ptb-" + name + "-" + PID, as `ip netns` shows it.
	Name string

	mu     sync.Mutex
	fd     int // -1 once closed
	mount  string
	closed bool
}

// NewNS creates a network namespace named "ptb-" + name + "-" + PID and
// bind-mounts it at /run/netns so `ip netns` and humans can see it. Its
// loopback interface is up. Needs CAP_SYS_ADMIN. name must make the full
// name unique among this process's namespaces; a clash fails with an error
// that unwraps to unix.EEXIST.
func NewNS(name string) (*NS, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") || strings.TrimSpace(name) != name {
		return nil, fmt.Errorf("testnet: namespace name %q: use a short non-empty name without '/' or spaces", name)
	}
	full := prefix + name + "-" + strconv.Itoa(os.Getpid())
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return nil, fmt.Errorf("testnet: create namespace %s: make %s for the bind mount: %w", full, netnsDir, err)
	}
	mount := filepath.Join(netnsDir, full)

	type result struct {
		fd  int
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread's namespace changes and is never restored: the
		// goroutine exits still locked, so the runtime kills the thread
		// instead of handing it, in the wrong namespace, to other
		// goroutines (research brief §4.2).
		runtime.LockOSThread()
		fd, err := unshareOnThisThread(full, mount)
		ch <- result{fd, err}
	}()
	r := <-ch
	if r.err != nil {
		return nil, r.err
	}
	ns := &NS{Name: full, fd: r.fd, mount: mount}
	if err := ns.loopbackUp(); err != nil {
		return nil, errors.Join(err, ns.Close())
	}
	return ns, nil
}

// unshareOnThisThread moves the calling (locked) thread into a new network
// namespace, bind-mounts it at mount and returns a descriptor for it.
func unshareOnThisThread(full, mount string) (int, error) {
	// The mount point is created first with O_EXCL: it is what makes the
	// name unique, also against other processes and `ip netns add`.
	mp, err := unix.Open(mount, unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o444)
	if err != nil {
		if errors.Is(err, unix.EEXIST) {
			return -1, fmt.Errorf("testnet: create namespace %s: %s already exists: pick another name, or remove a stale one with `ip netns del %s`: %w", full, mount, full, err)
		}
		return -1, fmt.Errorf("testnet: create namespace %s: create mount point %s: %w", full, mount, err)
	}
	unix.Close(mp)
	undo := func() { _ = os.Remove(mount) }

	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		undo()
		switch {
		case errors.Is(err, unix.EPERM):
			return -1, &unavailableError{fmt.Sprintf("creating network namespace %s needs CAP_SYS_ADMIN (run as root)", full), err}
		case errors.Is(err, unix.EINVAL):
			return -1, &unavailableError{"the kernel has no network namespaces (CONFIG_NET_NS)", err}
		}
		return -1, fmt.Errorf("testnet: create namespace %s: unshare(CLONE_NEWNET): %w", full, err)
	}
	fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		undo()
		return -1, fmt.Errorf("testnet: create namespace %s: open /proc/thread-self/ns/net (is /proc mounted?): %w", full, err)
	}
	if err := unix.Mount("/proc/thread-self/ns/net", mount, "none", unix.MS_BIND, ""); err != nil {
		unix.Close(fd)
		undo()
		return -1, fmt.Errorf("testnet: create namespace %s: bind-mount it at %s: %w", full, mount, err)
	}
	return fd, nil
}

// loopbackUp brings lo up, so sockets bound to local addresses inside the
// namespace work as they do on a normal host.
func (n *NS) loopbackUp() error {
	c, err := rtnl.DialNamed(n.fd, n.Name)
	if err != nil {
		return fmt.Errorf("testnet: namespace %s: %w", n.Name, err)
	}
	defer c.Close()
	lo, err := c.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("testnet: namespace %s: %w", n.Name, err)
	}
	if err := c.SetUp(lo.Index); err != nil {
		return fmt.Errorf("testnet: namespace %s: bring loopback up: %w", n.Name, err)
	}
	return nil
}

// Fd is a descriptor for the namespace, for rtnl.Dial, setns or
// VethConfig.PeerNSFd. It is -1 after Close. Do not close it.
func (n *NS) Fd() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fd
}

// Do runs f on a fresh OS thread that has entered the namespace, and
// returns f's error. Sockets f creates (AF_XDP ones must be created in their
// device's namespace, research brief §4.2) stay in the namespace wherever
// they are used afterwards; goroutines f starts do not run in it. The thread
// is never returned to the scheduler: it dies with f's goroutine. A panic in
// f is re-raised in the caller, so test cleanups still run. f must not call
// t.FailNow or t.Fatal (they stop the wrong goroutine); Do reports it if it
// does.
func (n *NS) Do(f func() error) error {
	fd := n.Fd()
	if fd < 0 {
		return fmt.Errorf("testnet: Do in namespace %s: the namespace is closed", n.Name)
	}
	type result struct {
		err      error
		returned bool
		panicked bool
		value    any
		stack    []byte
	}
	ch := make(chan result, 1)
	go func() {
		// Locked and never unlocked: the thread leaves its namespace only
		// by dying when this goroutine returns.
		runtime.LockOSThread()
		var r result
		defer func() {
			if v := recover(); v != nil {
				r.panicked, r.value, r.stack = true, v, debug.Stack()
			}
			ch <- r
		}()
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			r.err = fmt.Errorf("testnet: Do in namespace %s: setns: %w", n.Name, err)
			r.returned = true
			return
		}
		r.err = f()
		r.returned = true
	}()
	r := <-ch
	switch {
	case r.panicked:
		panic(fmt.Sprintf("%v\n\npanic inside testnet NS(%s).Do:\n%s", r.value, n.Name, r.stack))
	case !r.returned:
		return fmt.Errorf("testnet: Do in namespace %s: f called runtime.Goexit (t.FailNow or t.Fatal inside Do?): return an error instead and fail in the test goroutine", n.Name)
	}
	return r.err
}

// Close removes the /run/netns entry and closes the descriptor. The
// namespace, and every interface in it, is destroyed once nothing else
// refers to it. Calling Close again does nothing.
func (n *NS) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	n.closed = true
	var errs []error
	if n.mount != "" {
		errs = append(errs, removeMount(n.Name, n.mount))
	}
	if n.fd >= 0 {
		if err := unix.Close(n.fd); err != nil {
			errs = append(errs, fmt.Errorf("testnet: close namespace %s descriptor: %w", n.Name, err))
		}
		n.fd = -1
	}
	return errors.Join(errs...)
}

// removeMount undoes the bind mount at /run/netns/NAME and removes the
// mount point, as `ip netns del` does. MNT_DETACH lets it succeed while a
// shell still sits in the namespace through `ip netns exec`.
func removeMount(name, mount string) error {
	var errs []error
	if err := unix.Unmount(mount, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		// EINVAL: not a mount point (a stale empty file); removing it is
		// all that is left to do.
		errs = append(errs, fmt.Errorf("testnet: namespace %s: unmount %s: %w", name, mount, err))
	}
	if err := os.Remove(mount); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("testnet: namespace %s: remove %s (try `ip netns del %s`): %w", name, mount, name, err))
	}
	return errors.Join(errs...)
}

// unavailableError marks failures that mean "this host cannot run these
// tests" (no privilege, no netns or veth support) rather than a bug, so
// NewPair skips instead of failing.
type unavailableError struct {
	reason string
	err    error
}

func (e *unavailableError) Error() string { return "testnet: " + e.reason + ": " + e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }
