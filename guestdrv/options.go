package guestdrv

// Modes of Options.Mode.
const (
	ModeAuto = "auto" // vfio if the guest has an IOMMU, else poll
	ModeVFIO = "vfio" // interrupts through vfio-pci
	ModePoll = "poll" // sysfs mappings, no interrupts
)

// Options choose the device and how to reach it.
type Options struct {
	// Addr is the PCI address ("0000:00:03.0"); empty takes the first
	// ivshmem-doorbell device.
	Addr string
	// Mode is ModeAuto (default), ModeVFIO or ModePoll.
	Mode string
}
