package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ptbhyve/ptbhyve/bhyve"
	"github.com/ptbhyve/ptbhyve/internal/daemon"
	"github.com/ptbhyve/ptbhyve/netmap/bounce"
)

func TestCommandLine(t *testing.T) {
	for _, c := range []struct {
		args     []string
		code     int
		out, err string
	}{
		{nil, 2, "Commands:", ""},
		{[]string{"--help"}, 0, "ptbhyve <command>", ""},
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{"ports", "netmap:ix0-1/x"}, 0, `netmap port "ix0", mode NR_REG_ONE_NIC`, ""},
		{[]string{"ports", "ix0"}, 1, `did you mean "netmap:ix0"`, "1 of 1 names are invalid"},
		{[]string{"ports"}, 2, "", "name at least one port"},
		{[]string{"bench", "--runs", "0"}, 2, "", "must be positive"},
		{[]string{"bench", "--guest-cpu", "4096"}, 2, "", "pick --guest-cpu"},
		{[]string{"bench", "-h"}, 0, "", "In the same run it measures the"},
		{[]string{"bench", "extra"}, 2, "", `unexpected argument "extra"`},
		// Flags may follow the arguments, as operators type them.
		{[]string{"stats", "vm0", "--json", "--socket", "/nonexistent/ptbhyve.sock"}, 1, "", "no ptbhyve daemon at /nonexistent/ptbhyve.sock"},
		{[]string{"attach", "vm0"}, 2, "", "attach needs a VM and a port"},
		{[]string{"detach", "vm0", "--bogus"}, 2, "", "flag provided but not defined: -bogus"},
		{[]string{"serve", "--config", "/nonexistent.toml"}, 1, "", "no configuration at /nonexistent.toml"},
		{[]string{"serve", "--check", "--config", "../../internal/config/testdata/example.toml"}, 0, "VMs, valid", ""},
		{[]string{"qemu-args", "-h"}, 0, "", "intel_iommu=on"},
	} {
		var out, errb bytes.Buffer
		code := run(c.args, &out, &errb)
		if code != c.code || !strings.Contains(out.String(), c.out) || !strings.Contains(errb.String(), c.err) {
			t.Errorf("ptbhyve %q: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
				c.args, code, out.String(), errb.String(), c.code, c.out, c.err)
		}
	}
}

func TestPortsJSON(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"ports", "--json", "vale0:vm1@conf:rings=2", "bad"}, &out, &errb); code != 1 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one JSON object per name, got %q", out.String())
	}
	var ok, bad map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &ok); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &bad); err != nil {
		t.Fatal(err)
	}
	p := ok["parsed"].(map[string]any)
	if ok["ok"] != true || p["Family"] != "vale" || p["Switch"] != "0" || ok["kernel_name"] != "vale0:vm1" {
		t.Errorf("valid name: %v", ok)
	}
	if bad["ok"] != false || !strings.Contains(bad["error"].(string), `"bad"`) {
		t.Errorf("invalid name: %v", bad)
	}
}

func TestPrintStatsPath(t *testing.T) {
	for _, tt := range []struct {
		name string
		path *bhyve.Path
		want []string
	}{
		{"qemu", nil, nil},
		{"zero copy", &bhyve.Path{Datapath: bhyve.DatapathZeroCopy, Sync: bhyve.SyncKernel},
			[]string{"path: zero-copy, kernel sync loop\n"}},
		{"fallback", &bhyve.Path{Datapath: bhyve.DatapathCopy, Sync: bhyve.SyncPtbhyve, Fallback: "EXTMEM refused",
			Copied: &bounce.Stats{TxPackets: 3, TxBytes: 180, RxPackets: 2, RxBytes: 120}, Error: "EBADF"},
			[]string{"path: copy, ptbhyve sync loop\n", "not zero copy because: EXTMEM refused", "copied: 3 packets / 180 bytes to the port, 2 / 120 from it", "kernel sync loop ended: EBADF"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			printStats(&b, daemon.Stats{VM: "vm0", Path: tt.path})
			if tt.path == nil && strings.Contains(b.String(), "path:") {
				t.Fatalf("a path line without a path:\n%s", b.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("no %q in\n%s", w, b.String())
				}
			}
		})
	}
}
