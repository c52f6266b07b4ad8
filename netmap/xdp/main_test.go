//go:build linux

package xdp

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestMain fails the run if a test left a namespace behind (testnet names
// end in this process's id); the links and XDP programs of a test live in
// its namespaces and go with them.
func TestMain(m *testing.M) {
	code := m.Run()
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "ptb-") && strings.HasSuffix(e.Name(), "-"+strconv.Itoa(os.Getpid())) {
			fmt.Fprintf(os.Stderr, "xdp tests left namespace %s behind\n", e.Name())
			code = 1
		}
	}
	os.Exit(code)
}
