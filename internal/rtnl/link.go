//go:build linux

package rtnl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// VethConfig describes a veth pair to create.
type VethConfig struct {
	// Name is the end created in the Conn's namespace; PeerName the other.
	Name, PeerName string
	// PeerNSFd puts the peer directly into another namespace; -1 keeps it
	// in the Conn's. Creating it there (rather than moving it later) means
	// no half-made pair is ever visible anywhere else.
	PeerNSFd int
	// TxQueues and RxQueues apply to both ends; 0 leaves the kernel's
	// default (one per possible CPU). The peer does not inherit the first
	// end's counts, so both are always sent (research brief §3.3).
	TxQueues, RxQueues uint32
	// MTU applies to both ends; 0 leaves the kernel's default (1500). Keep
	// it at most 1500 for AF_XDP with 2 KB chunks and native XDP (§3.5).
	MTU uint32
}

// CreateVeth creates a veth pair. Both ends start down; see SetUp.
func (c *Conn) CreateVeth(cfg VethConfig) error {
	if err := checkIfName("veth", cfg.Name); err != nil {
		return err
	}
	if err := checkIfName("veth peer", cfg.PeerName); err != nil {
		return err
	}
	if cfg.PeerNSFd < -1 {
		return fmt.Errorf("rtnl: create veth %s: bad peer namespace fd %d: use -1 for the same namespace", cfg.Name, cfg.PeerNSFd)
	}
	common := func(ae *netlink.AttributeEncoder) {
		if cfg.TxQueues > 0 {
			ae.Uint32(unix.IFLA_NUM_TX_QUEUES, cfg.TxQueues)
		}
		if cfg.RxQueues > 0 {
			ae.Uint32(unix.IFLA_NUM_RX_QUEUES, cfg.RxQueues)
		}
		if cfg.MTU > 0 {
			ae.Uint32(unix.IFLA_MTU, cfg.MTU)
		}
	}
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.IFLA_IFNAME, cfg.Name)
	common(ae)
	ae.Nested(unix.IFLA_LINKINFO, func(li *netlink.AttributeEncoder) error {
		li.String(unix.IFLA_INFO_KIND, "veth")
		li.Nested(unix.IFLA_INFO_DATA, func(data *netlink.AttributeEncoder) error {
			data.Do(vethInfoPeer, func() ([]byte, error) {
				pe := netlink.NewAttributeEncoder()
				pe.String(unix.IFLA_IFNAME, cfg.PeerName)
				if cfg.PeerNSFd >= 0 {
					pe.Uint32(unix.IFLA_NET_NS_FD, uint32(cfg.PeerNSFd))
				}
				common(pe)
				attrs, err := pe.Encode()
				if err != nil {
					return nil, err
				}
				return append(ifinfomsg(0, 0, 0), attrs...), nil
			})
			return nil
		})
		return nil
	})
	body, err := ae.Encode()
	if err != nil {
		return fmt.Errorf("rtnl: create veth %s: encode request: %w", cfg.Name, err)
	}
	err = c.change(unix.RTM_NEWLINK, netlink.Create|netlink.Excl, append(ifinfomsg(0, 0, 0), body...))
	if err == nil {
		return nil
	}
	pair := fmt.Sprintf("veth %s <-> %s", cfg.Name, cfg.PeerName)
	return c.fail("create veth", pair, err, func(e unix.Errno) string {
		switch e {
		case unix.EEXIST:
			return fmt.Sprintf("an interface named %s or %s already exists (in %s or the peer's namespace): pick other names or delete the old ones", cfg.Name, cfg.PeerName, c.ns)
		case unix.EOPNOTSUPP:
			return fmt.Sprintf("%s in %s: the kernel has no veth driver (CONFIG_VETH; try modprobe veth)", pair, c.ns)
		case unix.EINVAL:
			return fmt.Sprintf("%s in %s: the kernel refused the settings: queues must be 1..4096, MTU 68..65535, peer fd a network namespace", pair, c.ns)
		case unix.EBADF:
			return fmt.Sprintf("%s in %s: peer namespace fd %d is not open", pair, c.ns, cfg.PeerNSFd)
		}
		return ""
	})
}

