package pci

import (
	"errors"
	"fmt"
	"path/filepath"
	"unsafe"

	"github.com/ptbhyve/ptbhyve/internal/event"
	"golang.org/x/sys/unix"
)

// OpenVFIO binds d to vfio-pci and opens it through VFIO: BAR0 and BAR2
// mapped, bus mastering on, and MSI-X vectors 0 to vectors-1 delivered to
// Irqs. The device stays bound to vfio-pci after Close. It needs root, the
// vfio-pci module and an IOMMU in the guest; without them use OpenSysfs
// and poll.
func OpenVFIO(d Device, vectors int) (*Mapped, error) {
	return system.openVFIO(d.Addr, vectors)
}

func (p paths) openVFIO(addr string, vectors int) (_ *Mapped, err error) {
	m := &Mapped{mode: "vfio"}
	defer func() {
		if err != nil {
			m.Close()
			err = fmt.Errorf("pci %s: %w", addr, err)
		}
	}()
	if vectors < 1 {
		return nil, fmt.Errorf("%d interrupt vectors asked for: ask for at least 1, or use OpenSysfs to poll", vectors)
	}
	group, err := p.iommuGroup(addr)
	if err != nil {
		return nil, err
	}
	// The container first: if VFIO is missing, fail before taking the
	// device from its driver.
	container, err := m.openVFIODev(filepath.Join(p.vfio, "vfio"))
	if err != nil {
		return nil, err
	}
	if err := checkContainer(container); err != nil {
		return nil, err
	}
	if err := p.bindVFIO(addr, group); err != nil {
		return nil, err
	}
	grp, err := m.openVFIODev(filepath.Join(p.vfio, group))
	if err != nil {
		return nil, err
	}
	if err := attachGroup(grp, group, container); err != nil {
		return nil, err
	}
	if _, err := ioctl(container, vfioSetIOMMU, vfioType1v2IOMMU); err != nil {
		hint := ""
		if errors.Is(err, unix.EPERM) {
			hint = ": the IOMMU does not remap interrupts: keep intel-iommu's default intremap=on"
		}
		return nil, fmt.Errorf("vfio: set the type1v2 IOMMU: %w%s", err, hint)
	}
	name, err := unix.BytePtrFromString(addr)
	if err != nil {
		return nil, err
	}
	dev, err := ioctlPtr(grp, vfioGroupGetDeviceFD, unsafe.Pointer(name))
	if err != nil {
		return nil, fmt.Errorf("vfio: get the device from group %s: %w", group, err)
	}
	m.fds = append(m.fds, dev)
	if m.Regs, err = m.mapRegion(dev, regionBAR0, "BAR0"); err != nil {
		return nil, err
	}
	if m.Mem, err = m.mapRegion(dev, regionBAR2, "BAR2"); err != nil {
		return nil, err
	}
	cfg, err := regionInfo(dev, regionConfig)
	if err != nil {
		return nil, fmt.Errorf("vfio: config region info: %w", err)
	}
	if err := setCommand(dev, int64(cfg.Offset), cmdMemory|cmdBusMaster); err != nil {
		return nil, fmt.Errorf("vfio: %w", err)
	}
	if err := m.bindMSIX(dev, vectors); err != nil {
		return nil, err
	}
	return m, nil
}

// openVFIODev opens a VFIO character device and keeps it for Close.
func (m *Mapped) openVFIODev(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return -1, fmt.Errorf("vfio: %s: %w: load the vfio-pci module (modprobe vfio-pci)", path, err)
	case errors.Is(err, unix.EBUSY):
		return -1, fmt.Errorf("vfio: %s: %w: another process has the device open", path, err)
	case err != nil:
		return -1, fmt.Errorf("vfio: %s: %w%s", path, err, rootHint(err))
	}
	m.fds = append(m.fds, fd)
	return fd, nil
}

// checkContainer makes sure the container speaks the VFIO API this package
// was written against and offers the type1v2 IOMMU.
func checkContainer(container int) error {
	v, err := ioctl(container, vfioGetAPIVersion, 0)
	if err != nil {
		return fmt.Errorf("vfio: get API version: %w", err)
	}
	if v != vfioAPIVersion {
		return fmt.Errorf("vfio: API version %d, want %d", v, vfioAPIVersion)
	}
	ok, err := ioctl(container, vfioCheckExtension, vfioType1v2IOMMU)
	if err != nil {
		return fmt.Errorf("vfio: check for the type1v2 IOMMU: %w", err)
	}
	if ok <= 0 {
		return errors.New("vfio: no type1v2 IOMMU: load the vfio_iommu_type1 module")
	}
	return nil
}

