package kernel

// The netmap ioctl numbers, computed from each operating system's _IOC
// encoding (research §3) rather than copied as constants, so the tests can
// pin both systems' numbers from one machine.

// ioctl group and numbers of netmap's commands ('i', 145..151).
const (
	iocGroup   = 'i'
	nrGInfo    = 145 // NIOCGINFO, legacy struct nmreq
	nrRegIf    = 146 // NIOCREGIF, legacy struct nmreq
	nrTxSync   = 148 // NIOCTXSYNC
	nrRxSync   = 149 // NIOCRXSYNC
	nrConfig   = 150 // NIOCCONFIG, struct nm_ifreq
	nrCtrl     = 151 // NIOCCTRL, struct nmreq_header
	legacySize = 60  // struct nmreq
	ifreqSize  = 272 // struct nm_ifreq
)

// FreeBSD's sys/sys/ioccom.h.
const (
	freebsdIocVoid  = 0x20000000 // IOC_VOID: no parameters
	freebsdIocInOut = 0xC0000000 // IOC_INOUT: copy in and out
	freebsdParmMask = 0x1fff     // IOCPARM_MASK: 13 bits of length
)

// Linux's asm-generic/ioctl.h.
const (
	linuxIocNone  = 0 // _IOC_NONE
	linuxIocRW    = 3 // _IOC_READ|_IOC_WRITE
	linuxSizeMask = 0x3fff
)

// FreeBSDIoc is FreeBSD's _IOC(inout, group, num, len).
func FreeBSDIoc(inout uint32, group, num uint8, size uint32) uint32 {
	return inout | (size&freebsdParmMask)<<16 | uint32(group)<<8 | uint32(num)
}

// LinuxIoc is Linux's _IOC(dir, type, nr, size).
func LinuxIoc(dir uint32, group, num uint8, size uint32) uint32 {
	return dir<<30 | (size&linuxSizeMask)<<16 | uint32(group)<<8 | uint32(num)
}

// Ioctls are the netmap ioctl request numbers of one operating system.
type Ioctls struct {
	Ctrl   uint32 // NIOCCTRL: _IOWR('i', 151, struct nmreq_header)
	TxSync uint32 // NIOCTXSYNC: _IO('i', 148)
	RxSync uint32 // NIOCRXSYNC: _IO('i', 149)
	RegIf  uint32 // NIOCREGIF (legacy): _IOWR('i', 146, struct nmreq)
	GInfo  uint32 // NIOCGINFO (legacy): _IOWR('i', 145, struct nmreq)
	Config uint32 // NIOCCONFIG: _IOWR('i', 150, struct nm_ifreq)
}

// FreeBSDIoctls are the numbers on FreeBSD.
func FreeBSDIoctls() Ioctls {
	rw := func(n uint8, size uint32) uint32 { return FreeBSDIoc(freebsdIocInOut, iocGroup, n, size) }
	void := func(n uint8) uint32 { return FreeBSDIoc(freebsdIocVoid, iocGroup, n, 0) }
	return Ioctls{
		Ctrl:   rw(nrCtrl, HeaderSize),
		TxSync: void(nrTxSync),
		RxSync: void(nrRxSync),
		RegIf:  rw(nrRegIf, legacySize),
		GInfo:  rw(nrGInfo, legacySize),
		Config: rw(nrConfig, ifreqSize),
	}
}

// LinuxIoctls are the numbers on Linux.
func LinuxIoctls() Ioctls {
	rw := func(n uint8, size uint32) uint32 { return LinuxIoc(linuxIocRW, iocGroup, n, size) }
	void := func(n uint8) uint32 { return LinuxIoc(linuxIocNone, iocGroup, n, 0) }
	return Ioctls{
		Ctrl:   rw(nrCtrl, HeaderSize),
		TxSync: void(nrTxSync),
		RxSync: void(nrRxSync),
		RegIf:  rw(nrRegIf, legacySize),
		GInfo:  rw(nrGInfo, legacySize),
		Config: rw(nrConfig, ifreqSize),
	}
}

// missingDeviceHint says how to get /dev/netmap on goos.
func missingDeviceHint(goos string) string {
	switch goos {
	case "freebsd":
		return "load the netmap driver with `kldload netmap` (or put netmap_load=\"YES\" in /boot/loader.conf), or build the kernel with `device netmap`"
	case "linux":
		return "load the netmap module (`modprobe netmap` or `insmod netmap.ko`); it is not part of mainline Linux and is built from github.com/luigirizzo/netmap"
	}
	return "netmap is available only on FreeBSD and on Linux with the netmap module"
}
