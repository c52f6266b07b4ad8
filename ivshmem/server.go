// Package ivshmem is an ivshmem server: QEMU's stock ivshmem-doorbell
// device connects to it over a UNIX socket and receives the shared memory
// and the eventfds that carry doorbells and interrupts (QEMU
// docs/specs/ivshmem-spec.txt). ptbhyve is that server on Linux hosts,
// since Debian ships none, and it is also peer 0: a guest rings ptbhyve by
// writing (0 << 16 | i) to its doorbell register, and ptbhyve interrupts a
// guest at MSI-X vector i by signalling that guest's eventfd i.
package ivshmem

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"

	"github.com/ptbhyve/ptbhyve/internal/event"
	"golang.org/x/sys/unix"
)

// Peer is one end of the doorbell mesh: the server itself (ID 0) or a
// connected VM. Signalling Vectors[i] rings that peer's vector i.
type Peer struct {
	ID      int64
	Vectors []*event.Event
	conn    *net.UnixConn
}

// Server hands one shared-memory object to every VM that connects.
type Server struct {
	path    string
	ln      *net.UnixListener
	shmFd   int
	vectors int
	self    *Peer

	mu     sync.Mutex
	peers  map[int64]*Peer
	nextID int64
	closed bool
	// Connected, if set, is told of each VM as it connects (after its
	// setup messages went out) and Disconnected as it goes.
	Connected, Disconnected func(*Peer)
	// Refused, if set, is told why a connection was turned away.
	Refused func(error)
	// FixedID, if set (1..65535), makes the server serve one VM at a time
	// and always give it this ID. ptbhyve runs a server per VM, and VMs
	// that share one memory (the two ends of a pipe) find their device
	// page in it by their ID; a second VM connecting while one is served
	// is refused, which fails its QEMU at start.
	FixedID int64
}

// maxID is the largest peer ID the protocol carries.
const maxID = 65535

// Listen creates the server's socket at path (root-only permissions,
// replacing a stale socket) for a shared-memory object whose size must be
// a power of two (QEMU maps it as a PCI BAR), with vectors doorbells per
// peer.
func Listen(path string, shmFd, vectors int) (*Server, error) {
	var st unix.Stat_t
	if err := unix.Fstat(shmFd, &st); err != nil {
		return nil, fmt.Errorf("ivshmem: shared memory fd %d: %w", shmFd, err)
	}
	if st.Size <= 0 || st.Size&(st.Size-1) != 0 {
		return nil, fmt.Errorf("ivshmem: shared memory is %d bytes; QEMU maps it as a BAR and needs a power of two", st.Size)
	}
	if vectors < 1 || vectors > 1024 {
		return nil, fmt.Errorf("ivshmem: %d vectors; want 1..1024", vectors)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path) // a stale socket from a dead server
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("ivshmem: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("ivshmem: %s: %w", path, err)
	}
	s := &Server{path: path, ln: ln, shmFd: shmFd, vectors: vectors, peers: map[int64]*Peer{}, nextID: 1}
	if s.self, err = newPeer(0, vectors); err != nil {
		ln.Close()
		return nil, err
	}
	return s, nil
}

func newPeer(id int64, n int) (*Peer, error) {
	p := &Peer{ID: id}
	for range n {
		e, err := event.New()
		if err != nil {
			p.close()
			return nil, fmt.Errorf("ivshmem: eventfd for peer %d: %w", id, err)
		}
		p.Vectors = append(p.Vectors, e)
	}
	return p, nil
}

func (p *Peer) close() {
	for _, e := range p.Vectors {
		e.Close()
	}
	if p.conn != nil {
		p.conn.Close()
	}
}

// Self is the server's own peer: its Vectors fire when a guest rings
// peer 0.
func (s *Server) Self() *Peer { return s.self }

// Path is the socket QEMU's chardev connects to.
func (s *Server) Path() string { return s.path }

// Peers lists the connected VMs.
func (s *Server) Peers() []*Peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Peer, 0, len(s.peers))
	for _, p := range s.peers {
		out = append(out, p)
	}
	return out
}

// Serve accepts VMs until Close.
func (s *Server) Serve() error {
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			return fmt.Errorf("ivshmem: accept on %s: %w", s.path, err)
		}
		if err := s.admit(c); err != nil {
			c.Close()
			if s.Refused != nil {
				s.Refused(err)
			}
		}
	}
}

// send writes one message: v, and fd if fd >= 0.
func send(c *net.UnixConn, v int64, fd int) error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(v))
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	_, _, err := c.WriteMsgUnix(b[:], oob, nil)
	return err
}

// admit gives a new VM its setup (version, its ID, the memory, every other
// peer's doorbells, its own interrupt eventfds), tells the others, and
// watches for it to go.
func (s *Server) admit(c *net.UnixConn) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextID
	switch {
	case s.FixedID < 0 || s.FixedID > maxID:
		return fmt.Errorf("ivshmem: fixed peer ID %d is outside 1..%d", s.FixedID, maxID)
	case s.FixedID != 0 && len(s.peers) > 0:
		return fmt.Errorf("ivshmem: %s already serves a VM (peer %d); one VM per device socket", s.path, s.FixedID)
	case s.FixedID != 0:
		id = s.FixedID
	case s.nextID > maxID:
		return errors.New("ivshmem: out of peer IDs")
	default:
		s.nextID++
	}
	p, err := newPeer(id, s.vectors)
	if err != nil {
		return err
	}
	p.conn = c
	msgs := []struct {
		v  int64
		fd int
	}{{0, -1}, {p.ID, -1}, {-1, s.shmFd}}
	for _, q := range append([]*Peer{s.self}, s.sorted()...) {
		for _, e := range q.Vectors {
			msgs = append(msgs, struct {
				v  int64
				fd int
			}{q.ID, e.WriteFd()})
		}
	}
	for _, e := range p.Vectors {
		msgs = append(msgs, struct {
			v  int64
			fd int
		}{p.ID, e.Fd()})
	}
	for _, m := range msgs {
		if err := send(c, m.v, m.fd); err != nil {
			p.close()
			return fmt.Errorf("ivshmem: setup of peer %d: %w", p.ID, err)
		}
	}
	for _, q := range s.peers {
		for _, e := range p.Vectors {
			send(q.conn, p.ID, e.WriteFd())
		}
	}
	s.peers[p.ID] = p
	if s.Connected != nil {
		s.Connected(p)
	}
	go s.watch(p)
	return nil
}

func (s *Server) sorted() []*Peer {
	out := make([]*Peer, 0, len(s.peers))
	for _, p := range s.peers {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *Peer) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// watch waits for the VM to hang up (QEMU never writes), then removes it
// and tells the others.
func (s *Server) watch(p *Peer) {
	var b [64]byte
	for {
		if _, err := p.conn.Read(b[:]); err != nil {
			break
		}
	}
	s.mu.Lock()
	if s.peers[p.ID] == p {
		delete(s.peers, p.ID)
		for _, q := range s.peers {
			send(q.conn, p.ID, -1)
		}
		if s.Disconnected != nil {
			s.Disconnected(p)
		}
		p.close()
	}
	s.mu.Unlock()
}

// Close stops accepting, hangs up on every VM and removes the socket.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for id, p := range s.peers {
		p.close()
		delete(s.peers, id)
	}
	s.mu.Unlock()
	err := s.ln.Close() // removes the socket file
	s.self.close()
	return err
}
