//go:build linux || freebsd

package kernel

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DevPath is the netmap control device.
const DevPath = "/dev/netmap"

// CSBAlign is the alignment the kernel requires of both CSB arrays: the
// size of one nm_csb_atok / nm_csb_ktoa entry.
const CSBAlign = 64

// File is an open /dev/netmap descriptor. One descriptor binds at most one
// port (Register); the rings it binds are then reached through the region
// Mmap returns.
//
// The methods may be called from several goroutines, except that Close
// must not race with anything but the SyncKloopStart it stops (a descriptor
// number closed under a running call may be reused). SyncKloopStart blocks
// until SyncKloopStop or Close is called on the same File from another
// goroutine; the other methods return promptly.
type File struct {
	sys      sysCalls
	eventfds bool // the kernel's sync kloop takes the EVENTFDS option

	mu     sync.Mutex
	fd     int // -1 once closed
	st     fileState
	kloops int    // SYNC_KLOOP_START calls in progress
	stops  uint64 // SYNC_KLOOP_STOP calls issued
}

// fileState is what a File knows about its binding.
type fileState struct {
	registered bool
	port       string
	flags      uint64   // the flags the port was registered with
	reg        Register // REGISTER's answer
	csb        bool     // CSB mode is on
}

// RegisterResult is what REGISTER reports: the port's geometry and where
// this descriptor's netmap_if sits in the region.
type RegisterResult struct {
	Register        // the body as the kernel wrote it back
	Name     string // the port registered
	CSB      bool   // CSB mode was enabled by a CSBOption
}

// Open opens /dev/netmap.
func Open() (*File, error) { return open(osCalls{}) }

func open(s sysCalls) (*File, error) {
	fd, err := s.open(DevPath)
	if err != nil {
		e := &Error{Op: "open", Reason: fmt.Sprintf("cannot open %s: %v", DevPath, err)}
		errors.As(err, &e.Errno)
		switch e.Errno {
		case unix.ENOENT, unix.ENXIO, unix.ENODEV:
			e.Reason = fmt.Sprintf("%s does not exist: %s", DevPath, missingDeviceHint(runtime.GOOS))
		case unix.EACCES, unix.EPERM:
			e.Reason = fmt.Sprintf("no permission to open %s: netmap needs root", DevPath)
		}
		return nil, e
	}
	return &File{sys: s, eventfds: kloopEventfds, fd: fd}, nil
}

// Fd is the descriptor, -1 once closed.
func (f *File) Fd() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fd
}

// Close stops a sync kloop still running on the descriptor (it would
// otherwise run on with no way to stop it) and closes the descriptor.
// Mappings made by Mmap stay valid until Munmap.
func (f *File) Close() error {
	f.mu.Lock()
	running := f.kloops > 0
	f.mu.Unlock()
	var stopErr error
	if running {
		stopErr = f.SyncKloopStop()
	}
	f.mu.Lock()
	fd := f.fd
	f.fd = -1
	f.mu.Unlock()
	if fd < 0 {
		return &Error{Op: "close", Port: DevPath, Reason: os.ErrClosed.Error(), Errno: unix.EBADF}
	}
	if err := f.sys.close(fd); err != nil {
		return &Error{Op: "close", Port: DevPath, Reason: err.Error(), Errno: errnoOf(err)}
	}
	return stopErr
}

func errnoOf(err error) unix.Errno {
	var e unix.Errno
	errors.As(err, &e)
	return e
}

func (f *File) state() (fd int, s fileState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fd, f.st
}

func closedError(op string) error {
	return &Error{Op: op, Port: DevPath, Errno: unix.EBADF, Reason: "the descriptor is closed"}
}

