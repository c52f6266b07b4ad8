// Package kernel is the control layer for kernel netmap: the /dev/netmap
// device of FreeBSD (and of Linux with the out-of-tree netmap module).
//
// It has two halves. The portable half (request.go, ioctl.go) encodes the
// NIOCCTRL requests of netmap API version 14 byte for byte — nmreq_header,
// the request bodies and the option chain — and computes the ioctl numbers
// of both operating systems; it is pure Go and builds everywhere. The other
// half (file.go, linux || freebsd) opens /dev/netmap, issues the requests,
// maps the shared region, and turns errno values into errors that say which
// request failed on which port and what the kernel meant by it.
//
// The layouts are those of research/netmap-ptnetmap-abi.md §2 on LP64
// little-endian machines (amd64 FreeBSD and Linux). Every size and offset is
// pinned by a test.
package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/ptbhyve/ptbhyve/netmap"
)

var le = binary.LittleEndian

// Sizes of the fixed parts of a request.
const (
	HeaderSize       = 88   // struct nmreq_header
	OptionHeaderSize = 24   // struct nmreq_option
	MaxRequestSize   = 4096 // NETMAP_REQ_MAXSIZE: body plus all options, option headers included
	// MaxNameLen is the longest port name nr_name can carry: 64 bytes
	// including the terminating NUL.
	MaxNameLen = netmap.ReqIfNameSize - 1
)

// Offsets inside nmreq_header.
const (
	hdrVersion  = 0
	hdrReqType  = 2
	hdrReserved = 4
	hdrName     = 8
	hdrOptions  = 72
	hdrBody     = 80
)

// Offsets inside nmreq_option.
const (
	optNext    = 0
	optReqType = 8
	optStatus  = 12
	optSize    = 16
)

// ReqType is nmreq_header.nr_reqtype.
type ReqType uint16

// Request types (NETMAP_REQ_*).
const (
	ReqRegister           ReqType = 1
	ReqPortInfoGet        ReqType = 2
	ReqValeAttach         ReqType = 3
	ReqValeDetach         ReqType = 4
	ReqValeList           ReqType = 5
	ReqPortHdrSet         ReqType = 6
	ReqPortHdrGet         ReqType = 7
	ReqValeNewIf          ReqType = 8
	ReqValeDelIf          ReqType = 9
	ReqValePollingEnable  ReqType = 10
	ReqValePollingDisable ReqType = 11
	ReqPoolsInfoGet       ReqType = 12
	ReqSyncKloopStart     ReqType = 13
	ReqSyncKloopStop      ReqType = 14
	ReqCSBEnable          ReqType = 15
)

var reqNames = [...]string{
	ReqRegister:           "REGISTER",
	ReqPortInfoGet:        "PORT_INFO_GET",
	ReqValeAttach:         "VALE_ATTACH",
	ReqValeDetach:         "VALE_DETACH",
	ReqValeList:           "VALE_LIST",
	ReqPortHdrSet:         "PORT_HDR_SET",
	ReqPortHdrGet:         "PORT_HDR_GET",
	ReqValeNewIf:          "VALE_NEWIF",
	ReqValeDelIf:          "VALE_DELIF",
	ReqValePollingEnable:  "VALE_POLLING_ENABLE",
	ReqValePollingDisable: "VALE_POLLING_DISABLE",
	ReqPoolsInfoGet:       "POOLS_INFO_GET",
	ReqSyncKloopStart:     "SYNC_KLOOP_START",
	ReqSyncKloopStop:      "SYNC_KLOOP_STOP",
	ReqCSBEnable:          "CSB_ENABLE",
}

func (t ReqType) String() string {
	if int(t) < len(reqNames) && reqNames[t] != "" {
		return reqNames[t]
	}
	return fmt.Sprintf("NETMAP_REQ_%d", uint16(t))
}

