package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ptbhyve/ptbhyve/internal/api"
	"github.com/ptbhyve/ptbhyve/internal/config"
	"github.com/ptbhyve/ptbhyve/internal/daemon"
)

// controlFlags are the flags every client command has.
type controlFlags struct {
	socket string
	json   bool
}

func (c *controlFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.socket, "socket", config.Default().Daemon.Socket, "the daemon's control socket")
	fs.BoolVar(&c.json, "json", false, "print JSON")
}

func printJSON(w io.Writer, v any) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(v)
}

const attachHelp = `Attaches netmap port PORT to VM's device: the port's rings are laid out in
the VM's memory and the guest's link comes up (a running guest driver
creates its rings again; the VM does not restart). PORT is any name
'ptbhyve ports' accepts that builds its region itself: xdp:IF or
xdp:IF-Q (AF_XDP, Linux), switchX:PORT (ptbhyve's learning switch,
frames copied between VMs), pipe:NAME{ID / pipe:NAME}ID (zero copy
between two VMs that share a memory).

Examples:
  ptbhyve attach vm0 xdp:eth0
  ptbhyve attach vm1 switch0:vm1
  ptbhyve attach vm2 'pipe:p{0' && ptbhyve attach vm3 'pipe:p}0'
`

func runAttach(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("attach", "[flags] VM PORT", attachHelp, stderr)
	var c controlFlags
	c.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usageError{"attach needs a VM and a port, e.g. ptbhyve attach vm0 xdp:eth0"}
	}
	info, err := api.NewClient(c.socket).Attach(fs.Arg(0), fs.Arg(1))
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(stdout, info)
	}
	fmt.Fprintf(stdout, "%s: %s attached, link up\n", info.Name, info.Port)
	return nil
}

const detachHelp = `Detaches VM's port: the guest's link goes down and the port is closed.
The VM keeps running; a later attach brings the link up again.

Example:
  ptbhyve detach vm0
`

func runDetach(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("detach", "[flags] VM", detachHelp, stderr)
	var c controlFlags
	c.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"detach needs a VM, e.g. ptbhyve detach vm0"}
	}
	info, err := api.NewClient(c.socket).Detach(fs.Arg(0))
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(stdout, info)
	}
	fmt.Fprintf(stdout, "%s: detached, link down\n", info.Name)
	return nil
}

const listHelp = `Lists the daemon's VMs: the VMM (qemu or bhyve), the attached port, whether
the link is up, whether the VM's QEMU or bhyve is connected, and the
device socket.

Example:
  ptbhyve list --json
`

func runList(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("list", "[flags]", listHelp, stderr)
	var c controlFlags
	c.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	vms, err := api.NewClient(c.socket).List()
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(stdout, vms)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VM\tVMM\tLINK\tPORT\tCONNECTED\tMAC\tRINGS\tSLOTS\tSOCKET")
	for _, v := range vms {
		port, link, conn := v.Port, "down", "no"
		if port == "" {
			port = "-"
		}
		if v.Link {
			link = "up"
		}
		if v.Connected {
			conn = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", v.Name, v.VMM, link, port, conn, v.MAC, v.Rings, v.Slots, v.Socket)
	}
	return tw.Flush()
}

const statsHelp = `Prints VM's counters, per ring: packets and bytes moved, drops (frames the
port dropped outside the ring: a full receiver, an empty AF_XDP FILL ring;
a switch port reports its drops on ring 0), syncs the host ran, doorbells
(kicks) from the guest, interrupts raised, and resets (a ring the guest
broke and the host reinitialised). Counters add up across attachments.
Also the device's mailbox requests (bad ones: requests a guest garbled)
and link changes, and the attached port's own counters where its backend
keeps them ("backend": bytes and drops of switch ports; AF_XDP mode and
per-queue drops, e.g. rx_fill_ring_empty, of xdp ports).

Example:
  ptbhyve stats vm0 --json
`

func runStats(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("stats", "[flags] VM", statsHelp, stderr)
	var c controlFlags
	c.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"stats needs a VM, e.g. ptbhyve stats vm0"}
	}
	st, err := api.NewClient(c.socket).Stats(fs.Arg(0))
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(stdout, st)
	}
	printStats(stdout, st)
	return nil
}

