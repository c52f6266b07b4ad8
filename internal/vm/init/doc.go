// Command init is the /init of the guests package vm boots: the only
// process in a guest that has no disk, no shell and no udev.
//
// It mounts devtmpfs, proc, sysfs and tmpfs (/tmp, /run), puts
// /dev/console on fds 0-2, loads the modules listed in /etc/modules in
// order (with finit_module, passing "<module>.<param>=<value>" arguments
// from the kernel command line, as modprobe would), brings lo up, then runs
// the command the host encoded in ptbhyve.run= with PATH=/bin and the
// console as its stdio. It reports on the console with the markers defined
// in package vm — PTBHYVE-INIT-READY before the command, one
// PTBHYVE-EXIT <code> line after it, or PTBHYVE-INIT-ERROR <message> if it
// failed before — and then powers the machine off, which ends QEMU.
//
// It is Linux only; on other systems it builds (so the tree vets for
// FreeBSD) into a program that just fails.
package main
