package ivshmem

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ptbhyve/ptbhyve/internal/shm"
)

// QEMU's own ivshmem-doorbell device takes the server's setup: it reads it
// while realizing the device and exits on any protocol error, so a QEMU
// still running after connecting has accepted the memory and every
// eventfd. When QEMU dies the server notices and forgets it.
func TestRealQEMU(t *testing.T) {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		if os.Getenv("PTBHYVE_REQUIRE_QEMU") != "" {
			t.Fatal("qemu-system-x86_64 is required here (PTBHYVE_REQUIRE_QEMU is set): apt-get install qemu-system-x86")
		}
		t.Skip("SKIP: qemu-system-x86_64 not installed (apt-get install --no-install-recommends qemu-system-x86)")
	}
	mem, err := shm.New("ivshmem-qemu", 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	path := filepath.Join(t.TempDir(), "iv.sock")
	s, err := Listen(path, mem.Fd(), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	joined, left := make(chan *Peer, 1), make(chan *Peer, 1)
	s.Connected = func(p *Peer) { joined <- p }
	s.Disconnected = func(p *Peer) { left <- p }
	go s.Serve()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, "-machine", "q35", "-accel", "tcg", "-nodefaults", "-no-user-config",
		"-display", "none", "-serial", "none", "-monitor", "none", "-S",
		"-chardev", "socket,path="+path+",id=iv", "-device", "ivshmem-doorbell,chardev=iv,vectors=4")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	var p *Peer
	select {
	case p = <-joined:
	case err := <-exited:
		t.Fatalf("QEMU exited before connecting: %v\n%s", err, out.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("QEMU did not connect\n%s", out.String())
	}
	select {
	case err := <-exited:
		exited <- err
		t.Fatalf("QEMU refused the setup: %v\n%s", err, out.String())
	case <-time.After(500 * time.Millisecond):
	}
	if p.ID < 1 || len(p.Vectors) != 4 {
		t.Fatalf("peer %+v", p)
	}
	cmd.Process.Kill()
	select {
	case q := <-left:
		if q.ID != p.ID {
			t.Fatalf("peer %d left, want %d", q.ID, p.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not notice QEMU going away")
	}
}
