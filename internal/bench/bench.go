// Package bench measures the ptnetmap data path the way DESIGN.md §4 asks:
// the guest side runs in a separate process mapping the same region, the
// helper runs the host sync loop against a backend, 64-byte frames, and
// every figure is a ratio against a reference measured in the same run
// between the same two processes: a plain SPSC ring of buffer indexes in
// shared memory, the limit for any shared ring on the machine.
package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"
)

// Options configure a benchmark.
type Options struct {
	Backend string        // "pipe"
	Frames  uint64        // frames per run and direction
	Runs    int           // runs; figures are medians
	Slots   uint32        // ring size
	Burst   int           // frames the guest queues per sync
	Spin    time.Duration // host loop spin before sleeping
	Idle    time.Duration // idle window measured after traffic
	// GuestCPU and HelperCPU pin the two sides (-1: no pinning).
	GuestCPU, HelperCPU int
	// Progress, if set, gets a line per run.
	Progress io.Writer
}

// Direction is one streaming direction of a run.
type Direction struct {
	From, To            int     `json:"-"`
	Name                string  `json:"direction"`
	Mpps                float64 `json:"mpps"` // delivered frames
	LossPct             float64 `json:"loss_pct"`
	HelperCPUSeconds    float64 `json:"helper_cpu_s"`
	GuestCPUSeconds     float64 `json:"guest_cpu_s"`
	HelperCPUPct        float64 `json:"helper_cpu_pct"`
	GuestCPUPct         float64 `json:"guest_cpu_pct"`
	KicksPerPacket      float64 `json:"kicks_per_packet"`
	InterruptsPerPacket float64 `json:"interrupts_per_packet"`
}

// RunResult is one run's figures. The top-level path figures are those of
// the slower direction.
type RunResult struct {
	Mpps                float64     `json:"mpps"`
	ReferenceMpps       float64     `json:"reference_mpps"`
	Ratio               float64     `json:"ratio"`
	HelperCPUPct        float64     `json:"helper_cpu_pct"`
	GuestCPUPct         float64     `json:"guest_cpu_pct"`
	HelperIdleCPUPct    float64     `json:"helper_idle_cpu_pct"`
	KicksPerPacket      float64     `json:"kicks_per_packet"`
	InterruptsPerPacket float64     `json:"interrupts_per_packet"`
	Directions          []Direction `json:"directions,omitempty"`
}

// Summary is the medians over the runs and the runs themselves.
type Summary struct {
	Backend string `json:"backend"`
	Frames  uint64 `json:"frames"`
	Slots   uint32 `json:"slots"`
	RunResult
	Runs []RunResult `json:"runs"`
}

// Run benchmarks opts.Backend.
func Run(o Options) (Summary, error) {
	if o.Backend != "pipe" && o.Backend != "switch" && o.Backend != "xdp" {
		return Summary{}, fmt.Errorf("bench: backend %q is not supported; use pipe (trusted, zero copy), switch (untrusted, copies) or xdp (AF_XDP on a veth, Linux, root)", o.Backend)
	}
	if o.Runs < 1 {
		o.Runs = 1
	}
	s := Summary{Backend: o.Backend, Frames: o.Frames, Slots: o.Slots}
	for i := range o.Runs {
		var r RunResult
		if o.Backend == "xdp" {
			var err error
			if r, err = xdpRun(o); err != nil {
				return s, err
			}
		} else {
			ref, err := reference(o.Frames, o.Slots, o.HelperCPU, o.GuestCPU)
			if err != nil {
				return s, err
			}
			if r, err = pathRun(o); err != nil {
				return s, err
			}
			r.ReferenceMpps = ref / 1e6
			r.Ratio = r.Mpps / r.ReferenceMpps
		}
		s.Runs = append(s.Runs, r)
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "run %d/%d: reference %.2f Mpps; helper idle %.2f%% CPU\n", i+1, o.Runs, r.ReferenceMpps, r.HelperIdleCPUPct)
			for _, d := range r.Directions {
				fmt.Fprintf(o.Progress, "  %s %s: %.2f Mpps (ratio %.2f), %.2f%% lost, CPU s helper %.3f guest %.3f, %.5f kicks %.5f interrupts per packet\n",
					o.Backend, d.Name, d.Mpps, d.Mpps/r.ReferenceMpps, d.LossPct, d.HelperCPUSeconds, d.GuestCPUSeconds, d.KicksPerPacket, d.InterruptsPerPacket)
			}
		}
	}
	med := func(f func(RunResult) float64) float64 {
		v := make([]float64, len(s.Runs))
		for i, r := range s.Runs {
			v[i] = f(r)
		}
		slices.Sort(v)
		if n := len(v); n%2 == 1 {
			return v[n/2]
		} else {
			return (v[n/2-1] + v[n/2]) / 2
		}
	}
	s.Mpps = med(func(r RunResult) float64 { return r.Mpps })
	s.ReferenceMpps = med(func(r RunResult) float64 { return r.ReferenceMpps })
	s.Ratio = med(func(r RunResult) float64 { return r.Ratio })
	s.HelperCPUPct = med(func(r RunResult) float64 { return r.HelperCPUPct })
	s.GuestCPUPct = med(func(r RunResult) float64 { return r.GuestCPUPct })
	s.HelperIdleCPUPct = med(func(r RunResult) float64 { return r.HelperIdleCPUPct })
	s.KicksPerPacket = med(func(r RunResult) float64 { return r.KicksPerPacket })
	s.InterruptsPerPacket = med(func(r RunResult) float64 { return r.InterruptsPerPacket })
	return s, nil
}

