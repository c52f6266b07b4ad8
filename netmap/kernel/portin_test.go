//go:build linux

package kernel

import (
	"math/bits"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
)

var _ ptnetmap.KloopPort = (*Port)(nil)

// ix2Params are the pools a device of ix2's geometry (2+2 rings of 256
// slots, one host ring pair) asks for, as backend.KernelParams would.
var ix2Params = netmap.ParamsFor(1, 3, 3, 256, 256, 2048, 0)

// devmem maps memory for a port of ix2's geometry the way bhyve.New sizes
// a devmem segment: the pools' layout rounded up to a power of two.
func (fx *fixture) devmem() []byte {
	fx.t.Helper()
	info, err := netmap.Layout(ix2Params)
	if err != nil {
		fx.t.Fatal(err)
	}
	return fx.userMem(1 << bits.Len64(info.MemSize-1))
}

func (fx *fixture) openPortIn(name string, mem []byte, pp netmap.PoolParams) (*Port, error) {
	p, err := openPortIn(fx.k, parseName(fx.t, name), mem, pp)
	if err == nil {
		fx.t.Cleanup(func() { _ = p.Close() })
	}
	return p, err
}

func inside(b, mem []byte) bool {
	lo, hi := uintptr(unsafe.Pointer(&mem[0])), uintptr(unsafe.Pointer(&mem[0]))+uintptr(len(mem))
	p := uintptr(unsafe.Pointer(&b[0]))
	return p >= lo && p+uintptr(len(b)) <= hi
}

func TestOpenPortIn(t *testing.T) {
	for _, freebsd := range []bool{false, true} {
		fx := newFixture(t)
		fx.k.freebsd = freebsd
		mem := fx.devmem()
		copy(mem, "stale netmap_if of an earlier port")
		p, err := fx.openPortIn("netmap:ix2", mem, ix2Params)
		if err != nil {
			t.Fatalf("freebsd=%v: %v", freebsd, err)
		}
		if !p.Extmem() || &p.Region().Mem()[0] != &mem[0] {
			t.Fatalf("freebsd=%v: the region is not the memory given", freebsd)
		}
		info := p.Region().Info()
		if info.MemSize > uint64(len(mem)) || len(p.TxRings()) != 2 || len(p.RxRings()) != 2 {
			t.Fatalf("freebsd=%v: %d-byte region in %d bytes, %d/%d rings", freebsd, info.MemSize, len(mem), len(p.TxRings()), len(p.RxRings()))
		}
		for _, k := range append(p.TxRings(), p.RxRings()...) {
			for j := range k.N {
				if s := k.Ring.Slot(j); !inside(p.Region().Buf(s.BufIdx), mem) || !p.Region().ValidBuf(s.BufIdx) {
					t.Fatalf("freebsd=%v: slot %d holds buffer %d, not one of the memory's", freebsd, j, s.BufIdx)
				}
			}
		}
		// Frames go out through the kernel's rings in the memory given.
		peer := fx.openPort("netmap:ix3")
		tx := p.If().TxRing(0)
		s := tx.Slot(tx.Head())
		copy(p.Region().Buf(s.BufIdx), "extmem frame")
		s.Len = 60
		tx.Advance(tx.Next(tx.Head()))
		if err := netmap.TxSync(p); err != nil {
			t.Fatal(err)
		}
		if err := netmap.RxSync(peer); err != nil {
			t.Fatal(err)
		}
		rx := peer.If().RxRing(0)
		if rx.Space() != 1 || string(peer.Region().Buf(rx.Slot(rx.Head()).BufIdx)[:12]) != "extmem frame" {
			t.Fatalf("freebsd=%v: the peer received %d frames", freebsd, rx.Space())
		}
		maps := fx.k.maps
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if fx.k.maps != maps {
			t.Fatalf("Close unmapped something of an external-memory port")
		}
		mem[0] = 1 // still the caller's
	}
}

func TestOpenPortInRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		port   string
		mem    int
		params netmap.PoolParams
		busy   bool // the port is open already, on the kernel's memory
		errno  unix.Errno
		want   []string
	}{
		{name: "too small", port: "netmap:ix2", mem: 64 << 10, params: ix2Params, errno: unix.ENOMEM},
		{name: "already open elsewhere", port: "netmap:ix2", mem: 4 << 20, params: ix2Params, busy: true,
			want: []string{"ignored the external memory", "already open elsewhere"}},
		{name: "names an allocator", port: "netmap:ix2@1", mem: 4 << 20, params: ix2Params, want: []string{"selects a kernel allocator"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			if tc.busy {
				// Another process on the host rings: our exclusive bind of
				// the hardware rings does not clash with it.
				fx.register(fx.open(), "ix2", netmap.RegSW, 0)
			}
			_, err := fx.openPortIn(tc.port, fx.userMem(tc.mem), tc.params)
			if tc.errno != 0 {
				wantErr(t, tc.name, err, tc.errno, tc.want...)
				return
			}
			if err == nil {
				t.Fatal("opened")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("%v: want %q in it", err, w)
				}
			}
		})
	}
}

// Two guests on the two cabled NICs, each NIC built in its guest's device
// memory and served by netmap's sync loop, exchange numbered frames both
// ways; receivers sleep on the interrupts only the notifier raises.
func TestKernelSyncGuests(t *testing.T) {
	fx := newFixture(t)
	ks, err := ptnetmap.NewKernelSync(ptnetmap.KernelConfig{SleepUS: 50, OnError: func(err error) { t.Error(err) }})
	if err != nil {
		t.Fatal(err)
	}
	var g [2]*kernelGuest
	for i, name := range []string{"netmap:ix2", "netmap:ix3"} {
		mem := fx.devmem()
		p, err := fx.openPortIn(name, mem, ix2Params)
		if err != nil {
			t.Fatal(err)
		}
		g[i] = newKernelGuest(t, p, mem, fx.userMem(1<<16), ks)
	}
	exchange(t, [2]guestEnd{g[0].end(), g[1].end()}, 5000)
	g[0].checkStats(t, 5000, true)
	g[1].checkStats(t, 5000, true)
	// DELETE stops the kernel loops; CSB mode stays, and a new CREATE
	// serves again.
	for _, kg := range g {
		if err := ptnetmap.Delete(kg.dev); err != nil {
			t.Fatal(err)
		}
		if err := kg.port.f.TxSync(); err == nil {
			t.Fatal("TXSYNC accepted outside the kernel loop in CSB mode")
		}
		if err := ptnetmap.Create(kg.dev, 0x1000, 0x2000); err != nil {
			t.Fatal(err)
		}
	}
}
