package vm

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Guest is the ptbhyve test and demo guest: Debian's cloud kernel and an
// initramfs with the guest driver's tools (/bin/ptnet-pktgen,
// /bin/ptnet-tap), busybox for ping, nc and sh, and the modules the driver
// needs (vfio-pci and the IOMMU type1 backend for interrupts, tun for the
// TAP bridge).
type Guest struct {
	Kernel Kernel
	Initrd string
}

// GuestModules are the modules the guest loads at boot.
var GuestModules = []string{"vfio-pci", "vfio_iommu_type1", "tun"}

// guestTools are the programs the image carries, by guest path.
var guestTools = map[string]string{
	"/bin/ptnet-pktgen": "github.com/ptbhyve/ptbhyve/guestdrv/cmd/ptnet-pktgen",
	"/bin/ptnet-tap":    "github.com/ptbhyve/ptbhyve/guestdrv/cmd/ptnet-tap",
}

// Busybox is where Debian's busybox-static puts its binary.
const Busybox = "/bin/busybox"

// BuildGuest fetches the kernel into cacheDir and builds the guest's
// initramfs into dir, printing a line per step to progress. It must run
// inside the module (it builds the tools from source).
func BuildGuest(ctx context.Context, cacheDir, dir string, progress io.Writer) (Guest, error) {
	if progress == nil {
		progress = io.Discard
	}
	if _, err := os.Stat(Busybox); err != nil {
		return Guest{}, fmt.Errorf("vm: %s: %w: install it with apt-get install busybox-static", Busybox, err)
	}
	k, err := FetchKernel(ctx, cacheDir, progress)
	if err != nil {
		return Guest{}, err
	}
	mods, err := k.Modules(GuestModules...)
	if err != nil {
		return Guest{}, err
	}
	fmt.Fprintln(progress, "vm: building the guest's /init and tools")
	im := Image{Init: filepath.Join(dir, "init"), Files: map[string]string{"/bin/busybox": Busybox}, Modules: mods}
	if err := BuildInit(im.Init); err != nil {
		return Guest{}, err
	}
	for guestPath, pkg := range guestTools {
		out := filepath.Join(dir, filepath.Base(guestPath))
		if err := BuildStatic(pkg, out); err != nil {
			return Guest{}, err
		}
		im.Files[guestPath] = out
	}
	g := Guest{Kernel: k, Initrd: filepath.Join(dir, "initrd.gz")}
	if err := im.Build(g.Initrd); err != nil {
		return Guest{}, err
	}
	fmt.Fprintf(progress, "vm: guest image %s (kernel %s, %d modules)\n", g.Initrd, k.Release, len(mods))
	return g, nil
}
