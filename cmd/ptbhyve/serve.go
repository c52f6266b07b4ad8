package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ptbhyve/ptbhyve/internal/api"
	"github.com/ptbhyve/ptbhyve/internal/config"
	"github.com/ptbhyve/ptbhyve/internal/daemon"
)

const serveHelp = `Runs the daemon: every VM in the configuration file gets a ptnet device,
one sync loop serves all their rings, and the ports named in the file are
attached. A QEMU VM (vmm = "qemu", the default on Linux) gets a device
memory and a socket RUN_DIR/VM.ivshmem its ivshmem-doorbell connects to
(see 'ptbhyve qemu-args'); a bhyve VM (vmm = "bhyve", the default on
FreeBSD) gets a socket RUN_DIR/VM.plugin that bhyve's ptnet device model
connects to (see 'ptbhyve bhyve-args'). The control API (HTTP+JSON) listens on a UNIX
socket only root can open; 'ptbhyve attach/detach/list/stats' use it.
SIGINT or SIGTERM detach every port, hang up on the VMs and remove the
sockets.

The configuration (TOML; every key optional):

  [daemon]
  socket = "/run/ptbhyve/ptbhyve.sock"
  run_dir = "/run/ptbhyve"
  spin = "20us"        # poll this long after the last packet before sleeping
  cpu = -1             # pin the sync loop

  [vm.vm0]
  rings = 1            # per direction
  slots = 1024
  port = "xdp:eth0"    # attached at start (optional)

  [vm.vm1]
  memory = "vm2"       # share vm2's memory: a zero-copy pipe can join them

Examples:
  ptbhyve serve --config /etc/ptbhyve.toml
  ptbhyve serve --check --config /etc/ptbhyve.toml   # validate only
`

func runServe(args []string, stdout, stderr io.Writer) error {
	fls := newFlags("serve", "[flags]", serveHelp, stderr)
	path := fls.String("config", config.DefaultPath, "configuration file")
	verbose := fls.Bool("v", false, "log debug messages")
	check := fls.Bool("check", false, "check the configuration and exit (0: valid; 1: the errors, with file, line and key)")
	if err := parse(fls, args); err != nil {
		return err
	}
	if fls.NArg() != 0 {
		return usageError{"serve takes no arguments"}
	}
	cfg, err := config.Load(*path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no configuration at %s: write one (see 'ptbhyve serve -h') or give --config", *path)
	}
	if err != nil {
		return err
	}
	if *check {
		fmt.Fprintf(stdout, "%s: %d VMs, valid\n", *path, len(cfg.VMs))
		return nil
	}
	if os.Geteuid() != 0 {
		return errors.New("not root: the daemon maps VM memory, opens netmap and AF_XDP ports and owns a root-only control socket; run it as root")
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	ln, err := api.Listen(cfg.Daemon.Socket)
	if err != nil {
		return err
	}
	defer os.Remove(cfg.Daemon.Socket)
	d, err := daemon.New(cfg, *path, log, daemon.Options{})
	if err != nil {
		ln.Close()
		return err
	}
	defer d.Close()
	srv := &http.Server{Handler: api.Handler(d), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("serving", "socket", cfg.Daemon.Socket, "vms", len(cfg.VMs))
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-served:
		return fmt.Errorf("control API: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	return d.Close()
}
