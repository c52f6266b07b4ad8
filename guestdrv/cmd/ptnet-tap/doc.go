// Command ptnet-tap gives a guest without netmap an ordinary network
// interface backed by the ptbhyve device: a TAP interface whose frames it
// copies to and from the device's rings, so ping, TCP and every socket
// program work over the passthrough port.
//
//	ptnet-tap --addr 10.0.0.2/24                  # until SIGINT
//	ptnet-tap --addr 10.0.0.2/24 -- ping -c 3 10.0.0.1
package main
