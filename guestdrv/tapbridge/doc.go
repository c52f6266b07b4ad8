// Package tapbridge gives a guest without netmap an ordinary network
// interface backed by the ptnet device: a Linux TAP device whose frames
// are copied to the device's TX ring, and whose peer receives what the
// device's RX ring delivers. The guest's kernel stack (ping, TCP, DHCP,
// routing) then runs over the netmap rings unchanged.
//
// A TAP device costs a system call per frame; the ring side is batched (one
// sync per batch in each direction), so the TAP is the bottleneck, as it
// is for any TAP-based NIC emulation.
//
// The package is Linux only; this file carries no build constraint so that
// the package still exists, empty, on the other targets the project vets.
package tapbridge
