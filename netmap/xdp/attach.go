//go:build linux

package xdp

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ptbhyve/ptbhyve/internal/rtnl"
)

// Mode is an XDP attach mode.
type Mode int

const (
	// ModeNative runs the program in the driver, before any skb exists
	// (XDP_FLAGS_DRV_MODE). On veth it is the only mode that keeps the
	// peer's TX queue as the RX queue, so multi-queue ports need it.
	// Attach asked for it falls back to generic mode.
	ModeNative Mode = iota
	// ModeGeneric runs the program on the skb, in the stack, on any
	// device (XDP_FLAGS_SKB_MODE). On veth every frame then arrives on
	// queue 0.
	ModeGeneric
)

func (m Mode) String() string {
	switch m {
	case ModeNative:
		return "native"
	case ModeGeneric:
		return "generic"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

func (m Mode) flags() uint32 {
	if m == ModeGeneric {
		return unix.XDP_FLAGS_SKB_MODE
	}
	return unix.XDP_FLAGS_DRV_MODE
}

// Attachment is a Program attached to an interface. A netlink attachment
// holds a descriptor of the interface's network namespace (so Close works
// from any thread), which keeps the namespace alive until Close.
type Attachment struct {
	Mode    Mode   // the mode the program runs in
	ByLink  bool   // attached by a bpf_link; else by netlink (IFLA_XDP)
	Ifindex int    // the interface, in the namespace Attach ran in
	Iface   string // its name when attached
	// NativeRefused is why native mode was refused, when Attach was asked
	// for native and settled for generic; nil otherwise. Note words it
	// for a log line.
	NativeRefused *ProgError

	progID uint32
	mu     sync.Mutex
	linkFd int // the bpf_link; -1 if none or closed
	nsFd   int // netlink: the interface's network namespace; -1 if none
	closed bool
}

// Note is a line for the log when Attach had to settle for generic mode,
// such as "native XDP refused: peer MTU too large (ERANGE); using generic
// mode"; "" otherwise.
func (a *Attachment) Note() string {
	if a.NativeRefused == nil {
		return ""
	}
	return fmt.Sprintf("native XDP refused: %s (%s); using generic mode",
		shortReason(a.NativeRefused.Errno), progErrnoName(a.NativeRefused.Errno))
}

func (a *Attachment) String() string {
	by := "netlink"
	if a.ByLink {
		by = "bpf_link"
	}
	s := fmt.Sprintf("%s XDP on %s (ifindex %d) by %s", a.Mode, a.Iface, a.Ifindex, by)
	if n := a.Note(); n != "" {
		s += "; " + n
	}
	return s
}

// Attach attaches p to the interface ifindex of the calling thread's
// network namespace: call it on a thread inside the interface's namespace
// (runtime.LockOSThread then setns, for instance).
//
// want is ModeNative to try native mode and then generic mode, or
// ModeGeneric for generic mode only. When native mode is refused for a
// reason generic mode does not share (on veth: the peer's MTU is over
// about 3.5 KB, ERANGE, or this end has fewer RX queues than the peer has
// TX queues, ENOSPC; a driver without native XDP, such as lo's:
// EOPNOTSUPP), the attachment records the refusal in NativeRefused.
//
// Attach uses a bpf_link (BPF_LINK_CREATE, Linux 5.9+), which the kernel
// detaches by itself when the last descriptor of the link closes, so a
// crashed process leaves nothing behind. Where links are unsupported it
// falls back to netlink IFLA_XDP with XDP_FLAGS_UPDATE_IF_NOEXIST; such an
// attachment outlives the process unless Close detaches it.
//
// An interface that already has an XDP program (in any mode, by anyone)
// fails with EBUSY or EEXIST: Attach never replaces a program.
func Attach(p *Program, ifindex int, want Mode) (*Attachment, error) {
	return attach(p, ifindex, want, true)
}

// attach is Attach; useLink false goes straight to netlink (for tests of
// the fallback path on kernels that have links).
func attach(p *Program, ifindex int, want Mode, useLink bool) (*Attachment, error) {
	if want != ModeNative && want != ModeGeneric {
		return nil, &ProgError{Op: "attach", Errno: unix.EINVAL, Reason: fmt.Sprintf("unknown mode %v: want ModeNative or ModeGeneric", want)}
	}
	if p == nil {
		return nil, &ProgError{Op: "attach", Errno: unix.EBADF, Reason: "no program"}
	}
	// Hold the program open (its fd number cannot be reused) throughout.
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.fd < 0 {
		return nil, &ProgError{Op: "attach", Errno: unix.EBADF, Reason: "the program is closed"}
	}
	name, e := ifaceName(ifindex)
	switch e {
	case 0:
	case unix.ENODEV:
		return nil, &ProgError{Op: "attach", Iface: fmt.Sprintf("ifindex %d", ifindex), Errno: unix.ENODEV,
			Reason: "no interface with this index in the calling thread's network namespace: attach from a thread inside the interface's namespace"}
	default:
		name = fmt.Sprintf("ifindex %d", ifindex) // the kernel will say whether it exists
	}
	modes := []Mode{want}
	if want == ModeNative {
		modes = append(modes, ModeGeneric)
	}
	var refused *ProgError
	for _, m := range modes {
		a, err := attachMode(p, ifindex, name, m, useLink)
		if err == nil {
			a.NativeRefused = refused
			return a, nil
		}
		if m == ModeNative && nativeOnly(err.Errno) {
			refused = err
			continue
		}
		if refused != nil {
			err.Reason += fmt.Sprintf("; native mode was refused before: %s (%s)", refused.Reason, progErrnoName(refused.Errno))
		}
		return nil, err
	}
	panic("unreachable")
}

// nativeOnly reports whether a native attach failing with e may still
// work in generic mode: the errors of a busy interface, a missing one,
// or missing privileges do not qualify.
func nativeOnly(e unix.Errno) bool {
	switch e {
	case unix.EBUSY, unix.EEXIST, unix.ENODEV, unix.EPERM, unix.EACCES, unix.EBADF, unix.ENOMEM:
		return false
	}
	return true
}

func attachMode(p *Program, ifindex int, name string, m Mode, useLink bool) (*Attachment, *ProgError) {
	a := &Attachment{Mode: m, Ifindex: ifindex, Iface: name, progID: p.id, linkFd: -1, nsFd: -1}
	if useLink {
		fd, e := linkCreateHook(p.fd, ifindex, unix.BPF_XDP, m.flags())
		if e == 0 {
			a.ByLink, a.linkFd = true, fd
			return a, nil
		}
		if e != unix.EINVAL {
			return nil, attachError("attach", name, m, e, "")
		}
		// EINVAL: before 5.9 the kernel has no XDP links (an unknown
		// command, or attach type); on newer kernels a driver may also
		// refuse a mode with it. Netlink tells the two apart: it works
		// in the first case and gives the driver's reason in the second.
	}
	ns, err := threadNetns()
	if err != nil {
		return nil, &ProgError{Op: "attach", Iface: name, Mode: m.String(), Errno: errnoOf(err),
			Reason: fmt.Sprintf("cannot open the thread's network namespace for netlink: %v", err)}
	}
	c, err := rtnl.Dial(ns)
	if err != nil {
		unix.Close(ns)
		return nil, &ProgError{Op: "attach", Iface: name, Mode: m.String(), Errno: errnoOf(err),
			Reason: fmt.Sprintf("cannot open a netlink route socket: %v", err)}
	}
	defer c.Close()
	if err := c.SetXDP(ifindex, p.fd, unix.XDP_FLAGS_UPDATE_IF_NOEXIST|m.flags()); err != nil {
		unix.Close(ns)
		return nil, attachError("attach", name, m, errnoOf(err), kernelMessage(err))
	}
	a.nsFd = ns
	return a, nil
}

// Close detaches the program. A link attachment detaches the link
// (BPF_LINK_DETACH) and closes it; a netlink attachment removes the
// program with IFLA_XDP fd -1, but only if the interface still runs our
// program (it reports an error, and leaves it, if another program took
// its place). A deleted interface or namespace is not an error. Close may
// be called from any thread, and more than once.
//
// The netlink check and the detach are two requests, so a program swapped
// in between them would be detached; XDP_FLAGS_REPLACE with
// IFLA_XDP_EXPECTED_FD (5.7+) would close that window, but rtnl.SetXDP
// does not send it.
func (a *Attachment) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	if a.ByLink {
		if a.linkFd < 0 {
			return nil
		}
		// Detach first: closing our fd detaches only when it is the last
		// reference, and a concurrent fork may briefly hold another.
		linkDetach(a.linkFd)
		err := unix.Close(a.linkFd)
		a.linkFd = -1
		if err != nil {
			return &ProgError{Op: "detach", Iface: a.Iface, Mode: a.Mode.String(), Errno: errnoOf(err), Reason: "closing the bpf_link failed"}
		}
		return nil
	}
	defer func() {
		unix.Close(a.nsFd)
		a.nsFd = -1
	}()
	return a.detachNetlink()
}

func (a *Attachment) detachNetlink() error {
	c, err := rtnl.Dial(a.nsFd)
	if err != nil {
		return &ProgError{Op: "detach", Iface: a.Iface, Mode: a.Mode.String(), Errno: errnoOf(err),
			Reason: fmt.Sprintf("cannot open a netlink route socket in the interface's namespace: %v", err)}
	}
	defer c.Close()
	l, err := c.LinkByIndex(a.Ifindex)
	switch {
	case rtnl.IsNotExist(err):
		return nil // the interface is gone, and the program with it
	case err != nil:
		return &ProgError{Op: "detach", Iface: a.Iface, Mode: a.Mode.String(), Errno: errnoOf(err),
			Reason: fmt.Sprintf("cannot read the interface's XDP state: %v", err)}
	case l.XDPProgID == 0:
		return nil // already detached
	case l.XDPProgID != a.progID:
		return &ProgError{Op: "detach", Iface: a.Iface, Mode: a.Mode.String(), Errno: unix.EBUSY,
			Reason: fmt.Sprintf("the interface now runs XDP program id %d, not ours (id %d): left it attached", l.XDPProgID, a.progID)}
	}
	if err := c.SetXDP(a.Ifindex, -1, a.Mode.flags()); err != nil && !errors.Is(err, unix.ENODEV) {
		return attachError("detach", a.Iface, a.Mode, errnoOf(err), kernelMessage(err))
	}
	return nil
}

// linkCreateHook is linkCreate; tests replace it to play a kernel
// without XDP links.
var linkCreateHook = linkCreate

// attachError explains a failed attach or detach.
func attachError(op, name string, m Mode, e unix.Errno, kernel string) *ProgError {
	err := &ProgError{Op: op, Iface: name, Mode: m.String(), Errno: e, Kernel: kernel}
	switch e {
	case unix.EBUSY, unix.EEXIST:
		err.Reason = fmt.Sprintf("interface %s already has an XDP program: detach it (ip link set dev %s xdp off, or xdpgeneric off for a generic-mode one) or use another interface; a program attached by a bpf_link (bpftool link list) goes away only when its owner closes the link", name, name)
	case unix.ERANGE:
		err.Reason = "peer MTU too large for native XDP on veth (at most about 3.5 KB with 4 KB pages): set the peer's MTU to 1500 or use generic mode"
	case unix.EOPNOTSUPP:
		err.Reason = fmt.Sprintf("the driver of %s has no %s XDP support: use generic mode", name, m)
	case unix.ENOTCONN:
		err.Reason = "the veth has no peer: XDP on a veth needs both ends"
	case unix.ENOSPC:
		err.Reason = fmt.Sprintf("%s has fewer RX queues than its peer has TX queues, which native XDP on veth refuses: give both ends equal queue counts", name)
	case unix.EINVAL:
		err.Reason = fmt.Sprintf("the driver of %s refused %s XDP", name, m)
	case unix.ENODEV:
		err.Reason = "no such interface in this network namespace: attach from a thread inside the interface's namespace"
	case unix.EPERM, unix.EACCES:
		err.Reason = "attaching XDP programs needs CAP_NET_ADMIN and CAP_BPF (run as root)"
	default:
		err.Reason = fmt.Sprintf("the kernel refused to %s the program", op)
	}
	return err
}

// shortReason names a native-mode refusal for Note.
func shortReason(e unix.Errno) string {
	switch e {
	case unix.ERANGE:
		return "peer MTU too large"
	case unix.EOPNOTSUPP:
		return "driver has no native XDP"
	case unix.ENOTCONN:
		return "veth has no peer"
	case unix.ENOSPC:
		return "fewer RX queues than the peer's TX queues"
	}
	return "driver refused it"
}

// errnoOf digs the errno out of err (EIO if there is none).
func errnoOf(err error) unix.Errno {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return unix.EIO
}

// kernelMessage is the kernel's extended-ack text in an rtnl error, which
// rtnl puts in the message as "(kernel: TEXT)".
func kernelMessage(err error) string {
	const tag = "(kernel: "
	s := err.Error()
	i := strings.LastIndex(s, tag)
	if i < 0 {
		return ""
	}
	s = s[i+len(tag):]
	if j := strings.LastIndexByte(s, ')'); j >= 0 {
		s = s[:j]
	}
	return s
}

// threadNetns opens the calling thread's network namespace.
func threadNetns() (int, error) {
	return unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
}

// ifaceName is the name of interface ifindex in the calling thread's
// network namespace (SIOCGIFNAME).
func ifaceName(ifindex int) (string, unix.Errno) {
	if ifindex <= 0 {
		return "", unix.ENODEV
	}
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", errnoOf(err)
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return "", errnoOf(err)
	}
	ifr.SetUint32(uint32(ifindex))
	if err := unix.IoctlIfreq(s, unix.SIOCGIFNAME, ifr); err != nil {
		return "", errnoOf(err)
	}
	return ifr.Name(), 0
}
