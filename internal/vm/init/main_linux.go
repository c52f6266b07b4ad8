//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/ptbhyve/ptbhyve/internal/vm"
	"golang.org/x/sys/unix"
)

func main() {
	argv, err := setup()
	if err != nil {
		fmt.Printf("%s %v\n", vm.InitErrorMarker, err)
		powerOff()
	}
	fmt.Println(vm.ReadyMarker)
	code, reason := run(argv)
	if reason != "" {
		fmt.Printf("%s %d %s\n", vm.ExitMarker, code, reason)
	} else {
		fmt.Printf("%s %d\n", vm.ExitMarker, code)
	}
	powerOff()
}

// setup prepares the guest and returns the command to run.
func setup() ([]string, error) {
	if err := mountAll(); err != nil {
		return nil, err
	}
	if err := consoleStdio(); err != nil {
		return nil, err
	}
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return nil, err
	}
	args := vm.ParseKernelArgs(string(cmdline))
	if err := loadModules(args); err != nil {
		return nil, err
	}
	if err := loopbackUp(); err != nil {
		return nil, err
	}
	enc, ok := args.Value(vm.RunParam)
	if !ok {
		return nil, fmt.Errorf("no %s= on the kernel command line", vm.RunParam)
	}
	return vm.DecodeCommand(enc)
}

// mountAll mounts what the guest programs expect. The kernel mounts none
// of it: DEVTMPFS_MOUNT does not apply to an initramfs root.
func mountAll() error {
	const nosuid = unix.MS_NOSUID | unix.MS_NODEV
	mounts := []struct {
		fstype, target string
		flags          uintptr
		data           string
	}{
		{"devtmpfs", "/dev", unix.MS_NOSUID, "mode=0755"},
		{"proc", "/proc", nosuid | unix.MS_NOEXEC, ""},
		{"sysfs", "/sys", nosuid | unix.MS_NOEXEC, ""},
		{"tmpfs", "/tmp", nosuid, "mode=1777"},
		{"tmpfs", "/run", nosuid, "mode=0755"},
	}
	for _, m := range mounts {
		err := unix.Mount(m.fstype, m.target, m.fstype, m.flags, m.data)
		if err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
		}
	}
	return nil
}

// consoleStdio puts /dev/console on fds 0-2. The kernel already opened it
// for /init from the image's /dev/console node; reopening it from devtmpfs
// keeps the console working when that node is missing or shadowed.
func consoleStdio() error {
	fd, err := unix.Open("/dev/console", unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("open /dev/console: %w", err)
	}
	for i := 0; i < 3; i++ {
		if i != fd {
			if err := unix.Dup3(fd, i, 0); err != nil {
				return fmt.Errorf("dup /dev/console to fd %d: %w", i, err)
			}
		}
	}
	if fd > 2 {
		unix.Close(fd)
	}
	return nil
}

// loadModules loads /etc/modules in order, each with its parameters from
// the kernel command line. A module that is already there (EEXIST) is
// fine.
func loadModules(args vm.KernelArgs) error {
	_, verbose := args.Value(vm.VerboseParam)
	list, err := os.ReadFile("/etc/modules")
	if err != nil {
		return err
	}
	for _, path := range strings.Fields(string(list)) {
		name := vm.ModuleName(path)
		start := time.Now()
		if err := finitModule(path, args.ModuleParams(name)); err != nil {
			return fmt.Errorf("load module %s: %w", name, err)
		}
		if verbose {
			fmt.Printf("init: loaded %s (%.2fs)\n", name, time.Since(start).Seconds())
		}
	}
	return nil
}

func finitModule(path, params string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	err = unix.FinitModule(int(f.Fd()), params, 0)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		if params != "" {
			return fmt.Errorf("finit_module(%q): %w", params, err)
		}
		return fmt.Errorf("finit_module: %w", err)
	}
	return nil
}

// loopbackUp sets IFF_UP on lo, which guest programs that talk to
// themselves over 127.0.0.1 need; nothing else in the guest would.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo up: SIOCGIFFLAGS: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo up: SIOCSIFFLAGS: %w", err)
	}
	return nil
}

// run runs the command on the console and returns its exit code, with a
// reason when the code is not the command's own: -1 if it did not start,
// 128+N (as a shell reports it) if signal N killed it.
func run(argv []string) (int, string) {
	os.Setenv("PATH", "/bin") // exec.Command looks argv[0] up in this
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/bin"}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	if cmd.ProcessState == nil {
		return -1, err.Error()
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), "killed by signal " + ws.Signal().String()
	}
	return cmd.ProcessState.ExitCode(), ""
}

// powerOff flushes and ends the machine; with -no-reboot QEMU exits. If
// that fails, exiting makes the kernel panic, which panic=-1 and
// -no-reboot also turn into QEMU's exit.
func powerOff() {
	unix.Sync()
	err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	fmt.Printf("init: power off: %v\n", err)
	os.Exit(1)
}
