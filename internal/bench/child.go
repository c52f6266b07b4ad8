package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// The guest side and the SPSC producer run in a child process, the program
// itself re-executed with roleEnv set; parent and child speak one JSON
// object per line over the child's stdin and stdout.
const (
	roleEnv   = "PTBHYVE_BENCH_ROLE"
	configEnv = "PTBHYVE_BENCH_CONFIG"
)

// IsChild reports whether this process was started as a bench child. A
// program that runs benchmarks calls RunChild first thing when it is.
func IsChild() bool { return os.Getenv(roleEnv) != "" }

// RunChild runs the child role named in the environment and exits.
func RunChild() {
	var err error
	switch role := os.Getenv(roleEnv); role {
	case "guest":
		err = runGuest()
	case "spsc":
		err = runProducer()
	case "xdpsend":
		err = runXDPSender()
	default:
		err = fmt.Errorf("unknown bench role %q", role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// child is a running child process.
type child struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// spawn starts the child role with cfg in its environment and files as
// descriptors 3, 4, ...
func spawn(role string, cfg any, files []*os.File) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bench: find own executable: %w", err)
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), roleEnv+"="+role, configEnv+"="+string(b))
	cmd.ExtraFiles = files
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start %s child: %w", role, err)
	}
	return &child{cmd: cmd, in: in, out: bufio.NewScanner(out)}, nil
}

// recv reads the child's next message into v.
func (c *child) recv(v any) error {
	if !c.out.Scan() {
		if err := c.out.Err(); err != nil {
			return fmt.Errorf("bench: read from child: %w", err)
		}
		return fmt.Errorf("bench: child exited early: %v", c.wait())
	}
	return json.Unmarshal(c.out.Bytes(), v)
}

// send writes a message to the child.
func (c *child) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = c.in.Write(append(b, '\n'))
	return err
}

// wait closes the child's stdin (its cue to exit) and reaps it, killing it
// if it does not exit within five seconds.
func (c *child) wait() error {
	c.in.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		return fmt.Errorf("bench: child did not exit; killed: %v", <-done)
	}
}

// childConfig reads the child's configuration from the environment.
func childConfig(v any) error {
	return json.Unmarshal([]byte(os.Getenv(configEnv)), v)
}
