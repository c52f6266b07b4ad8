//go:build linux

package rtnl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// vethInfoPeer is VETH_INFO_PEER from linux/veth.h, which x/sys lacks. Its
// payload is a whole ifinfomsg followed by the peer's IFLA_* attributes, not
// a nested attribute set (research brief §4.1).
const vethInfoPeer = 1

// XDP attach modes reported in IFLA_XDP_ATTACHED (enum in linux/if_link.h;
// x/sys lacks them).
const (
	XDPAttachedNone  = 0 // XDP_ATTACHED_NONE
	XDPAttachedDrv   = 1 // XDP_ATTACHED_DRV: native (driver) mode
	XDPAttachedSKB   = 2 // XDP_ATTACHED_SKB: generic mode
	XDPAttachedHW    = 3 // XDP_ATTACHED_HW: offloaded
	XDPAttachedMulti = 4 // XDP_ATTACHED_MULTI: programs in more than one mode
)

// XDP attach flags for SetXDP. They are x/sys's XDP_FLAGS_* values
// (linux/if_link.h), repeated here so callers need not import unix.
const (
	XDPFlagsUpdateIfNoExist = unix.XDP_FLAGS_UPDATE_IF_NOEXIST // fail with EBUSY if a program is attached
	XDPFlagsSKBMode         = unix.XDP_FLAGS_SKB_MODE          // generic mode: any device, veth traffic all on queue 0
	XDPFlagsDrvMode         = unix.XDP_FLAGS_DRV_MODE          // native mode: per-queue on veth, peer MTU limited
)

// Conn is a route netlink socket bound for its whole life to the network
// namespace it was dialled in. It is safe for concurrent use.
type Conn struct {
	nl *netlink.Conn
	ns string // how errors name the namespace
}

// Dial opens a route netlink socket in the network namespace nsFd refers
// to, or in the calling thread's namespace when nsFd is -1. Entering another
// namespace needs CAP_SYS_ADMIN.
func Dial(nsFd int) (*Conn, error) { return DialNamed(nsFd, "") }

// DialNamed is Dial with a namespace name (such as "ptb-x1a-1234") for error
// messages; an empty name describes the namespace by fd and inode.
func DialNamed(nsFd int, name string) (*Conn, error) {
	if nsFd < -1 {
		return nil, fmt.Errorf("rtnl: dial: bad namespace fd %d: pass an open /proc/PID/ns/net or /run/netns/NAME descriptor, or -1 for the current namespace", nsFd)
	}
	label := nsLabel(nsFd, name)
	cfg := &netlink.Config{}
	if nsFd >= 0 {
		fd := nsFd
		if fd == 0 {
			// netlink.Config treats NetNS 0 as "the current namespace", so
			// a namespace that landed on descriptor 0 is passed as a copy.
			d, err := unix.FcntlInt(0, unix.F_DUPFD_CLOEXEC, 3)
			if err != nil {
				return nil, fmt.Errorf("rtnl: dial %s: dup fd 0: %w", label, err)
			}
			defer unix.Close(d)
			fd = d
		}
		cfg.NetNS = fd
	}
	nl, err := netlink.Dial(unix.NETLINK_ROUTE, cfg)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("rtnl: open route socket in %s: entering a namespace needs CAP_SYS_ADMIN (run as root): %w", label, err)
		}
		return nil, fmt.Errorf("rtnl: open route socket in %s: %w", label, err)
	}
	// Extended acks carry the kernel's own explanation ("Peer MTU is too
	// large to set XDP"); old kernels refuse the option, which costs only
	// that text.
	_ = nl.SetOption(netlink.ExtendedAcknowledge, true)
	return &Conn{nl: nl, ns: label}, nil
}

func nsLabel(fd int, name string) string {
	switch {
	case name != "":
		return "namespace " + name
	case fd < 0:
		return "the current namespace"
	}
	if target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd)); err == nil {
		return fmt.Sprintf("namespace fd %d (%s)", fd, target)
	}
	return fmt.Sprintf("namespace fd %d", fd)
}

// Close closes the socket.
func (c *Conn) Close() error { return c.nl.Close() }

// Namespace is how this Conn's errors name its namespace.
func (c *Conn) Namespace() string { return c.ns }

// execute sends one request and waits for its answer or acknowledgement.
func (c *Conn) execute(typ netlink.HeaderType, flags netlink.HeaderFlags, body []byte) ([]netlink.Message, error) {
	return c.nl.Execute(netlink.Message{
		Header: netlink.Header{Type: typ, Flags: netlink.Request | flags},
		Data:   body,
	})
}

// change sends a request that only needs an acknowledgement.
func (c *Conn) change(typ netlink.HeaderType, flags netlink.HeaderFlags, body []byte) error {
	_, err := c.execute(typ, netlink.Acknowledge|flags, body)
	return err
}

// fail turns a netlink failure into an error that names the operation, the
// interface and the namespace, explains the common causes and keeps the
// errno reachable. hint, when it returns non-empty, overrides the generic
// explanation for an errno.
func (c *Conn) fail(op, link string, err error, hint func(unix.Errno) string) error {
	var kmsg string
	var oe *netlink.OpError
	if errors.As(err, &oe) {
		kmsg = oe.Message
	}
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return fmt.Errorf("rtnl: %s: %s in %s: %w", op, link, c.ns, err)
	}
	why := ""
	if hint != nil {
		why = hint(errno)
	}
	if why == "" {
		switch errno {
		case unix.ENODEV, unix.ENOENT:
			why = fmt.Sprintf("no such interface %s in %s", link, c.ns)
		case unix.EEXIST:
			why = fmt.Sprintf("%s already exists in %s: pick another name or delete the old one", link, c.ns)
		case unix.EPERM, unix.EACCES:
			why = fmt.Sprintf("%s in %s: needs CAP_NET_ADMIN (run as root)", link, c.ns)
		default:
			why = fmt.Sprintf("%s in %s", link, c.ns)
		}
	}
	if kmsg != "" {
		why += " (kernel: " + kmsg + ")"
	}
	return fmt.Errorf("rtnl: %s: %s: %w", op, why, errno)
}

// ifinfomsg encodes struct ifinfomsg (16 bytes, host order): family
// AF_UNSPEC, type 0, then index, flags and the mask of flags to change.
func ifinfomsg(index int, flags, change uint32) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(b[4:], uint32(int32(index)))
	binary.NativeEndian.PutUint32(b[8:], flags)
	binary.NativeEndian.PutUint32(b[12:], change)
	return b
}

func indexName(index int) string { return "interface index " + strconv.Itoa(index) }

func checkIndex(op string, index int) error {
	if index <= 0 || int64(index) > 1<<31-1 {
		return fmt.Errorf("rtnl: %s: bad interface index %d: take it from LinkByName", op, index)
	}
	return nil
}

// checkIfName rejects names the kernel would refuse with a bare EINVAL, so
// the error can say why.
func checkIfName(what, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("rtnl: %s name is empty: name every interface explicitly", what)
	case len(name) >= unix.IFNAMSIZ:
		return fmt.Errorf("rtnl: %s name %q is %d bytes, the kernel allows at most %d (IFNAMSIZ-1): choose a shorter one", what, name, len(name), unix.IFNAMSIZ-1)
	case name == "." || name == "..":
		return fmt.Errorf("rtnl: %s name %q is reserved: choose another", what, name)
	}
	for _, r := range name {
		if r == '/' || r == ':' || r <= ' ' || r == 0x7f {
			return fmt.Errorf("rtnl: %s name %q contains %q, which the kernel refuses in interface names", what, name, r)
		}
	}
	return nil
}
