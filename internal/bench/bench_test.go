package bench

import (
	"fmt"
	"os"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if IsChild() {
		RunChild()
	}
	os.Exit(m.Run())
}

// One million frames each way between two guest devices in a child
// process, through the host loop and the pipe in this one, every frame
// checked in order by sequence number.
func TestMillionFramesTwoProcesses(t *testing.T) {
	frames := uint64(1000000)
	if testing.Short() {
		frames = 100000
	}
	r, err := newRig(rigConfig{Backend: "pipe", Slots: 1024, Spin: 50 * time.Microsecond, HelperCPU: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	cfg := r.cfg
	cfg.Frames, cfg.Both, cfg.CPU = frames, true, -1
	c, err := spawn("guest", cfg, r.files)
	if err != nil {
		t.Fatal(err)
	}
	defer c.wait()
	var ready map[string]bool
	if err := c.recv(&ready); err != nil {
		t.Fatal(err)
	}
	c.send(map[string]bool{"go": true})
	var g guestResult
	if err := c.recv(&g); err != nil {
		t.Fatal(err)
	}
	if g.BadFrame != "" {
		t.Fatal(g.BadFrame)
	}
	if g.Frames != 2*frames {
		t.Fatalf("received %d frames, want %d", g.Frames, 2*frames)
	}
	st := r.stats()
	for d := range st {
		tx, rx := st[d][0], st[d][1]
		if tx.Packets != frames || rx.Packets != frames {
			t.Errorf("device %d: host counted %d sent and %d received, want %d", d, tx.Packets, rx.Packets, frames)
		}
		if tx.Resets+rx.Resets != 0 {
			t.Errorf("device %d: rings were reset on valid traffic", d)
		}
	}
	t.Logf("%d frames each way in %v; kicks %d/%d, interrupts %d/%d (dev0 tx/rx)", frames, g.Elapsed,
		st[0][0].Kicks, st[0][1].Kicks, st[0][0].Interrupts, st[0][1].Interrupts)
	// Every buffer of the region is still in exactly one slot.
	if err := checkBuffers(r); err != nil {
		t.Fatal(err)
	}
}

func checkBuffers(r *rig) error {
	seen := map[uint32]bool{}
	for _, e := range r.ports {
		for _, k := range append(append(e.TxRings()[:0:0], e.TxRings()...), e.RxRings()...) {
			for j := range k.N {
				idx := k.Ring.Slot(j).BufIdx
				if seen[idx] || !e.Region().ValidBuf(idx) {
					return fmt.Errorf("buffer %d is duplicated or invalid after traffic", idx)
				}
				seen[idx] = true
			}
		}
	}
	return nil
}

// The benchmark runs end to end on both backends and its figures are sane.
// No timing is asserted: only that frames moved and the figures exist.
func TestBenchRuns(t *testing.T) {
	for _, backend := range []string{"pipe", "switch"} {
		s, err := Run(Options{Backend: backend, Frames: 200000, Runs: 1, Slots: 1024, Burst: 256,
			Spin: 20 * time.Microsecond, Idle: 100 * time.Millisecond, GuestCPU: -1, HelperCPU: -1})
		if err != nil {
			t.Fatalf("%s: %v", backend, err)
		}
		if s.Mpps <= 0 || s.ReferenceMpps <= 0 || s.Ratio <= 0 || len(s.Runs) != 1 || len(s.Runs[0].Directions) != 2 {
			t.Fatalf("%s: implausible summary %+v", backend, s)
		}
		for _, d := range s.Runs[0].Directions {
			if d.Mpps < s.Mpps || d.GuestCPUSeconds <= 0 || d.HelperCPUSeconds <= 0 {
				t.Errorf("%s direction %s: %+v (top-level mpps %.2f is the slower direction)", backend, d.Name, d, s.Mpps)
			}
		}
	}
	if _, err := Run(Options{Backend: "nosuch"}); err == nil {
		t.Fatal("unsupported backend accepted")
	}
}
