package vm

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// initPkg is the guest /init program.
const initPkg = "github.com/ptbhyve/ptbhyve/internal/vm/init"

// BuildInit builds the guest /init (the program in ./init) to out.
func BuildInit(out string) error {
	return BuildStatic(initPkg, out)
}

// BuildStatic builds a Go main package as a static, stripped linux/amd64
// binary for the guest, which has no libc: CGO_ENABLED=0 go build
// -trimpath -ldflags='-s -w'. pkg is an import path or a relative
// directory ("./testdata/hello"), resolved from the current directory,
// which must be inside the module. The go command's build cache makes
// repeated builds cheap.
func BuildStatic(pkg, out string) error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("vm: go not found in PATH: building guest programs needs the Go toolchain (/usr/local/go/bin)")
	}
	cmd := exec.Command(goTool, "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("vm: go build %s: %w\n%s", pkg, err, strings.TrimSpace(output.String()))
	}
	return nil
}
