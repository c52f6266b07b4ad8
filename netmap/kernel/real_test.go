//go:build linux || freebsd

package kernel

import (
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ptbhyve/ptbhyve/internal/shm"
	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
)

// The tests below run against the real netmap driver: in the FreeBSD
// workflow (GENERIC has netmap), and on Linux hosts with the netmap module.

func realNetmap(t *testing.T) {
	t.Helper()
	f, err := Open()
	if errors.Is(err, unix.ENOENT) || errors.Is(err, fs.ErrNotExist) {
		t.Skipf("SKIP: no %s here; these tests run against real netmap in the FreeBSD workflow (%v)", DevPath, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// valeName is a VALE port on a switch of this test process's own.
func valeName(port string) netmap.Name {
	n, err := netmap.ParseName(fmt.Sprintf("vale%d:%s", os.Getpid()%100000, port))
	if err != nil {
		panic(err)
	}
	return n
}

func realPort(t *testing.T, n netmap.Name) *Port {
	t.Helper()
	p, err := OpenPort(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// appEnd drives a port as a netmap application in this process.
func appEnd(p *Port) guestEnd {
	return guestEnd{tx: p.TxRings()[0], rx: p.RxRings()[0], region: p.Region(),
		txSync: func() { netmap.TxSync(p) },
		rxSync: func() bool { return netmap.RxSync(p) == nil },
		wait:   func() { p.f.Poll(unix.POLLIN, 10*time.Millisecond) }}
}

// Two VALE ports, each an application here: frames cross the switch.
func TestRealVale(t *testing.T) {
	realNetmap(t)
	a, b := realPort(t, valeName("a")), realPort(t, valeName("b"))
	exchange(t, [2]guestEnd{appEnd(a), appEnd(b)}, 20000)
}

// A VALE port built in a shared-memory object of ours (EXTMEM), served by
// netmap's sync loop for a guest attached through the device registers,
// exchanges frames with an application on another port of the switch:
// the FreeBSD data path minus bhyve.
func TestRealExtmemKernelSync(t *testing.T) {
	realNetmap(t)
	params := netmap.ParamsFor(1, 2, 2, 1024, 1024, 2048, 0)
	info, err := netmap.Layout(params)
	if err != nil {
		t.Fatal(err)
	}
	// Its own object, mapped from offset 0, as a devmem segment is:
	// FreeBSD's netmap takes the whole object behind the address.
	mem, err := shm.New("extmem", 1<<bits.Len64(info.MemSize-1))
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	ram, err := shm.New("guest-ram", 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	defer ram.Close()
	p, err := OpenPortIn(valeName("g"), mem.Bytes(), params)
	if errors.Is(err, unix.EOPNOTSUPP) {
		t.Skipf("SKIP: this netmap has no EXTMEM support: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ks, err := ptnetmap.NewKernelSync(ptnetmap.KernelConfig{OnError: func(err error) { t.Error(err) }})
	if err != nil {
		t.Fatal(err)
	}
	g := newKernelGuest(t, p, mem.Bytes(), ram.Bytes(), ks)
	peer := realPort(t, valeName("h"))
	exchange(t, [2]guestEnd{g.end(), appEnd(peer)}, 20000)
	g.checkStats(t, 20000, true)
}
