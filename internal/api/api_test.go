package api

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ptbhyve/ptbhyve/internal/config"
	"github.com/ptbhyve/ptbhyve/internal/daemon"
)

// The client and the handler over a real UNIX socket, against a daemon
// with in-process ports.
func TestClientServer(t *testing.T) {
	dir := t.TempDir()
	socket := filepath.Join(dir, "ctl.sock")
	cfg, err := config.Parse([]byte(fmt.Sprintf("[daemon]\nrun_dir = %q\n[vm.vm0]\nslots = 256\n", filepath.Join(dir, "run"))), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(cfg, "t.toml", slog.New(slog.NewTextHandler(io.Discard, nil)), daemon.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ln, err := Listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: Handler(d)}
	go srv.Serve(ln)
	defer srv.Close()
	if fi, err := os.Stat(socket); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", fi.Mode(), err)
	}
	if _, err := Listen(socket); err == nil || !strings.Contains(err.Error(), "another ptbhyve daemon is running") {
		t.Fatalf("second Listen: %v", err)
	}

	c := NewClient(socket)
	if vms, err := c.List(); err != nil || len(vms) != 1 || vms[0].Name != "vm0" || vms[0].Link {
		t.Fatalf("list: %+v %v", vms, err)
	}
	info, err := c.Attach("vm0", "switchapi:vm0")
	if err != nil || !info.Link || info.Port != "switchapi:vm0" {
		t.Fatalf("attach: %+v %v", info, err)
	}
	var ae *Error
	if _, err := c.Attach("vm0", "switchapi:x"); !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		t.Fatalf("second attach: %v", err)
	}
	if _, err := c.Info("nope"); !errors.As(err, &ae) || ae.Status != http.StatusNotFound || !strings.Contains(err.Error(), "[vm.nope]") {
		t.Fatalf("unknown VM: %v", err)
	}
	if _, err := c.Attach("vm0", ""); !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
		t.Fatalf("attach without a port: %v", err)
	}
	st, err := c.Stats("vm0")
	if err != nil || st.VM != "vm0" || !st.Link || len(st.Rings) != 2 || st.Backend == nil {
		t.Fatalf("stats: %+v %v", st, err)
	}
	args, err := c.QEMUArgs("vm0")
	if err != nil || !strings.Contains(strings.Join(args, " "), "vectors=3") {
		t.Fatalf("qemu-args: %q %v", args, err)
	}
	if info, err := c.Detach("vm0"); err != nil || info.Link {
		t.Fatalf("detach: %+v %v", info, err)
	}
	if _, err := NewClient(filepath.Join(dir, "none.sock")).List(); err == nil || !strings.Contains(err.Error(), "no ptbhyve daemon at") {
		t.Fatalf("no daemon: %v", err)
	}
}
