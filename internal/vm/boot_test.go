package vm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The tests in this file boot real guests. They need root, QEMU and the
// Debian cloud kernel (fetched once into DefaultCacheDir); without them
// they skip, loudly, unless PTBHYVE_REQUIRE_QEMU=1, which turns the skip
// into a failure so that CI cannot pass without having run them.

// guest is what a boot test needs: a kernel, /init and the hello program.
type guest struct {
	kernel      Kernel
	init, hello string
}

func needGuest(t *testing.T) guest {
	t.Helper()
	skip := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("PTBHYVE_REQUIRE_QEMU") == "1" {
			t.Fatalf("vm: PTBHYVE_REQUIRE_QEMU=1, but %s", msg)
		}
		t.Skip("vm: SKIP: " + msg)
	}
	if os.Geteuid() != 0 {
		skip("not root (the kernel cache and the guest tests need root)")
	}
	if _, err := QEMUPath(); err != nil {
		skip("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	k, err := FetchKernel(ctx, DefaultCacheDir(), testWriter{t})
	if err != nil {
		skip("cannot fetch the guest kernel: %v", err)
	}
	dir := t.TempDir()
	g := guest{kernel: k, init: filepath.Join(dir, "init"), hello: filepath.Join(dir, "hello")}
	if err := BuildInit(g.init); err != nil {
		t.Fatal(err)
	}
	if err := BuildStatic("./testdata/hello", g.hello); err != nil {
		t.Fatal(err)
	}
	return g
}

// image builds an initramfs with /init, /bin/hello and modules.
func (g guest) image(t *testing.T, modules ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "initrd.gz")
	im := Image{Init: g.init, Files: map[string]string{"/bin/hello": g.hello}, Modules: modules}
	if err := im.Build(out); err != nil {
		t.Fatal(err)
	}
	return out
}

// testWriter sends console and progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestBoot(t *testing.T) {
	g := needGuest(t)
	junk := filepath.Join(t.TempDir(), "junk.ko")
	if err := os.WriteFile(junk, []byte("not a module"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		command  []string
		modules  []string
		wantLine string
		wantCode int
		wantErr  string
	}{
		{name: "exit code", command: []string{"hello"}, wantLine: "hello from the guest", wantCode: 3},
		{name: "missing command", command: []string{"/bin/nope", "a b"}, wantCode: -1, wantErr: "could not start the command"},
		{name: "bad module", command: []string{"hello"}, modules: []string{junk}, wantCode: -1, wantErr: "/init failed: load module junk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(context.Background(), Config{
				Kernel:  g.kernel,
				Initrd:  g.image(t, tt.modules...),
				Command: tt.command,
				Timeout: time.Minute,
				Console: testWriter{t},
			})
			t.Logf("boot to power-off: %v", res.Elapsed.Round(time.Millisecond))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Run = %v, want an error containing %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != tt.wantCode {
				t.Errorf("exit code %d, want %d", res.ExitCode, tt.wantCode)
			}
			if tt.wantLine != "" {
				ready := slices.Index(res.Lines, ReadyMarker)
				line := slices.Index(res.Lines, tt.wantLine)
				if ready < 0 || line < ready {
					t.Errorf("console lacks %q after %q:\n%s", tt.wantLine, ReadyMarker, strings.Join(res.Lines, "\n"))
				}
			}
		})
	}
}