// ctrl issues one NIOCCTRL request and returns the kernel's reply and errno.
// The error is for failures before the ioctl: a request the kernel would
// refuse for its shape, a closed descriptor, no memory.
//
// The request lives in anonymous memory from mmap rather than in a Go
// slice. The kernel does not only read the ioctl argument: it follows
// nr_body, nr_options and every nro_next, which are addresses stored inside
// the buffer, and writes the body and option headers back through them.
// Go's rules keep only the direct syscall argument alive and in place;
// memory outside the Go heap is never moved or freed by the runtime, the
// kernel's writes to it race with nothing the race detector or checkptr
// watch, and it stays put for the whole of a SYNC_KLOOP_START, which holds
// the request until the kloop stops (the kernel writes the options back on
// return). runtime.Pinner would also do; a page per control request is
// cheap because control requests are rare.
func (f *File) ctrl(op string, r *Request) (Reply, unix.Errno, error) {
	fd, _ := f.state()
	if fd < 0 {
		return Reply{}, 0, closedError(op)
	}
	if err := r.check(); err != nil {
		return Reply{}, 0, err
	}
	page := os.Getpagesize()
	n := (r.Size() + page - 1) / page * page
	buf, err := f.sys.anon(n)
	if err != nil {
		return Reply{}, 0, &Error{Op: op, Port: r.Name, Errno: errnoOf(err), Reason: fmt.Sprintf("cannot allocate the request buffer: %v", err)}
	}
	defer f.sys.munmap(buf)
	base := unsafe.Pointer(&buf[0])
	l, err := r.encode(buf, uint64(uintptr(base)))
	if err != nil {
		return Reply{}, 0, err
	}
	ioErr := f.sys.ioctl(fd, nioc.Ctrl, base)
	rep, err := r.Decode(buf, l)
	if err != nil {
		return Reply{}, 0, err
	}
	if ioErr != nil {
		errno := errnoOf(ioErr)
		if errno == 0 {
			return rep, 0, &Error{Op: op, Port: r.Name, Reason: ioErr.Error()}
		}
		return rep, errno, nil
	}
	return rep, 0, nil
}

// result turns a reply into an error when the ioctl failed or an option
// came back with a status the kernel set.
func result(r *Request, rep Reply, errno unix.Errno, fl failure) error {
	fl.op, fl.errno = r.Type, errno
	fl.options = statusOptions(r, rep, errno)
	if errno == 0 && len(fl.options) == 0 {
		return nil
	}
	return newError(fl)
}

func (s fileState) failure(port string) failure {
	return failure{port: port, registered: s.registered, csb: s.csb, flags: s.flags}
}

// Register binds port name to this descriptor with REGISTER. name is what
// nmreq_header.nr_name holds: the port without the "netmap:" prefix
// ("ix0", "vale0:vm1", "ix0{1"), at most MaxNameLen bytes. req carries the
// mode, ring id, flags and the wanted geometry; opts may add a CSBOption
// (CSB mode from the start; needs netmap.FlagExclusive), an ExtmemOption
// or an OffsetsOption. Options the kernel does not consume fail the
// request with EOPNOTSUPP.
//
// After a failed Register, close the File rather than trying again on it:
// the kernel undoes a registration that fails late without resetting all
// of the descriptor's state (CSB addresses it had validated stay, leaving a
// later registration in CSB mode).
func (f *File) Register(name string, req Register, opts ...Option) (RegisterResult, error) {
	for _, o := range opts {
		if c, ok := o.(*CSBOption); ok {
			if err := checkCSB(ReqRegister, name, c.Atok, c.Ktoa); err != nil {
				return RegisterResult{}, err
			}
		}
	}
	body := make([]byte, RegisterSize)
	req.Encode(body)
	r := &Request{Type: ReqRegister, Name: name, Body: body, Options: opts}
	_, st := f.state()
	rep, errno, err := f.ctrl(ReqRegister.String(), r)
	if err != nil {
		return RegisterResult{}, err
	}
	fl := st.failure(name)
	fl.reg, fl.flags = &req, req.Flags
	if err := result(r, rep, errno, fl); err != nil {
		return RegisterResult{}, err
	}
	var out Register
	out.Decode(r.Body)
	res := RegisterResult{Register: out, Name: name}
	for _, o := range opts {
		if o.Type() == OptCSB {
			res.CSB = true
		}
	}
	f.mu.Lock()
	f.st = fileState{registered: true, port: name, flags: req.Flags, reg: out, csb: res.CSB}
	f.mu.Unlock()
	return res, nil
}

// PortInfo asks for a port's geometry and memory size without binding it
// (PORT_INFO_GET). With an empty name it describes allocator memID only (0
// means the global allocator, 1).
func (f *File) PortInfo(name string, memID uint16) (PortInfo, error) {
	in := PortInfo{MemID: memID}
	body := make([]byte, PortInfoSize)
	in.Encode(body)
	r := &Request{Type: ReqPortInfoGet, Name: name, Body: body}
	_, st := f.state()
	rep, errno, err := f.ctrl(r.Type.String(), r)
	if err != nil {
		return PortInfo{}, err
	}
	fl := st.failure(name)
	fl.memID = memID
	if err := result(r, rep, errno, fl); err != nil {
		return PortInfo{}, err
	}
	var out PortInfo
	out.Decode(r.Body)
	return out, nil
}

