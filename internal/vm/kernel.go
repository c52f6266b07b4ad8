package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Kernel is an unpacked Debian kernel package: what QEMU boots and where
// the matching modules are. Modules must come from the same package as the
// kernel (the cloud and generic flavours differ in vermagic).
type Kernel struct {
	Release string // "6.1.0-56-cloud-amd64"
	Vmlinuz string // QEMU's -kernel
	ModDir  string // .../lib/modules/RELEASE, with modules.dep
}

// kernelMeta is the Debian metapackage that depends on the current cloud
// kernel. The cloud flavour is preferred: it boots in half the time of the
// generic one under TCG and has every driver the tests need.
const kernelMeta = "linux-image-cloud-amd64"

// DefaultCacheDir is where FetchKernel keeps kernels between runs:
// /var/cache/ptbhyve/vm for root, else the user cache directory
// ($XDG_CACHE_HOME or ~/.cache) + /ptbhyve/vm, or the temporary directory
// when there is no home.
func DefaultCacheDir() string {
	if os.Geteuid() == 0 {
		return "/var/cache/ptbhyve/vm"
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = filepath.Join(os.TempDir(), "ptbhyve-cache")
	}
	return filepath.Join(dir, "ptbhyve", "vm")
}

// FetchKernel returns the current Debian cloud kernel, unpacked under
// cacheDir/RELEASE. It resolves the package with apt-cache (running
// apt-get update once if the lists do not know it), reuses a complete
// unpacked copy, or else downloads the .deb with `apt-get download` and
// unpacks it with `dpkg-deb -x` — the package is never installed, so the
// host's /boot, initramfs-tools and systemd are left alone. The unpacking
// goes to a temporary directory renamed into place, so concurrent callers
// and interrupted runs never see half a kernel. progress (may be nil) gets
// one line per step.
func FetchKernel(ctx context.Context, cacheDir string, progress io.Writer) (Kernel, error) {
	if progress == nil {
		progress = io.Discard
	}
	for _, tool := range []string{"apt-cache", "apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return Kernel{}, fmt.Errorf("vm: %s not found: FetchKernel needs a Debian host (elsewhere, unpack a linux-image-*-cloud-amd64 .deb and fill vm.Kernel by hand)", tool)
		}
	}
	pkg, err := resolveKernelPackage(ctx, progress)
	if err != nil {
		return Kernel{}, err
	}
	release := strings.TrimPrefix(pkg, "linux-image-")
	dir := filepath.Join(cacheDir, release)
	k := unpackedKernel(dir, release)
	if k.complete() {
		fmt.Fprintf(progress, "vm: kernel %s: reusing %s\n", release, dir)
		return k, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return Kernel{}, fmt.Errorf("vm: kernel cache: %w (pick another cacheDir)", err)
	}
	tmp, err := os.MkdirTemp(cacheDir, ".fetch-")
	if err != nil {
		return Kernel{}, fmt.Errorf("vm: kernel cache: %w (pick another cacheDir)", err)
	}
	defer os.RemoveAll(tmp)

	fmt.Fprintf(progress, "vm: kernel %s: apt-get download %s\n", release, pkg)
	if _, err := run(ctx, tmp, "apt-get", "download", pkg); err != nil {
		return Kernel{}, fmt.Errorf("vm: %w (check network access to the Debian mirror)", err)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return Kernel{}, fmt.Errorf("vm: apt-get download %s left %d .deb files in %s, want 1", pkg, len(debs), tmp)
	}
	root := filepath.Join(tmp, "root")
	fmt.Fprintf(progress, "vm: kernel %s: dpkg-deb -x %s\n", release, filepath.Base(debs[0]))
	if _, err := run(ctx, tmp, "dpkg-deb", "-x", debs[0], root); err != nil {
		return Kernel{}, fmt.Errorf("vm: %w (is there room in %s?)", err, cacheDir)
	}
	staged := unpackedKernel(root, release)
	if _, err := os.Stat(staged.Vmlinuz); err != nil {
		return Kernel{}, fmt.Errorf("vm: package %s has no kernel image: %w", pkg, err)
	}
	if _, err := os.Stat(filepath.Join(staged.ModDir, "modules.dep")); err != nil {
		fmt.Fprintf(progress, "vm: kernel %s: indexing module dependencies\n", release)
		if err := writeModulesDep(staged.ModDir); err != nil {
			return Kernel{}, err
		}
	}
	if err := os.Rename(root, dir); err != nil {
		if k.complete() { // another process finished first
			return k, nil
		}
		return Kernel{}, fmt.Errorf("vm: kernel cache: %w (remove %s and retry)", err, dir)
	}
	fmt.Fprintf(progress, "vm: kernel %s: ready in %s\n", release, dir)
	return k, nil
}

// unpackedKernel names the files of release unpacked at root.
func unpackedKernel(root, release string) Kernel {
	return Kernel{
		Release: release,
		Vmlinuz: filepath.Join(root, "boot", "vmlinuz-"+release),
		ModDir:  filepath.Join(root, "lib", "modules", release),
	}
}

// complete reports whether the kernel and its module index are in place;
// modules.dep is written last, so it also stands for the modules.
func (k Kernel) complete() bool {
	for _, p := range []string{k.Vmlinuz, filepath.Join(k.ModDir, "modules.dep")} {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

// resolveKernelPackage names the versioned package behind kernelMeta,
// e.g. linux-image-6.1.0-56-cloud-amd64. The name carries the kernel ABI
// number, which changes with Debian point releases, so it is looked up
// each time rather than written down.
func resolveKernelPackage(ctx context.Context, progress io.Writer) (string, error) {
	fmt.Fprintf(progress, "vm: apt-cache depends %s\n", kernelMeta)
	out, err := run(ctx, "", "apt-cache", "depends", kernelMeta)
	if err == nil {
		if pkg, perr := parseAptDepends(out); perr == nil {
			return pkg, nil
		}
	}
	fmt.Fprintf(progress, "vm: %s unknown to apt, running apt-get update\n", kernelMeta)
	if _, err := run(ctx, "", "apt-get", "update"); err != nil {
		return "", fmt.Errorf("vm: %w (run `apt-get update` as root)", err)
	}
	out, err = run(ctx, "", "apt-cache", "depends", kernelMeta)
	if err != nil {
		return "", fmt.Errorf("vm: %w (is the Debian main archive in /etc/apt/sources.list?)", err)
	}
	pkg, err := parseAptDepends(out)
	if err != nil {
		return "", fmt.Errorf("vm: %w (is the Debian main archive in /etc/apt/sources.list?)", err)
	}
	return pkg, nil
}

// parseAptDepends picks the kernel package out of `apt-cache depends
// linux-image-cloud-amd64`, whose line "  Depends: linux-image-6.1.0-56-
// cloud-amd64" names it (the other dependencies, such as initramfs tools,
// are not kernel images).
func parseAptDepends(out string) (string, error) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || strings.TrimPrefix(f[0], "|") != "Depends:" {
			continue
		}
		version, ok := strings.CutPrefix(f[1], "linux-image-")
		if ok && version != "" && version[0] >= '0' && version[0] <= '9' {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("apt-cache depends %s names no linux-image-<version> package", kernelMeta)
}

// run runs a host tool in dir and returns its stdout; the error carries
// the command and its stderr.
func run(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = errors.Join(err, ctxErr)
		}
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}
