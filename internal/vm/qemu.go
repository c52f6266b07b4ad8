package vm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Config describes one guest run.
type Config struct {
	Kernel  Kernel
	Initrd  string   // Image.Build's output
	Append  string   // extra kernel arguments, e.g. "intel_iommu=on vfio_iommu_type1.x=1"
	Command []string // what /init runs; argv[0] is looked up in /bin
	MemMB   int      // guest RAM, default 256
	SMP     int      // vCPUs, default 1
	Extra   []string // extra QEMU arguments, e.g. "-device", "intel-iommu"
	// Timeout bounds the whole run, boot to power-off (default 2 minutes):
	// when it passes, QEMU's process group is killed.
	Timeout time.Duration
	Console io.Writer // optional copy of the serial console, line by line
}

// Result is what a finished guest left.
type Result struct {
	Lines    []string      // the serial console, without line ends
	ExitCode int           // the command's exit code as /init reported it, -1 if none
	Elapsed  time.Duration // QEMU start to exit
}

const (
	defaultTimeout = 2 * time.Minute
	// maxCmdline is x86's COMMAND_LINE_SIZE less its NUL: the kernel
	// silently truncates a longer command line, which would cut the
	// encoded command.
	maxCmdline = 2047
	// tailLines is how much of the console an error quotes.
	tailLines = 30
	// panicText starts the kernel's last words; with panic=-1 and
	// -no-reboot QEMU exits right after.
	panicText = "Kernel panic - not syncing"
)

var errStopped = errors.New("vm: stopped by VM.Stop")

// QEMUPath finds qemu-system-x86_64.
func QEMUPath() (string, error) {
	p, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return "", fmt.Errorf("vm: qemu-system-x86_64 not found in PATH: apt-get install qemu-system-x86 (`make deps` does)")
	}
	return p, nil
}

// VM is a running guest.
type VM struct {
	cmd     *exec.Cmd
	start   time.Time
	console io.Writer
	stderr  bytes.Buffer // QEMU's own messages; read only after done

	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced when lines grows or eof
	eof     bool          // no more lines will come
	exited  bool          // QEMU reaped: its PID may be reused
	killed  error         // why QEMU was killed, if it was
	next    int           // Expect's position in lines

	done chan struct{} // closed once res and err are final
	res  Result
	err  error
}

// Start boots a guest: QEMU with TCG on q35, no default devices, the
// serial console on its stdout, and -no-reboot with panic=-1 so that both
// power-off and a kernel panic end the process. QEMU runs in its own
// process group, killed when Config.Timeout passes, when ctx is done, on
// Stop, and (through the parent-death signal) if this process dies first.
func Start(ctx context.Context, c Config) (*VM, error) {
	qemu, err := QEMUPath()
	if err != nil {
		return nil, err
	}
	if len(c.Command) == 0 {
		return nil, errors.New("vm: Config.Command is empty")
	}
	if _, err := os.Stat(c.Kernel.Vmlinuz); err != nil {
		return nil, fmt.Errorf("vm: kernel image: %w (get one with vm.FetchKernel)", err)
	}
	if _, err := os.Stat(c.Initrd); err != nil {
		return nil, fmt.Errorf("vm: initrd: %w (make one with vm.Image.Build)", err)
	}
	cmdline := c.kernelCmdline()
	if len(cmdline) > maxCmdline {
		return nil, fmt.Errorf("vm: kernel command line is %d bytes, the limit is %d: pass large inputs as files in the image (Image.Files)", len(cmdline), maxCmdline)
	}
	cmd := exec.Command(qemu, c.qemuArgs(cmdline)...)
	// Pdeathsig fires when the thread that started QEMU exits; Go keeps
	// its threads, so in practice it fires when this process dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	v := &VM{cmd: cmd, console: c.Console, changed: make(chan struct{}), done: make(chan struct{})}
	cmd.Stderr = &v.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	v.start = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("vm: start %s: %w", qemu, err)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	runCtx, cancel := context.WithTimeoutCause(ctx, timeout,
		fmt.Errorf("vm: timed out after %v (raise Config.Timeout if the guest is just slow)", timeout))
	go func() {
		select {
		case <-runCtx.Done():
			v.kill(context.Cause(runCtx))
		case <-v.done:
		}
		cancel()
	}()
	go v.read(stdout)
	return v, nil
}

// Run boots a guest and waits for it to power off.
func Run(ctx context.Context, c Config) (Result, error) {
	v, err := Start(ctx, c)
	if err != nil {
		return Result{ExitCode: -1}, err
	}
	return v.Wait()
}

// kernelCmdline puts the command last, after the caller's arguments, so
// that Append cannot override it.
func (c Config) kernelCmdline() string {
	parts := []string{"console=ttyS0", "panic=-1", "quiet"}
	if a := strings.TrimSpace(c.Append); a != "" {
		parts = append(parts, a)
	}
	return strings.Join(append(parts, RunParam+"="+EncodeCommand(c.Command)), " ")
}

func (c Config) qemuArgs(cmdline string) []string {
	mem, smp := c.MemMB, c.SMP
	if mem <= 0 {
		mem = 256
	}
	if smp <= 0 {
		smp = 1
	}
	args := []string{
		"-machine", "q35", "-accel", "tcg",
		"-m", strconv.Itoa(mem) + "M", "-smp", strconv.Itoa(smp),
		"-nodefaults", "-no-user-config", "-display", "none",
		"-serial", "stdio", "-no-reboot",
		"-kernel", c.Kernel.Vmlinuz, "-initrd", c.Initrd, "-append", cmdline,
	}
	return append(args, c.Extra...)
}

