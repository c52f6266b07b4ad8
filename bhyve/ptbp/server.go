package ptbp

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"

	"github.com/ptbhyve/ptbhyve/internal/event"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
	"golang.org/x/sys/unix"
)

// Device is what the daemon gives one bhyve connection: the device's
// geometry, its two register files, the kick events whose write ends go
// to bhyve, the MSI-X state, and how to stop the rings.
type Device struct {
	Welcome Welcome
	Ptnet   ptnetmap.Registers
	Memdev  ptnetmap.Registers
	Kicks   []*event.Event
	Vectors *Vectors
	// Reset stops the rings and forgets the CSB, as PTCTL DELETE and a
	// register reset do: on RESET and when bhyve goes away.
	Reset func()
}

// Server accepts bhyve's device models.
type Server struct {
	// Open returns the device of the VM bhyve says hello for. Its error
	// goes back to bhyve; a syscall.Errno in it is the errno bhyve sees.
	Open func(vm string) (*Device, error)
	// Closed, if set, is told when a VM's bhyve hangs up.
	Closed func(vm string, err error)

	ln   *net.UnixListener
	path string
	mu   sync.Mutex
	conn map[*net.UnixConn]bool
	done bool
	// sessions counts the serve goroutines, so that Close returns only
	// after each has reset its device: a teardown that ran late would
	// wipe the MSI-X table a reconnected bhyve had just replayed.
	sessions sync.WaitGroup
}

// Listen creates the server's SOCK_SEQPACKET socket at path, root-only,
// replacing a stale one.
func Listen(path string) (*Server, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("ptbp: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("ptbp: %s: %w", path, err)
	}
	return &Server{ln: ln, path: path, conn: map[*net.UnixConn]bool{}}, nil
}

// Path is the socket bhyve connects to.
func (s *Server) Path() string { return s.path }

// Serve accepts connections until Close.
func (s *Server) Serve() error {
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			s.mu.Lock()
			done := s.done
			s.mu.Unlock()
			if done {
				return nil
			}
			return fmt.Errorf("ptbp: accept on %s: %w", s.path, err)
		}
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conn[c] = true
		s.sessions.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

// Close stops accepting, hangs up on every bhyve, removes the socket and
// returns once every session has ended: its device reset and Closed called.
// Closed must therefore not call Close.
func (s *Server) Close() error {
	s.mu.Lock()
	s.done = true
	for c := range s.conn {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.sessions.Wait()
	return err
}

func (s *Server) serve(c *net.UnixConn) {
	defer s.sessions.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conn, c)
		s.mu.Unlock()
		c.Close()
	}()
	buf := make([]byte, MaxMsg)
	n, err := c.Read(buf)
	if err != nil {
		return
	}
	seq, m, err := Decode(buf[:n])
	hello, ok := m.(Hello)
	switch {
	case err != nil:
		return
	case !ok:
		sendError(c, seq, unix.EPROTO, fmt.Sprintf("expected HELLO, got message type %d", le.Uint16(buf)))
		return
	case hello.Magic != Magic:
		sendError(c, seq, unix.EPROTO, fmt.Sprintf("bad magic %#x", hello.Magic))
		return
	case hello.Version != Version:
		sendError(c, seq, unix.EPROTONOSUPPORT, fmt.Sprintf("protocol version %d; ptbhyve speaks %d", hello.Version, Version))
		return
	}
	dev, err := s.Open(hello.VM)
	if err != nil {
		errno := unix.EINVAL
		errors.As(err, &errno)
		sendError(c, seq, errno, err.Error())
		return
	}
	w := dev.Welcome
	w.Version = Version
	if len(w.SegName) > MaxSegName {
		sendError(c, seq, unix.ENAMETOOLONG, fmt.Sprintf("devmem segment name %q is longer than %d characters", w.SegName, MaxSegName))
		return
	}
	fds := make([]int, len(dev.Kicks))
	for i, k := range dev.Kicks {
		fds[i] = k.WriteFd()
	}
	if _, _, err := c.WriteMsgUnix(Encode(seq, w), unix.UnixRights(fds...), nil); err != nil {
		return
	}
	err = s.session(c, dev, buf)
	dev.Reset()
	dev.Vectors.Reset()
	if s.Closed != nil {
		s.Closed(hello.VM, err)
	}
}

// session answers one bhyve's requests until it hangs up or sends
// something malformed.
func (s *Server) session(c *net.UnixConn, dev *Device, buf []byte) error {
	for {
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil // orderly shutdown
		}
		seq, m, err := Decode(buf[:n])
		if err != nil {
			return err
		}
		var reply any
		switch m := m.(type) {
		case Read:
			reply = Value{Val: readReg(dev, m)}
		case Write:
			if m.Fn == FnPtnet && m.Size == 4 && m.Off < ptnetmap.PtnetIOSize {
				dev.Ptnet.Write(m.Off, m.Val)
			}
			reply = Done{}
		case MSIX:
			dev.Vectors.Update(m)
		case Reset:
			dev.Reset()
			dev.Vectors.Reset()
			reply = Done{}
		case Goodbye:
			return nil
		default:
			return fmt.Errorf("ptbp: unexpected message %T from bhyve", m)
		}
		if reply != nil {
			if _, err := c.Write(Encode(seq, reply)); err != nil {
				return err
			}
		}
	}
}

func readReg(dev *Device, m Read) uint32 {
	if m.Size != 4 || m.Off%4 != 0 {
		return 0
	}
	switch {
	case m.Fn == FnPtnet && m.Off < ptnetmap.PtnetIOSize:
		return dev.Ptnet.Read(m.Off)
	case m.Fn == FnMemdev && m.Off < ptnetmap.MemdevIOSize:
		return dev.Memdev.Read(m.Off)
	}
	return 0
}

func sendError(c *net.UnixConn, seq uint32, errno syscall.Errno, msg string) {
	c.Write(Encode(seq, Error{Errno: uint32(errno), Msg: msg}))
}
