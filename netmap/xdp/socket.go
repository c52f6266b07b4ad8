//go:build linux

package xdp

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rxHeadroom is where the kernel puts a received frame in a chunk
// (XDP_PACKET_HEADROOM); FILL addresses are offset by it so frames start
// at the netmap buffer's first byte.
const rxHeadroom = unix.XDP_PACKET_HEADROOM

// Unaligned-mode RX descriptors carry the chunk base in the low 48 bits
// and the data offset in the top 16 (XSK_UNALIGNED_BUF_*, not in x/sys).
const (
	unalignedShift = 48
	unalignedMask  = 1<<unalignedShift - 1
)

// SocketConfig describes an AF_XDP socket over a UMEM.
type SocketConfig struct {
	// UMEM is the packet memory: page aligned, chunks of ChunkSize bytes.
	UMEM      []byte
	ChunkSize uint32
	// RingSize is the size of each of the four rings (a power of two).
	RingSize uint32
}

// Socket is one AF_XDP socket with its own FILL and COMPLETION rings,
// bound to one queue of one interface.
type Socket struct {
	fd               int
	fill, comp       ring
	rx, tx           ring
	ifindex, queue   int
	copyMode, wakeup bool
}

func sockopt(fd, opt int, p unsafe.Pointer, n uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), n, 0)
	if e != 0 {
		return e
	}
	return nil
}

func getsockopt(fd, opt int, p unsafe.Pointer, n uintptr) (uintptr, error) {
	l := uint32(n)
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return 0, e
	}
	return uintptr(l), nil
}

// NewSocket creates the socket, registers the UMEM in unaligned-chunk mode
// (so FILL addresses may start anywhere: see rxHeadroom) and maps the four
// rings. It must run in the network namespace of the interface it will be
// bound to.
func NewSocket(c SocketConfig) (s *Socket, err error) {
	if c.RingSize == 0 || c.RingSize&(c.RingSize-1) != 0 {
		return nil, fmt.Errorf("xdp: ring size %d is not a power of two", c.RingSize)
	}
	if uintptr(unsafe.Pointer(unsafe.SliceData(c.UMEM)))%4096 != 0 || len(c.UMEM)%4096 != 0 {
		return nil, errors.New("xdp: the UMEM must be page aligned and a whole number of pages")
	}
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EAFNOSUPPORT) {
			return nil, fmt.Errorf("xdp: this kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS): %w", err)
		}
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("xdp: creating an AF_XDP socket needs CAP_NET_RAW (run as root): %w", err)
		}
		return nil, fmt.Errorf("xdp: socket(AF_XDP): %w", err)
	}
	s = &Socket{fd: fd, ifindex: -1}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	reg := unix.XDPUmemReg{
		Addr:  uint64(uintptr(unsafe.Pointer(unsafe.SliceData(c.UMEM)))),
		Len:   uint64(len(c.UMEM)),
		Size:  c.ChunkSize,
		Flags: unix.XDP_UMEM_UNALIGNED_CHUNK_FLAG,
	}
	if err := sockopt(fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
		if errors.Is(err, unix.ENOBUFS) {
			return s, fmt.Errorf("xdp: registering a %d-byte UMEM exceeds RLIMIT_MEMLOCK (raise it, or run with CAP_IPC_LOCK): %w", len(c.UMEM), err)
		}
		return s, fmt.Errorf("xdp: XDP_UMEM_REG (%d bytes, %d-byte chunks): %w", len(c.UMEM), c.ChunkSize, err)
	}
	n := int32(c.RingSize)
	for _, opt := range []int{unix.XDP_UMEM_FILL_RING, unix.XDP_UMEM_COMPLETION_RING, unix.XDP_RX_RING, unix.XDP_TX_RING} {
		if err := sockopt(fd, opt, unsafe.Pointer(&n), 4); err != nil {
			return s, fmt.Errorf("xdp: ring size %d (option %d): %w", n, opt, err)
		}
	}
	var off unix.XDPMmapOffsets
	if l, err := getsockopt(fd, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), unsafe.Sizeof(off)); err != nil {
		return s, fmt.Errorf("xdp: XDP_MMAP_OFFSETS: %w", err)
	} else if l != unsafe.Sizeof(off) {
		return s, fmt.Errorf("xdp: this kernel predates 5.4 (XDP_MMAP_OFFSETS is %d bytes); AF_XDP needs Linux 5.4 or later", l)
	}
	for _, m := range []struct {
		r     *ring
		pgoff int64
		off   unix.XDPRingOffset
		entry uint32
	}{
		{&s.fill, unix.XDP_UMEM_PGOFF_FILL_RING, off.Fr, 8},
		{&s.comp, unix.XDP_UMEM_PGOFF_COMPLETION_RING, off.Cr, 8},
		{&s.rx, unix.XDP_PGOFF_RX_RING, off.Rx, 16},
		{&s.tx, unix.XDP_PGOFF_TX_RING, off.Tx, 16},
	} {
		if *m.r, err = mapRing(fd, m.pgoff, m.off, c.RingSize, m.entry); err != nil {
			return s, fmt.Errorf("xdp: map ring at %#x: %w", m.pgoff, err)
		}
	}
	return s, nil
}