// TestBootModules loads the vfio set and tun the way the ivshmem tests do,
// with a module parameter from the kernel command line, and checks in the
// guest that they are live.
func TestBootModules(t *testing.T) {
	g := needGuest(t)
	mods, err := g.kernel.Modules("vfio-pci", "vfio_iommu_type1", "tun")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range mods {
		names = append(names, ModuleName(m))
	}
	t.Logf("load order: %v", names)
	want := []string{"irqbypass", "tun", "vfio", "vfio_iommu_type1", "vfio_pci", "vfio_pci_core", "vfio_virqfd"}
	if got := slices.Sorted(slices.Values(names)); !slices.Equal(got, want) {
		t.Fatalf("modules %v, want %v", got, want)
	}
	if slices.Index(names, "vfio") > slices.Index(names, "vfio_pci_core") ||
		slices.Index(names, "vfio_pci_core") > slices.Index(names, "vfio_pci") {
		t.Fatalf("load order %v puts a module before its dependency", names)
	}
	param := "/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts"
	res, err := Run(context.Background(), Config{
		Kernel:  g.kernel,
		Initrd:  g.image(t, mods...),
		Append:  VerboseParam + " vfio-iommu-type1.allow_unsafe_interrupts=1",
		Command: []string{"hello", "stat", "/sys/module/vfio_pci", "/sys/module/tun", "/dev/vfio/vfio", param},
		Timeout: time.Minute,
		Console: testWriter{t},
	})
	t.Logf("boot to power-off: %v", res.Elapsed.Round(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 {
		t.Errorf("hello stat exited %d, want 0", res.ExitCode)
	}
	for _, w := range []string{"/sys/module/vfio_pci: ok", param + ": ok Y"} {
		if !slices.Contains(res.Lines, w) {
			t.Errorf("console lacks %q", w)
		}
	}
	loaded := regexp.MustCompile(`^init: loaded vfio_pci \(\d+\.\d\ds\)$`)
	if !slices.ContainsFunc(res.Lines, loaded.MatchString) {
		t.Errorf("console lacks a line matching %v (ptbhyve.verbose)", loaded)
	}
}

// TestBootExpectStop follows a guest with Expect while it runs, then
// stops it, as tests that act on the host mid-run do.
func TestBootExpectStop(t *testing.T) {
	g := needGuest(t)
	v, err := Start(context.Background(), Config{
		Kernel:  g.kernel,
		Initrd:  g.image(t),
		Command: []string{"hello", "sleep"},
		Timeout: time.Minute,
		Console: testWriter{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	if _, err := v.ExpectRegexp(ctx, regexp.MustCompile("^"+ReadyMarker+"$")); err != nil {
		t.Fatal(err)
	}
	line, err := v.Expect(ctx, "sleep")
	if err != nil || line != "sleeping" {
		t.Fatalf("Expect = %q, %v; want the line \"sleeping\"", line, err)
	}
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	if _, err := v.Expect(short, "never printed"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Expect of a missing line = %v, want the context's deadline", err)
	}
	pid := v.PID()
	v.Stop()
	res, err := v.Wait()
	if !errors.Is(err, errStopped) || res.ExitCode != -1 {
		t.Fatalf("Wait after Stop = %d, %v; want -1 and %v", res.ExitCode, err, errStopped)
	}
	if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
		t.Fatalf("QEMU (pid %d) still there after Stop: kill(0) = %v", pid, err)
	}
	if _, err := v.Expect(ctx, "never printed"); err == nil || !strings.Contains(err.Error(), "console ended") {
		t.Fatalf("Expect after the end = %v, want a console-ended error", err)
	}
}

// TestBootTimeout gives a guest less time than a boot takes.
func TestBootTimeout(t *testing.T) {
	g := needGuest(t)
	start := time.Now()
	res, err := Run(context.Background(), Config{
		Kernel:  g.kernel,
		Initrd:  g.image(t),
		Command: []string{"hello"},
		Timeout: 500 * time.Millisecond,
	})
	if err == nil || !strings.Contains(err.Error(), "timed out after 500ms") {
		t.Fatalf("Run = %v, want a timeout", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("Run took %v with a 500ms timeout", took)
	}
	if res.ExitCode != -1 {
		t.Errorf("exit code %d, want -1", res.ExitCode)
	}
}

func TestStartErrors(t *testing.T) {
	if _, err := QEMUPath(); err != nil {
		t.Skipf("vm: SKIP: %v", err)
	}
	dir := t.TempDir()
	f := writeFile(t, filepath.Join(dir, "f"), "x")
	k := Kernel{Vmlinuz: f}
	tests := []struct {
		name string
		c    Config
		want string
	}{
		{"no command", Config{Kernel: k, Initrd: f}, "Command is empty"},
		{"no kernel", Config{Kernel: Kernel{Vmlinuz: filepath.Join(dir, "none")}, Initrd: f, Command: []string{"x"}}, "FetchKernel"},
		{"no initrd", Config{Kernel: k, Initrd: filepath.Join(dir, "none"), Command: []string{"x"}}, "Image.Build"},
		{"long command", Config{Kernel: k, Initrd: f, Command: []string{strings.Repeat("x", 1600)}}, "limit is 2047"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Start(context.Background(), tt.c)
			if err == nil {
				v.Stop()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Start = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
