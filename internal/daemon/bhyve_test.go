package daemon

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ptbhyve/ptbhyve/bhyve"
	"github.com/ptbhyve/ptbhyve/bhyve/ptbp"
	"github.com/ptbhyve/ptbhyve/bhyve/vmm"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
)

// A bhyve VM in the daemon: its plugin socket, bhyve-args, attach before
// the guest runs, and the refusal to change the port under a running
// guest. bhyve is played by a Go client of the plugin protocol; the VM by
// a fake vmm.
func TestBhyveVM(t *testing.T) {
	fake, err := vmm.NewFake(vmm.FakeConfig{LowMem: 1 << 20, Devmem: []vmm.FakeSegment{{Name: "ptbhyve", Len: 4 << 20}}})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	d, run := newDaemonOpts(t, "[vm.b1]\nvmm = \"bhyve\"\nslots = 256\ndatapath = \"copy\"\n", Options{
		OpenMachine: func(string) (vmm.Machine, error) { return fake.Keep(), nil }})
	sock := filepath.Join(run, "b1.plugin")
	if _, err := os.Stat(sock); err != nil {
		t.Fatal(err)
	}
	if _, err := d.QEMUArgs("b1"); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "bhyve-args") {
		t.Fatalf("qemu-args of a bhyve VM: %v", err)
	}
	args, err := d.BhyveArgs("b1", 6)
	if err != nil || strings.Join(args, " ") != "-s 6:0,ptnet,path="+sock+" -s 6:1,ptnetmap-memdev,path="+sock {
		t.Fatalf("bhyve-args: %q %v", args, err)
	}

	// No port yet: bhyve is refused with the fix.
	c := dialPlugin(t, sock)
	if e, ok := c.hello(t).(ptbp.Error); !ok || !strings.Contains(e.Msg, "ptbhyve attach b1 PORT") {
		t.Fatalf("hello with no port: %+v", e)
	}
	if info, err := d.Attach("b1", "switchdb:b1"); err != nil || info.Port != "switchdb:b1" || info.Link || info.VMM != "bhyve" {
		t.Fatalf("attach: %+v %v", info, err)
	}
	c = dialPlugin(t, sock)
	if _, ok := c.hello(t).(ptbp.Welcome); !ok {
		t.Fatal("no WELCOME after attach")
	}
	// The guest's first register read brings the device up in the devmem
	// segment; the port cannot change under it.
	if v := c.read(t, ptnetmap.RegNumTxSlots); v != 256 {
		t.Fatalf("NUM_TX_SLOTS %d", v)
	}
	info, _ := d.Info("b1")
	if !info.Link || !info.Connected {
		t.Fatalf("info with a running guest: %+v", info)
	}
	if _, err := d.Attach("b1", "switchdb:other"); !errors.Is(err, ErrConflict) {
		t.Fatalf("attach under a running guest: %v", err)
	}
	if st, err := d.Stats("b1"); err != nil || !st.Link || st.Port != "switchdb:b1" || len(st.Rings) != 2 ||
		st.Path == nil || st.Path.Datapath != bhyve.DatapathCopy || st.Path.Sync != bhyve.SyncPtbhyve || st.Path.Copied == nil {
		t.Fatalf("stats: %+v %v", st, err)
	}
	c.conn.Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if info, _ := d.Info("b1"); !info.Connected && !info.Link {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("bhyve's departure was not noticed")
		}
	}
	if _, err := d.Detach("b1"); err != nil {
		t.Fatal(err)
	}
}

type pluginClient struct {
	conn *net.UnixConn
	seq  uint32
}

func dialPlugin(t *testing.T, path string) *pluginClient {
	t.Helper()
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &pluginClient{conn: c}
}

func (c *pluginClient) call(t *testing.T, m any) any {
	t.Helper()
	c.seq++
	if _, err := c.conn.Write(ptbp.Encode(c.seq, m)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, ptbp.MaxMsg)
	oob := make([]byte, 256)
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, _, _, err := c.conn.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	_, r, err := ptbp.Decode(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (c *pluginClient) hello(t *testing.T) any {
	return c.call(t, ptbp.Hello{Magic: ptbp.Magic, Version: ptbp.Version, VM: "b1"})
}

func (c *pluginClient) read(t *testing.T, off uint32) uint32 {
	return c.call(t, ptbp.Read{Fn: ptbp.FnPtnet, Size: 4, Off: off}).(ptbp.Value).Val
}
