package vm

import (
	"fmt"
	"testing"
	"time"
)

// Two VMs joined through ptbhyve, both ways: VM a pings, VM b echoes every
// frame back, so each round crosses the link in both directions and every
// round must be answered.
func twoVMs(t *testing.T, vms, portA, portB string) {
	const rounds = 2000
	d := startDaemon(t, nil, vms)
	d.ctl("attach", "a", portA)
	d.ctl("attach", "b", portB)
	pong := d.boot("b", "/bin/ptnet-pktgen", "-f", "pong", "-n", fmt.Sprint(rounds), "-d", "150s", "--json")
	expect(t, pong, "ptnet-pktgen: link up", 90*time.Second)
	ping := d.boot("a", "/bin/ptnet-pktgen", "-f", "ping", "-n", fmt.Sprint(rounds), "--json")
	p := guestSummary(t, ping)
	q := guestSummary(t, pong)
	t.Logf("%s <-> %s: %d rounds, %d answered, RTT avg %v; pong echoed %d", portA, portB, p.Packets, p.Received, p.RTT.Avg, q.Packets)
	if p.Packets != rounds || p.Lost != 0 || p.Bad != 0 || q.Received != rounds || q.Bad != 0 {
		t.Fatalf("ping %+v, pong %+v; want %d rounds, none lost or bad", p, q, rounds)
	}
}

// The trusted path: the VMs share one memory and a pipe built in it swaps
// buffer indexes, never copying a frame.
func TestTwoVMsPipe(t *testing.T) {
	twoVMs(t, "[vm.a]\nslots = 256\nmemory = \"ab\"\n[vm.b]\nslots = 256\nmemory = \"ab\"\n", "pipe:ab{0", "pipe:ab}0")
}

// The untrusted path: each VM keeps its own memory and ptbhyve's switch
// copies between them. Two rings per direction: five vectors each.
func TestTwoVMsSwitch(t *testing.T) {
	twoVMs(t, "[vm.a]\nrings = 2\nslots = 256\n[vm.b]\nrings = 2\nslots = 256\n", "switch0:a", "switch0:b")
}
