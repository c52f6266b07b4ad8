package vm

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestCommandEncoding(t *testing.T) {
	tests := [][]string{
		{"/bin/hello"},
		{"hello", "stat", "/sys/module/vfio_pci"},
		{"sh", "-c", `echo "a b"  'c'; exit 3`},
		{"x", "", " ", "\t\n", `"`, `'`, `\`, "=", "ptbhyve.run=x", "console=ttyS1"},
		{"ünïcödé", "日本", "\x00\x01"},
		{strings.Repeat("long argument ", 40)},
	}
	alphabet := regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	for _, argv := range tests {
		enc := EncodeCommand(argv)
		if !alphabet.MatchString(enc) {
			t.Errorf("EncodeCommand(%q) = %q: characters outside base64url", argv, enc)
		}
		// The guest sees the value through the kernel's argument splitter.
		args := ParseKernelArgs("console=ttyS0 quiet " + RunParam + "=" + enc + " x.y=1")
		val, ok := args.Value(RunParam)
		if !ok || val != enc {
			t.Errorf("%s=%q did not survive ParseKernelArgs: %q", RunParam, enc, val)
		}
		got, err := DecodeCommand(val)
		if err != nil {
			t.Errorf("DecodeCommand(EncodeCommand(%q)): %v", argv, err)
			continue
		}
		if !slices.Equal(got, argv) {
			t.Errorf("round trip of %q gave %q", argv, got)
		}
	}
}

func TestDecodeCommandErrors(t *testing.T) {
	for _, in := range []string{"", "!!!", "e30", EncodeCommand(nil), EncodeCommand([]string{}), "eyJhIjoxfQ"} {
		if got, err := DecodeCommand(in); err == nil {
			t.Errorf("DecodeCommand(%q) = %q, want an error", in, got)
		}
	}
}

func TestParseKernelArgs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  a  b\tc\n", []string{"a", "b", "c"}},
		{`x="a b" y`, []string{"x=a b", "y"}},
		{`"quoted whole" z`, []string{"quoted whole", "z"}},
		{`e=""`, []string{"e="}},
	}
	for _, tt := range tests {
		if got := ParseKernelArgs(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("ParseKernelArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestKernelArgsValue(t *testing.T) {
	args := ParseKernelArgs("a=1 flag b=2 a=3 c=x=y")
	tests := []struct {
		key, want string
		ok        bool
	}{
		{"a", "3", true}, // the last one wins, as for the kernel
		{"flag", "", true},
		{"b", "2", true},
		{"c", "x=y", true},
		{"d", "", false},
		{"fla", "", false},
	}
	for _, tt := range tests {
		if got, ok := args.Value(tt.key); got != tt.want || ok != tt.ok {
			t.Errorf("Value(%q) = %q, %v; want %q, %v", tt.key, got, ok, tt.want, tt.ok)
		}
	}
}

func TestModuleParams(t *testing.T) {
	args := ParseKernelArgs(`console=ttyS0 vfio_iommu_type1.allow_unsafe_interrupts=1 vfio-pci.ids=1af4:1110 ` +
		`vfio_pci.disable_vga=1 tun.x="a b" vfio.y=2 vfio_pcix.z=3 .w=4 vfio_pci. ptbhyve.run=abc`)
	tests := map[string]string{
		"vfio_iommu_type1": "allow_unsafe_interrupts=1",
		"vfio-iommu-type1": "allow_unsafe_interrupts=1",
		"vfio-pci":         "ids=1af4:1110 disable_vga=1",
		"vfio_pci":         "ids=1af4:1110 disable_vga=1",
		"tun":              `x="a b"`,
		"vfio":             "y=2",
		"irqbypass":        "",
		"ptbhyve":          "run=abc",
	}
	for mod, want := range tests {
		if got := args.ModuleParams(mod); got != want {
			t.Errorf("ModuleParams(%q) = %q, want %q", mod, got, want)
		}
	}
}

func TestParseExitLine(t *testing.T) {
	tests := []struct {
		line   string
		code   int
		reason string
		ok     bool
	}{
		{"PTBHYVE-EXIT 0", 0, "", true},
		{"PTBHYVE-EXIT 3", 3, "", true},
		{"PTBHYVE-EXIT 137 killed by signal killed", 137, "killed by signal killed", true},
		{`PTBHYVE-EXIT -1 exec: "nope": executable file not found in $PATH`, -1, `exec: "nope": executable file not found in $PATH`, true},
		{"[    2.1] random: crng initPTBHYVE-EXIT 7", 7, "", true},
		{"PTBHYVE-EXIT", 0, "", false},
		{"PTBHYVE-EXIT x", 0, "", false},
		{"PTBHYVE-EXITED 1", 0, "", false},
		{"PTBHYVE-INIT-READY", 0, "", false},
		{"hello", 0, "", false},
	}
	for _, tt := range tests {
		code, reason, ok := ParseExitLine(tt.line)
		if code != tt.code || reason != tt.reason || ok != tt.ok {
			t.Errorf("ParseExitLine(%q) = %d, %q, %v; want %d, %q, %v", tt.line, code, reason, ok, tt.code, tt.reason, tt.ok)
		}
	}
}
