package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/ptbhyve/ptbhyve/guestdrv"
	"github.com/ptbhyve/ptbhyve/guestdrv/tapbridge"
)

const usage = `Usage: ptnet-tap [flags] [-- command [args]]

Creates a TAP interface backed by this VM's ptbhyve device (MAC from the
device) and bridges frames both ways. With a command, runs it once the
interface is up and exits with its status; without, runs until SIGINT.
The interface is removed on exit.

Flags:
`

func main() { os.Exit(run()) }

func run() int {
	fs := flag.NewFlagSet("ptnet-tap", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage); fs.PrintDefaults() }
	var c tapbridge.Config
	fs.StringVar(&c.Name, "name", "ptnet%d", "interface name (%d: first free number)")
	fs.IntVar(&c.MTU, "mtu", 1500, "MTU")
	fs.Func("addr", "address with prefix length, e.g. 10.0.0.2/24 (repeatable)", func(s string) error {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("%q: want an address with a prefix length, e.g. 10.0.0.2/24", s)
		}
		c.Addrs = append(c.Addrs, p)
		return nil
	})
	var o guestdrv.Options
	fs.StringVar(&o.Addr, "pci", "", "PCI address of the device (default: the first ivshmem-doorbell device)")
	fs.StringVar(&o.Mode, "mode", guestdrv.ModeAuto, "how to reach the device: vfio, poll or auto")
	waitLink := fs.Duration("wait-link", time.Minute, "how long to wait for the host to attach a port")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	p, err := guestdrv.Open(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ptnet-tap:", err)
		return 1
	}
	defer p.Close()
	if err := p.WaitUp(*waitLink); err != nil {
		fmt.Fprintln(os.Stderr, "ptnet-tap:", err)
		return 1
	}
	mac := p.Info().MAC
	c.MAC = net.HardwareAddr(mac[:])
	b, err := tapbridge.New(p, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ptnet-tap:", err)
		return 1
	}
	defer b.Close()
	fmt.Printf("ptnet-tap: %s is up (MAC %s, device in %s mode)\n", b.Name(), c.MAC, p.Mode())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	status := 0
	if args := fs.Args(); len(args) > 0 {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "ptnet-tap:", err)
			status = 1
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ExitCode() > 0 {
				status = ee.ExitCode()
			}
		}
		cancel()
	} else {
		<-ctx.Done()
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "ptnet-tap:", err)
		status = max(status, 1)
	}
	st := b.Stats()
	fmt.Printf("ptnet-tap: %d frames out (%d bytes), %d in (%d bytes); dropped: %d ring full, %d oversize, %d bad slots\n",
		st.ToRingFrames, st.ToRingBytes, st.ToTapFrames, st.ToTapBytes, st.RingFull, st.Oversize, st.BadSlot)
	return status
}
