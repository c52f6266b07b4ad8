package pci

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fakeFn is one PCI function of a fake sysfs tree.
type fakeFn struct {
	addr           string
	vendor, device string // file contents; "" leaves the file out, unreadable makes it a directory
	driver         string // bound driver; "" for none
	group          string // IOMMU group; "" for none
}

const unreadable = "\x00unreadable"

// fakeTree builds a sysfs PCI bus and a /dev/vfio under a temporary
// directory, laid out as the kernel lays them out: bus/pci/devices/ADDR
// links to the device's directory, whose driver link points at
// bus/pci/drivers/NAME and whose iommu_group link at
// kernel/iommu_groups/N.
func fakeTree(t *testing.T, fns ...fakeFn) paths {
	t.Helper()
	root := t.TempDir()
	p := paths{
		pci:    filepath.Join(root, "bus", "pci"),
		vfio:   filepath.Join(root, "dev", "vfio"),
		settle: 2 * time.Second,
	}
	mkdir(t, filepath.Join(p.pci, "devices"))
	mkdir(t, filepath.Join(p.pci, "drivers"))
	mkdir(t, p.vfio)
	writeFile(t, filepath.Join(p.pci, "drivers_probe"), "")
	for _, fn := range fns {
		dir := filepath.Join(root, "devices", "pci0000:00", fn.addr)
		mkdir(t, dir)
		symlink(t, filepath.Join("..", "..", "..", "devices", "pci0000:00", fn.addr), p.device(fn.addr))
		for name, content := range map[string]string{"vendor": fn.vendor, "device": fn.device} {
			switch content {
			case "":
			case unreadable:
				mkdir(t, filepath.Join(dir, name))
			default:
				writeFile(t, filepath.Join(dir, name), content)
			}
		}
		writeFile(t, filepath.Join(dir, "driver_override"), "(null)\n")
		if fn.driver != "" {
			linkDriver(t, p, fn.addr, fn.driver)
		}
		if fn.group != "" {
			mkdir(t, filepath.Join(root, "kernel", "iommu_groups", fn.group))
			symlink(t, filepath.Join("..", "..", "..", "kernel", "iommu_groups", fn.group), filepath.Join(dir, "iommu_group"))
		}
	}
	return p
}

// linkDriver binds the function at addr to driver, as the kernel shows it:
// a driver link, and the driver's directory with its unbind file.
func linkDriver(t *testing.T, p paths, addr, driver string) {
	t.Helper()
	drv := filepath.Join(p.pci, "drivers", driver)
	if _, err := os.Stat(drv); err != nil {
		mkdir(t, drv)
		writeFile(t, filepath.Join(drv, "unbind"), "")
	}
	link := filepath.Join(p.device(addr), "driver")
	os.Remove(link)
	symlink(t, filepath.Join("..", "..", "..", "bus", "pci", "drivers", driver), link)
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func removeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}