// Sizes of the request bodies.
const (
	RegisterSize       = 56 // struct nmreq_register
	PortInfoSize       = 32 // struct nmreq_port_info_get
	ValeAttachSize     = 64 // struct nmreq_vale_attach
	ValeDetachSize     = 8  // struct nmreq_vale_detach
	ValeListSize       = 8  // struct nmreq_vale_list
	PortHdrSize        = 8  // struct nmreq_port_hdr
	ValeNewIfSize      = 16 // struct nmreq_vale_newif
	ValePollingSize    = 16 // struct nmreq_vale_polling
	PoolsInfoSize      = 64 // struct nmreq_pools_info
	SyncKloopStartSize = 8  // struct nmreq_sync_kloop_start
)

// BodySize is the size of the body a request of type t carries, and false
// for a type the kernel does not know. A size of 0 means the request has no
// body: nr_body must then be 0, and must be nonzero otherwise (EINVAL).
func (t ReqType) BodySize() (int, bool) {
	switch t {
	case ReqRegister:
		return RegisterSize, true
	case ReqPortInfoGet:
		return PortInfoSize, true
	case ReqValeAttach:
		return ValeAttachSize, true
	case ReqValeDetach:
		return ValeDetachSize, true
	case ReqValeList:
		return ValeListSize, true
	case ReqPortHdrSet, ReqPortHdrGet:
		return PortHdrSize, true
	case ReqValeNewIf:
		return ValeNewIfSize, true
	case ReqValeDelIf, ReqSyncKloopStop, ReqCSBEnable:
		return 0, true
	case ReqValePollingEnable, ReqValePollingDisable:
		return ValePollingSize, true
	case ReqPoolsInfoGet:
		return PoolsInfoSize, true
	case ReqSyncKloopStart:
		return SyncKloopStartSize, true
	}
	return 0, false
}

// Header is struct nmreq_header, the NIOCCTRL ioctl argument.
type Header struct {
	Version  uint16 // nr_version: netmap.API
	ReqType  ReqType
	Reserved uint32 // nr_reserved: must be 0, the kernel uses it internally
	Name     string // nr_name: at most MaxNameLen bytes
	Options  uint64 // nr_options: user address of the first option, or 0
	Body     uint64 // nr_body: user address of the body, or 0
}

// CheckName reports whether name fits nr_name: at most MaxNameLen bytes (the
// 64th is the terminating NUL, which the kernel forces) and no NUL inside.
func CheckName(name string) error {
	if len(name) > MaxNameLen {
		return fmt.Errorf("netmap: port name %q is %d bytes long; nmreq_header.nr_name holds at most %d bytes and a NUL", name, len(name), MaxNameLen)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("netmap: port name %q contains a NUL byte; the kernel would read only the part before it", name)
	}
	return nil
}

// Encode writes h into b[:HeaderSize]. It fails only on a bad name.
func (h *Header) Encode(b []byte) error {
	if err := CheckName(h.Name); err != nil {
		return err
	}
	b = b[:HeaderSize]
	le.PutUint16(b[hdrVersion:], h.Version)
	le.PutUint16(b[hdrReqType:], uint16(h.ReqType))
	le.PutUint32(b[hdrReserved:], h.Reserved)
	name := b[hdrName:hdrOptions]
	clear(name)
	copy(name, h.Name)
	le.PutUint64(b[hdrOptions:], h.Options)
	le.PutUint64(b[hdrBody:], h.Body)
	return nil
}

// Decode reads h from b[:HeaderSize]. The name ends at the first NUL, or at
// byte 63 as the kernel forces it.
func (h *Header) Decode(b []byte) {
	b = b[:HeaderSize]
	h.Version = le.Uint16(b[hdrVersion:])
	h.ReqType = ReqType(le.Uint16(b[hdrReqType:]))
	h.Reserved = le.Uint32(b[hdrReserved:])
	h.Name = cString(b[hdrName : hdrName+MaxNameLen])
	h.Options = le.Uint64(b[hdrOptions:])
	h.Body = le.Uint64(b[hdrBody:])
}

