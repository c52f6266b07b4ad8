//go:build linux

package xdp

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/ptbhyve/ptbhyve/internal/event"
	"github.com/ptbhyve/ptbhyve/internal/shm"
	"github.com/ptbhyve/ptbhyve/internal/testnet"
	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
)

func events(t testing.TB, n int) []*event.Event {
	evs, err := event.NewN(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, e := range evs {
			e.Close()
		}
	})
	return evs
}

// A ptnet guest sends through its device, the host sync loop and xdp:A to
// an AF_XDP receiver on B; then B sends and the guest receives. Every
// frame is checked by sequence number, none may be dropped, and the port's
// buffer ownership must be intact afterwards.
func TestGuestThroughXDP(t *testing.T) {
	const total = 100000
	pair := testnet.NewPair(t, testnet.PairConfig{Queues: 1})
	host := openIn(t, pair.A, pair.AName, PortConfig{Slots: 512})
	peer := openIn(t, pair.B, pair.BName, PortConfig{Slots: 512})

	ram, err := shm.New("guest-ram", 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	defer ram.Close()
	loop, err := ptnetmap.NewLoop(ptnetmap.LoopConfig{Spin: 50 * time.Microsecond, SafetyPoll: 20 * time.Millisecond, CPU: -1})
	if err != nil {
		t.Fatal(err)
	}
	loop.Start()
	defer loop.Stop()
	dev, err := ptnetmap.NewPtnet(ptnetmap.PtnetConfig{Port: host, MAC: [6]byte{2, 0, 0, 0, 0, 1},
		Mem: ptnetmap.FlatMemory(ram.Bytes()), Irq: ptnetmap.EventInterrupts(events(t, 2)), Kicks: events(t, 2), Loop: loop})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Reset()
	info, err := ptnetmap.Probe(dev, ptnetmap.NewMemdev(host.Region().Info()))
	if err != nil {
		t.Fatal(err)
	}
	if err := ptnetmap.Create(dev, 8192, 12288); err != nil {
		t.Fatal(err)
	}
	csb := ptnetmap.CSBFromBytes(ram.Bytes()[8192:8192+128], ram.Bytes()[12288:12288+128], 2)
	g, err := ptnetmap.NewGuest(ptnetmap.GuestConfig{Mem: host.Region().Mem(), Pools: info.Pools, NifpOfs: info.NifpOfs,
		NumTx: 1, NumRx: 1, CSB: csb, Kick: ptnetmap.RegKicker{Regs: dev}})
	if err != nil {
		t.Fatal(err)
	}
	gtx, grx := g.Tx[0], g.Rx[0]
	gtx.NoIntr, grx.NoIntr = true, true

	// Guest -> xdp:A -> veth -> AF_XDP on B.
	var sent, got uint64
	deadline := time.Now().Add(60 * time.Second)
	for got < total && time.Now().Before(deadline) {
		if sent < total && sent-got < 192 {
			r := gtx.Ring
			h := r.Head()
			for ; sent < total && sent-got < 192 && h != r.Tail(); h = r.Next(h) {
				s := r.Slot(h)
				b := g.Region.Buf(s.BufIdx)
				copy(b, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x88, 0xb5})
				binary.LittleEndian.PutUint64(b[14:], sent)
				s.Len = 60
				sent++
			}
			r.Advance(h)
			gtx.Sync(0)
		}
		recvFrames(t, peer, &got)
	}
	if got != total {
		t.Fatalf("guest -> B: received %d of %d", got, total)
	}

	// B -> veth -> xdp:A -> the guest. Pace by what the host has taken
	// back (the hwcur it publishes), not by what the guest has read: the
	// kernel refills from FILL only after the host loop has processed the
	// guest's release, and drops when FILL runs dry.
	sent, got = 0, 0
	var hostReleased uint64
	lastHwCur := grx.HwCur
	for got < total && time.Now().Before(deadline) {
		if window := 384 - int64(sent-hostReleased); sent < total && window > 0 {
			sent += uint64(sendFrames(t, peer, sent, int(min(uint64(window), total-sent))))
		}
		grx.Sync(0)
		hostReleased += uint64(netmap.Dist(lastHwCur, grx.HwCur, grx.N))
		lastHwCur = grx.HwCur
		r := grx.Ring
		h := r.Head()
		for ; h != r.Tail(); h = r.Next(h) {
			s := r.Slot(h)
			b := g.Region.Buf(s.BufIdx)
			if b[12] != 0x88 || b[13] != 0xb5 {
				continue
			}
			if v := binary.LittleEndian.Uint64(b[14:]); v != got {
				hs, _ := host.socks[0].Stats()
				ps, _ := peer.socks[0].Stats()
				k := host.rx[0]
				t.Fatalf("B -> guest: expected frame %d, got %d; host rx hwcur %d hwtail %d; host socket %+v; peer socket %+v; loop %+v",
					got, v, k.HwCur, k.HwTail, hs, ps, dev.Stats())
			}
			got++
		}
		r.Advance(h)
	}
	if got != total {
		t.Fatalf("B -> guest: received %d of %d", got, total)
	}
	grx.Sync(0)
	ptnetmap.Delete(dev) // the loop lets go of the port before we inspect it
	if err := checkOwnership(host); err != nil {
		t.Fatal(err)
	}
	st := dev.Stats()
	if st[0].Resets+st[1].Resets != 0 {
		t.Errorf("rings were reset on valid traffic: %+v", st)
	}
	t.Logf("guest <-> xdp: %d frames each way; host loop stats %+v", total, st)
}
