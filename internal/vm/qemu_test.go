package vm

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestVerdict(t *testing.T) {
	many := make([]string, 50)
	for i := range many {
		many[i] = fmt.Sprintf("line %d", i)
	}
	tests := []struct {
		name    string
		lines   []string
		killed  error
		waitErr error
		stderr  string
		code    int
		errHas  []string // empty: no error
		errNot  []string
	}{
		{name: "exit 0", lines: []string{ReadyMarker, "out", "PTBHYVE-EXIT 0"}, code: 0},
		{name: "exit 3", lines: []string{ReadyMarker, "PTBHYVE-EXIT 3"}, code: 3},
		{name: "signal", lines: []string{"PTBHYVE-EXIT 137 killed by signal killed"}, code: 137},
		{name: "exit line then killed", lines: []string{"PTBHYVE-EXIT 5"}, killed: errStopped, code: 5},
		{
			name: "not started", lines: []string{ReadyMarker, `PTBHYVE-EXIT -1 exec: "nope": not found`},
			code: -1, errHas: []string{"could not start", `exec: "nope": not found`},
		},
		{
			name: "init error", lines: []string{"PTBHYVE-INIT-ERROR load module vfio: finit_module: exec format error"},
			code: -1, errHas: []string{"/init failed: load module vfio", "last 1 console lines"},
		},
		{
			name:  "panic",
			lines: []string{"BUG: unable to handle page fault", "Call Trace:", "Kernel panic - not syncing: Fatal exception", "---[ end Kernel panic ]---"},
			code:  -1, errHas: []string{"kernel panic", "Call Trace:", "end Kernel panic"},
		},
		{
			name: "timeout", lines: many, killed: errors.New("vm: timed out after 3s"),
			code: -1, errHas: []string{"timed out after 3s", "last 30 console lines", "line 20", "line 49"}, errNot: []string{"line 19\n"},
		},
		{
			name: "qemu failed", waitErr: errors.New("exit status 1"), stderr: "qemu: could not load kernel\n",
			code: -1, errHas: []string{"exit status 1", "could not load kernel", "no console output"},
		},
		{
			name: "no exit line", lines: []string{ReadyMarker, "out"},
			code: -1, errHas: []string{"without a PTBHYVE-EXIT line", "\tout"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := verdict(tt.lines, tt.killed, tt.waitErr, tt.stderr)
			if code != tt.code {
				t.Errorf("code = %d, want %d", code, tt.code)
			}
			if len(tt.errHas) == 0 {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("err = nil, want one containing %q", tt.errHas)
			}
			for _, s := range tt.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("err = %v\nwant it to contain %q", err, s)
				}
			}
			for _, s := range tt.errNot {
				if strings.Contains(err.Error()+"\n", s) {
					t.Errorf("err = %v\nwant it not to contain %q", err, s)
				}
			}
		})
	}
}

// TestExpect drives Expect against a console fed by hand: matches advance
// in order, a failed call consumes nothing, lines that arrive while a call
// waits are seen, and the end of the console ends the wait.
func TestExpect(t *testing.T) {
	v := &VM{changed: make(chan struct{}), done: make(chan struct{})}
	add := func(lines ...string) {
		v.mu.Lock()
		defer v.mu.Unlock()
		v.lines = append(v.lines, lines...)
		close(v.changed)
		v.changed = make(chan struct{})
	}
	ctx := context.Background()
	add("boot", ReadyMarker, "step 1", "step 2")

	if l, err := v.Expect(ctx, "step"); err != nil || l != "step 1" {
		t.Fatalf("Expect(step) = %q, %v; want step 1", l, err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := v.Expect(short, "boot"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Expect of a line before the cursor = %v, want a deadline error", err)
	}
	if l, err := v.ExpectRegexp(ctx, regexp.MustCompile(`^step \d$`)); err != nil || l != "step 2" {
		t.Fatalf("ExpectRegexp after a failed Expect = %q, %v; want step 2", l, err)
	}

	go func() {
		time.Sleep(20 * time.Millisecond)
		add("noise", "attach now")
	}()
	if l, err := v.Expect(ctx, "attach"); err != nil || l != "attach now" {
		t.Fatalf("Expect of a later line = %q, %v", l, err)
	}

	go func() {
		time.Sleep(20 * time.Millisecond)
		add("last words")
		v.mu.Lock()
		v.eof = true
		close(v.changed)
		v.mu.Unlock()
		v.res, v.err = Result{Lines: v.lines}, errors.New("vm: guest kernel panic")
		close(v.done)
	}()
	if _, err := v.Expect(ctx, "never"); err == nil || !strings.Contains(err.Error(), "kernel panic") {
		t.Fatalf("Expect at the end of the console = %v, want the run's error", err)
	}
}
