//go:build linux || freebsd

package kernel

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ptbhyve/ptbhyve/netmap"
)

// Error is a failed netmap control operation. It wraps the errno (and each
// failing option's status), so errors.Is(err, unix.EBUSY) works.
//
// Checks this package makes before calling the kernel, for requests the
// kernel would refuse or silently mishandle, also return an *Error, with
// the errno the kernel would have used.
type Error struct {
	Op   string // the request (REGISTER, CSB_ENABLE, ...) or operation (open, mmap, poll)
	Port string // the port name, when there is one
	// Errno is what the system call returned; 0 if it succeeded but an
	// option came back with a nonzero status (see Options).
	Errno unix.Errno
	// Options lists the options the kernel marked with a nonzero
	// nro_status. libnetmap reports these in preference to errno, and so
	// does Reason.
	Options []OptionStatus
	Reason  string // what the failure means, and the fix when there is one
}

// OptionStatus is one option's nro_status after a request.
type OptionStatus struct {
	Type   OptType
	Status unix.Errno
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("netmap ")
	b.WriteString(e.Op)
	if e.Port != "" {
		b.WriteString(" ")
		b.WriteString(e.Port)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	if e.Errno != 0 {
		fmt.Fprintf(&b, " (%s)", errnoName(e.Errno))
	}
	for _, o := range e.Options {
		fmt.Fprintf(&b, " [option %v: %s]", o.Type, errnoName(o.Status))
	}
	return b.String()
}

// Unwrap returns the errno and the options' statuses.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Errno != 0 {
		errs = append(errs, e.Errno)
	}
	for _, o := range e.Options {
		if o.Status != e.Errno {
			errs = append(errs, o.Status)
		}
	}
	return errs
}

func errnoName(e unix.Errno) string {
	if e == unix.EOPNOTSUPP {
		return "EOPNOTSUPP" // netmap's name; Linux's table says ENOTSUP
	}
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return fmt.Sprintf("errno %d", int(e))
}

// failure is what explain needs to know about a failed request.
type failure struct {
	op      ReqType
	port    string
	errno   unix.Errno
	options []OptionStatus
	// What this descriptor knows about itself before the call.
	registered bool
	csb        bool
	reg        *Register // the REGISTER request, for REGISTER failures
	flags      uint64    // the flags the descriptor is (being) registered with
	memID      uint16    // PORT_INFO_GET / POOLS_INFO_GET mem id
}

// statusOptions picks the options whose nonzero nro_status means
// something. All options start with status EOPNOTSUPP and the kernel writes
// every option header back, so when a request fails for another reason
// before reaching its options they all read EOPNOTSUPP: that only means "not
// processed", and blaming an option for it would mislead.
func statusOptions(r *Request, rep Reply, errno unix.Errno) []OptionStatus {
	var out []OptionStatus
	for i, o := range r.Options {
		st := unix.Errno(rep.Status[i])
		if st == 0 {
			continue
		}
		if st == unix.EOPNOTSUPP && errno != 0 && errno != unix.EOPNOTSUPP {
			continue
		}
		out = append(out, OptionStatus{Type: o.Type(), Status: st})
	}
	return out
}

// newError builds the error for a failed request: the reason given by the
// first option with a status the kernel set, else by the errno.
func newError(f failure) *Error {
	e := &Error{Op: f.op.String(), Port: f.port, Errno: f.errno, Options: f.options}
	for _, o := range f.options {
		if r := f.optionReason(o); r != "" {
			e.Reason = r
			return e
		}
	}
	e.Reason = f.errnoReason()
	return e
}

func (f failure) optionReason(o OptionStatus) string {
	switch o.Type {
	case OptCSB:
		switch o.Status {
		case unix.EINVAL:
			if f.flags&netmap.FlagExclusive == 0 {
				return fmt.Sprintf("CSB mode needs port %s registered with NR_EXCLUSIVE (FlagExclusive)", f.port)
			}
			return "CSB mode needs both CSB arrays aligned to 64 bytes and the port registered with NR_EXCLUSIVE"
		case unix.EBUSY:
			return "a sync kloop is running on this descriptor: stop it before changing the CSB"
		case unix.EFAULT:
			return "the kernel could not read the atok array or write the ktoa array: each needs 64 bytes of mapped, writable memory per bound ring"
		}
	case OptExtmem:
		switch o.Status {
		case unix.EOPNOTSUPP:
			return "this kernel has no external-memory support (Linux: build netmap with CONFIG_NETMAP_EXTMEM)"
		case unix.EINVAL, unix.EFAULT, unix.ENOMEM:
			return "the kernel refused the external memory: check that usrptr maps nr_memsize bytes and that the pool sizes fit in it"
		}
	case OptOffsets:
		switch o.Status {
		case unix.EOPNOTSUPP:
			return fmt.Sprintf("port %s does not support buffer offsets", f.port)
		case unix.EINVAL:
			return "bad OFFSETS: max_offset must fit in a buffer and in offset_bits, and initial_offset must not exceed max_offset"
		case unix.EBUSY:
			return "the rings are already open with a smaller offset mask or max_offset"
		}
	case OptSyncKloopEventfds:
		switch {
		case o.Status == unix.EOPNOTSUPP && f.op == ReqSyncKloopStart:
			return "this kernel's sync kloop has no eventfd support (FreeBSD): it ignored the option and returned without running; run it without eventfds and raise interrupts from the hypervisor"
		case o.Status == unix.EINVAL:
			return "SYNC_KLOOP_EVENTFDS needs exactly one {ioeventfd, irqfd} pair per bound ring (TX rings first, then RX rings), and valid ioeventfds for direct mode"
		}
	case OptSyncKloopMode:
		if o.Status == unix.EINVAL {
			return "SYNC_KLOOP_MODE accepts only the bits DIRECT_TX (1) and DIRECT_RX (2)"
		}
	}
	switch o.Status {
	case unix.EOPNOTSUPP:
		return fmt.Sprintf("option %v is not supported with %v by this kernel", o.Type, f.op)
	case unix.EINVAL:
		return fmt.Sprintf("option %v is invalid (unknown type or given twice)", o.Type)
	}
	return ""
}