// PID is QEMU's process ID, also its process group ID.
func (v *VM) PID() int { return v.cmd.Process.Pid }

// Wait waits for the guest to end. The error is nil when /init reported
// the command's exit code, whatever it is; otherwise it says why the run
// failed (timeout, kernel panic, /init failure, the command not starting,
// QEMU failing) and quotes the end of the console.
func (v *VM) Wait() (Result, error) {
	<-v.done
	return v.res, v.err
}

// Stop kills the guest and waits for QEMU to be reaped. It is safe to call
// at any time, more than once, and after Wait.
func (v *VM) Stop() {
	v.kill(errStopped)
	<-v.done
}

// Expect waits for the next console line containing substr, e.g. a line
// the guest program prints when it is ready for the host to act. Each
// Expect or ExpectRegexp call searches from just after the line the last
// successful one matched, so a sequence of calls follows the guest in
// order; a call that fails consumes nothing. Calls must not overlap.
func (v *VM) Expect(ctx context.Context, substr string) (string, error) {
	return v.expect(ctx, strconv.Quote(substr), func(l string) bool { return strings.Contains(l, substr) })
}

// ExpectRegexp is Expect for a line matching re.
func (v *VM) ExpectRegexp(ctx context.Context, re *regexp.Regexp) (string, error) {
	return v.expect(ctx, "/"+re.String()+"/", re.MatchString)
}

func (v *VM) expect(ctx context.Context, what string, match func(string) bool) (string, error) {
	v.mu.Lock()
	i := v.next
	v.mu.Unlock()
	for {
		v.mu.Lock()
		for ; i < len(v.lines); i++ {
			if match(v.lines[i]) {
				v.next = i + 1
				line := v.lines[i]
				v.mu.Unlock()
				return line, nil
			}
		}
		eof, changed := v.eof, v.changed
		v.mu.Unlock()
		if eof {
			<-v.done
			if v.err != nil {
				return "", fmt.Errorf("vm: console ended without a line matching %s: %w", what, v.err)
			}
			return "", fmt.Errorf("vm: console ended without a line matching %s; %s", what, tail(v.res.Lines))
		}
		select {
		case <-changed:
		case <-ctx.Done():
			v.mu.Lock()
			t := tail(v.lines)
			v.mu.Unlock()
			return "", fmt.Errorf("vm: waiting for a line matching %s: %w; %s", what, ctx.Err(), t)
		}
	}
}

// kill kills QEMU's process group unless QEMU is already reaped (its PID
// could then belong to another process).
func (v *VM) kill(why error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.exited {
		return
	}
	if v.killed == nil {
		v.killed = why
	}
	_ = unix.Kill(-v.cmd.Process.Pid, unix.SIGKILL)
}

// read collects the console until QEMU closes it, then reaps QEMU and
// settles the result.
func (v *VM) read(stdout io.Reader) {
	br := bufio.NewReader(stdout)
	for {
		s, err := br.ReadString('\n')
		if s != "" {
			line := strings.TrimRight(s, "\r\n")
			if v.console != nil {
				_, _ = io.WriteString(v.console, line+"\n")
			}
			v.mu.Lock()
			v.lines = append(v.lines, line)
			close(v.changed)
			v.changed = make(chan struct{})
			v.mu.Unlock()
		}
		if err != nil {
			break
		}
	}
	waitErr := v.cmd.Wait()
	elapsed := time.Since(v.start)

	v.mu.Lock()
	v.eof, v.exited = true, true
	close(v.changed)
	lines, killed := v.lines, v.killed
	v.mu.Unlock()

	code, err := verdict(lines, killed, waitErr, v.stderr.String())
	v.res = Result{Lines: lines, ExitCode: code, Elapsed: elapsed}
	v.err = err
	close(v.done)
}

// verdict reads a finished guest's console: the exit code /init reported
// and, if the run did not get as far as a started command's exit, why.
// killed is why QEMU was killed (nil if it exited by itself), waitErr and
// stderr what QEMU's exit left.
func verdict(lines []string, killed, waitErr error, stderr string) (int, error) {
	code, reason, exited := -1, "", false
	initErr, panicked := "", false
	for _, l := range lines {
		if c, r, ok := ParseExitLine(l); ok {
			code, reason, exited = c, r, true
		}
		if i := strings.Index(l, InitErrorMarker+" "); i >= 0 && initErr == "" {
			initErr = l[i+len(InitErrorMarker)+1:]
		}
		if strings.Contains(l, panicText) {
			panicked = true
		}
	}
	qemuMsg := ""
	if s := strings.TrimSpace(stderr); s != "" {
		qemuMsg = "; qemu said: " + s
	}
	switch {
	case exited && code == -1:
		return code, fmt.Errorf("vm: guest could not start the command: %s", reason)
	case exited:
		return code, nil
	case initErr != "":
		return -1, fmt.Errorf("vm: guest /init failed: %s; %s", initErr, tail(lines))
	case panicked:
		return -1, fmt.Errorf("vm: guest kernel panic; %s", tail(lines))
	case killed != nil:
		return -1, fmt.Errorf("%w; %s", killed, tail(lines))
	case waitErr != nil:
		return -1, fmt.Errorf("vm: qemu: %w%s; %s", waitErr, qemuMsg, tail(lines))
	default:
		return -1, fmt.Errorf("vm: guest powered off without a %s line%s; %s", ExitMarker, qemuMsg, tail(lines))
	}
}

// tail quotes the last console lines for an error message.
func tail(lines []string) string {
	if len(lines) == 0 {
		return "no console output"
	}
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	return fmt.Sprintf("last %d console lines:\n\t%s", len(lines), strings.Join(lines, "\n\t"))
}