func cString(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// Register is struct nmreq_register, the body of REGISTER. Fields marked out
// are written by the kernel; in/out fields are requests the kernel may
// honour (slot and ring counts only for ports created on the fly).
type Register struct {
	Offset      uint64         // out: offset of this fd's netmap_if in the region
	MemSize     uint64         // out: size of the region to mmap
	TxSlots     uint32         // in/out
	RxSlots     uint32         // in/out
	TxRings     uint16         // in/out: hardware TX rings
	RxRings     uint16         // in/out
	HostTxRings uint16         // in/out
	HostRxRings uint16         // in/out
	MemID       uint16         // in/out: 0 lets netmap choose
	RingID      uint16         // in: ring index for RegOneNIC / RegOneSW
	Mode        netmap.RegMode // in: NR_REG_*
	ExtraBufs   uint32         // in/out: extra buffers wanted / obtained
	Flags       uint64         // in: netmap.Flag* bits
}

// Encode writes r into b[:RegisterSize], padding zeroed.
func (r *Register) Encode(b []byte) {
	b = b[:RegisterSize]
	le.PutUint64(b[0:], r.Offset)
	le.PutUint64(b[8:], r.MemSize)
	le.PutUint32(b[16:], r.TxSlots)
	le.PutUint32(b[20:], r.RxSlots)
	le.PutUint16(b[24:], r.TxRings)
	le.PutUint16(b[26:], r.RxRings)
	le.PutUint16(b[28:], r.HostTxRings)
	le.PutUint16(b[30:], r.HostRxRings)
	le.PutUint16(b[32:], r.MemID)
	le.PutUint16(b[34:], r.RingID)
	le.PutUint32(b[36:], uint32(r.Mode))
	le.PutUint32(b[40:], r.ExtraBufs)
	le.PutUint32(b[44:], 0)
	le.PutUint64(b[48:], r.Flags)
}

// Decode reads r from b[:RegisterSize].
func (r *Register) Decode(b []byte) {
	b = b[:RegisterSize]
	r.Offset = le.Uint64(b[0:])
	r.MemSize = le.Uint64(b[8:])
	r.TxSlots = le.Uint32(b[16:])
	r.RxSlots = le.Uint32(b[20:])
	r.TxRings = le.Uint16(b[24:])
	r.RxRings = le.Uint16(b[26:])
	r.HostTxRings = le.Uint16(b[28:])
	r.HostRxRings = le.Uint16(b[30:])
	r.MemID = le.Uint16(b[32:])
	r.RingID = le.Uint16(b[34:])
	r.Mode = netmap.RegMode(le.Uint32(b[36:]))
	r.ExtraBufs = le.Uint32(b[40:])
	r.Flags = le.Uint64(b[48:])
}

// PortInfo is struct nmreq_port_info_get, the body of PORT_INFO_GET. The
// counts are inputs only for ports created on the fly; MemID is in/out.
type PortInfo struct {
	MemSize     uint64
	TxSlots     uint32
	RxSlots     uint32
	TxRings     uint16
	RxRings     uint16
	HostTxRings uint16
	HostRxRings uint16
	MemID       uint16
}

// Encode writes p into b[:PortInfoSize], padding zeroed.
func (p *PortInfo) Encode(b []byte) {
	b = b[:PortInfoSize]
	le.PutUint64(b[0:], p.MemSize)
	le.PutUint32(b[8:], p.TxSlots)
	le.PutUint32(b[12:], p.RxSlots)
	le.PutUint16(b[16:], p.TxRings)
	le.PutUint16(b[18:], p.RxRings)
	le.PutUint16(b[20:], p.HostTxRings)
	le.PutUint16(b[22:], p.HostRxRings)
	le.PutUint16(b[24:], p.MemID)
	clear(b[26:32])
}

// Decode reads p from b[:PortInfoSize].
func (p *PortInfo) Decode(b []byte) {
	b = b[:PortInfoSize]
	p.MemSize = le.Uint64(b[0:])
	p.TxSlots = le.Uint32(b[8:])
	p.RxSlots = le.Uint32(b[12:])
	p.TxRings = le.Uint16(b[16:])
	p.RxRings = le.Uint16(b[18:])
	p.HostTxRings = le.Uint16(b[20:])
	p.HostRxRings = le.Uint16(b[22:])
	p.MemID = le.Uint16(b[24:])
}

// PoolsInfo is struct nmreq_pools_info on the wire: the body of
// POOLS_INFO_GET and the in/out part of the EXTMEM option. MemID is in/out,
// the rest out (for EXTMEM, a zero objtotal or objsize asks for the
// default). It is netmap.PoolsInfo with the codec; convert freely.
type PoolsInfo netmap.PoolsInfo

// Encode writes p into b[:PoolsInfoSize], padding zeroed.
func (p *PoolsInfo) Encode(b []byte) {
	b = b[:PoolsInfoSize]
	le.PutUint64(b[0:], p.MemSize)
	le.PutUint16(b[8:], p.MemID)
	clear(b[10:16])
	le.PutUint64(b[16:], p.IfPoolOffset)
	le.PutUint32(b[24:], p.IfPoolObjTotal)
	le.PutUint32(b[28:], p.IfPoolObjSize)
	le.PutUint64(b[32:], p.RingPoolOffset)
	le.PutUint32(b[40:], p.RingPoolObjTotal)
	le.PutUint32(b[44:], p.RingPoolObjSize)
	le.PutUint64(b[48:], p.BufPoolOffset)
	le.PutUint32(b[56:], p.BufPoolObjTotal)
	le.PutUint32(b[60:], p.BufPoolObjSize)
}

// Decode reads p from b[:PoolsInfoSize].
func (p *PoolsInfo) Decode(b []byte) {
	b = b[:PoolsInfoSize]
	p.MemSize = le.Uint64(b[0:])
	p.MemID = le.Uint16(b[8:])
	p.IfPoolOffset = le.Uint64(b[16:])
	p.IfPoolObjTotal = le.Uint32(b[24:])
	p.IfPoolObjSize = le.Uint32(b[28:])
	p.RingPoolOffset = le.Uint64(b[32:])
	p.RingPoolObjTotal = le.Uint32(b[40:])
	p.RingPoolObjSize = le.Uint32(b[44:])
	p.BufPoolOffset = le.Uint64(b[48:])
	p.BufPoolObjTotal = le.Uint32(b[56:])
	p.BufPoolObjSize = le.Uint32(b[60:])
}

// MaxKloopSleepUS is the largest sleep_us SYNC_KLOOP_START accepts.
const MaxKloopSleepUS = 1_000_000

// SyncKloopStart is struct nmreq_sync_kloop_start.
type SyncKloopStart struct {
	SleepUS uint32 // sleep between passes in sleep mode; at most MaxKloopSleepUS
}

// Encode writes s into b[:SyncKloopStartSize], padding zeroed.
func (s *SyncKloopStart) Encode(b []byte) {
	b = b[:SyncKloopStartSize]
	le.PutUint32(b[0:], s.SleepUS)
	le.PutUint32(b[4:], 0)
}

// Decode reads s from b[:SyncKloopStartSize].
func (s *SyncKloopStart) Decode(b []byte) { s.SleepUS = le.Uint32(b[:SyncKloopStartSize]) }

// Valid virtio-net header lengths for PORT_HDR_SET.
const (
	VnetHdrNone = 0
	VnetHdrLen  = 10 // struct nm_vnet_hdr
	VnetHdrMrg  = 12 // with num_buffers
)

// OptType is nmreq_option.nro_reqtype.
type OptType uint32

// Option types (NETMAP_REQ_OPT_*).
const (
	OptExtmem            OptType = 1
	OptSyncKloopEventfds OptType = 2
	OptCSB               OptType = 3
	OptSyncKloopMode     OptType = 4
	OptOffsets           OptType = 5
	optMax               OptType = 6 // NETMAP_REQ_OPT_MAX: types at or past it are unknown
)

func (t OptType) String() string {
	switch t {
	case OptExtmem:
		return "EXTMEM"
	case OptSyncKloopEventfds:
		return "SYNC_KLOOP_EVENTFDS"
	case OptCSB:
		return "CSB"
	case OptSyncKloopMode:
		return "SYNC_KLOOP_MODE"
	case OptOffsets:
		return "OFFSETS"
	}
	return fmt.Sprintf("NETMAP_REQ_OPT_%d", uint32(t))
}

// Sizes of the options, header included.
const (
	ExtmemOptSize    = 96 // struct nmreq_opt_extmem
	CSBOptSize       = 40 // struct nmreq_opt_csb
	KloopModeOptSize = 32 // struct nmreq_opt_sync_kloop_mode
	OffsetsOptSize   = 56 // struct nmreq_opt_offsets
	EventfdEntrySize = 8  // one {int32 ioeventfd; int32 irqfd} of SYNC_KLOOP_EVENTFDS
)

// EventfdsOptSize is the size of a SYNC_KLOOP_EVENTFDS option with n
// entries; its nro_size must be exactly this.
func EventfdsOptSize(n int) int { return OptionHeaderSize + EventfdEntrySize*n }

// SYNC_KLOOP_MODE bits.
const (
	KloopDirectTX = 1 // NM_OPT_SYNC_KLOOP_DIRECT_TX
	KloopDirectRX = 2 // NM_OPT_SYNC_KLOOP_DIRECT_RX
	kloopModeMask = KloopDirectTX | KloopDirectRX
)

// An Option is one element of a request's option chain. After the request
// has run, options whose status is 0 have had their outputs decoded back
// into them (EXTMEM's pools information, OFFSETS's max offset).
type Option interface {
	Type() OptType
	// Size is the option's size in bytes, header included.
	Size() int
	// nroSize is the value for nro_size: the size for variable-size
	// options, 0 for fixed-size ones as netmap.h asks.
	nroSize() uint64
	// encodeBody writes the fields after the header into b[:Size()].
	encodeBody(b []byte)
	// decodeBody reads the kernel's outputs back from b[:Size()].
	decodeBody(b []byte)
}

// ExtmemOption is NETMAP_REQ_OPT_EXTMEM: REGISTER carves the port's memory
// out of the caller's UsrPtr, Info.MemSize bytes. Info is in/out.
type ExtmemOption struct {
	UsrPtr uint64
	Info   PoolsInfo
}

func (*ExtmemOption) Type() OptType   { return OptExtmem }
func (*ExtmemOption) Size() int       { return ExtmemOptSize }
func (*ExtmemOption) nroSize() uint64 { return 0 }
func (o *ExtmemOption) encodeBody(b []byte) {
	le.PutUint64(b[24:], o.UsrPtr)
	o.Info.Encode(b[32:])
}
func (o *ExtmemOption) decodeBody(b []byte) {
	o.UsrPtr = le.Uint64(b[24:])
	o.Info.Decode(b[32:])
}

// EventfdsOption is NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS: one
// {ioeventfd, irqfd} pair per bound ring, TX rings first, then RX rings.
// FreeBSD does not support it.
type EventfdsOption struct {
	Pairs [][2]int32
}

func (*EventfdsOption) Type() OptType     { return OptSyncKloopEventfds }
func (o *EventfdsOption) Size() int       { return EventfdsOptSize(len(o.Pairs)) }
func (o *EventfdsOption) nroSize() uint64 { return uint64(o.Size()) }
func (o *EventfdsOption) encodeBody(b []byte) {
	for i, p := range o.Pairs {
		off := OptionHeaderSize + EventfdEntrySize*i
		le.PutUint32(b[off:], uint32(p[0]))
		le.PutUint32(b[off+4:], uint32(p[1]))
	}
}
func (o *EventfdsOption) decodeBody([]byte) {}

// CSBOption is NETMAP_REQ_OPT_CSB: the user addresses of the nm_csb_atok
// and nm_csb_ktoa arrays, one 64-byte entry per bound ring each.
type CSBOption struct {
	Atok uint64
	Ktoa uint64
}

func (*CSBOption) Type() OptType   { return OptCSB }
func (*CSBOption) Size() int       { return CSBOptSize }
func (*CSBOption) nroSize() uint64 { return 0 }
func (o *CSBOption) encodeBody(b []byte) {
	le.PutUint64(b[24:], o.Atok)
	le.PutUint64(b[32:], o.Ktoa)
}
func (o *CSBOption) decodeBody([]byte) {}

// KloopModeOption is NETMAP_REQ_OPT_SYNC_KLOOP_MODE.
type KloopModeOption struct {
	Mode uint32 // KloopDirectTX | KloopDirectRX; other bits are invalid
}

func (*KloopModeOption) Type() OptType         { return OptSyncKloopMode }
func (*KloopModeOption) Size() int             { return KloopModeOptSize }
func (*KloopModeOption) nroSize() uint64       { return 0 }
func (o *KloopModeOption) encodeBody(b []byte) { le.PutUint32(b[24:], o.Mode) }
func (o *KloopModeOption) decodeBody([]byte)   {}

// OffsetsOption is NETMAP_REQ_OPT_OFFSETS. MaxOffset is in/out: the kernel
// reports the limit actually in force.
type OffsetsOption struct {
	MaxOffset     uint64
	InitialOffset uint64
	Bits          uint32 // 0: the whole 64-bit ptr field
	TxAlign       uint32
	MinGap        uint64
}

func (*OffsetsOption) Type() OptType   { return OptOffsets }
func (*OffsetsOption) Size() int       { return OffsetsOptSize }
func (*OffsetsOption) nroSize() uint64 { return 0 }
func (o *OffsetsOption) encodeBody(b []byte) {
	le.PutUint64(b[24:], o.MaxOffset)
	le.PutUint64(b[32:], o.InitialOffset)
	le.PutUint32(b[40:], o.Bits)
	le.PutUint32(b[44:], o.TxAlign)
	le.PutUint64(b[48:], o.MinGap)
}
func (o *OffsetsOption) decodeBody(b []byte) { o.MaxOffset = le.Uint64(b[24:]) }

// ErrTooLarge is wrapped by the error of a request whose body and options
// exceed MaxRequestSize; the kernel would answer EMSGSIZE.
var ErrTooLarge = errors.New("netmap request exceeds NETMAP_REQ_MAXSIZE")

// Request is one NIOCCTRL request before it is laid out.
type Request struct {
	Type    ReqType
	Name    string   // nr_name; see CheckName
	Body    []byte   // the encoded body: exactly Type.BodySize() bytes, nil if none
	Options []Option // the option chain, in order
}

// Layout says where Encode put the parts of a request in its buffer.
type Layout struct {
	Size    int   // bytes used from the start of the buffer
	Body    int   // offset of the body, 0 if there is none
	Options []int // offset of each option, in chain order
}

// Size is the number of bytes Encode will use: header, body and options.
func (r *Request) Size() int {
	n := HeaderSize + align8(len(r.Body))
	for _, o := range r.Options {
		n += align8(o.Size())
	}
	return n
}

func align8(n int) int { return (n + 7) &^ 7 }

// check validates what the kernel would refuse, with the reason.
func (r *Request) check() error {
	if err := CheckName(r.Name); err != nil {
		return err
	}
	want, ok := r.Type.BodySize()
	if !ok {
		return fmt.Errorf("netmap: unknown request type %d (NIOCCTRL knows 1 to 15)", uint16(r.Type))
	}
	if len(r.Body) != want {
		return fmt.Errorf("netmap: %v takes a %d-byte body, got %d bytes", r.Type, want, len(r.Body))
	}
	total := len(r.Body)
	var seen [optMax]bool
	for _, o := range r.Options {
		t, n := o.Type(), o.Size()
		if t == 0 || t >= optMax {
			return fmt.Errorf("netmap: option type %d is not one the kernel knows (1 to %d)", uint32(t), optMax-1)
		}
		if seen[t] {
			return fmt.Errorf("netmap: option %v appears twice in one request; the kernel would reject both with EINVAL", t)
		}
		seen[t] = true
		total += n
	}
	if total > MaxRequestSize {
		return fmt.Errorf("netmap: %v request carries %d bytes of body and options (%d option(s), headers included); the kernel accepts at most %d (NETMAP_REQ_MAXSIZE): %w",
			r.Type, total, len(r.Options), MaxRequestSize, ErrTooLarge)
	}
	return nil
}

// Encode lays r out in buf as the kernel reads it: the header at offset 0,
// the body right after it, then the options, each at an 8-byte aligned
// offset and linked through nro_next. base is the address the kernel sees
// for buf[0]; the pointer fields (nr_body, nr_options, nro_next) are base
// plus an offset inside buf, so the whole request lives in one buffer. It
// refuses what the kernel would refuse for the request's shape: a bad name,
// a body of the wrong size, an unknown or repeated option, and more than
// MaxRequestSize bytes of body and options.
func (r *Request) Encode(buf []byte, base uint64) (Layout, error) {
	if err := r.check(); err != nil {
		return Layout{}, err
	}
	return r.encode(buf, base)
}

// encode lays r out without checking its shape, so tests can hand the
// fake kernel the malformed requests it must refuse.
func (r *Request) encode(buf []byte, base uint64) (Layout, error) {
	size := r.Size()
	if len(buf) < size {
		return Layout{}, fmt.Errorf("netmap: %v request needs %d bytes, the buffer has %d", r.Type, size, len(buf))
	}
	clear(buf[:size])
	l := Layout{Size: size, Options: make([]int, len(r.Options))}
	off := HeaderSize
	h := Header{Version: netmap.API, ReqType: r.Type, Name: r.Name}
	if len(r.Body) > 0 {
		l.Body = off
		h.Body = base + uint64(off)
		copy(buf[off:], r.Body)
		off += align8(len(r.Body))
	}
	for i, o := range r.Options {
		l.Options[i] = off
		off += align8(o.Size())
	}
	if len(r.Options) > 0 {
		h.Options = base + uint64(l.Options[0])
	}
	if err := h.Encode(buf); err != nil {
		return Layout{}, err
	}
	for i, o := range r.Options {
		b := buf[l.Options[i] : l.Options[i]+o.Size()]
		var next uint64
		if i+1 < len(r.Options) {
			next = base + uint64(l.Options[i+1])
		}
		le.PutUint64(b[optNext:], next)
		le.PutUint32(b[optReqType:], uint32(o.Type()))
		le.PutUint32(b[optStatus:], 0)
		le.PutUint64(b[optSize:], o.nroSize())
		o.encodeBody(b)
	}
	return l, nil
}

// Reply is what the kernel left in a request's buffer.
type Reply struct {
	Header Header
	// Status is each option's nro_status, in chain order: 0 when the
	// kernel recognized and processed it, an errno value otherwise.
	Status []uint32
}

// Decode reads the kernel's answer from the buffer r was encoded in: the
// header, the body (copied back into r.Body) and each option's status.
// Options with status 0 have their outputs decoded back into them. The
// kernel writes the body and option bodies only on success, so after a
// failure they read back as they were sent.
func (r *Request) Decode(buf []byte, l Layout) (Reply, error) {
	if len(buf) < l.Size || len(l.Options) != len(r.Options) {
		return Reply{}, fmt.Errorf("netmap: %v reply does not match the buffer it was encoded in", r.Type)
	}
	var rep Reply
	rep.Header.Decode(buf)
	if len(r.Body) > 0 {
		copy(r.Body, buf[l.Body:l.Body+len(r.Body)])
	}
	rep.Status = make([]uint32, len(r.Options))
	for i, o := range r.Options {
		b := buf[l.Options[i] : l.Options[i]+o.Size()]
		rep.Status[i] = le.Uint32(b[optStatus:])
		if rep.Status[i] == 0 {
			o.decodeBody(b)
		}
	}
	return rep, nil
}
