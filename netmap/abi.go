// Package netmap holds the netmap memory model in Go: the byte-exact views of
// netmap_if, netmap_ring and netmap_slot over shared memory, the region
// builder that lays those out as netmap's allocator does, the kernel-side ring
// state with its head/cur/tail validation, the port-name grammar, and the Port
// interface that every backend (kernel netmap, AF_XDP, pipes, the switch)
// implements.
//
// The layouts are the ABI of netmap API version 14 on LP64 little-endian
// machines (amd64 FreeBSD and Linux). They are what an unmodified FreeBSD
// guest's if_ptnet driver reads, so every offset here is pinned by a test.
package netmap

// API is the netmap control API version written in nmreq_header.nr_version.
const API = 14

// Sizes of the fixed structures of the shared region.
const (
	SlotSize       = 16  // struct netmap_slot
	RingHeaderSize = 256 // struct netmap_ring up to slot[0]
	IfHeaderSize   = 56  // struct netmap_if up to ring_ofs[0]
	IfNameSize     = 16  // IFNAMSIZ of netmap_if.ni_name
	CacheLine      = 128 // NM_CACHE_ALIGN
	ReqIfNameSize  = 64  // NETMAP_REQ_IFNAMSIZ of nmreq_header.nr_name
)

// Slot flags (netmap_slot.flags).
const (
	NSBufChanged = 0x0001 // buf_idx changed: the other side must remap it
	NSReport     = 0x0002 // ask for a completion report
	NSForward    = 0x0004 // forward to the peer (host <-> NIC)
	NSNoLearn    = 0x0008 // VALE: do not learn the source MAC
	NSIndirect   = 0x0010 // VALE TX: data is at ptr
	NSMoreFrag   = 0x0020 // more fragments of this packet follow
	NSTxMon      = 0x0040 // monitor: came from a TX ring
	NSPortShift  = 8      // VALE: destination port in the high byte
	NSPortMask   = 0xff00
	MaxFrags     = 64 // NETMAP_MAX_FRAGS
)

// Ring flags (netmap_ring.flags).
const (
	NRTimestamp = 0x0002
	NRForward   = 0x0004
)

// netmap_if.ni_flags.
const NIPrivMem = 0x1

// RegMode is nmreq_register.nr_mode: which rings a file descriptor binds.
type RegMode uint32

// Register modes (NR_REG_*).
const (
	RegDefault   RegMode = 0 // rejected by NIOCCTRL
	RegAllNIC    RegMode = 1 // all hardware rings
	RegSW        RegMode = 2 // host rings only
	RegNICSW     RegMode = 3 // hardware and host rings
	RegOneNIC    RegMode = 4 // hardware ring nr_ringid
	RegPipeMastr RegMode = 5 // deprecated, EINVAL
	RegPipeSlave RegMode = 6 // deprecated, EINVAL
	RegNull      RegMode = 7 // null port
	RegOneSW     RegMode = 8 // host ring nr_ringid
)

func (m RegMode) String() string {
	switch m {
	case RegDefault:
		return "NR_REG_DEFAULT"
	case RegAllNIC:
		return "NR_REG_ALL_NIC"
	case RegSW:
		return "NR_REG_SW"
	case RegNICSW:
		return "NR_REG_NIC_SW"
	case RegOneNIC:
		return "NR_REG_ONE_NIC"
	case RegPipeMastr:
		return "NR_REG_PIPE_MASTER"
	case RegPipeSlave:
		return "NR_REG_PIPE_SLAVE"
	case RegNull:
		return "NR_REG_NULL"
	case RegOneSW:
		return "NR_REG_ONE_SW"
	}
	return "NR_REG_?"
}

// Register flags (nmreq_register.nr_flags, NR_*).
const (
	FlagMonitorTx    = 0x100
	FlagMonitorRx    = 0x200
	FlagZcopyMon     = 0x400
	FlagExclusive    = 0x800
	FlagRxRingsOnly  = 0x2000
	FlagTxRingsOnly  = 0x4000
	FlagAcceptVnetHd = 0x8000
	FlagDoRxPoll     = 0x10000
	FlagNoTxPoll     = 0x20000
)

// Sync flags passed to a ring's sync and published in nm_csb_atok.sync_flags.
const (
	NAFForceRead    = 1 // NAF_FORCE_READ
	NAFForceReclaim = 2 // NAF_FORCE_RECLAIM
)

// MarshalText makes RegMode read as its netmap name in JSON.
func (m RegMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }
