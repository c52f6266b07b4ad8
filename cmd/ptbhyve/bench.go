package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/ptbhyve/ptbhyve/internal/bench"
)

const benchHelp = `Measures the ptnetmap data path with no VM: a guest process maps the
devices' regions and drives two ptnet devices joined by a backend (one
guest vCPU streaming device 0 -> device 1, then 1 -> 0; 64-byte frames
whose sequence numbers are checked on receipt), while this process runs
the host sync loop for both devices. In the same run it measures the
reference: the same frames and per-frame work between the same two
processes over a plain SPSC ring of buffer indexes, busy-polling - the
limit for any shared ring here. Then the guest idles,
blocked on interrupts, and the helper's CPU is measured again.

With --backend xdp (Linux, root) the device's port is xdp: on one end of
a veth between two network namespaces the bench creates and removes; the
guest streams to an AF_XDP receiver on the other end, and the reference is
a plain AF_XDP sender on the same veth, so the ratio is ptbhyve's hop.

Each run prints both directions (Mpps, CPU seconds per side, kicks and
interrupts per packet); the summary takes the slower direction. Figures
are medians over --runs. On a 2-vCPU machine pin the two sides to
different CPUs (the defaults). With --json the last line is one object:
backend, frames, mpps, reference_mpps, ratio, helper_cpu_pct,
helper_idle_cpu_pct, kicks_per_packet, interrupts_per_packet, and runs
with their directions.

Example:
  ptbhyve bench --backend pipe --runs 5 --json
`

func runBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", "[flags]", benchHelp, stderr)
	o := bench.Options{}
	fs.StringVar(&o.Backend, "backend", "pipe", "backend between the two devices: pipe (zero copy, one shared region: the trusted path) or switch (a learning switch, a region per VM, frames copied: the untrusted path) or xdp (the guest's port is AF_XDP on a veth between two namespaces, measured against a plain AF_XDP sender on the same veth; Linux, root)")
	fs.Uint64Var(&o.Frames, "frames", 20000000, "frames per run")
	fs.IntVar(&o.Runs, "runs", 5, "runs; figures are medians")
	slots := fs.Uint("slots", 1024, "slots per ring (power of two, at most 4096)")
	fs.IntVar(&o.Burst, "burst", 512, "frames the guest queues per sync")
	fs.DurationVar(&o.Spin, "spin", 50*time.Microsecond, "how long the host loop polls after the last progress before sleeping")
	fs.DurationVar(&o.Idle, "idle", time.Second, "idle window after the traffic, to measure the helper's idle CPU")
	fs.IntVar(&o.GuestCPU, "guest-cpu", 0, "CPU for the guest side (-1: do not pin)")
	fs.IntVar(&o.HelperCPU, "helper-cpu", 1, "CPU for the host loop (-1: do not pin)")
	asJSON := fs.Bool("json", false, "end with one JSON object for scripts")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	o.Slots = uint32(*slots)
	if o.Frames == 0 || o.Burst < 1 || o.Runs < 1 {
		return usageError{"--frames, --burst and --runs must be positive"}
	}
	if n := runtime.NumCPU(); o.GuestCPU >= n || o.HelperCPU >= n {
		return usageError{fmt.Sprintf("this machine has CPUs 0..%d; pick --guest-cpu and --helper-cpu among them or -1", n-1)}
	}
	o.Progress = stdout
	fmt.Fprintf(stdout, "bench: backend %s, %d frames x %d runs, %d slots, burst %d, guest CPU %d, helper CPU %d\n",
		o.Backend, o.Frames, o.Runs, o.Slots, o.Burst, o.GuestCPU, o.HelperCPU)
	s, err := bench.Run(o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "median: %s %.2f Mpps vs reference %.2f Mpps (ratio %.2f); helper CPU %.0f%% busy, %.2f%% idle; %.5f kicks, %.5f interrupts per packet\n",
		s.Backend, s.Mpps, s.ReferenceMpps, s.Ratio, s.HelperCPUPct, s.HelperIdleCPUPct, s.KicksPerPacket, s.InterruptsPerPacket)
	if *asJSON {
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, string(b))
	}
	return nil
}