func printStats(w io.Writer, st daemon.Stats) {
	link := "down"
	if st.Link {
		link = "up, port " + st.Port
	}
	fmt.Fprintf(w, "%s: link %s; mailbox %d requests (%d bad), %d spurious doorbells, %d link changes\n",
		st.VM, link, st.Requests, st.BadRequests, st.Spurious, st.LinkChanges)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "RING\tPACKETS\tBYTES\tDROPS\tSYNCS\tKICKS\tINTERRUPTS\tRESETS\t")
	for _, r := range st.Rings {
		fmt.Fprintf(tw, "%s%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", r.Dir, r.Ring, r.Packets, r.Bytes, r.Drops, r.Syncs, r.Kicks, r.Interrupts, r.Resets)
	}
	tw.Flush()
	if st.Backend != nil {
		b, _ := json.Marshal(st.Backend)
		fmt.Fprintf(w, "backend: %s\n", b)
	}
	if p := st.Path; p != nil {
		fmt.Fprintf(w, "path: %s, %s sync loop\n", p.Datapath, p.Sync)
		if p.Fallback != "" {
			fmt.Fprintf(w, "  not zero copy because: %s\n", p.Fallback)
		}
		if c := p.Copied; c != nil {
			fmt.Fprintf(w, "  copied: %d packets / %d bytes to the port, %d / %d from it\n", c.TxPackets, c.TxBytes, c.RxPackets, c.RxBytes)
		}
		if p.Error != "" {
			fmt.Fprintf(w, "  kernel sync loop ended: %s (the guest must bring the interface down and up)\n", p.Error)
		}
	}
}

const qemuArgsHelp = `Prints the QEMU flags that give VM its device: a q35 machine with an emulated
IOMMU (the guest driver takes interrupts through vfio-pci; boot the guest
with intel_iommu=on), the chardev connected to the daemon's device socket
and the ivshmem-doorbell device with one vector per ring plus a control
vector. The daemon must be running before QEMU starts. With --json the
flags are a JSON array.

Example:
  qemu-system-x86_64 $(ptbhyve qemu-args vm0) -kernel ... -append 'intel_iommu=on ...'
`

func runQEMUArgs(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("qemu-args", "[flags] VM", qemuArgsHelp, stderr)
	var c controlFlags
	c.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"qemu-args needs a VM, e.g. ptbhyve qemu-args vm0"}
	}
	qa, err := api.NewClient(c.socket).QEMUArgs(fs.Arg(0))
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(stdout, qa)
	}
	fmt.Fprintln(stdout, strings.Join(qa, " "))
	return nil
}

const bhyveArgsHelp = `Prints the bhyve options that give VM (vmm = "bhyve" in the configuration)
its device: the ptnet function and the ptnetmap-memdev function at PCI slot
--slot, functions 0 and 1, both connected to the daemon's plugin socket.
bhyve must be the one built with ptbhyve's device model (the port's BHYVE
option installs it as bhyve-ptnet), and a port must be attached before the
VM starts. The guest's stock ptnet(4) driver attaches the device.

Example:
  bhyve-ptnet -c 2 -m 2G $(ptbhyve bhyve-args vm0) ... vm0
`

func runBhyveArgs(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bhyve-args", "[flags] VM", bhyveArgsHelp, stderr)
	var c controlFlags
	c.register(fs)
	slot := fs.Int("slot", 6, "PCI slot of the two functions (1..31)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"bhyve-args needs a VM, e.g. ptbhyve bhyve-args vm0"}
	}
	if *slot < 1 || *slot > 31 {
		return usageError{fmt.Sprintf("--slot %d: PCI slots are 1..31", *slot)}
	}
	ba, err := api.NewClient(c.socket).BhyveArgs(fs.Arg(0), *slot)
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(stdout, ba)
	}
	fmt.Fprintln(stdout, strings.Join(ba, " "))
	return nil
}
