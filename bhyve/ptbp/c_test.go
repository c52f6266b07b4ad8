package ptbp

import (
	"strings"
	"testing"

	"github.com/ptbhyve/ptbhyve/internal/vcpu"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
)

// The C protocol file against the Go server: welcome, register accesses,
// PTCTL CREATE and DELETE, kicks by descriptor, MSI-X programming and the
// interrupts the server raises (recorded by the fake vmm), reset, and a
// reconnect after the daemon restarts; 100,000 frames move through a pipe
// with the guest side of the CSB protocol, none lost.
func TestCPlugin(t *testing.T) {
	bin := vcpu.Build(t)
	r := newRig(t)
	v := vcpu.Start(t, bin, r.server.Path(), "vm0")
	if !strings.HasPrefix(v.Welcome, "welcome 1 1 020000000007 4194304 ptbhyve") {
		t.Fatalf("vcpu said %q", v.Welcome)
	}
	for i := range 2 {
		if l := v.Do("msix %d %d %d %d", i, MSIXEnabled, 0xfee00000, 0x40+i); l != "ok" {
			t.Fatalf("msix: %q", l)
		}
	}
	pt := vcpu.Regs{V: v, Fn: FnPtnet}
	g := attachGuest(t, r, pt, vcpu.Regs{V: v, Fn: FnMemdev})
	stream(t, r, g, 100000)
	if r.rec.count() == 0 {
		t.Fatal("no MSI was raised for a guest sleeping on its TX interrupt")
	}
	if l := v.Do("reset"); !strings.HasPrefix(l, "done") || r.ptnet.Running() {
		t.Fatalf("reset: %q, running %v", l, r.ptnet.Running())
	}
	if pt.Read(ptnetmap.RegCSBGHBAL) != 0 {
		t.Fatal("reset kept the CSB address")
	}

	// The daemon goes away: bhyve's side reads PTCTL as ENXIO and keeps
	// going; when a daemon listens again it reconnects.
	path := r.server.Path()
	r.server.Close()
	if l := v.Do("read 0 4"); l != "value 6" {
		t.Fatalf("PTCTL with no daemon: %q", l)
	}
	if l := v.Do("state"); l != "down" {
		t.Fatalf("state: %q", l)
	}
	s2, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	s2.Open = r.server.Open
	go s2.Serve()
	t.Cleanup(func() { s2.Close() })
	if l := v.Do("reconnect"); !strings.HasPrefix(l, "welcome 1 1") {
		t.Fatalf("reconnect: %q", l)
	}
	g = attachGuest(t, r, pt, vcpu.Regs{V: v, Fn: FnMemdev})
	// An MSI needs the guest to find its TX ring full and sleep, which a
	// loaded machine may not make happen in one stream; a lost MSI-X
	// replay raises nothing however long the guest streams.
	before := r.rec.count()
	for round := 0; r.rec.count() == before; round++ {
		if round == 10 {
			t.Fatal("after the reconnect, the replayed MSI-X table raised nothing")
		}
		stream(t, r, g, 10000)
	}
	v.Quit()
}
