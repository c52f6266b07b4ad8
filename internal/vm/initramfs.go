package vm

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Image describes an initramfs: the whole guest userland, since the guests
// have no disk.
type Image struct {
	Init    string            // host path of the static /init (BuildInit)
	Files   map[string]string // guest path -> host file, installed mode 0755
	Modules []string          // .ko files (Kernel.Modules), loaded in this order by /init
}

// guestDirs exist in every image: the mount points /init uses, /bin for
// PATH=/bin, and the module and config locations.
var guestDirs = []string{"/dev", "/proc", "/sys", "/tmp", "/bin", "/lib/modules", "/run", "/etc"}

// modulesList is the file /init reads to know which modules to load, one
// guest path a line, in load order.
const modulesList = "/etc/modules"

// Build writes the image to out as a gzip-compressed newc cpio archive
// (the kernel's -initrd). Modules go to /lib/modules/<file name> and are
// listed in /etc/modules. out is replaced atomically.
func (im Image) Build(out string) error {
	if im.Init == "" {
		return fmt.Errorf("vm: Image.Init is empty (build one with vm.BuildInit)")
	}
	files := map[string]string{"/init": im.Init} // guest -> host
	add := func(guest, host string) error {
		if !path.IsAbs(guest) || path.Clean(guest) != guest || guest == "/" {
			return fmt.Errorf("vm: guest path %q must be absolute and clean", guest)
		}
		if prev, dup := files[guest]; dup {
			return fmt.Errorf("vm: guest path %s given twice (%s and %s)", guest, prev, host)
		}
		files[guest] = host
		return nil
	}
	for guest, host := range im.Files {
		if err := add(guest, host); err != nil {
			return err
		}
	}
	var list strings.Builder
	for _, ko := range im.Modules {
		guest := "/lib/modules/" + filepath.Base(ko)
		if err := add(guest, ko); err != nil {
			return err
		}
		list.WriteString(guest + "\n")
	}

	dirs := map[string]bool{}
	for _, d := range guestDirs {
		dirs[d] = true
		addParents(dirs, d)
	}
	for guest := range files {
		addParents(dirs, guest)
	}
	for guest := range files {
		if dirs[guest] || guest == modulesList {
			return fmt.Errorf("vm: guest path %s is reserved for a directory or %s", guest, modulesList)
		}
	}

	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("vm: initramfs: %w", err)
	}
	defer os.Remove(tmp)
	if err := im.write(f, sorted(dirs), files, list.String()); err != nil {
		f.Close()
		return fmt.Errorf("vm: initramfs %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("vm: initramfs %s: %w", out, err)
	}
	return os.Rename(tmp, out)
}

// write emits directories (sorted, so parents first), /dev/console, the
// files and the module list, compressed.
func (im Image) write(f *os.File, dirs []string, files map[string]string, modules string) error {
	bw := bufio.NewWriter(f)
	zw := gzip.NewWriter(bw)
	cw := &cpioWriter{w: zw}
	for _, d := range dirs {
		if err := cw.Dir(d, 0o755); err != nil {
			return err
		}
	}
	if err := cw.CharDev("/dev/console", 0o600, 5, 1); err != nil {
		return err
	}
	guests := make([]string, 0, len(files))
	for g := range files {
		guests = append(guests, g)
	}
	sort.Strings(guests)
	for _, guest := range guests {
		if err := copyIn(cw, guest, files[guest]); err != nil {
			return err
		}
	}
	if err := cw.File(modulesList, 0o644, int64(len(modules)), strings.NewReader(modules)); err != nil {
		return err
	}
	if err := cw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// copyIn adds the host file as guest, executable: the files are the
// guest's programs (modules ignore the mode).
func copyIn(cw *cpioWriter, guest, host string) error {
	src, err := os.Open(host)
	if err != nil {
		return err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s (for %s) is not a regular file", host, guest)
	}
	return cw.File(guest, 0o755, st.Size(), src)
}

// addParents adds every proper ancestor directory of p to dirs.
func addParents(dirs map[string]bool, p string) {
	for d := path.Dir(p); d != "/"; d = path.Dir(d) {
		dirs[d] = true
	}
}

func sorted(set map[string]bool) []string {
	s := make([]string, 0, len(set))
	for k := range set {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}
