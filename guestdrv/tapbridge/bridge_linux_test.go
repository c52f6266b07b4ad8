package tapbridge

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ptbhyve/ptbhyve/guestdrv"
	"github.com/ptbhyve/ptbhyve/internal/rtnl"
	"github.com/ptbhyve/ptbhyve/internal/testnet"
	"github.com/ptbhyve/ptbhyve/netmap/pipe"
	"golang.org/x/sys/unix"
)

// pipeRings opens both ends of a fresh pipe as guest rings.
func pipeRings(t *testing.T) (a, b guestdrv.Rings) {
	t.Helper()
	key := fmt.Sprintf("tapbridge-%s-%d", t.Name(), time.Now().UnixNano())
	m, err := pipe.Open(key, true, pipe.Config{Rings: 1, Slots: 256})
	if err != nil {
		t.Fatal(err)
	}
	s, err := pipe.Open(key, false, pipe.Config{})
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return guestdrv.HostPort(m), guestdrv.HostPort(s)
}

// Bad configurations fail before any device is made, so this runs
// without root.
func TestConfigChecks(t *testing.T) {
	a, _ := pipeRings(t)
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{MTU: 2040}, "MTU 2040: use 68..2034"},
		{Config{MTU: 67}, "MTU 67"},
		{Config{MAC: net.HardwareAddr{2, 0, 0}}, "6-byte"},
	} {
		b, err := New(a, tc.c)
		if err == nil {
			b.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) error %v, want one saying %q", tc.c, err, tc.want)
		}
	}
}

// Two bridges over one pipe, each with its TAP in its own network
// namespace, make a two-host network: ping and TCP must work across it.
func TestTwoNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("tapbridge: SKIP: not root: the test creates network namespaces and TAP devices; run it as root (sudo -E go test ./guestdrv/tapbridge/)")
	}
	if reason := testnet.Unavailable(); reason != "" {
		t.Skip("tapbridge: SKIP: " + reason)
	}
	ra, rb := pipeRings(t)
	nsA, err := testnet.NewNS("tapbr-a")
	if err != nil {
		t.Fatal(err)
	}
	defer nsA.Close()
	nsB, err := testnet.NewNS("tapbr-b")
	if err != nil {
		t.Fatal(err)
	}
	defer nsB.Close()

	newIn := func(ns *testnet.NS, r guestdrv.Rings, mac byte, addr string) *Bridge {
		t.Helper()
		var b *Bridge
		err := ns.Do(func() (err error) {
			b, err = New(r, Config{MAC: net.HardwareAddr{2, 0, 0, 0x99, 0, mac}, Addrs: []netip.Prefix{netip.MustParsePrefix(addr)}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ba := newIn(nsA, ra, 1, "10.99.0.1/24")
	defer ba.Close()
	bb := newIn(nsB, rb, 2, "10.99.0.2/24")
	defer bb.Close()
	if !strings.HasPrefix(ba.Name(), "ptnet") {
		t.Errorf("default name %q, want ptnetN", ba.Name())
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runs := make(chan error, 2)
	for _, b := range []*Bridge{ba, bb} {
		go func() { runs <- b.Run(ctx) }()
	}

	if err := nsA.Do(func() error { return ping(netip.MustParseAddr("10.99.0.2"), 3) }); err != nil {
		t.Fatal(err)
	}
	transferTCP(t, nsA, nsB, 4<<20)

	cancel()
	for range 2 {
		if err := <-runs; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	for _, b := range []*Bridge{ba, bb} {
		s := b.Stats()
		if s.ToRingFrames == 0 || s.ToTapFrames == 0 || s.BadSlot != 0 || s.Oversize != 0 || s.TapErrors != 0 || s.RingFull != 0 {
			t.Errorf("%s stats %+v: want traffic both ways and no drops", b.Name(), s)
		}
	}
	if got := ba.Stats().ToRingBytes; got < 4<<20 {
		t.Errorf("A sent %d bytes to the ring, less than the 4 MiB transfer", got)
	}

	// Close removes each TAP device from its namespace.
	for _, x := range []struct {
		ns *testnet.NS
		b  *Bridge
	}{{nsA, ba}, {nsB, bb}} {
		if err := x.b.Close(); err != nil {
			t.Error(err)
		}
		err := x.ns.Do(func() error {
			c, err := rtnl.Dial(-1)
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.LinkByName(x.b.Name())
			return err
		})
		if !rtnl.IsNotExist(err) {
			t.Errorf("%s in %s after Close: %v; want it gone", x.b.Name(), x.ns.Name, err)
		}
	}
	for _, ns := range []*testnet.NS{nsA, nsB} {
		if err := ns.Close(); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(filepath.Join("/run/netns", ns.Name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s still mounted after Close: %v", ns.Name, err)
		}
	}
	if left, err := testnet.Leftovers(); err != nil || len(left) > 0 {
		t.Errorf("left behind: %v (%v)", left, err)
	}
}

// ping sends n ICMP echo requests to dst from a raw socket in the calling
// thread's namespace and waits for each reply.
func ping(dst netip.Addr, n int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
	if err != nil {
		return fmt.Errorf("ping: raw ICMP socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(2 * time.Second))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("ping: SO_RCVTIMEO: %w", err)
	}
	id := uint16(os.Getpid())
	to := &unix.SockaddrInet4{Addr: dst.As4()}
	buf := make([]byte, 1500)
	for seq := uint16(1); seq <= uint16(n); seq++ {
		msg := []byte{8, 0, 0, 0, 0, 0, 0, 0, 'p', 't', 'b', 'h', 'y', 'v', 'e', '!'}
		binary.BigEndian.PutUint16(msg[4:], id)
		binary.BigEndian.PutUint16(msg[6:], seq)
		binary.BigEndian.PutUint16(msg[2:], checksum(msg))
		if err := unix.Sendto(fd, msg, 0, to); err != nil {
			return fmt.Errorf("ping %v: send: %w", dst, err)
		}
		for {
			m, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				return fmt.Errorf("ping %v: no echo reply to seq %d: %w", dst, seq, err)
			}
			ihl := int(buf[0]&0xf) * 4
			r := buf[ihl:m]
			if len(r) >= 8 && r[0] == 0 && binary.BigEndian.Uint16(r[4:]) == id && binary.BigEndian.Uint16(r[6:]) == seq {
				break
			}
		}
	}
	return nil
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// transferTCP sends size random bytes from a socket in A to a listener in
// B and checks they arrive intact. Sockets are made on threads inside
// their namespaces (NS.Do) and used from any goroutine afterwards.
func transferTCP(t *testing.T, nsA, nsB *testnet.NS, size int) {
	t.Helper()
	var ln net.Listener
	if err := nsB.Do(func() (err error) {
		ln, err = net.Listen("tcp4", "10.99.0.2:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(60 * time.Second)
	type received struct {
		data []byte
		err  error
	}
	got := make(chan received, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- received{nil, err}
			return
		}
		defer c.Close()
		c.SetDeadline(deadline)
		b, err := io.ReadAll(c)
		got <- received{b, err}
	}()
	var conn net.Conn
	if err := nsA.Do(func() (err error) {
		conn, err = net.DialTimeout("tcp4", ln.Addr().String(), 10*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	data := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(data)
	if _, err := conn.Write(data); err != nil {
		t.Fatalf("TCP write: %v", err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil {
		t.Fatalf("TCP receive: %v (got %d of %d bytes)", r.err, len(r.data), size)
	}
	if !bytes.Equal(r.data, data) {
		t.Fatalf("TCP transfer corrupted: got %d bytes, want %d identical", len(r.data), size)
	}
}