func (f failure) errnoReason() string {
	switch f.errno {
	case unix.EMSGSIZE:
		return fmt.Sprintf("the request's body and options exceed %d bytes (NETMAP_REQ_MAXSIZE)", MaxRequestSize)
	case unix.EFAULT:
		return "the kernel could not read or write the request's memory: an address in the request or its options is bad"
	case unix.ENOMEM:
		return "the kernel ran out of memory"
	}
	switch f.op {
	case ReqRegister:
		return f.registerReason()
	case ReqPortInfoGet, ReqPoolsInfoGet, ReqPortHdrGet:
		switch f.errno {
		case unix.ENXIO:
			return fmt.Sprintf("no such interface %s", f.port)
		case unix.EINVAL:
			if f.port == "" || f.memID != 0 {
				return fmt.Sprintf("no netmap allocator with mem_id %d", max(f.memID, 1))
			}
			return fmt.Sprintf("the kernel rejected the name %s", f.port)
		}
	case ReqPortHdrSet:
		switch f.errno {
		case unix.EINVAL:
			return "the virtio-net header length must be 0, 10 or 12"
		case unix.ENXIO:
			return fmt.Sprintf("%s is not a VALE port: only VALE ports take a virtio-net header length", f.port)
		}
	case ReqCSBEnable:
		switch f.errno {
		case unix.EINVAL:
			return fmt.Sprintf("CSB mode needs port %s registered with NR_EXCLUSIVE (FlagExclusive) and both arrays aligned to 64 bytes", f.port)
		case unix.EBUSY:
			return "a sync kloop is running on this descriptor: stop it before changing the CSB"
		}
	case ReqSyncKloopStart:
		switch f.errno {
		case unix.ENXIO:
			return "no port is registered on this descriptor, or it left netmap mode: Register first"
		case unix.EINVAL:
			if !f.csb {
				return "the descriptor is not in CSB mode: call CSBEnable (or Register with a CSBOption) before starting the sync kloop"
			}
			return "the kernel refused the kloop: sleep_us over 1 s, bad mode bits or bad eventfds"
		case unix.EBUSY:
			return "a sync kloop is already running on this descriptor"
		}
	case ReqSyncKloopStop:
		if f.errno == unix.ENXIO {
			return "no port is registered on this descriptor, or it left netmap mode"
		}
	}
	if f.errno == 0 {
		return "the kernel did not process every option"
	}
	return f.errno.Error()
}

func (f failure) registerReason() string {
	switch f.errno {
	case unix.EBUSY:
		if f.registered {
			return "this descriptor already has a port registered: netmap binds one port per open /dev/netmap, open another descriptor"
		}
		return fmt.Sprintf("port %s is busy: another process holds it with NR_EXCLUSIVE (or we asked for NR_EXCLUSIVE on rings it already uses), or it is attached to a VALE switch", f.port)
	case unix.EIO:
		return fmt.Sprintf("port %s uses virtio-net headers: register with NR_ACCEPT_VNET_HDR (FlagAcceptVnetHd) (or its driver reported no RX buffer size)", f.port)
	case unix.ENXIO:
		return fmt.Sprintf("no such interface %s (or it cannot be put in netmap mode)", f.port)
	case unix.EOPNOTSUPP:
		return "an option was not consumed by REGISTER"
	case unix.EINVAL:
		if f.reg == nil {
			break
		}
		switch m := f.reg.Mode; m {
		case netmap.RegDefault:
			return "nr_mode NR_REG_DEFAULT is rejected by NIOCCTRL: choose a mode such as RegAllNIC"
		case netmap.RegPipeMastr, netmap.RegPipeSlave:
			return fmt.Sprintf("nr_mode %v is deprecated and rejected: name pipes with the x{y / x}y syntax", m)
		case netmap.RegAllNIC, netmap.RegSW, netmap.RegNICSW, netmap.RegOneNIC, netmap.RegNull, netmap.RegOneSW:
		default:
			return fmt.Sprintf("nr_mode %d is not a netmap register mode", uint32(m))
		}
		return fmt.Sprintf("invalid registration of %s: mode %v with ring id %d must select rings the port has (host rings for the SW modes), and mem_id %d must name an existing allocator",
			f.port, f.reg.Mode, f.reg.RingID, f.reg.MemID)
	}
	return f.errno.Error()
}
