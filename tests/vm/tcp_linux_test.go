package vm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/ptbhyve/ptbhyve/internal/testnet"
)

// addr assigns prefix to the test veth in ns.
func addr(t *testing.T, ns *testnet.NS, prefix string) {
	t.Helper()
	if out, err := exec.Command("ip", "-n", ns.Name, "addr", "add", prefix, "dev", xdpIf).CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s addr add %s: %v\n%s", ns.Name, prefix, err, out)
	}
}

// tcpSink accepts one connection inside a namespace and hashes what it
// reads, up to size bytes.
type tcpSink struct {
	ln   net.Listener
	done chan string
}

func startTCPSink(t *testing.T, ns *testnet.NS, at string, size int64) *tcpSink {
	t.Helper()
	s := &tcpSink{done: make(chan string, 1)}
	err := ns.Do(func() error {
		var err error
		s.ln, err = net.Listen("tcp4", at)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.ln.Close() })
	go func() {
		c, err := s.ln.Accept()
		if err != nil {
			s.done <- "accept: " + err.Error()
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Minute))
		h := sha256.New()
		n, err := io.CopyN(h, c, size)
		if err != nil {
			s.done <- fmt.Sprintf("read %d bytes: %v", n, err)
			return
		}
		s.done <- hex.EncodeToString(h.Sum(nil))
	}()
	return s
}

func (s *tcpSink) wait(t *testing.T) string {
	t.Helper()
	select {
	case r := <-s.done:
		return r
	case <-time.After(3 * time.Minute):
		t.Fatal("no TCP data arrived")
		return ""
	}
}
