// Command ptnet-pktgen is pkt-gen for a guest without netmap: it drives the
// ptbhyve device through guestdrv and sends, receives, pings or echoes
// frames, printing the rate every second.
//
//	ptnet-pktgen -f tx -n 1000000
//	ptnet-pktgen -f rx -d 10s --json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ptbhyve/ptbhyve/guestdrv"
	"github.com/ptbhyve/ptbhyve/guestdrv/pktgen"
)

const usage = `Usage: ptnet-pktgen [flags]

Sends (-f tx), receives (-f rx), pings (-f ping: one frame, then its echo)
or echoes (-f pong) frames on the ptbhyve device of this VM, printing the
rate every second as pkt-gen does and a summary at the end (with --json,
one JSON object on the last line). Runs until -n frames, -d time or
SIGINT. While the host has no port attached the device's link is down
and nothing moves; the tool waits for it.

Flags:
`

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("ptnet-pktgen", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage); fs.PrintDefaults() }
	var c pktgen.Config
	pktgen.RegisterFlags(fs, &c)
	var o guestdrv.Options
	fs.StringVar(&o.Addr, "addr", "", "PCI address of the device (default: the first ivshmem-doorbell device)")
	fs.StringVar(&o.Mode, "mode", guestdrv.ModeAuto, "how to reach the device: vfio (interrupts; needs an IOMMU), poll (sysfs, no interrupts) or auto")
	waitLink := fs.Duration("wait-link", time.Minute, "how long to wait for the host to attach a port")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	p, err := guestdrv.Open(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ptnet-pktgen:", err)
		return 1
	}
	defer p.Close()
	fmt.Printf("ptnet-pktgen: device in %s mode; waiting up to %v for the link\n", p.Mode(), *waitLink)
	if err := p.WaitUp(*waitLink); err != nil {
		fmt.Fprintln(os.Stderr, "ptnet-pktgen:", err)
		return 1
	}
	i := p.Info()
	fmt.Printf("ptnet-pktgen: link up: %d TX and %d RX rings of %d slots, MAC %x\n", i.NumTx, i.NumRx, i.TxSlots, i.MAC)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	sum, err := pktgen.Run(ctx, p, c, pktgen.Printer(os.Stdout, "ptnet-pktgen: "))
	if err != nil {
		fmt.Fprintln(os.Stderr, "ptnet-pktgen:", err)
		return 1
	}
	fmt.Println("ptnet-pktgen:", sum)
	if *asJSON {
		b, _ := json.Marshal(sum)
		fmt.Printf("PTNET-PKTGEN-SUMMARY %s\n", b)
	}
	return 0
}
