// Command demo is `make demo`, the main job: a real VM (Debian's cloud
// kernel under QEMU) gets a ptbhyve device, the daemon attaches an AF_XDP
// port on a veth to it, and the guest's ptnet-pktgen streams frames to a
// receiver in another network namespace while both ends print their rates.
// Everything it makes (namespaces, veth, daemon, VM, sockets) is removed
// at the end, on error and on Ctrl-C. Linux, root.
package main
