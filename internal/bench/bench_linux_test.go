package bench

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ptbhyve/ptbhyve/internal/testnet"
)

// The xdp benchmark builds its namespaces, measures the path and the plain
// AF_XDP reference on the same veth, and leaves nothing behind.
func TestBenchXDP(t *testing.T) {
	if reason := testnet.Unavailable(); reason != "" {
		t.Skipf("SKIP: the xdp benchmark needs network namespaces: %s", reason)
	}
	s, err := Run(Options{Backend: "xdp", Frames: 50000, Runs: 1, Slots: 512, Burst: 256,
		Spin: 20 * time.Microsecond, Idle: 50 * time.Millisecond, GuestCPU: -1, HelperCPU: -1})
	if err != nil {
		t.Fatal(err)
	}
	if s.Mpps <= 0 || s.ReferenceMpps <= 0 || len(s.Runs[0].Directions) != 1 {
		t.Fatalf("implausible summary %+v", s)
	}
	if left, _ := os.ReadDir("/run/netns"); len(left) > 0 {
		for _, e := range left {
			if strings.HasSuffix(e.Name(), fmt.Sprintf("-%d", os.Getpid())) {
				t.Errorf("namespace %s left behind", e.Name())
			}
		}
	}
}
