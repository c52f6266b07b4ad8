package ptnetmap

import (
	"fmt"
	"syscall"

	"github.com/ptbhyve/ptbhyve/netmap"
)

// Registers is a register window of one function: BAR0 of ptnet or memdev,
// reached however the transport reaches it.
type Registers interface {
	Read(off uint32) uint32
	Write(off, val uint32)
}

// DeviceInfo is what a guest driver reads from the two functions at attach.
type DeviceInfo struct {
	MAC              [6]byte
	NifpOfs          uint64
	NumTx, NumRx     int
	TxSlots, RxSlots uint32
	Pools            netmap.PoolsInfo
}

// Probe reads the registers a guest driver reads at attach (if_ptnet and
// the memdev driver, research §7.1–7.2) and checks that the two functions
// belong together and describe a usable device.
func Probe(ptnet, memdev Registers) (DeviceInfo, error) {
	var d DeviceInfo
	ptnet.Write(RegPtfeat, 0)
	hi, lo := ptnet.Read(RegMacHi), ptnet.Read(RegMacLo)
	d.MAC = [6]byte{byte(hi >> 8), byte(hi), byte(lo >> 24), byte(lo >> 16), byte(lo >> 8), byte(lo)}
	d.NumTx, d.NumRx = int(ptnet.Read(RegNumTxRings)), int(ptnet.Read(RegNumRxRings))
	d.TxSlots, d.RxSlots = ptnet.Read(RegNumTxSlots), ptnet.Read(RegNumRxSlots)
	d.NifpOfs = uint64(ptnet.Read(RegNifpOfs))
	if d.NumTx < 1 || d.NumRx < 1 || d.NumTx+d.NumRx > MaxRings {
		return d, fmt.Errorf("ptnetmap: device reports %d TX and %d RX rings; want 1..%d in all", d.NumTx, d.NumRx, MaxRings)
	}
	memID := ptnet.Read(RegHostMemID)
	if m := memdev.Read(RegMemID); m != memID {
		return d, fmt.Errorf("ptnetmap: ptnet uses memory %d but the memdev holds %d", memID, m)
	}
	p := &d.Pools
	p.MemID = uint16(memID)
	p.MemSize = uint64(memdev.Read(RegMemsizeHi))<<32 | uint64(memdev.Read(RegMemsizeLo))
	p.IfPoolOffset = uint64(memdev.Read(RegIfPoolOfs))
	p.IfPoolObjTotal, p.IfPoolObjSize = memdev.Read(RegIfPoolObjNum), memdev.Read(RegIfPoolObjSz)
	p.RingPoolOffset = uint64(memdev.Read(RegRingPoolOfs))
	p.RingPoolObjTotal, p.RingPoolObjSize = memdev.Read(RegRingPoolObjNum), memdev.Read(RegRingPoolObjSz)
	p.BufPoolOffset = uint64(memdev.Read(RegBufPoolOfs))
	p.BufPoolObjTotal, p.BufPoolObjSize = memdev.Read(RegBufPoolObjNum), memdev.Read(RegBufPoolObjSz)
	return d, nil
}

// Create gives the device the guest-physical addresses of the two CSB
// arrays and issues PTCTL CREATE, in the order if_ptnet uses; a nonzero
// status comes back as that errno.
func Create(ptnet Registers, atokGPA, ktoaGPA uint64) error {
	ptnet.Write(RegCSBGHBAH, uint32(atokGPA>>32))
	ptnet.Write(RegCSBGHBAL, uint32(atokGPA))
	ptnet.Write(RegCSBHGBAH, uint32(ktoaGPA>>32))
	ptnet.Write(RegCSBHGBAL, uint32(ktoaGPA))
	ptnet.Write(RegPtctl, PtctlCreate)
	if st := ptnet.Read(RegPtctl); st != StatusOK {
		return fmt.Errorf("ptnetmap: PTCTL CREATE: %w", syscall.Errno(st))
	}
	return nil
}

// Delete issues PTCTL DELETE.
func Delete(ptnet Registers) error {
	ptnet.Write(RegPtctl, PtctlDelete)
	if st := ptnet.Read(RegPtctl); st != StatusOK {
		return fmt.Errorf("ptnetmap: PTCTL DELETE: %w", syscall.Errno(st))
	}
	return nil
}

// RegKicker rings doorbells by writing the ptnet kick registers.
type RegKicker struct{ Regs Registers }

// Kick implements Kicker.
func (k RegKicker) Kick(ring int) { k.Regs.Write(KickReg(ring), 0) }
