// Package vm holds the end-to-end tests: real QEMU guests (Debian's cloud
// kernel under TCG) whose ptbhyve device is served by a real `ptbhyve
// serve`, with the guest driver's tools inside and AF_XDP ports on veth
// pairs in network namespaces outside. They need root, QEMU and the
// network to fetch the kernel once; they skip loudly without them, and
// fail instead when PTBHYVE_REQUIRE_QEMU=1 (CI).
package vm
