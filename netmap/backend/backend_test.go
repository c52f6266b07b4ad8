package backend

import (
	"os"
	"strings"
	"testing"
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
