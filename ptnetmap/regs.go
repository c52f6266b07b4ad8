package ptnetmap

// PCI identity of the two functions (netmap_virt.h).
const (
	PCIVendorID     = 0x1b36
	MemdevDeviceID  = 0x000c
	PtnetDeviceID   = 0x000d
	MemdevName      = "ptnetmap-memdev"
	IOBar           = 0 // I/O BAR: the registers of both functions
	MemBar          = 1 // memdev: the netmap region
	MSIXBar         = 2 // ptnet: MSI-X table and PBA
	PtnetIOSize     = 256
	MemdevIOSize    = 128
	MaxRings        = 32 // kick registers 128+4i must fit the 256-byte window
	VirtioNetHdrLen = 12 // sizeof(struct virtio_net_hdr_mrg_rxbuf)
)

// ptnet registers (BAR0; the device decodes offset & 0xff).
const (
	RegPtfeat      = 0
	RegPtctl       = 4
	RegMacLo       = 8
	RegMacHi       = 12
	RegCSBBAH      = 16 // deprecated single CSB, never used by current guests
	RegCSBBAL      = 20
	RegNifpOfs     = 24
	RegNumTxRings  = 28
	RegNumRxRings  = 32
	RegNumTxSlots  = 36
	RegNumRxSlots  = 40
	RegVnetHdrLen  = 44
	RegHostMemID   = 48
	RegCSBGHBAH    = 52
	RegCSBGHBAL    = 56
	RegCSBHGBAH    = 60
	RegCSBHGBAL    = 64
	RegPtnetEnd    = 68
	RegKickBase    = 128
	PtnetRegMask   = 0xff
	FeatureVnetHdr = 1 // PTNETMAP_F_VNET_HDR
)

// PTCTL commands.
const (
	PtctlCreate = 1
	PtctlDelete = 2
)

// PTCTL status values a guest reads back: 0 or a positive errno, as QEMU
// reports them.
const (
	StatusOK    = 0
	StatusENXIO = 6  // CREATE before both CSB addresses were written
	StatusEFAUL = 14 // a CSB address outside guest memory
	StatusEBUSY = 16
	StatusEINVL = 22 // unknown command, misaligned CSB
)

// memdev registers (BAR0, read-only).
const (
	RegMemsizeLo      = 0
	RegMemsizeHi      = 4
	RegMemID          = 8
	RegIfPoolOfs      = 64
	RegIfPoolObjNum   = 68
	RegIfPoolObjSz    = 72
	RegRingPoolOfs    = 76
	RegRingPoolObjNum = 80
	RegRingPoolObjSz  = 84
	RegBufPoolOfs     = 88
	RegBufPoolObjNum  = 92
	RegBufPoolObjSz   = 96
	RegMemdevEnd      = 100
)

// KickReg is the doorbell register of ring i (TX rings, then RX rings).
func KickReg(i int) uint32 { return RegKickBase + 4*uint32(i) }
