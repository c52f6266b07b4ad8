// Package tests runs the built ptbhyve binary as a user would: black-box
// checks of its output contracts, which scripts depend on.
package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ptbhyve-tests")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "ptbhyve")
	build := exec.Command("go", "build", "-o", bin, "../cmd/ptbhyve")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("build ptbhyve: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// The last line of `bench --json` is one object with the keys the README
// promises, and its figures describe the run that was asked for.
func TestBenchJSONContract(t *testing.T) {
	for _, backend := range []string{"pipe", "switch"} {
		out, err := exec.Command(bin, "bench", "--backend", backend, "--frames", "300000", "--runs", "1",
			"--idle", "200ms", "--guest-cpu", "-1", "--helper-cpu", "-1", "--json").Output()
		if err != nil {
			t.Fatalf("%s: %v\n%s", backend, err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		var s map[string]any
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil {
			t.Fatalf("%s: last line is not JSON: %v\n%s", backend, err, out)
		}
		for _, k := range []string{"backend", "frames", "mpps", "reference_mpps", "ratio", "helper_cpu_pct",
			"helper_idle_cpu_pct", "kicks_per_packet", "interrupts_per_packet", "runs"} {
			if _, ok := s[k]; !ok {
				t.Errorf("%s: JSON lacks %q", backend, k)
			}
		}
		if s["backend"] != backend || s["frames"] != 300000.0 {
			t.Errorf("%s: JSON describes another run: backend %v frames %v", backend, s["backend"], s["frames"])
		}
		mpps, ref, ratio := s["mpps"].(float64), s["reference_mpps"].(float64), s["ratio"].(float64)
		if mpps <= 0 || ref <= 0 || ratio <= 0 {
			t.Errorf("%s: mpps %v reference %v ratio %v", backend, mpps, ref, ratio)
		}
		if runs := s["runs"].([]any); len(runs) != 1 {
			t.Errorf("%s: %d runs reported, want 1", backend, len(runs))
		}
	}
}

// A bad port name exits 1 with the reason; a bad flag exits 2; help exits 0.
func TestExitCodes(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"ports", "netmap:ix0", "ix0"}, 1, `did you mean "netmap:ix0"`},
		{[]string{"bench", "--no-such-flag"}, 2, "flag provided but not defined"},
		{[]string{"bench", "--backend", "nosuch", "--frames", "10", "--runs", "1"}, 1, "use pipe"},
		{[]string{"help"}, 0, "Commands:"},
	} {
		out, err := exec.Command(bin, c.args...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.code || !strings.Contains(string(out), c.want) {
			t.Errorf("ptbhyve %q: exit %d, output %q; want exit %d with %q", c.args, code, out, c.code, c.want)
		}
	}
}
