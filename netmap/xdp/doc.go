// Package xdp is the Linux AF_XDP backend: netmap ports (xdp:IF, xdp:IF-Q)
// whose packet buffers are the buffer pool of a netmap region, registered
// as the AF_XDP UMEM, so a frame a guest writes into a netmap buffer is
// sent by the kernel from that buffer and a received frame lands in a
// buffer the guest reads — no copy in the helper.
//
// Everything here is Linux-only; this file, without a build constraint,
// keeps the package visible (and empty) to other systems so cross builds
// and vets of ./... work.
package xdp
