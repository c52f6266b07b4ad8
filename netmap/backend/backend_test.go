package backend

import (
	"os"
	"strings"
	"testing"

	"github.com/ptbhyve/ptbhyve/netmap"
)

func TestOpenPipeByName(t *testing.T) {
	m, err := Open("pipe:bt{0@conf:slots=128", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := Open("pipe:bt}0", Options{Slots: 999}) // the first opener sized it
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if m.MemID() != s.MemID() || m.TxRings()[0].N != 128 || s.RxRings()[0].N != 128 {
		t.Fatalf("pipe ends do not share a 128-slot region: memid %d/%d, slots %d/%d",
			m.MemID(), s.MemID(), m.TxRings()[0].N, s.RxRings()[0].N)
	}
	if _, err := Open("pipe:bt{0", Options{}); err == nil {
		t.Fatal("opened the same pipe end twice")
	}
}

func TestOpenErrors(t *testing.T) {
	cases := []struct{ name, want string }{
		{"ix0", `did you mean "netmap:ix0"`},
		{"xdp:nosuchif0", "no interface nosuchif0"},
		{"pipe:p{0@conf:tx-slots=64,rx-slots=128", "one ring size"},
	}
	if _, err := os.Stat("/dev/netmap"); os.IsNotExist(err) {
		cases = append(cases, struct{ name, want string }{"netmap:ix0", "/dev/netmap"})
	}
	for _, c := range cases {
		_, err := Open(c.name, Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%q) = %v; want an error containing %q", c.name, err, c.want)
		}
	}
}

// A port built in memory the caller gave (a VM's device memory) must lay
// its region there, and ports of one in-process switch must reach each
// other.
func TestOpenSwitchInGivenMemory(t *testing.T) {
	mem := make([]byte, 8<<20)
	a, err := Open("switchbt:a@conf:slots=64", Options{Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open("switchbt:b", Options{Slots: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := a.Region().Mem(); &got[0] != &mem[0] {
		t.Fatal("switch port a did not build its region in the memory given")
	}
	if _, err := Open("switchbt:a", Options{}); err == nil {
		t.Fatal("opened switch port a twice")
	}
	// A broadcast from a must arrive on b.
	tx := a.If().TxRing(0)
	s := tx.Slot(tx.Head())
	frame := a.Region().Buf(s.BufIdx)
	for i := range 6 {
		frame[i] = 0xff
	}
	copy(frame[6:], []byte{2, 0, 0, 0, 0, 1, 0x08, 0x00})
	s.Len = 60
	tx.Advance(tx.Next(tx.Head()))
	if err := netmap.TxSync(a); err != nil {
		t.Fatal(err)
	}
	if err := netmap.RxSync(b); err != nil {
		t.Fatal(err)
	}
	if rx := b.If().RxRing(0); rx.Empty() {
		t.Fatal("the broadcast from switchbt:a did not reach switchbt:b")
	}
	if _, err := Open("switchbt:c", Options{Mem: make([]byte, 4096)}); err == nil || !strings.Contains(err.Error(), "needs") {
		t.Fatalf("a region that does not fit the memory given: err = %v", err)
	}
}
