package ivshmem

import (
	"encoding/binary"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/ptbhyve/ptbhyve/internal/shm"
	"golang.org/x/sys/unix"
)

// msg is one server message as QEMU reads it: 8 bytes, at most one fd.
type msg struct {
	v  int64
	fd int
}

type client struct {
	c *net.UnixConn
}

func dial(t *testing.T, path string) *client {
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{c}
}

func (c *client) read(t *testing.T) msg {
	t.Helper()
	c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [8]byte
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := c.c.ReadMsgUnix(b[:], oob)
	if err != nil || n != 8 {
		t.Fatalf("read message: %d bytes, %v", n, err)
	}
	m := msg{v: int64(binary.LittleEndian.Uint64(b[:])), fd: -1}
	if oobn > 0 {
		cms, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			t.Fatal(err)
		}
		fds, err := unix.ParseUnixRights(&cms[0])
		if err != nil || len(fds) != 1 {
			t.Fatalf("want one fd, got %v %v", fds, err)
		}
		m.fd = fds[0]
		t.Cleanup(func() { unix.Close(fds[0]) })
	}
	return m
}

// setup reads a client's setup and returns its ID, the doorbell fds of
// each other peer and its own interrupt fds.
func (c *client) setup(t *testing.T, vectors int, others []int64) (int64, map[int64][]int, []int) {
	t.Helper()
	if m := c.read(t); m.v != 0 || m.fd >= 0 {
		t.Fatalf("first message %+v, want version 0 without fd", m)
	}
	id := c.read(t)
	if id.fd >= 0 || id.v < 1 {
		t.Fatalf("second message %+v, want our ID without fd", id)
	}
	if m := c.read(t); m.v != -1 || m.fd < 0 {
		t.Fatalf("third message %+v, want -1 with the memory", m)
	}
	doorbells := map[int64][]int{}
	for _, o := range others {
		for range vectors {
			m := c.read(t)
			if m.v != o || m.fd < 0 {
				t.Fatalf("peer message %+v, want peer %d with an eventfd", m, o)
			}
			doorbells[o] = append(doorbells[o], m.fd)
		}
	}
	var own []int
	for range vectors {
		m := c.read(t)
		if m.v != id.v || m.fd < 0 {
			t.Fatalf("interrupt message %+v, want our ID %d with an eventfd", m, id.v)
		}
		own = append(own, m.fd)
	}
	return id.v, doorbells, own
}

func readable(fd int, ms int) bool {
	n, _ := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, ms)
	return n > 0
}

func TestProtocol(t *testing.T) {
	mem, err := shm.New("ivshmem-test", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	path := filepath.Join(t.TempDir(), "ivshmem.sock")
	s, err := Listen(path, mem.Fd(), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	joined := make(chan int64, 4)
	s.Connected = func(p *Peer) { joined <- p.ID }
	go s.Serve()

	a := dial(t, path)
	idA, bellsA, ownA := a.setup(t, 2, []int64{0})
	<-joined
	// A rings peer 0 (ptbhyve) at vector 1: the server's vector 1 fires.
	unix.Write(bellsA[0][1], []byte{1, 0, 0, 0, 0, 0, 0, 0})
	if ok, _ := s.Self().Vectors[1].Wait(1000); !ok {
		t.Fatal("doorbell to peer 0 vector 1 did not reach the server")
	}
	if readable(s.Self().Vectors[0].Fd(), 0) {
		t.Fatal("vector 0 fired for a vector-1 doorbell")
	}
	// The server interrupts A at vector 0.
	var pa *Peer
	for _, p := range s.Peers() {
		if p.ID == idA {
			pa = p
		}
	}
	pa.Vectors[0].Signal()
	if !readable(ownA[0], 1000) || readable(ownA[1], 0) {
		t.Fatal("interrupt for vector 0 did not arrive on exactly A's vector-0 eventfd")
	}

	// B joins: it gets peer 0's and A's doorbells; A hears of B.
	b := dial(t, path)
	idB, bellsB, _ := b.setup(t, 2, []int64{0, idA})
	<-joined
	if idB == idA || len(bellsB[idA]) != 2 {
		t.Fatalf("B: id %d, doorbells %v", idB, bellsB)
	}
	for range 2 {
		if m := a.read(t); m.v != idB || m.fd < 0 {
			t.Fatalf("A told %+v about B, want B's ID with an eventfd", m)
		}
	}
	// B rings A directly through the fd the server handed out.
	unix.Write(bellsB[idA][1], []byte{1, 0, 0, 0, 0, 0, 0, 0})
	if !readable(ownA[1], 1000) {
		t.Fatal("B's doorbell to A vector 1 did not arrive")
	}

	// B hangs up: A is told, without an fd, and the server forgets B.
	b.c.Close()
	if m := a.read(t); m.v != idB || m.fd >= 0 {
		t.Fatalf("A told %+v of B's departure, want B's ID without fd", m)
	}
	if n := len(s.Peers()); n != 1 {
		t.Fatalf("%d peers after B left, want 1", n)
	}
}

func TestListenChecks(t *testing.T) {
	odd, err := shm.New("odd", 3<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer odd.Close()
	if _, err := Listen(filepath.Join(t.TempDir(), "s"), odd.Fd(), 1); err == nil {
		t.Error("a 3 MiB region was accepted; QEMU needs a power of two")
	}
	mem, err := shm.New("ok", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	if _, err := Listen(filepath.Join(t.TempDir(), "s"), mem.Fd(), 0); err == nil {
		t.Error("0 vectors accepted")
	}
	// A stale socket left by a dead server is replaced.
	path := filepath.Join(t.TempDir(), "stale")
	s1, err := Listen(path, mem.Fd(), 1)
	if err != nil {
		t.Fatal(err)
	}
	s1.ln.SetUnlinkOnClose(false)
	s1.Close()
	s2, err := Listen(path, mem.Fd(), 1)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	s2.Close()
}

// With FixedID the server serves one VM, always under that ID, and turns a
// second one away; after the first leaves, the next gets the same ID.
func TestFixedID(t *testing.T) {
	mem, err := shm.New("ivshmem-test", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	path := filepath.Join(t.TempDir(), "ivshmem.sock")
	s, err := Listen(path, mem.Fd(), 3)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.FixedID = 2
	refused := make(chan error, 1)
	gone := make(chan int64, 1)
	s.Refused = func(err error) { refused <- err }
	s.Disconnected = func(p *Peer) { gone <- p.ID }
	go s.Serve()

	a := dial(t, path)
	if id, _, _ := a.setup(t, 3, []int64{0}); id != 2 {
		t.Fatalf("first VM got ID %d, want 2", id)
	}
	b := dial(t, path)
	select {
	case err := <-refused:
		if err == nil {
			t.Fatal("nil refusal")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a second VM on a fixed-ID server was not refused")
	}
	b.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := b.c.Read(make([]byte, 8)); err == nil {
		t.Fatalf("the refused VM read %d bytes of setup", n)
	}
	a.c.Close()
	if id := <-gone; id != 2 {
		t.Fatalf("departure of %d", id)
	}
	c := dial(t, path)
	if id, _, _ := c.setup(t, 3, []int64{0}); id != 2 {
		t.Fatalf("next VM got ID %d, want 2", id)
	}
}
