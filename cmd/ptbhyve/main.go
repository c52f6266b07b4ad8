// Command ptbhyve is the ptnetmap helper: it gives virtual machines netmap
// passthrough ports (ptnet devices) and runs their data path.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/ptbhyve/ptbhyve/internal/bench"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"attach", "attach a netmap port to a VM's device (link up)", runAttach},
	{"bench", "measure the data path against a same-run shared-ring reference", runBench},
	{"bhyve-args", "print the bhyve options that give a VM its device", runBhyveArgs},
	{"detach", "detach a VM's port (link down)", runDetach},
	{"list", "list the daemon's VMs, their ports and links", runList},
	{"pktgen", "send, receive, ping or echo frames on a host port, as pkt-gen", runPktgen},
	{"ports", "check port names against the netmap grammar", runPorts},
	{"qemu-args", "print the QEMU flags that give a VM its device", runQEMUArgs},
	{"serve", "run the daemon that serves the VMs' devices", runServe},
	{"stats", "print a VM's per-ring counters", runStats},
	{"version", "print the version", func([]string, io.Writer, io.Writer) error { fmt.Println("ptbhyve", version); return nil }},
}

const usage = `ptbhyve gives virtual machines netmap passthrough ports (ptnetmap): the
guest's netmap rings and buffers are shared memory with this helper, which
syncs them with a host port (a NIC, a pipe, a switch) with no copy on the
trusted path and no dedicated polling core.

Usage:
  ptbhyve <command> [flags] [arguments]

A session (Linux host, QEMU guest running guestdrv):
  ptbhyve serve --config /etc/ptbhyve.toml &     # [vm.vm0] in the file
  qemu-system-x86_64 $(ptbhyve qemu-args vm0) ... # guest: intel_iommu=on
  ptbhyve attach vm0 xdp:eth0                     # link up
  ptbhyve stats vm0
  ptbhyve detach vm0                              # link down

Commands:
%s
Run 'ptbhyve <command> -h' for a command's flags and examples.
`

func main() {
	if bench.IsChild() {
		bench.RunChild()
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(stdout, usage, commandList())
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			err := c.run(args[1:], stdout, stderr)
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			if err != nil {
				fmt.Fprintf(stderr, "ptbhyve %s: %v\n", c.name, err)
				var ue usageError
				if errors.As(err, &ue) {
					return 2
				}
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(stderr, "ptbhyve: unknown command %q\n\n", args[0])
	fmt.Fprintf(stderr, usage, commandList())
	return 2
}

func commandList() string {
	var b strings.Builder
	cs := append([]command(nil), commands...)
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(&b, "  %-10s %s\n", c.name, c.summary)
	}
	return b.String()
}

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func newFlags(name, synopsis, help string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: ptbhyve %s %s\n\n%s\nFlags:\n", name, synopsis, help)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses a command's flags, which may come before, between or after
// the arguments ("ptbhyve stats vm0 --json"); "--" ends the flags. A
// mistake in them is a usage error (exit status 2), help is not an error.
// The arguments are left in fs.Args().
func parse(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if !errors.Is(err, flag.ErrHelp) {
				return usageError{err.Error()}
			}
			return err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	// Parse once more with nothing but the arguments after "--", so that
	// fs.Args() holds them all.
	return fs.Parse(append([]string{"--"}, pos...))
}
