package tapbridge

import (
	"fmt"
	"net"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openTap creates a TAP device named name (a "%d" in it lets the kernel
// pick a free number) in the calling thread's network namespace. The
// device is not persistent: closing the returned file removes it. The
// descriptor is non-blocking, so the file is driven by the Go runtime's
// poller.
func openTap(name string) (*os.File, string, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", fmt.Errorf("tapbridge: open /dev/net/tun (is the tun module loaded? modprobe tun): %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, "", fmt.Errorf("tapbridge: TAP name %q: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		hint := ""
		switch err {
		case unix.EPERM:
			hint = ": creating a TAP device needs CAP_NET_ADMIN (run as root)"
		case unix.EBUSY, unix.EINVAL:
			hint = ": an interface of that name exists and is not a free TAP device; pick another name"
		}
		return nil, "", fmt.Errorf("tapbridge: create TAP device %q%s: %w", name, hint, err)
	}
	got := ifr.Name()
	return os.NewFile(uintptr(fd), "/dev/net/tun:"+got), got, nil
}

// ifreqHW is struct ifreq with ifr_hwaddr, for SIOCSIFHWADDR, which
// x/sys's Ifreq has no setter for.
type ifreqHW struct {
	name   [unix.IFNAMSIZ]byte
	family uint16
	addr   [14]byte
	_      [8]byte
}

// setMAC sets the TAP device's Ethernet address through its own
// descriptor (tun handles SIOCSIFHWADDR), since rtnl has no IFLA_ADDRESS
// setter.
func setMAC(f *os.File, name string, mac net.HardwareAddr) error {
	var ifr ifreqHW
	copy(ifr.name[:], name)
	ifr.family = unix.ARPHRD_ETHER
	copy(ifr.addr[:], mac)
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("tapbridge: set MAC of %s: %w", name, err)
	}
	var errno unix.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, unix.SIOCSIFHWADDR, uintptr(unsafe.Pointer(&ifr)))
	}); err != nil {
		return fmt.Errorf("tapbridge: set MAC of %s: %w", name, err)
	}
	if errno != 0 {
		return fmt.Errorf("tapbridge: set MAC %v on %s (a unicast address is needed: the first byte even, e.g. 02:...): %w", mac, name, errno)
	}
	return nil
}
