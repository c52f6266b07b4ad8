package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"github.com/ptbhyve/ptbhyve/guestdrv"
	"github.com/ptbhyve/ptbhyve/guestdrv/pktgen"
	"github.com/ptbhyve/ptbhyve/netmap/backend"
)

const pktgenHelp = `pkt-gen on a host port: sends (-f tx), receives (-f rx), pings or echoes
frames on PORT, any name 'ptbhyve ports' accepts (xdp:IF on Linux,
netmap:IF or valeX:Y on FreeBSD), printing the rate every second and a
summary. It speaks the same frames as the guest's ptnet-pktgen, so the two
ends of a VM's link can be measured against each other. Runs until -n
frames, -d time or SIGINT.

Examples:
  ip netns exec peer ptbhyve pktgen -f rx -n 100000 xdp:veth1
  ptbhyve pktgen -f tx -R 100k -d 10s xdp:eth0
`

func runPktgen(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("pktgen", "[flags] PORT", pktgenHelp, stderr)
	var c pktgen.Config
	pktgen.RegisterFlags(fs, &c)
	slots := fs.Uint("slots", 1024, "slots per ring")
	asJSON := fs.Bool("json", false, "print the summary as one JSON object on the last line")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"pktgen needs one port, e.g. ptbhyve pktgen -f rx xdp:eth0"}
	}
	p, err := backend.Open(fs.Arg(0), backend.Options{Rings: 1, Slots: uint32(*slots), BufSize: 2048})
	if err != nil {
		return err
	}
	defer p.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	sum, err := pktgen.Run(ctx, guestdrv.HostPort(p), c, pktgen.Printer(stdout, ""))
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(sum)
	}
	fmt.Fprintln(stdout, sum)
	return nil
}