// pathRun measures frames from guest device 0 through the host loop and
// the backend to guest device 1, then the other way, then the helper's CPU
// while the guest idles.
func pathRun(o Options) (RunResult, error) {
	r, err := newRig(rigConfig{Backend: o.Backend, Slots: o.Slots, Spin: o.Spin, HelperCPU: o.HelperCPU})
	if err != nil {
		return RunResult{}, err
	}
	defer r.close()
	cfg := r.cfg
	cfg.Frames, cfg.Burst, cfg.CPU = o.Frames, o.Burst, o.GuestCPU
	if o.Backend == "switch" {
		// Half the ring: the host may forward before it has processed the
		// receiver's latest release, and the switch drops rather than wait.
		cfg.Window = uint64(o.Slots / 2)
	}
	c, err := spawn("guest", cfg, r.files)
	if err != nil {
		return RunResult{}, err
	}
	defer c.wait()
	var ready map[string]bool
	if err := c.recv(&ready); err != nil {
		return RunResult{}, err
	}
	var res RunResult
	for _, d := range []Direction{{From: 0, To: 1, Name: "0->1"}, {From: 1, To: 0, Name: "1->0"}} {
		before := r.stats()
		cpu0 := processCPU()
		if err := c.send(map[string]bool{"go": true}); err != nil {
			return res, err
		}
		var g guestResult
		if err := c.recv(&g); err != nil {
			return res, err
		}
		busy := processCPU() - cpu0
		if g.BadFrame != "" {
			return res, fmt.Errorf("bench: guest received a bad frame (%s): %s", d.Name, g.BadFrame)
		}
		if g.Frames+g.Lost != o.Frames {
			return res, fmt.Errorf("bench: guest accounted for %d+%d of %d frames (%s)", g.Frames, g.Lost, o.Frames, d.Name)
		}
		if g.Lost != 0 && o.Backend == "pipe" {
			return res, fmt.Errorf("bench: the pipe lost %d of %d frames (%s); a pipe never drops", g.Lost, o.Frames, d.Name)
		}
		d.LossPct = 100 * float64(g.Lost) / float64(o.Frames)
		after := r.stats()
		var kicks, irqs uint64
		for dev := range after {
			for i := range after[dev] {
				kicks += after[dev][i].Kicks - before[dev][i].Kicks
				irqs += after[dev][i].Interrupts - before[dev][i].Interrupts
			}
		}
		secs := g.Elapsed.Seconds()
		d.Mpps = float64(g.Frames) / secs / 1e6
		d.HelperCPUSeconds, d.GuestCPUSeconds = busy.Seconds(), g.CPU.Seconds()
		d.HelperCPUPct, d.GuestCPUPct = 100*busy.Seconds()/secs, 100*g.CPU.Seconds()/secs
		d.KicksPerPacket = float64(kicks) / float64(g.Frames)
		d.InterruptsPerPacket = float64(irqs) / float64(g.Frames)
		res.Directions = append(res.Directions, d)
	}
	slow := res.Directions[0]
	if res.Directions[1].Mpps < slow.Mpps {
		slow = res.Directions[1]
	}
	res.Mpps, res.HelperCPUPct, res.GuestCPUPct = slow.Mpps, slow.HelperCPUPct, slow.GuestCPUPct
	res.KicksPerPacket, res.InterruptsPerPacket = slow.KicksPerPacket, slow.InterruptsPerPacket
	// Let the loop finish spinning, then measure it with the guest idle.
	time.Sleep(o.Spin + 50*time.Millisecond)
	cpu1 := processCPU()
	time.Sleep(o.Idle)
	res.HelperIdleCPUPct = 100 * (processCPU() - cpu1).Seconds() / o.Idle.Seconds()
	if err := c.wait(); err != nil {
		return res, fmt.Errorf("bench: guest child: %w", err)
	}
	return res, nil
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