// Link is what RTM_GETLINK reports about an interface, reduced to what the
// backend and its tests need.
type Link struct {
	Index int
	Name  string
	MTU   uint32
	// Flags are the IFF_* device flags (unix.IFF_UP, unix.IFF_LOWER_UP...).
	Flags                    uint32
	NumTxQueues, NumRxQueues uint32
	// XDPProgID is the attached XDP program's ID, 0 when none. With
	// programs in several modes (XDPAttachedMulti) it is the native one if
	// any, else the generic one.
	XDPProgID uint32
	// XDPAttached is the IFLA_XDP_ATTACHED mode: XDPAttachedNone, Drv,
	// SKB, HW or Multi.
	XDPAttached uint8
}

// LinkByName looks an interface up by name in the Conn's namespace.
func (c *Conn) LinkByName(name string) (Link, error) {
	if err := checkIfName("interface", name); err != nil {
		return Link{}, err
	}
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.IFLA_IFNAME, name)
	body, err := ae.Encode()
	if err != nil {
		return Link{}, fmt.Errorf("rtnl: get link %s: encode request: %w", name, err)
	}
	return c.getLink(name, append(ifinfomsg(0, 0, 0), body...))
}

// LinkByIndex looks an interface up by index in the Conn's namespace.
func (c *Conn) LinkByIndex(index int) (Link, error) {
	if err := checkIndex("get link", index); err != nil {
		return Link{}, err
	}
	return c.getLink(indexName(index), ifinfomsg(index, 0, 0))
}

func (c *Conn) getLink(what string, req []byte) (Link, error) {
	msgs, err := c.execute(unix.RTM_GETLINK, 0, req)
	if err != nil {
		return Link{}, c.fail("get link", what, err, nil)
	}
	for _, m := range msgs {
		if m.Header.Type == unix.RTM_NEWLINK {
			l, err := parseLink(m.Data)
			if err != nil {
				return Link{}, fmt.Errorf("rtnl: get link %s in %s: %w", what, c.ns, err)
			}
			return l, nil
		}
	}
	return Link{}, fmt.Errorf("rtnl: get link %s in %s: the kernel answered without a link message", what, c.ns)
}

// Links lists every interface in the Conn's namespace.
func (c *Conn) Links() ([]Link, error) {
	msgs, err := c.execute(unix.RTM_GETLINK, netlink.Dump, ifinfomsg(0, 0, 0))
	if err != nil {
		return nil, c.fail("list links", "interfaces", err, nil)
	}
	var links []Link
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWLINK {
			continue
		}
		l, err := parseLink(m.Data)
		if err != nil {
			return nil, fmt.Errorf("rtnl: list links in %s: %w", c.ns, err)
		}
		links = append(links, l)
	}
	return links, nil
}

func parseLink(b []byte) (Link, error) {
	if len(b) < unix.SizeofIfInfomsg {
		return Link{}, fmt.Errorf("short RTM_NEWLINK answer: %d bytes, need at least %d", len(b), unix.SizeofIfInfomsg)
	}
	l := Link{
		Index: int(int32(binary.NativeEndian.Uint32(b[4:]))),
		Flags: binary.NativeEndian.Uint32(b[8:]),
	}
	ad, err := netlink.NewAttributeDecoder(b[unix.SizeofIfInfomsg:])
	if err != nil {
		return Link{}, fmt.Errorf("decode link %d attributes: %w", l.Index, err)
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.IFLA_IFNAME:
			l.Name = ad.String()
		case unix.IFLA_MTU:
			l.MTU = ad.Uint32()
		case unix.IFLA_NUM_TX_QUEUES:
			l.NumTxQueues = ad.Uint32()
		case unix.IFLA_NUM_RX_QUEUES:
			l.NumRxQueues = ad.Uint32()
		case unix.IFLA_XDP:
			ad.Nested(func(x *netlink.AttributeDecoder) error {
				var drv, skb uint32
				for x.Next() {
					switch x.Type() {
					case unix.IFLA_XDP_ATTACHED:
						l.XDPAttached = x.Uint8()
					case unix.IFLA_XDP_PROG_ID:
						l.XDPProgID = x.Uint32()
					case unix.IFLA_XDP_DRV_PROG_ID:
						drv = x.Uint32()
					case unix.IFLA_XDP_SKB_PROG_ID:
						skb = x.Uint32()
					}
				}
				if l.XDPProgID == 0 {
					l.XDPProgID = drv
				}
				if l.XDPProgID == 0 {
					l.XDPProgID = skb
				}
				return nil
			})
		}
	}
	if err := ad.Err(); err != nil {
		return Link{}, fmt.Errorf("decode link %d attributes: %w", l.Index, err)
	}
	return l, nil
}