// PoolsInfo describes the pools of the allocator port name uses
// (POOLS_INFO_GET): the layout a ptnetmap-memdev presents to a guest.
func (f *File) PoolsInfo(name string, memID uint16) (PoolsInfo, error) {
	in := PoolsInfo{MemID: memID}
	body := make([]byte, PoolsInfoSize)
	in.Encode(body)
	r := &Request{Type: ReqPoolsInfoGet, Name: name, Body: body}
	_, st := f.state()
	rep, errno, err := f.ctrl(r.Type.String(), r)
	if err != nil {
		return PoolsInfo{}, err
	}
	fl := st.failure(name)
	fl.memID = memID
	if err := result(r, rep, errno, fl); err != nil {
		return PoolsInfo{}, err
	}
	var out PoolsInfo
	out.Decode(r.Body)
	return out, nil
}

// PortHdr is the virtio-net header length of port name (PORT_HDR_GET).
func (f *File) PortHdr(name string) (uint32, error) {
	body := make([]byte, PortHdrSize)
	r := &Request{Type: ReqPortHdrGet, Name: name, Body: body}
	_, st := f.state()
	rep, errno, err := f.ctrl(r.Type.String(), r)
	if err != nil {
		return 0, err
	}
	if err := result(r, rep, errno, st.failure(name)); err != nil {
		return 0, err
	}
	return le.Uint32(r.Body), nil
}

// SetPortHdr sets the virtio-net header length of VALE port name
// (PORT_HDR_SET): VnetHdrNone, VnetHdrLen or VnetHdrMrg.
func (f *File) SetPortHdr(name string, hdrLen uint32) error {
	body := make([]byte, PortHdrSize)
	le.PutUint32(body, hdrLen)
	r := &Request{Type: ReqPortHdrSet, Name: name, Body: body}
	_, st := f.state()
	rep, errno, err := f.ctrl(r.Type.String(), r)
	if err != nil {
		return err
	}
	return result(r, rep, errno, st.failure(name))
}

// Mmap maps the registered port's whole region: nr_memsize bytes at offset
// 0, shared. Descriptors whose ports share a mem_id share the region, and
// reusing one mapping for them is the caller's business. The mapping
// outlives Close; release it with Munmap.
func (f *File) Mmap() ([]byte, error) {
	fd, st := f.state()
	if fd < 0 {
		return nil, closedError("mmap")
	}
	if !st.registered {
		return nil, &Error{Op: "mmap", Errno: unix.EINVAL, Reason: "no port is registered on this descriptor: Register first (the kernel refuses to map an unbound descriptor)"}
	}
	size := st.reg.MemSize
	if size == 0 || size > math.MaxInt {
		return nil, &Error{Op: "mmap", Port: st.port, Errno: unix.EINVAL, Reason: fmt.Sprintf("the kernel reported a region of %d bytes", size)}
	}
	b, err := f.sys.mmap(fd, int(size))
	if err != nil {
		return nil, &Error{Op: "mmap", Port: st.port, Errno: errnoOf(err),
			Reason: fmt.Sprintf("cannot map the %d-byte region of mem_id %d: %v", size, st.reg.MemID, err)}
	}
	return b, nil
}

// Munmap releases a mapping made by Mmap.
func (f *File) Munmap(b []byte) error {
	if err := f.sys.munmap(b); err != nil {
		return &Error{Op: "munmap", Errno: errnoOf(err), Reason: err.Error()}
	}
	return nil
}

// TxSync syncs every TX ring bound to the descriptor (NIOCTXSYNC). It does
// not block. In CSB mode only the sync kloop may sync, and this fails.
func (f *File) TxSync() error { return f.sync("TXSYNC", nioc.TxSync) }

// RxSync syncs every RX ring bound to the descriptor (NIOCRXSYNC).
func (f *File) RxSync() error { return f.sync("RXSYNC", nioc.RxSync) }

