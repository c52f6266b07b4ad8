package bhyve

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ptbhyve/ptbhyve/bhyve/ptbp"
	"github.com/ptbhyve/ptbhyve/bhyve/vmm"
	"github.com/ptbhyve/ptbhyve/internal/event"
	"github.com/ptbhyve/ptbhyve/internal/vcpu"
	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/netmap/backend"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
)

// A bhyve VM end to end, with a fake vmm: bhyve's device model (the C
// protocol file) connects, the guest programs MSI-X and runs ptnet's
// attach sequence, the daemon opens the port in the devmem segment bhyve
// created, and the guest's frames reach another port of the switch while
// the guest sleeps on MSIs the daemon raises. Then bhyve restarts. Both
// data paths: the switch port built in the segment, and copied into it.
func TestBhyveDevice(t *testing.T) {
	for _, dp := range []string{DatapathAuto, DatapathCopy} {
		t.Run(dp, func(t *testing.T) { testBhyveDevice(t, dp) })
	}
}

func testBhyveDevice(t *testing.T, datapath string) {
	loop, err := ptnetmap.NewLoop(ptnetmap.LoopConfig{CPU: -1})
	if err != nil {
		t.Fatal(err)
	}
	loop.Start()
	defer loop.Stop()
	txIrq, err := event.New()
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{VM: "vm0", Rings: 1, Slots: 256, BufSize: 2048, MAC: [6]byte{2, 0, 0, 0, 0, 9}, Port: "switchbh:vm0",
		Loop: loop, Datapath: datapath})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fake := withFakeVMM(t, d, vmm.FakeConfig{LowMem: 16 << 20, OnMSI: func(m vmm.MSI) {
		if m.Data == 0x40 {
			txIrq.Signal()
		}
	}})
	srv, err := ptbp.Listen(filepath.Join(t.TempDir(), "vm0.plugin"))
	if err != nil {
		t.Fatal(err)
	}
	srv.Open = func(vm string) (*ptbp.Device, error) { return d.Plugin(), nil }
	srv.Closed = func(string, error) { d.Disconnected() }
	go srv.Serve()
	defer srv.Close()
	peer, err := backend.Open("switchbh:peer", backend.Options{Rings: 1, Slots: 256, BufSize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	ram, err := fake.Memory()
	if err != nil {
		t.Fatal(err)
	}
	defer ram.Close()
	bar, err := fake.Devmem("ptbhyve") // the memdev BAR as the guest sees it
	if err != nil {
		t.Fatal(err)
	}
	defer vmm.Unmap(bar)

	bin := vcpu.Build(t)
	for round := range 2 {
		v := vcpu.Start(t, bin, srv.Path(), "vm0")
		if !strings.HasPrefix(v.Welcome, "welcome 1 1 020000000009") {
			t.Fatalf("round %d: %q", round, v.Welcome)
		}
		for i := range 2 {
			v.Do("msix %d %d %d %d", i, ptbp.MSIXEnabled, 0xfee00000, 0x40+i)
		}
		pt := vcpu.Regs{V: v, Fn: ptbp.FnPtnet}
		info, err := ptnetmap.Probe(pt, vcpu.Regs{V: v, Fn: ptbp.FnMemdev})
		if err != nil {
			t.Fatal(err)
		}
		if err := ptnetmap.Create(pt, 0x10000, 0x11000); err != nil {
			t.Fatal(err)
		}
		atok, _ := ram.Slice(0x10000, 128)
		ktoa, _ := ram.Slice(0x11000, 128)
		g, err := ptnetmap.NewGuest(ptnetmap.GuestConfig{Mem: bar, Pools: info.Pools, NifpOfs: info.NifpOfs,
			NumTx: info.NumTx, NumRx: info.NumRx, CSB: ptnetmap.CSBFromBytes(atok, ktoa, 2), Kick: ptnetmap.RegKicker{Regs: pt}})
		if err != nil {
			t.Fatal(err)
		}
		// The switch drops what its receiver has no room for, and counts
		// it: every frame must be either received or counted.
		const n = 20000
		got, dropped := 0, 0
		for sent, deadline := 0, time.Now().Add(20*time.Second); got+dropped < n && time.Now().Before(deadline); {
			tx := g.Tx[0]
			ring := tx.Ring
			h := ring.Head()
			for ; sent < n && h != ring.Tail(); h = ring.Next(h) {
				s := ring.Slot(h)
				copy(g.Region.Buf(s.BufIdx), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 9, 0x88, 0xb5})
				s.Len = 60
				sent++
			}
			ring.Advance(h)
			tx.Sync(0)
			netmap.RxSync(peer)
			rx := peer.If().RxRing(0)
			got += int(rx.Space())
			rx.Advance(rx.Tail())
			if ring.Space() == 0 && tx.WantsInterrupt() {
				txIrq.Wait(10)
			}
			if st := d.Stats(); len(st) == 2 {
				dropped = int(st[0].Drops)
			}
		}
		st := d.Stats()
		if got == 0 || got+dropped != n || len(st) != 2 || st[0].Packets != n {
			t.Fatalf("round %d: %d received + %d dropped of %d sent; stats %+v", round, got, dropped, n, st)
		}
		t.Logf("round %d: %d frames received, %d dropped by the switch (receiver full)", round, got, dropped)
		path := d.Path()
		if datapath == DatapathCopy {
			if path.Datapath != DatapathCopy || path.Sync != SyncPtbhyve || path.Copied == nil || path.Copied.TxPackets != n {
				t.Fatalf("round %d: path %+v copied %+v, want copy/ptbhyve with %d frames copied", round, path, path.Copied, n)
			}
		} else if path.Datapath != DatapathZeroCopy || path.Sync != SyncPtbhyve || path.Copied != nil || path.Fallback != "" {
			t.Fatalf("round %d: path %+v, want zero-copy/ptbhyve", round, path)
		}
		v.Quit()
	}
	if len(fake.MSIs()) == 0 {
		t.Fatal("no MSI raised")
	}
}

