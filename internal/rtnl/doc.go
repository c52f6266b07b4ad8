// Package rtnl is a tiny typed rtnetlink layer for the Linux AF_XDP backend
// and its test hosts: veth pairs with explicit queue counts in chosen network
// namespaces, link state, addresses, and netlink XDP attach.
//
// It sits directly on github.com/mdlayher/netlink with hand-encoded
// attributes because the typed rtnetlink libraries either cannot express
// IFLA_NUM_TX_QUEUES/IFLA_NUM_RX_QUEUES (needed for multi-queue veth) or bring
// a second netlink stack (research brief §4.3, §4.4).
//
// Every error names the operation, the interface and the namespace, says
// what to do when the cause is common, and unwraps to the kernel's errno
// (errors.Is(err, unix.ENODEV) works).
//
// The package is Linux only; this file carries no build constraint so that
// the package still exists, empty, on the other targets the project vets.
package rtnl