// SetUp sets IFF_UP. Both ends of a veth must be up: veth drops what it
// transmits while the peer is down (research brief §3.2).
func (c *Conn) SetUp(index int) error {
	if err := checkIndex("set up", index); err != nil {
		return err
	}
	if err := c.change(unix.RTM_NEWLINK, 0, ifinfomsg(index, unix.IFF_UP, unix.IFF_UP)); err != nil {
		return c.fail("set up", indexName(index), err, nil)
	}
	return nil
}

// SetMTU sets the interface MTU.
func (c *Conn) SetMTU(index int, mtu uint32) error {
	if err := checkIndex("set MTU", index); err != nil {
		return err
	}
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(unix.IFLA_MTU, mtu)
	body, err := ae.Encode()
	if err != nil {
		return fmt.Errorf("rtnl: set MTU: encode request: %w", err)
	}
	if err := c.change(unix.RTM_NEWLINK, 0, append(ifinfomsg(index, 0, 0), body...)); err != nil {
		return c.fail(fmt.Sprintf("set MTU %d", mtu), indexName(index), err, func(e unix.Errno) string {
			if e == unix.EINVAL {
				return fmt.Sprintf("MTU %d is out of range for %s in %s (veth allows 68..65535; native XDP on the peer caps it near 3.5 KB)", mtu, indexName(index), c.ns)
			}
			return ""
		})
	}
	return nil
}

// DeleteLink deletes an interface. Deleting either end of a veth deletes
// both.
func (c *Conn) DeleteLink(index int) error {
	if err := checkIndex("delete link", index); err != nil {
		return err
	}
	if err := c.change(unix.RTM_DELLINK, 0, ifinfomsg(index, 0, 0)); err != nil {
		return c.fail("delete link", indexName(index), err, nil)
	}
	return nil
}

// AddAddr assigns an IPv4 or IPv6 address with its prefix length. IPv6
// addresses skip duplicate address detection (IFA_F_NODAD): the test links
// have no other hosts, and DAD would leave the address unusable ("tentative")
// for a second or more after this returns.
func (c *Conn) AddAddr(index int, p netip.Prefix) error {
	if err := checkIndex("add address", index); err != nil {
		return err
	}
	if !p.IsValid() {
		return fmt.Errorf("rtnl: add address to %s in %s: invalid prefix %v: give an address with its length, such as 10.0.0.1/24", indexName(index), c.ns, p)
	}
	addr := p.Addr().Unmap()
	bits := p.Bits()
	if p.Addr().Is4In6() {
		bits -= 96
	}
	if bits < 0 {
		return fmt.Errorf("rtnl: add address %v to %s in %s: prefix length too short for an IPv4-mapped address", p, indexName(index), c.ns)
	}
	hdr := make([]byte, unix.SizeofIfAddrmsg)
	hdr[0] = unix.AF_INET
	if addr.Is6() {
		hdr[0] = unix.AF_INET6
		hdr[2] = unix.IFA_F_NODAD
	}
	hdr[1] = uint8(bits)
	hdr[3] = unix.RT_SCOPE_UNIVERSE
	binary.NativeEndian.PutUint32(hdr[4:], uint32(index))
	ae := netlink.NewAttributeEncoder()
	ae.Bytes(unix.IFA_LOCAL, addr.AsSlice())
	ae.Bytes(unix.IFA_ADDRESS, addr.AsSlice())
	body, err := ae.Encode()
	if err != nil {
		return fmt.Errorf("rtnl: add address %v: encode request: %w", p, err)
	}
	if err := c.change(unix.RTM_NEWADDR, netlink.Create|netlink.Excl, append(hdr, body...)); err != nil {
		return c.fail(fmt.Sprintf("add address %v", p), indexName(index), err, func(e unix.Errno) string {
			if e == unix.EEXIST {
				return fmt.Sprintf("%v is already assigned to %s in %s", addr, indexName(index), c.ns)
			}
			return ""
		})
	}
	return nil
}

