package vm

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// The protocol between the host and the guest's /init. The host passes the
// command on the kernel command line; /init answers with marker lines on the
// serial console. The markers are long and upper case so that neither kernel
// messages nor a test's own output can be mistaken for them.
const (
	// RunParam carries the command /init runs, as EncodeCommand made it.
	RunParam = "ptbhyve.run"
	// VerboseParam, present without a value, makes /init log each module
	// load ("init: loaded vfio (0.01s)").
	VerboseParam = "ptbhyve.verbose"
	// ReadyMarker is the line /init prints just before it runs the command.
	ReadyMarker = "PTBHYVE-INIT-READY"
	// ExitMarker starts the one line /init prints after the command:
	// "PTBHYVE-EXIT <code>[ <reason>]".
	ExitMarker = "PTBHYVE-EXIT"
	// InitErrorMarker starts the line /init prints when it fails before it
	// could run the command: "PTBHYVE-INIT-ERROR <message>".
	InitErrorMarker = "PTBHYVE-INIT-ERROR"
)

// EncodeCommand makes argv safe for the kernel command line: base64url
// without padding of a JSON array. The kernel splits its command line on
// spaces and strips double quotes, so arguments with spaces or quotes would
// not survive any plain encoding; the base64url alphabet needs no quoting.
func EncodeCommand(argv []string) string {
	b, err := json.Marshal(argv)
	if err != nil {
		panic(err) // a []string always marshals
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCommand reverses EncodeCommand.
func DecodeCommand(s string) ([]string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", RunParam, err)
	}
	var argv []string
	if err := json.Unmarshal(b, &argv); err != nil {
		return nil, fmt.Errorf("decode %s: %w", RunParam, err)
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("decode %s: empty command", RunParam)
	}
	return argv, nil
}

// KernelArgs is a kernel command line split into arguments, as /init reads
// it from /proc/cmdline.
type KernelArgs []string

// ParseKernelArgs splits a command line the way the kernel's next_arg does:
// on spaces, except inside double quotes, which are removed.
func ParseKernelArgs(cmdline string) KernelArgs {
	var args KernelArgs
	var cur strings.Builder
	inQuote, inArg := false, false
	for _, r := range cmdline {
		switch {
		case r == '"':
			inQuote = !inQuote
			inArg = true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n'):
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(r)
			inArg = true
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args
}

// Value returns the value of the last "key=value" argument, or "" and true
// for a bare "key", or false when key is absent.
func (a KernelArgs) Value(key string) (string, bool) {
	val, found := "", false
	for _, arg := range a {
		k, v, _ := strings.Cut(arg, "=")
		if k == key {
			val, found = v, true
		}
	}
	return val, found
}

// ModuleParams returns the parameters for module, taken from arguments
// "<module>.<param>=<value>", joined with spaces for finit_module. Like
// modprobe it treats '-' and '_' in the module name as equal, so
// "vfio-pci.ids=..." reaches vfio_pci.
func (a KernelArgs) ModuleParams(module string) string {
	module = ModuleName(module)
	var params []string
	for _, arg := range a {
		mod, param, ok := strings.Cut(arg, ".")
		if !ok || param == "" || ModuleName(mod) != module {
			continue
		}
		if name, val, hasVal := strings.Cut(param, "="); hasVal && strings.ContainsAny(val, " \t") {
			param = name + `="` + val + `"`
		}
		params = append(params, param)
	}
	return strings.Join(params, " ")
}

// ParseExitLine recognises the line /init prints after the command,
// "PTBHYVE-EXIT <code>[ <reason>]", anywhere in line (a kernel message can
// share the console line). reason is set when the code is not the
// command's own: -1 when it could not start, 128+N when signal N killed it.
func ParseExitLine(line string) (code int, reason string, ok bool) {
	i := strings.LastIndex(line, ExitMarker+" ")
	if i < 0 {
		return 0, "", false
	}
	rest := line[i+len(ExitMarker)+1:]
	num, reason, _ := strings.Cut(rest, " ")
	code, err := strconv.Atoi(num)
	if err != nil {
		return 0, "", false
	}
	return code, strings.TrimSpace(reason), true
}
