package guestdrv

import (
	"errors"
	"fmt"
	"time"

	"github.com/ptbhyve/ptbhyve/guestdrv/pci"
	"github.com/ptbhyve/ptbhyve/internal/event"
	"github.com/ptbhyve/ptbhyve/shmdev"
	"golang.org/x/sys/unix"
)

// ivshmem-doorbell's identity and registers (QEMU docs/specs/ivshmem-spec).
const (
	ivshmemVendor = 0x1af4
	ivshmemDevice = 0x1110
	regIVPosition = 8
	regDoorbell   = 12
)

const (
	hostPeer  = 0 // ptbhyve is peer 0
	pollPause = 200 * time.Microsecond
)

// Open finds the device, maps it and returns its Port. The link may still
// be down: Port.WaitUp waits for the host to attach a port.
func Open(o Options) (*Port, error) {
	devs, err := pci.Find(ivshmemVendor, ivshmemDevice)
	if err != nil {
		return nil, err
	}
	var d *pci.Device
	for i := range devs {
		if o.Addr == "" || devs[i].Addr == o.Addr {
			d = &devs[i]
			break
		}
	}
	if d == nil {
		if o.Addr != "" {
			return nil, fmt.Errorf("guestdrv: no ivshmem-doorbell device at %s (found %d others)", o.Addr, len(devs))
		}
		return nil, errors.New("guestdrv: no ivshmem-doorbell device (1af4:1110) on the PCI bus: start QEMU with the flags `ptbhyve qemu-args VM` prints")
	}
	var m *pci.Mapped
	switch o.Mode {
	case "", ModeAuto:
		if m, err = openVFIO(*d); err != nil {
			m, err = pci.OpenSysfs(*d)
		}
	case ModeVFIO:
		m, err = openVFIO(*d)
	case ModePoll:
		m, err = pci.OpenSysfs(*d)
	default:
		return nil, fmt.Errorf("guestdrv: mode %q; want auto, vfio or poll", o.Mode)
	}
	if err != nil {
		return nil, err
	}
	t := &pciTransport{m: m}
	id := m.Read32(regIVPosition)
	dev, err := shmdev.OpenGuest(m.Mem, id, t.Ring, t.waitCtl(m.Irqs))
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("guestdrv: %s: %w", d.Addr, err)
	}
	if m.Irqs != nil && len(m.Irqs) < shmdev.Vectors(dev.Rings()) {
		m.Close()
		return nil, fmt.Errorf("guestdrv: %s has %d MSI-X vectors, the device needs %d: use the QEMU flags `ptbhyve qemu-args VM` prints", d.Addr, len(m.Irqs), shmdev.Vectors(dev.Rings()))
	}
	return newPort(t, dev), nil
}

func openVFIO(d pci.Device) (*pci.Mapped, error) {
	n, err := pci.MSIXVectors(d)
	if err != nil {
		return nil, err
	}
	return pci.OpenVFIO(d, n)
}

// pciTransport reaches the device through its BARs: doorbells by a write
// to BAR0, interrupts (vfio) as eventfds.
type pciTransport struct {
	m *pci.Mapped
}

func (t *pciTransport) Ring(v int) { t.m.Write32(regDoorbell, hostPeer<<16|uint32(v)) }

func (t *pciTransport) Mode() string { return t.m.Mode() }

func (t *pciTransport) Close() error { return t.m.Close() }

// Wait polls every vector's eventfd; in poll mode it pauses briefly. Two
// goroutines may wait at once (a TX and an RX one), so the poll set is
// the caller's own.
func (t *pciTransport) Wait(d time.Duration) {
	irqs := t.m.Irqs
	if irqs == nil {
		time.Sleep(min(d, pollPause))
		return
	}
	var buf [2*shmdev.MaxRings + 1]unix.PollFd
	fds := buf[:min(len(irqs), len(buf))]
	for i := range fds {
		fds[i] = unix.PollFd{Fd: int32(irqs[i].Fd()), Events: unix.POLLIN}
	}
	ms := int(d.Milliseconds())
	if d > 0 && ms == 0 {
		ms = 1
	}
	if n, _ := unix.Poll(fds, ms); n <= 0 {
		return
	}
	for i := range fds {
		if fds[i].Revents != 0 {
			irqs[i].Drain()
		}
	}
}

// waitCtl is how the mailbox waits for the control vector.
func (t *pciTransport) waitCtl(irqs []*event.Event) func(time.Duration) {
	return func(d time.Duration) {
		if irqs == nil {
			time.Sleep(d)
			return
		}
		// The control vector is the last one; any vector waking us is fine,
		// the caller re-checks the mailbox.
		t.Wait(d)
	}
}
