package guestdrv

import (
	"testing"
	"time"

	"github.com/ptbhyve/ptbhyve/internal/event"
	"github.com/ptbhyve/ptbhyve/internal/shm"
	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/netmap/backend"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
	"github.com/ptbhyve/ptbhyve/shmdev"
)

// eventTransport joins the driver to an in-process host Device the way the
// ivshmem server joins a VM to ptbhyve: doorbells and interrupts are
// eventfds.
type eventTransport struct {
	kicks, irqs []*event.Event
}

func (t eventTransport) Ring(v int) { t.kicks[v].Signal() }
func (t eventTransport) Wait(d time.Duration) {
	t.irqs[len(t.irqs)-1].Wait(int(d.Milliseconds()) + 1)
}
func (eventTransport) Mode() string { return "test" }
func (eventTransport) Close() error { return nil }

// A driver keeps working across a detach and an attach of another kind of
// port: the syncs move nothing while the link is down and the rings come
// back by themselves.
func TestPortAcrossLinkChanges(t *testing.T) {
	l, err := shmdev.LayoutFor(shmdev.Geometry{Devices: 1, Rings: 1, Slots: 256, BufSize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	mem, err := shm.New("guestdrv-test", int(l.Size))
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	shmdev.InitMemory(mem.Bytes(), l)
	loop, err := ptnetmap.NewLoop(ptnetmap.LoopConfig{CPU: -1})
	if err != nil {
		t.Fatal(err)
	}
	loop.Start()
	defer loop.Stop()
	kicks, _ := event.NewN(shmdev.Vectors(1))
	irqs, _ := event.NewN(shmdev.Vectors(1))
	dev, err := shmdev.New(shmdev.Config{Name: "vm", Mem: mem.Bytes(), Layout: l, MAC: [6]byte{2, 0, 0, 0, 0, 1}, Kicks: kicks, Loop: loop})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	dev.SetInterrupts(irqs)
	tr := eventTransport{kicks, irqs}
	g, err := shmdev.OpenGuest(mem.Bytes(), 1, tr.Ring, tr.Wait)
	if err != nil {
		t.Fatal(err)
	}
	p := newPort(tr, g)
	if err := p.WaitUp(10 * time.Millisecond); err != ErrLinkDown {
		t.Fatalf("no port attached: %v", err)
	}
	if err := p.TxSync(); err != nil || p.NumTx() != 0 {
		t.Fatalf("sync while down: %v, %d rings", err, p.NumTx())
	}

	for round, port := range []string{"switchgd:vm", "switchgd:vm@conf:slots=128"} {
		if err := dev.Attach(mustOpen(t, port, dev.Region())); err != nil {
			t.Fatal(err)
		}
		peer := mustOpen(t, "switchgd:peer", nil)
		if err := p.WaitUp(5 * time.Second); err != nil {
			t.Fatal(err)
		}
		if p.Links() != round+1 || p.Info().TxSlots != p.TxRing(0).NumSlots() {
			t.Fatalf("round %d: links %d, info %+v", round, p.Links(), p.Info())
		}
		// Broadcasts from the driver reach the switch's other port.
		got := 0
		for deadline := time.Now().Add(5 * time.Second); got < 500 && time.Now().Before(deadline); {
			tx := p.TxRing(0)
			h := tx.Head()
			for k := 0; k < 32 && h != tx.Tail(); k, h = k+1, tx.Next(h) {
				s := tx.Slot(h)
				b := p.Buf(s.BufIdx)
				copy(b, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x88, 0xb5})
				s.Len = 60
			}
			tx.Advance(h)
			p.TxSync()
			netmap.RxSync(peer)
			rx := peer.If().RxRing(0)
			got += int(rx.Space())
			rx.Advance(rx.Tail())
		}
		if got < 500 {
			t.Fatalf("round %d: %d frames reached the peer", round, got)
		}
		dev.Detach().Close()
		peer.Close()
		if err := p.Up(); err != ErrLinkDown {
			t.Fatalf("after detach: %v", err)
		}
		if p.NumTx() != 1 || p.TxSync() != nil {
			t.Fatal("the last rings must stay readable while the link is down")
		}
	}
}

func mustOpen(t *testing.T, name string, mem []byte) netmap.Port {
	t.Helper()
	p, err := backend.Open(name, backend.Options{Rings: 1, Slots: 256, BufSize: 2048, Mem: mem})
	if err != nil {
		t.Fatal(err)
	}
	return p
}