func (f *File) sync(op string, req uint32) error {
	fd, st := f.state()
	if fd < 0 {
		return closedError(op)
	}
	err := f.sys.ioctl(fd, req, nil)
	if err == nil {
		return nil
	}
	e := &Error{Op: op, Port: st.port, Errno: errnoOf(err), Reason: err.Error()}
	switch e.Errno {
	case unix.ENXIO:
		e.Reason = "no port is registered on this descriptor: Register first"
	case unix.EBUSY:
		e.Reason = "the descriptor is in CSB mode: only the sync kloop may sync its rings"
	}
	return e
}

// Poll waits until the bound rings are ready for events (unix.POLLIN: some
// RX ring has packets; unix.POLLOUT: some TX ring has room), or timeout
// passes (a negative timeout waits for ever). It returns the ready events,
// 0 on timeout. netmap answers POLLERR for an unbound descriptor or one in
// CSB mode; Poll turns that into an error.
func (f *File) Poll(events int16, timeout time.Duration) (int16, error) {
	fd, st := f.state()
	if fd < 0 {
		return 0, closedError("poll")
	}
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	for {
		ms := -1
		if timeout >= 0 {
			left := time.Until(deadline)
			ms = int((max(left, 0) + time.Millisecond - 1) / time.Millisecond)
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
		n, err := f.sys.poll(fds, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, &Error{Op: "poll", Port: st.port, Errno: errnoOf(err), Reason: err.Error()}
		}
		if n == 0 {
			return 0, nil
		}
		re := fds[0].Revents
		if re&(unix.POLLERR|unix.POLLNVAL) != 0 {
			e := &Error{Op: "poll", Port: st.port, Reason: "netmap answered POLLERR: no port is registered on this descriptor"}
			if st.csb {
				e.Reason = "netmap answered POLLERR: the descriptor is in CSB mode, where only the sync kloop drives the rings"
			}
			return re, e
		}
		return re, nil
	}
}

func checkCSB(op ReqType, port string, atok, ktoa uint64) error {
	for _, a := range []struct {
		name string
		addr uint64
	}{{"csb_atok", atok}, {"csb_ktoa", ktoa}} {
		if a.addr == 0 {
			return &Error{Op: op.String(), Port: port, Errno: unix.EFAULT, Reason: a.name + " is 0: both CSB arrays need an address"}
		}
		if a.addr%CSBAlign != 0 {
			return &Error{Op: op.String(), Port: port, Errno: unix.EINVAL,
				Reason: fmt.Sprintf("%s %#x is not aligned to %d bytes: the kernel requires each CSB array to start on an entry boundary", a.name, a.addr, CSBAlign)}
		}
	}
	return nil
}

// CSBEnable puts the registered descriptor in CSB mode (CSB_ENABLE): the
// kernel checks that it can read atok and write ktoa, one 64-byte entry per
// bound ring each (TX rings, then RX rings), and initializes both arrays
// from the rings' state. The port must have been registered with
// netmap.FlagExclusive, no sync kloop may be running, and both addresses
// must be 64-byte aligned. From then on TxSync, RxSync and Poll are refused:
// only the sync kloop drives the rings. The memory must stay mapped for as
// long as the descriptor is in CSB mode.
func (f *File) CSBEnable(atok, ktoa uintptr) error {
	fd, st := f.state()
	if fd < 0 {
		return closedError(ReqCSBEnable.String())
	}
	if !st.registered {
		// The kernel would answer 0 and do nothing: with no ring bound
		// there is nothing to validate or initialize.
		return &Error{Op: ReqCSBEnable.String(), Errno: unix.ENXIO,
			Reason: "no port is registered on this descriptor: the kernel would accept CSB_ENABLE and enable nothing; Register first, with FlagExclusive"}
	}
	if err := checkCSB(ReqCSBEnable, st.port, uint64(atok), uint64(ktoa)); err != nil {
		return err
	}
	r := &Request{Type: ReqCSBEnable, Name: st.port, Options: []Option{&CSBOption{Atok: uint64(atok), Ktoa: uint64(ktoa)}}}
	rep, errno, err := f.ctrl(r.Type.String(), r)
	if err != nil {
		return err
	}
	if err := result(r, rep, errno, st.failure(st.port)); err != nil {
		return err
	}
	f.mu.Lock()
	f.st.csb = true
	f.mu.Unlock()
	return nil
}

// SyncKloopStart runs the kernel's sync kloop on the descriptor
// (SYNC_KLOOP_START) and returns only when SyncKloopStop is called from
// another goroutine, or at once with an error. The descriptor must be in
// CSB mode. sleepUS (at most MaxKloopSleepUS) is the pause between passes
// in sleep mode. mode is KloopDirectTX | KloopDirectRX, and needs eventfds.
// eventfds, when given, holds one {ioeventfd, irqfd} pair per bound ring,
// TX rings first; with every ioeventfd valid the loop sleeps on them
// instead of polling. FreeBSD's kernel has no eventfd support: there the
// loop always runs in sleep mode and the hypervisor raises the interrupts.
//
// The calling goroutine's thread is held in the kernel for the whole run.
func (f *File) SyncKloopStart(sleepUS uint32, mode uint32, eventfds [][2]int32) error {
	op := ReqSyncKloopStart.String()
	fd, st := f.state()
	if fd < 0 {
		return closedError(op)
	}
	local := func(errno unix.Errno, reason string) error {
		return &Error{Op: op, Port: st.port, Errno: errno, Reason: reason}
	}
	switch {
	case sleepUS > MaxKloopSleepUS:
		return local(unix.EINVAL, fmt.Sprintf("sleep_us %d is over the kernel's limit of %d (1 s)", sleepUS, MaxKloopSleepUS))
	case mode&^kloopModeMask != 0:
		return local(unix.EINVAL, fmt.Sprintf("mode %#x has bits other than DIRECT_TX (1) and DIRECT_RX (2)", mode))
	case len(eventfds) > 0 && !f.eventfds:
		return local(unix.EOPNOTSUPP, "this kernel's sync kloop has no eventfd support (FreeBSD): it would mark the option EOPNOTSUPP and return at once without running; start it without eventfds and raise interrupts from the hypervisor")
	case mode != 0 && len(eventfds) == 0:
		// The kernel accepts this, then never processes the direct rings:
		// direct rings are served from eventfd wake-ups only.
		return local(unix.EINVAL, "direct mode needs eventfds: without them the kernel would never process the direct rings")
	}
	body := make([]byte, SyncKloopStartSize)
	(&SyncKloopStart{SleepUS: sleepUS}).Encode(body)
	r := &Request{Type: ReqSyncKloopStart, Name: st.port, Body: body}
	if mode != 0 {
		r.Options = append(r.Options, &KloopModeOption{Mode: mode})
	}
	if len(eventfds) > 0 {
		r.Options = append(r.Options, &EventfdsOption{Pairs: eventfds})
	}
	for attempt := 0; ; attempt++ {
		f.mu.Lock()
		f.kloops++
		stops := f.stops
		f.mu.Unlock()
		rep, errno, err := f.ctrl(op, r)
		f.mu.Lock()
		f.kloops--
		stopped := f.stops != stops
		f.mu.Unlock()
		if err != nil {
			return err
		}
		if err := result(r, rep, errno, st.failure(st.port)); err != nil {
			return err
		}
		if stopped {
			return nil
		}
		// The kernel returned 0 although nobody asked it to stop. Its
		// stop flag outlives a loop: a SYNC_KLOOP_STOP that found no
		// loop running (one that raced with a START failing) leaves it
		// set, and the next loop ends on its first pass. Exiting reset
		// the flag, so one more start runs properly.
		if attempt > 0 {
			return local(0, "the kernel's sync kloop returned at once twice without being stopped")
		}
	}
}

// SyncKloopStop stops the sync kloop running on the descriptor
// (SYNC_KLOOP_STOP) and returns once it has stopped; SyncKloopStart then
// returns nil. CSB mode stays on. With no SyncKloopStart in progress on this
// File it does nothing: the kernel would leave its stop flag set, and the
// next SYNC_KLOOP_START would return at once without running.
func (f *File) SyncKloopStop() error {
	op := ReqSyncKloopStop.String()
	fd, st := f.state()
	if fd < 0 {
		return closedError(op)
	}
	f.mu.Lock()
	running := f.kloops > 0
	if running {
		f.stops++
	}
	f.mu.Unlock()
	if !running {
		return nil
	}
	r := &Request{Type: ReqSyncKloopStop, Name: st.port}
	rep, errno, err := f.ctrl(op, r)
	if err != nil {
		return err
	}
	return result(r, rep, errno, st.failure(st.port))
}
