package vm

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ptbhyve/ptbhyve/internal/testnet"
)

// xdpRig is a guest whose port is xdp: on one end of a veth; the other
// end sits in a second namespace where the host side of the test runs.
type xdpRig struct {
	pair *testnet.Pair
	d    *daemon
}

const xdpIf = "ptbv0"

// noIPv6 keeps the kernel's IPv6 neighbour discovery off the veth, so the
// only frames on it are the test's.
func noIPv6(t *testing.T, ns *testnet.NS) {
	t.Helper()
	for _, conf := range []string{"all", "default", xdpIf} {
		path := "/proc/sys/net/ipv6/conf/" + conf + "/disable_ipv6"
		if out, err := exec.Command("ip", "netns", "exec", ns.Name, "sh", "-c", "echo 1 > "+path).CombinedOutput(); err != nil {
			t.Fatalf("disable IPv6 in %s: %v\n%s", ns.Name, err, out)
		}
	}
}

func newXDPRig(t *testing.T) *xdpRig {
	t.Helper()
	pair := testnet.NewPair(t, testnet.PairConfig{Queues: 1, IfA: xdpIf, IfB: xdpIf})
	for _, ns := range []*testnet.NS{pair.A, pair.B} {
		noIPv6(t, ns)
	}
	d := startDaemon(t, pair.A, fmt.Sprintf("[vm.vm0]\nslots = 1024\nport = \"xdp:%s\"\n", xdpIf))
	return &xdpRig{pair: pair, d: d}
}

// Guest -> xdp: port -> veth -> AF_XDP receiver in the peer namespace:
// every frame the guest sends arrives, in order, intact.
func TestGuestToNamespace(t *testing.T) {
	const n = 20000
	r := newXDPRig(t)
	rx := startHostPktgen(t, r.pair.B, "-f", "rx", "-n", fmt.Sprint(n), "-d", "90s", "xdp:"+xdpIf)
	v := r.d.boot("vm0", "/bin/ptnet-pktgen", "-f", "tx", "-n", fmt.Sprint(n), "-R", "10k", "--json")
	g := guestSummary(t, v)
	s := rx.summary(t)
	t.Logf("guest sent %d at %.0f pps; namespace received %d (bad %d, lost %d)", g.Packets, g.PPS, s.Received, s.Bad, s.Lost)
	if g.Packets != n || s.Received != n || s.Bad != 0 || s.Lost != 0 || s.Reordered != 0 || s.Duplicated != 0 {
		t.Fatalf("guest sent %d, namespace received %+v; want %d, none bad, lost or out of order", g.Packets, s, n)
	}
	st := r.d.ctl("stats", "vm0")
	if !strings.Contains(st, "link up, port xdp:"+xdpIf) {
		t.Fatalf("stats:\n%s", st)
	}
}

// Namespace -> veth -> xdp: port -> guest: the guest's pktgen receives
// every frame.
func TestNamespaceToGuest(t *testing.T) {
	const n = 20000
	r := newXDPRig(t)
	v := r.d.boot("vm0", "/bin/ptnet-pktgen", "-f", "rx", "-n", fmt.Sprint(n), "-d", "120s", "--json")
	expect(t, v, "ptnet-pktgen: link up", 90*time.Second)
	tx := startHostPktgen(t, r.pair.B, "-f", "tx", "-n", fmt.Sprint(n), "-R", "5k", "xdp:"+xdpIf)
	s := tx.summary(t)
	g := guestSummary(t, v)
	t.Logf("namespace sent %d; guest received %d at %.0f pps (bad %d, lost %d)", s.Packets, g.Received, g.PPS, g.Bad, g.Lost)
	if s.Packets != n || g.Received != n || g.Bad != 0 || g.Lost != 0 {
		t.Fatalf("namespace sent %d, guest received %+v; want %d, none bad or lost", s.Packets, g, n)
	}
}

// Poll mode: a guest with no IOMMU maps the device through sysfs and
// polls instead of taking interrupts; the frames still all arrive.
func TestGuestPollMode(t *testing.T) {
	const n = 5000
	r := newXDPRig(t)
	rx := startHostPktgen(t, r.pair.B, "-f", "rx", "-n", fmt.Sprint(n), "-d", "90s", "xdp:"+xdpIf)
	v := r.d.boot("vm0", "/bin/ptnet-pktgen", "--mode", "poll", "-f", "tx", "-n", fmt.Sprint(n), "-R", "5k", "--json")
	expect(t, v, "device in sysfs mode", 90*time.Second)
	g := guestSummary(t, v)
	s := rx.summary(t)
	if g.Packets != n || s.Received != n || s.Bad != 0 || s.Lost != 0 {
		t.Fatalf("poll mode: guest sent %d, namespace received %+v; want %d, none bad or lost", g.Packets, s, n)
	}
}
