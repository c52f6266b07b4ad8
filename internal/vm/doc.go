// Package vm boots throwaway Linux guests under QEMU for tests and the demo.
//
// The host kernel here cannot load modules and has no /dev/kvm, so every
// guest-side driver test (vfio-pci on an ivshmem-doorbell device, the Go
// userspace driver) runs inside a QEMU TCG guest. A guest is built from four
// parts, each cheap enough to make per test:
//
//   - a kernel: Debian's cloud flavour, fetched once with `apt-get download`
//     and unpacked (never installed) into a cache by FetchKernel, because it
//     boots in about 2.5 s under TCG against about 5 s for the generic one;
//   - an initramfs written in pure Go (Image.Build): a static Go /init (the
//     program in ./init, built by BuildInit), the test's own static binaries
//     (BuildStatic) and the .ko files Kernel.Modules resolved;
//   - a kernel command line carrying the command /init runs, encoded so
//     that no quoting can break it (EncodeCommand);
//   - a QEMU process (Start, Run) whose serial console is parsed into lines,
//     ending with the exit code /init reports on a PTBHYVE-EXIT line.
//
// Nothing is installed on the host: QEMU itself comes from the Makefile's
// deps target (apt-get install qemu-system-x86), and the kernel lives in
// DefaultCacheDir.
//
// The host side builds on every Unix the project vets; /init is Linux only.
package vm
