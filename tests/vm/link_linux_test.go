package vm

import (
	"strings"
	"testing"
	"time"
)

// Detach and re-attach while the guest keeps sending: the frames stop
// reaching the namespace, then flow again, and the guest never restarts.
func TestDetachReattach(t *testing.T) {
	r := newXDPRig(t)
	rx := startHostPktgen(t, r.pair.B, "-f", "rx", "-d", "150s", "xdp:"+xdpIf)
	v := r.d.boot("vm0", "/bin/ptnet-pktgen", "-f", "tx", "-R", "2k", "-d", "150s")
	flowing := func(what string) {
		t.Helper()
		for deadline := time.After(90 * time.Second); ; {
			select {
			case n := <-rx.Counts:
				if n > 0 {
					return
				}
			case <-deadline:
				t.Fatalf("%s: no frames reached the namespace", what)
			}
		}
	}
	stopped := func(what string) {
		t.Helper()
		zeros := 0
		for deadline := time.After(30 * time.Second); zeros < 2; {
			select {
			case n := <-rx.Counts:
				if n == 0 {
					zeros++
				} else {
					zeros = 0
				}
			case <-deadline:
				t.Fatalf("%s: frames kept arriving", what)
			}
		}
	}
	flowing("before detach")
	if out := r.d.ctl("detach", "vm0"); !strings.Contains(out, "link down") {
		t.Fatalf("detach said %q", out)
	}
	if l := r.d.ctl("list"); !strings.Contains(l, "vm0") || !strings.Contains(l, "down") {
		t.Fatalf("list after detach:\n%s", l)
	}
	stopped("after detach")
	r.d.ctl("attach", "vm0", "xdp:"+xdpIf)
	flowing("after re-attach")
	st := r.d.ctl("stats", "vm0", "--json")
	if !strings.Contains(st, `"link_changes": 3`) {
		t.Fatalf("stats after detach and attach:\n%s", st)
	}
	for _, l := range strings.Split(rx.out.String(), "\n") {
		if strings.Contains(l, "Power down") || strings.Contains(l, "PTBHYVE-EXIT") {
			t.Fatalf("the guest stopped: %s", l)
		}
	}
	v.Stop()
}

// An ordinary interface in the guest: ptnet-tap bridges a TAP device to
// the rings, and ping and a TCP transfer reach an address in the peer
// namespace through the xdp: port.
func TestTAP(t *testing.T) {
	const size = 1 << 20
	r := newXDPRig(t)
	addr(t, r.pair.B, "10.99.0.1/24")
	// The peer's frames reach the guest through AF_XDP, which carries no
	// checksum-offload state: the peer must fill in its checksums.
	if err := r.pair.B.DisableTxChecksum(xdpIf); err != nil {
		t.Fatal(err)
	}
	sink := startTCPSink(t, r.pair.B, "10.99.0.1:5001", size)
	script := "busybox ping -c 3 -W 5 10.99.0.1 && " +
		"busybox dd if=/dev/urandom of=/tmp/f bs=65536 count=16 2>/dev/null && " +
		"busybox sha256sum /tmp/f && busybox nc -w 30 10.99.0.1 5001 < /tmp/f"
	v := r.d.boot("vm0", "/bin/ptnet-tap", "--addr", "10.99.0.2/24", "--", "/bin/busybox", "sh", "-c", script)
	res, err := v.Wait()
	if err != nil {
		t.Fatal(err)
	}
	var sum string
	for _, l := range res.Lines {
		if f := strings.Fields(l); len(f) == 2 && f[1] == "/tmp/f" && len(f[0]) == 64 {
			sum = f[0]
		}
	}
	if res.ExitCode != 0 || sum == "" {
		t.Fatalf("guest script exited %d, sha256 %q", res.ExitCode, sum)
	}
	got := sink.wait(t)
	if got != sum {
		t.Fatalf("the namespace received data with sha256 %s; the guest sent %s", got, sum)
	}
	t.Logf("ping answered and %d bytes of TCP arrived intact (sha256 %s…)", size, sum[:12])
}
