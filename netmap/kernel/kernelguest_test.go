//go:build linux || freebsd

package kernel

import (
	"sync"
	"testing"
	"time"

	"github.com/ptbhyve/ptbhyve/internal/event"
	"github.com/ptbhyve/ptbhyve/internal/seqframe"
	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
)

// kernelGuest is a ptnet device over a kernel port in external memory,
// served by netmap's sync loop through ptnetmap.KernelSync, with a guest
// attached through its registers: the FreeBSD data path without bhyve.
type kernelGuest struct {
	dev   *ptnetmap.Ptnet
	port  *Port
	guest *ptnetmap.Guest
	irq   []*event.Event
}

// newKernelGuest builds the device over p, whose region is mem (the
// memdev BAR as the guest maps it); ram is guest RAM, where the guest puts
// its CSB.
func newKernelGuest(t *testing.T, p *Port, mem, ram []byte, ks *ptnetmap.KernelSync) *kernelGuest {
	n := len(p.TxRings()) + len(p.RxRings())
	irq, err := event.NewN(n)
	if err != nil {
		t.Fatal(err)
	}
	kicks, err := event.NewN(n)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := ptnetmap.NewPtnet(ptnetmap.PtnetConfig{Port: p, Mem: ptnetmap.FlatMemory(ram), Irq: ptnetmap.EventInterrupts(irq), Kicks: kicks, Loop: ks})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dev.Reset()
		for _, e := range append(irq, kicks...) {
			e.Close()
		}
	})
	info, err := ptnetmap.Probe(dev, ptnetmap.NewMemdev(p.Region().Info()))
	if err != nil {
		t.Fatal(err)
	}
	if err := ptnetmap.Create(dev, 0x1000, 0x2000); err != nil {
		t.Fatal(err)
	}
	csb := ptnetmap.CSBFromBytes(ram[0x1000:0x1000+64*n], ram[0x2000:0x2000+64*n], n)
	g, err := ptnetmap.NewGuest(ptnetmap.GuestConfig{Mem: mem, Pools: info.Pools, NifpOfs: info.NifpOfs,
		NumTx: info.NumTx, NumRx: info.NumRx, CSB: csb, Kick: ptnetmap.RegKicker{Regs: dev}})
	if err != nil {
		t.Fatal(err)
	}
	return &kernelGuest{dev: dev, port: p, guest: g, irq: irq}
}

// guestEnd is one side of an exchange: send fills TX ring 0 and syncs,
// recv syncs RX ring 0 and returns its ring with the frames received,
// wait sleeps until more may have arrived.
type guestEnd struct {
	tx, rx *netmap.KRing
	region *netmap.Region
	txSync func()
	rxSync func() bool
	wait   func()
}

func (g *kernelGuest) end() guestEnd {
	tx, rx := g.guest.Tx[0], g.guest.Rx[0]
	irq := g.irq[len(g.guest.Tx)] // RX ring 0's vector
	return guestEnd{tx: tx.KRing, rx: rx.KRing, region: g.guest.Region,
		txSync: func() { tx.Sync(0) },
		rxSync: func() bool { return rx.Sync(0) },
		wait: func() {
			if rx.Sync(0) && rx.Ring.Empty() && rx.WantsInterrupt() {
				irq.Wait(100)
			}
		}}
}

// exchange sends total numbered frames each way between the two ends at
// once and checks every one arrives, in order.
func exchange(t *testing.T, ends [2]guestEnd, total uint64) {
	var wg sync.WaitGroup
	for dir := range 2 {
		src, dst := ends[dir], ends[1-dir]
		wg.Add(2)
		go func() {
			defer wg.Done()
			r := src.tx.Ring
			for seq, deadline := uint64(0), time.Now().Add(30*time.Second); seq < total && time.Now().Before(deadline); {
				seq = seqframe.Fill(r, src.region, nil, seq, total)
				src.txSync()
				if r.Space() == 0 {
					time.Sleep(50 * time.Microsecond) // TX completions: the guest polls
				}
			}
		}()
		go func() {
			defer wg.Done()
			r := dst.rx.Ring
			var seq uint64
			for deadline := time.Now().Add(30 * time.Second); seq < total && time.Now().Before(deadline); {
				dst.rxSync()
				if err := seqframe.Check(r, dst.region, &seq); err != nil {
					t.Error(err)
					return
				}
				dst.wait()
			}
			if seq != total {
				t.Errorf("received %d of %d frames", seq, total)
			}
		}()
	}
	wg.Wait()
}

// checkStats checks the counters of TX and RX ring 0 after total frames
// each way. The notifier samples the indexes: it sees every frame unless
// a ring turns over between two scans, and never more than went through.
func (g *kernelGuest) checkStats(t *testing.T, total uint64, interrupts bool) {
	t.Helper()
	tx, rx := 0, len(g.guest.Tx)
	st := g.dev.Stats()
	for deadline := time.Now().Add(2 * time.Second); st[tx].Packets != total && time.Now().Before(deadline); st = g.dev.Stats() {
		time.Sleep(time.Millisecond)
	}
	for _, r := range []ptnetmap.RingStats{st[tx], st[rx]} {
		n := uint64(g.guest.Tx[0].N)
		if r.Packets > total || r.Packets < total/2 || r.Packets%n != total%n || (interrupts && r.Interrupts == 0) {
			t.Errorf("%s: %s ring counted %d packets of %d, %d interrupts", g.port.Name(), r.Dir, r.Packets, total, r.Interrupts)
		}
	}
	t.Logf("%s: tx0 %+v rx0 %+v", g.port.Name(), st[tx], st[rx])
}