// A port that cannot be opened leaves the guest's PTCTL reading ENXIO and
// says why.
func TestBhyveBadPort(t *testing.T) {
	d, err := New(Config{VM: "vm0", Rings: 1, Slots: 256, BufSize: 2048, Port: "xdp:nosuch0"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	withFakeVMM(t, d, vmm.FakeConfig{LowMem: 1 << 20})
	p := d.Plugin()
	if s := p.Ptnet.Read(ptnetmap.RegPtctl); s != ptnetmap.StatusENXIO || d.Err() == nil || !strings.Contains(d.Err().Error(), "nosuch0") {
		t.Fatalf("PTCTL %d, err %v", s, d.Err())
	}
	if _, err := New(Config{VM: "vm0", Rings: 1, Slots: 256, BufSize: 2048, SegName: "a-name-far-too-long"}); err == nil {
		t.Fatal("a 19-character segment name was accepted")
	}
}

func TestBhyvePathChoice(t *testing.T) {
	for _, tt := range []struct {
		name, port, datapath, sync string
		bad                        string // in New's error, or "" if New accepts
		open                       string // in the error at bring-up, or "" if it comes up
	}{
		{"bad datapath", "switchbp:a", "zerocopy", "", `datapath "zerocopy" is not one of`, ""},
		{"bad sync", "switchbp:a", "", "kloop", `sync "kloop" is not one of`, ""},
		{"kernel sync of a copy", "switchbp:a", DatapathCopy, SyncKernel, `sync "kernel" needs the kernel's rings`, ""},
		{"kernel sync of an in-process port", "switchbp:a", "", SyncKernel, "", "netmap's in-kernel loop cannot serve switchbp:a: it is not a kernel netmap port"},
		{"in-process ports come up", "switchbp:b", DatapathZeroCopy, SyncPtbhyve, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			loop, err := ptnetmap.NewLoop(ptnetmap.LoopConfig{CPU: -1})
			if err != nil {
				t.Fatal(err)
			}
			loop.Start()
			defer loop.Stop()
			d, err := New(Config{VM: "vm0", Rings: 1, Slots: 256, BufSize: 2048, Port: tt.port, Datapath: tt.datapath, Sync: tt.sync, Loop: loop})
			if tt.bad != "" {
				if err == nil || !strings.Contains(err.Error(), tt.bad) {
					t.Fatalf("New: %v, want an error containing %q", err, tt.bad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			withFakeVMM(t, d, vmm.FakeConfig{LowMem: 1 << 20})
			d.Plugin().Ptnet.Read(ptnetmap.RegNifpOfs)
			if tt.open == "" {
				if d.Err() != nil {
					t.Fatal(d.Err())
				}
				return
			}
			if d.Err() == nil || !strings.Contains(d.Err().Error(), tt.open) {
				t.Fatalf("bring-up: %v, want an error containing %q", d.Err(), tt.open)
			}
		})
	}
}

// withFakeVMM gives d a fake bhyve VM, as cfg describes it plus the devmem
// segment bhyve's device model would have created for d, closed when the
// test ends.
func withFakeVMM(t *testing.T, d *Device, cfg vmm.FakeConfig) *vmm.Fake {
	t.Helper()
	cfg.Devmem = append(cfg.Devmem, vmm.FakeSegment{Name: "ptbhyve", Len: d.memsize})
	fake, err := vmm.NewFake(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	d.cfg.Open = func(string) (vmm.Machine, error) { return fake.Keep(), nil }
	return fake
}
