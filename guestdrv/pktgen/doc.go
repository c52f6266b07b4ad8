// Package pktgen is netmap's pkt-gen for guests that drive the ptnet device
// through guestdrv.Rings: a UDP traffic generator (tx), a sink that checks
// what arrives (rx), and a latency probe (ping) with its echo side (pong).
//
// Frames are Ethernet + IPv4 + UDP with a valid IPv4 header checksum, so they
// pass through switches, bridges and host stacks unchanged; the UDP payload
// carries a magic, a sequence number and a transmit timestamp, so the
// receiver can tell its own frames from stray traffic and count loss,
// reordering and duplicates rather than just packets.
//
// The loops follow netmap's rules for speed: frames are patched into TX
// buffers from a prebuilt template (no allocation per packet), rings are
// synced once per batch, and the process sleeps in Rings.Wait only when a
// ring has no work.
package pktgen