// SetXDP attaches the XDP program progFd to the interface through netlink
// (IFLA_XDP), or detaches the current one when progFd is -1. flags are
// XDPFlags*: a mode (XDPFlagsSKBMode or XDPFlagsDrvMode; none lets the kernel
// pick native when the driver has it) optionally with
// XDPFlagsUpdateIfNoExist. A netlink attachment outlives the program fd and
// stays until detached or the device is deleted; detaching when nothing is
// attached succeeds.
func (c *Conn) SetXDP(index int, progFd int, flags uint32) error {
	if err := checkIndex("set XDP", index); err != nil {
		return err
	}
	if progFd < -1 {
		return fmt.Errorf("rtnl: set XDP on %s in %s: bad program fd %d: use -1 to detach", indexName(index), c.ns, progFd)
	}
	ae := netlink.NewAttributeEncoder()
	ae.Nested(unix.IFLA_XDP, func(x *netlink.AttributeEncoder) error {
		x.Int32(unix.IFLA_XDP_FD, int32(progFd))
		x.Uint32(unix.IFLA_XDP_FLAGS, flags)
		return nil
	})
	body, err := ae.Encode()
	if err != nil {
		return fmt.Errorf("rtnl: set XDP: encode request: %w", err)
	}
	err = c.change(unix.RTM_SETLINK, 0, append(ifinfomsg(index, 0, 0), body...))
	if err == nil {
		return nil
	}
	op := fmt.Sprintf("attach XDP program fd %d (flags %#x)", progFd, flags)
	if progFd == -1 {
		op = fmt.Sprintf("detach XDP (flags %#x)", flags)
	}
	where := indexName(index) + " in " + c.ns
	return c.fail(op, indexName(index), err, func(e unix.Errno) string {
		switch e {
		case unix.ERANGE:
			return where + ": peer MTU too large for native XDP on veth: lower the MTU to 1500 or use generic mode (XDPFlagsSKBMode)"
		case unix.EBADF:
			return fmt.Sprintf("%s: fd %d is not an open file descriptor", where, progFd)
		case unix.EINVAL:
			if flags&^uint32(unix.XDP_FLAGS_MASK) != 0 || bits.OnesCount32(flags&unix.XDP_FLAGS_MODES) > 1 {
				return fmt.Sprintf("%s: invalid XDP flags %#x: give at most one of XDPFlagsSKBMode and XDPFlagsDrvMode, plus optionally XDPFlagsUpdateIfNoExist", where, flags)
			}
			if progFd >= 0 {
				return fmt.Sprintf("%s: fd %d is not a loaded BPF program of type XDP (BPF_PROG_TYPE_XDP)", where, progFd)
			}
		case unix.EBUSY:
			return where + ": an XDP program is already attached and XDPFlagsUpdateIfNoExist was given: detach it first"
		case unix.EEXIST:
			return where + ": an XDP program is attached in another mode (native vs generic): detach it with that mode's flag first"
		case unix.EOPNOTSUPP:
			return where + ": the driver has no native XDP: use generic mode (XDPFlagsSKBMode)"
		}
		return ""
	})
}

// IsNotExist reports whether err says an interface does not exist.
func IsNotExist(err error) bool {
	return errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT)
}
