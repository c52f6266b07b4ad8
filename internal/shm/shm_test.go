package shm

import (
	"testing"

	"golang.org/x/sys/unix"
)

// A second mapping of the same descriptor, as another process makes, sees
// the first one's writes.
func TestSharedMapping(t *testing.T) {
	m, err := New("test", 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	fd2, err := unix.Dup(m.Fd())
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Map(fd2, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	for _, b := range m2.Bytes() {
		if b != 0 {
			t.Fatal("new object is not zeroed")
		}
	}
	m.Bytes()[12345] = 0xA5
	if got := m2.Bytes()[12345]; got != 0xA5 {
		t.Fatalf("second mapping reads %#x, want 0xa5", got)
	}
}
