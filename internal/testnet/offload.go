//go:build linux

package testnet

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ethtool's legacy command for TX checksum offload (linux/ethtool.h).
const ethtoolSTXCSUM = 0x17

// DisableTxChecksum turns off TX checksum offload on interface name in n,
// as `ethtool -K NAME tx off` does. A veth hands frames to its peer with
// the checksum left for hardware to fill; a peer that sends them on to
// AF_XDP (copy mode, no checksum metadata) would deliver TCP and UDP with
// bad checksums, which a guest behind it drops.
func (n *NS) DisableTxChecksum(name string) error {
	return n.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("testnet: %s: socket: %w", n.Name, err)
		}
		defer unix.Close(fd)
		val := struct{ cmd, data uint32 }{ethtoolSTXCSUM, 0}
		var ifr struct {
			name [unix.IFNAMSIZ]byte
			data uintptr
			_    [16]byte
		}
		copy(ifr.name[:], name)
		ifr.data = uintptr(unsafe.Pointer(&val))
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
			return fmt.Errorf("testnet: %s: ethtool -K %s tx off: %w", n.Name, name, errno)
		}
		return nil
	})
}
