package vmm

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestFakeEndToEnd(t *testing.T) {
	msis := make(chan MSI, 4)
	f, err := NewFake(FakeConfig{
		LowMem:  64 * mib,
		HighMem: 32 * mib,
		Devmem: []FakeSegment{
			{Name: "bootrom", Len: mib, GPA: 4*gib - mib},
			{Name: "ptnetmap", Len: 2 * mib},
		},
		OnMSI: func(m MSI) { msis <- m },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var m Machine = f

	// Guest RAM: the boot ROM is mapped in the guest but is not RAM.
	g, err := m.Memory()
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if want := []Range{{0, 64 * mib}, {4 * gib, 32 * mib}}; !slices.Equal(g.Ranges(), want) {
		t.Fatalf("ranges %v, want %v", g.Ranges(), want)
	}
	csb, err := g.Slice(4*gib+4*kib, 64)
	if err != nil {
		t.Fatal(err)
	}
	copy(csb, "written by the host")
	got := make([]byte, 19)
	if _, err := f.RAM().ReadAt(got, 4*gib+4*kib); err != nil || string(got) != "written by the host" {
		t.Fatalf("guest RAM holds %q, %v", got, err)
	}
	if _, err := f.RAM().WriteAt([]byte("by the guest"), 4*gib+4*kib+32); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(csb[32:44], []byte("by the guest")) {
		t.Fatalf("the host sees %q", csb[32:44])
	}

	// Devmem by name: two mappings of a segment share its memory.
	a, err := m.Devmem("ptnetmap")
	if err != nil {
		t.Fatal(err)
	}
	defer Unmap(a)
	b, err := m.Devmem("ptnetmap")
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 2*mib || len(b) != 2*mib {
		t.Fatalf("segment of %d and %d bytes, want 2 MiB", len(a), len(b))
	}
	a[2*mib-1] = 0x5a
	if b[2*mib-1] != 0x5a {
		t.Fatal("the two mappings of a segment do not share memory")
	}
	if err := Unmap(b); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Devmem("netmap"); err == nil || !strings.Contains(err.Error(), "bhyve has not created memory segment netmap: is the VM running with the ptnet device?") {
		t.Errorf("missing segment: %v", err)
	}
	if _, err := m.Devmem("../ram"); err == nil {
		t.Error("a segment name with '/' was accepted")
	}

	// MSIs are recorded and passed on.
	for _, msi := range []MSI{{0xfee00000, 0x4041}, {0xfee01000, 0x4042}} {
		if err := m.RaiseMSI(msi.Addr, msi.Data); err != nil {
			t.Fatal(err)
		}
		if got := <-msis; got != msi {
			t.Errorf("OnMSI got %+v, want %+v", got, msi)
		}
	}
	if want := []MSI{{0xfee00000, 0x4041}, {0xfee01000, 0x4042}}; !slices.Equal(f.MSIs(), want) {
		t.Errorf("MSIs %+v, want %+v", f.MSIs(), want)
	}

	// Destroyed: every call is ErrGone; what was mapped stays usable.
	f.Destroy()
	if _, err := m.Memory(); !errors.Is(err, ErrGone) {
		t.Errorf("Memory after Destroy: %v", err)
	}
	if _, err := m.Devmem("ptnetmap"); !errors.Is(err, ErrGone) {
		t.Errorf("Devmem after Destroy: %v", err)
	}
	if err := m.RaiseMSI(0xfee00000, 0x4041); !errors.Is(err, ErrGone) {
		t.Errorf("RaiseMSI after Destroy: %v", err)
	}
	if len(f.MSIs()) != 2 {
		t.Errorf("an MSI to a destroyed VM was recorded")
	}
	if csb[0] != 'w' || a[2*mib-1] != 0x5a {
		t.Error("mappings changed after Destroy")
	}

	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := m.Memory(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Memory after Close: %v", err)
	}
}

func TestNewFakeRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  FakeConfig
	}{
		{"no RAM", FakeConfig{}},
		{"lowmem above 3 GiB", FakeConfig{LowMem: 3*gib + 4*kib}},
		{"unaligned lowmem", FakeConfig{LowMem: mib + 1}},
		{"unaligned highmem", FakeConfig{LowMem: mib, HighMem: 1}},
		{"segment over RAM", FakeConfig{LowMem: mib, Devmem: []FakeSegment{{Name: "x", Len: 4 * kib, GPA: 64 * kib}}}},
		{"segments overlap", FakeConfig{LowMem: mib, Devmem: []FakeSegment{
			{Name: "x", Len: mib, GPA: 3 * gib}, {Name: "y", Len: mib, GPA: 3*gib + 4*kib}}}},
		{"two names alike", FakeConfig{LowMem: mib, Devmem: []FakeSegment{{Name: "x", Len: 4 * kib}, {Name: "x", Len: 4 * kib}}}},
		{"empty segment", FakeConfig{LowMem: mib, Devmem: []FakeSegment{{Name: "x"}}}},
		{"unnamed segment", FakeConfig{LowMem: mib, Devmem: []FakeSegment{{Len: 4 * kib}}}},
		{"more segments than ids", FakeConfig{LowMem: mib, Devmem: make([]FakeSegment, 11)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if f, err := NewFake(tt.cfg); err == nil {
				f.Close()
				t.Fatalf("NewFake(%+v) succeeded", tt.cfg)
			}
		})
	}
}

// The sync loop raises MSIs while the daemon reads the record.
func TestFakeConcurrentMSIs(t *testing.T) {
	f, err := NewFake(FakeConfig{LowMem: mib})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 100 {
				if err := f.RaiseMSI(0xfee00000, uint32(i<<8|j)); err != nil {
					t.Error(err)
					return
				}
				_ = f.MSIs()
			}
		})
	}
	wg.Wait()
	if n := len(f.MSIs()); n != 400 {
		t.Errorf("%d MSIs recorded, want 400", n)
	}
}