// attachGroup puts the group in the container, once the group is viable:
// every device in it is bound to VFIO or to no driver.
func attachGroup(grp int, group string, container int) error {
	st := vfioGroupStatus{Argsz: uint32(unsafe.Sizeof(vfioGroupStatus{}))}
	if _, err := ioctlPtr(grp, vfioGroupGetStatus, unsafe.Pointer(&st)); err != nil {
		return fmt.Errorf("vfio: group %s status: %w", group, err)
	}
	if st.Flags&groupFlagViable == 0 {
		return fmt.Errorf("vfio: group %s is not viable: bind every device in /sys/kernel/iommu_groups/%s/devices to vfio-pci or unbind it", group, group)
	}
	c := int32(container)
	if _, err := ioctlPtr(grp, vfioGroupSetContainer, unsafe.Pointer(&c)); err != nil {
		return fmt.Errorf("vfio: put group %s in the container: %w", group, err)
	}
	return nil
}

// regionInfo describes one of the device's regions.
func regionInfo(dev int, index uint32) (vfioRegionInfo, error) {
	r := vfioRegionInfo{Argsz: uint32(unsafe.Sizeof(vfioRegionInfo{})), Index: index}
	_, err := ioctlPtr(dev, vfioDeviceGetRegionInfo, unsafe.Pointer(&r))
	return r, err
}

// mapRegion maps a whole BAR through the device descriptor.
func (m *Mapped) mapRegion(dev int, index uint32, name string) ([]byte, error) {
	r, err := regionInfo(dev, index)
	if err != nil {
		return nil, fmt.Errorf("vfio: %s region info: %w", name, err)
	}
	if r.Size == 0 {
		return nil, fmt.Errorf("vfio: %s: the device does not implement it", name)
	}
	if r.Flags&regionFlagMmap == 0 {
		return nil, fmt.Errorf("vfio: %s cannot be mmapped (region flags %#x)", name, r.Flags)
	}
	b, err := m.mmap(dev, int64(r.Offset), int(r.Size))
	if err != nil {
		return nil, fmt.Errorf("vfio: %s: %w", name, err)
	}
	return b, nil
}

// bindMSIX makes one eventfd per MSI-X vector and has VFIO signal it when
// the device raises the vector; VFIO enables MSI-X to do so.
func (m *Mapped) bindMSIX(dev, vectors int) error {
	info := vfioIRQInfo{Argsz: uint32(unsafe.Sizeof(vfioIRQInfo{})), Index: irqMSIX}
	if _, err := ioctlPtr(dev, vfioDeviceGetIRQInfo, unsafe.Pointer(&info)); err != nil {
		return fmt.Errorf("vfio: MSI-X info: %w", err)
	}
	if int(info.Count) < vectors {
		return fmt.Errorf("vfio: the device has %d MSI-X vectors, want %d: give QEMU -device ivshmem-doorbell,vectors=%d", info.Count, vectors, vectors)
	}
	evs, err := event.NewN(vectors)
	if err != nil {
		return err
	}
	m.Irqs = evs
	fds := make([]int, len(evs))
	for i, e := range evs {
		fds[i] = e.Fd()
	}
	if err := setIRQs(dev, irqSetDataEventfd|irqSetActionTrigger, fds); err != nil {
		return fmt.Errorf("vfio: bind MSI-X vectors to eventfds: %w", err)
	}
	m.unbindIRQs = func() error {
		if err := setIRQs(dev, irqSetDataNone|irqSetActionTrigger, nil); err != nil {
			return fmt.Errorf("vfio: disable MSI-X: %w", err)
		}
		return nil
	}
	return nil
}

// setIRQs issues VFIO_DEVICE_SET_IRQS on the MSI-X index for vectors 0 to
// len(fds)-1.
func setIRQs(dev int, flags uint32, fds []int) error {
	buf := encodeIRQSet(flags, irqMSIX, fds)
	_, err := ioctlPtr(dev, vfioDeviceSetIRQs, unsafe.Pointer(&buf[0]))
	return err
}
