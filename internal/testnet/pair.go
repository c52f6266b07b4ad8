//go:build linux

package testnet

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/ptbhyve/ptbhyve/internal/rtnl"
	"golang.org/x/sys/unix"
)

// Pair is a veth pair between two fresh namespaces: AName in A, BName in B,
// both up. Each interface is named like the namespace it sits in, so
// `ip -n NAME link show NAME` finds it, unless PairConfig names them.
type Pair struct {
	A, B           *NS
	AName, BName   string
	AIndex, BIndex int

	once     sync.Once
	closeErr error
}

// PairConfig shapes a Pair.
type PairConfig struct {
	// Queues is the TX and RX queue count of both ends; 0 leaves the
	// kernel's default (one per possible CPU).
	Queues uint32
	// MTU of both ends; 0 means 1500, the most AF_XDP with 2 KB chunks and
	// native XDP on veth are happy with (research brief §3.5).
	MTU uint32
	// AddrA and AddrB, when valid, are assigned to AName and BName.
	AddrA, AddrB netip.Prefix
	// IfA and IfB name the veth ends instead of the namespaces' names:
	// names without '-' (which xdp: names cannot hold) for tests that hand
	// them to the command line. Each sits in its own namespace, so both
	// may be the same.
	IfA, IfB string
}

// NewPair makes a Pair for a test and registers a t.Cleanup that removes it
// however the test ends. It skips the test, saying why, when not running as
// root or when the kernel lacks network namespaces or veth; any other
// failure is fatal.
func NewPair(t testing.TB, c PairConfig) *Pair {
	t.Helper()
	if reason := Unavailable(); reason != "" {
		t.Skipf("testnet: SKIP: %s", reason)
	}
	p, err := NewPairE(c)
	if err != nil {
		var u *unavailableError
		if errors.As(err, &u) {
			t.Skipf("testnet: SKIP: this host cannot make test networks: %v", err)
		}
		t.Fatalf("testnet: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("testnet: cleanup of %s <-> %s: %v", p.AName, p.BName, err)
		}
	})
	return p
}

// Unavailable returns why this process cannot build test networks, or ""
// when it may try. It checks the effective capabilities (CAP_SYS_ADMIN for
// namespaces and the /run/netns mount, CAP_NET_ADMIN for links), so a root
// shell with capabilities dropped is caught too; missing kernel support
// shows up only when NewPair tries.
func Unavailable() string {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Sprintf("cannot read this process's capabilities (capget: %v)", err)
	}
	var missing []string
	for _, c := range []struct {
		bit  uint
		name string
	}{{unix.CAP_SYS_ADMIN, "CAP_SYS_ADMIN"}, {unix.CAP_NET_ADMIN, "CAP_NET_ADMIN"}} {
		if data[c.bit/32].Effective&(1<<(c.bit%32)) == 0 {
			missing = append(missing, c.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Sprintf("missing %s: test networks need CAP_SYS_ADMIN (network namespaces) and CAP_NET_ADMIN (veth): run the tests as root, e.g. `sudo -E go test ./...`", strings.Join(missing, " and "))
	}
	return ""
}

// NewPairE makes a Pair for callers other than tests, such as the demo. The
// caller must defer Close (see the package documentation for SIGINT).
func NewPairE(c PairConfig) (*Pair, error) {
	if c.MTU == 0 {
		c.MTU = 1500
	}
	a, b, err := newNSPair()
	if err != nil {
		return nil, err
	}
	p := &Pair{A: a, B: b, AName: a.Name, BName: b.Name}
	if c.IfA != "" {
		p.AName = c.IfA
	}
	if c.IfB != "" {
		p.BName = c.IfB
	}
	if err := p.build(c); err != nil {
		return nil, errors.Join(err, p.Close())
	}
	return p, nil
}

// newNSPair makes two namespaces "ptb-TTa-PID" and "ptb-TTb-PID" with a
// random two-character tag TT, retrying on a clash. The names double as the
// interface names, so they must stay within 15 bytes: 4 + 3 + 1 + at most 7
// PID digits.
func newNSPair() (a, b *NS, err error) {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	for attempt := 0; ; attempt++ {
		tag := string([]byte{digits[rand.IntN(len(digits))], digits[rand.IntN(len(digits))]})
		a, err = NewNS(tag + "a")
		if err == nil {
			b, err = NewNS(tag + "b")
			if err == nil {
				return a, b, nil
			}
			err = errors.Join(err, a.Close())
		}
		if !errors.Is(err, unix.EEXIST) || attempt == 50 {
			return nil, nil, err
		}
	}
}

func (p *Pair) build(c PairConfig) error {
	ca, err := rtnl.DialNamed(p.A.Fd(), p.A.Name)
	if err != nil {
		return fmt.Errorf("testnet: pair %s <-> %s: %w", p.AName, p.BName, err)
	}
	defer ca.Close()
	cb, err := rtnl.DialNamed(p.B.Fd(), p.B.Name)
	if err != nil {
		return fmt.Errorf("testnet: pair %s <-> %s: %w", p.AName, p.BName, err)
	}
	defer cb.Close()

	err = ca.CreateVeth(rtnl.VethConfig{
		Name: p.AName, PeerName: p.BName, PeerNSFd: p.B.Fd(),
		TxQueues: c.Queues, RxQueues: c.Queues, MTU: c.MTU,
	})
	if errors.Is(err, unix.EOPNOTSUPP) {
		return &unavailableError{"the kernel has no veth driver (CONFIG_VETH)", err}
	}
	if err != nil {
		return fmt.Errorf("testnet: %w", err)
	}
	for _, end := range []struct {
		c     *rtnl.Conn
		name  string
		index *int
		addr  netip.Prefix
	}{{ca, p.AName, &p.AIndex, c.AddrA}, {cb, p.BName, &p.BIndex, c.AddrB}} {
		l, err := end.c.LinkByName(end.name)
		if err != nil {
			return fmt.Errorf("testnet: new veth: %w", err)
		}
		*end.index = l.Index
		if end.addr.IsValid() {
			if err := end.c.AddAddr(l.Index, end.addr); err != nil {
				return fmt.Errorf("testnet: %w", err)
			}
		}
		if err := end.c.SetUp(l.Index); err != nil {
			return fmt.Errorf("testnet: %w", err)
		}
	}
	return nil
}

// Close deletes the veth and both namespaces. The veth is deleted
// explicitly, not left to namespace teardown, because a socket still open
// inside a namespace (an AF_XDP socket a test forgot) keeps that namespace,
// and with it the veth and any XDP program on it, alive. Safe to call more
// than once and concurrently; later calls return the first result.
func (p *Pair) Close() error {
	p.once.Do(func() {
		if p.A == nil || p.B == nil {
			return // not made by NewPairE: nothing of ours to remove
		}
		var errs []error
		if fd := p.A.Fd(); fd >= 0 && p.AIndex > 0 {
			c, err := rtnl.DialNamed(fd, p.A.Name)
			if err == nil {
				if err := c.DeleteLink(p.AIndex); err != nil && !rtnl.IsNotExist(err) {
					errs = append(errs, fmt.Errorf("testnet: %w", err))
				}
				c.Close()
			} else {
				errs = append(errs, fmt.Errorf("testnet: delete %s: %w", p.AName, err))
			}
		}
		errs = append(errs, p.B.Close(), p.A.Close())
		p.closeErr = errors.Join(errs...)
	})
	return p.closeErr
}