// Bind binds the socket to queue of the interface ifindex: zero copy where
// the driver has it, else copy mode (veth has only copy mode), with
// need_wakeup so idle rings cost no system calls.
func (s *Socket) Bind(ifindex, queue int, ifname string) error {
	for _, flags := range []uint16{unix.XDP_ZEROCOPY | unix.XDP_USE_NEED_WAKEUP, unix.XDP_COPY | unix.XDP_USE_NEED_WAKEUP} {
		err := unix.Bind(s.fd, &unix.SockaddrXDP{Flags: flags, Ifindex: uint32(ifindex), QueueID: uint32(queue)})
		if err == nil {
			s.ifindex, s.queue = ifindex, queue
			s.copyMode, s.wakeup = flags&unix.XDP_COPY != 0, true
			return nil
		}
		if errors.Is(err, unix.EOPNOTSUPP) && flags&unix.XDP_ZEROCOPY != 0 {
			continue // no zero copy here: copy mode
		}
		switch {
		case errors.Is(err, unix.ENODEV):
			return fmt.Errorf("xdp: no interface %s (index %d) in this network namespace: %w", ifname, ifindex, err)
		case errors.Is(err, unix.EINVAL):
			return fmt.Errorf("xdp: bind %s queue %d: queue out of range or bad flags: %w", ifname, queue, err)
		case errors.Is(err, unix.EBUSY):
			return fmt.Errorf("xdp: %s queue %d already has an AF_XDP socket: %w", ifname, queue, err)
		}
		return fmt.Errorf("xdp: bind %s queue %d: %w", ifname, queue, err)
	}
	return nil
}

// CopyMode reports whether the kernel copies frames (no zero-copy driver).
func (s *Socket) CopyMode() bool { return s.copyMode }

// Fd is the socket, to put in the XSKMAP and to poll.
func (s *Socket) Fd() int { return s.fd }

// kick asks the kernel to transmit what the TX ring holds; copy mode sends
// at most 32 frames per call (TX_BATCH_SIZE), EAGAIN meaning "more left".
func (s *Socket) kick() error {
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	switch e {
	case 0, unix.EAGAIN, unix.EBUSY, unix.ENOBUFS, unix.ENETDOWN:
		return nil
	}
	return fmt.Errorf("xdp: kick TX: %w", e)
}

// Stats is XDP_STATISTICS.
func (s *Socket) Stats() (unix.XDPStatistics, error) {
	var st unix.XDPStatistics
	_, err := getsockopt(s.fd, unix.XDP_STATISTICS, unsafe.Pointer(&st), unsafe.Sizeof(st))
	return st, err
}

// Close unmaps the rings and closes the socket (which also removes it from
// any XSKMAP).
func (s *Socket) Close() error {
	for _, r := range []*ring{&s.fill, &s.comp, &s.rx, &s.tx} {
		r.unmap()
	}
	if s.fd < 0 {
		return nil
	}
	err := unix.Close(s.fd)
	s.fd = -1
	return err
}
