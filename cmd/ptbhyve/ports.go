package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/ptbhyve/ptbhyve/netmap"
)

const portsHelp = `Parses each NAME with the port-name grammar (netmap:, valeX:, pipes with
{ and }, -N, ^, ^N, *, /xztrRT flags, @N memory ids, @conf:/@extmem:/
@offset:/@share= options, and ptbhyve's xdp:IF[-Q] and pipe:NAME{N) and
prints what it means, or exactly what is wrong with it.

Example:
  ptbhyve ports 'netmap:ix0-1/x' 'vale0:vm1@conf:rings=2,slots=2048' 'pipe:p{0'
`

func runPorts(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ports", "NAME...", portsHelp, stderr)
	asJSON := fs.Bool("json", false, "print one JSON object per name")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{"name at least one port"}
	}
	bad := 0
	for _, s := range fs.Args() {
		n, err := netmap.ParseName(s)
		if *asJSON {
			out := map[string]any{"name": s, "ok": err == nil}
			if err != nil {
				out["error"] = err.Error()
			} else {
				out["parsed"] = n
				out["kernel_name"] = n.KernelName()
				out["mode"] = n.Mode.String()
			}
			b, _ := json.Marshal(out)
			fmt.Fprintln(stdout, string(b))
		} else if err != nil {
			fmt.Fprintln(stdout, err)
		} else {
			fmt.Fprintf(stdout, "%s: %s port %q, mode %s, kernel name %q\n", s, n.Family, n.Port, n.Mode, n.KernelName())
		}
		if err != nil {
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d names are invalid", bad, fs.NArg())
	}
	return nil
}
