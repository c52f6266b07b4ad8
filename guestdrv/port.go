package guestdrv

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
	"github.com/ptbhyve/ptbhyve/shmdev"
)

// transport is how the driver reaches the device: doorbells, and the wait
// for its interrupts (or a pause where it has none).
type transport interface {
	// Ring rings doorbell vector v.
	Ring(v int)
	// Wait sleeps until one of the vectors fires or d passes, and clears
	// what fired.
	Wait(d time.Duration)
	Mode() string
	Close() error
}

// Port is the guest's ptnet device: the rings the host attached, behind
// the Rings interface. Attach and detach on the host are link changes
// here: while the link is down the syncs move nothing and Wait waits for
// it to come back, when the driver creates its rings again. A tool that
// keeps running across a detach therefore re-reads ring views (TxRing,
// RxRing) after every sync rather than keeping them.
//
// One goroutine may drive the TX rings and another the RX rings (a TAP
// bridge does): the rings' state is reached through an atomic pointer, and
// only a link change takes a lock.
type Port struct {
	t     transport
	dev   *shmdev.Guest
	state atomic.Pointer[linkState]
	links atomic.Int64

	mu sync.Mutex // serialises link changes and the mailbox
}

// linkState is the rings of one link-up.
type linkState struct {
	gen  uint32
	g    *ptnetmap.Guest
	info ptnetmap.DeviceInfo
}

// ErrLinkDown is what Up returns while no port is attached on the host.
var ErrLinkDown = errors.New("guestdrv: link down: no port attached on the host (ptbhyve attach VM PORT)")

func newPort(t transport, dev *shmdev.Guest) *Port { return &Port{t: t, dev: dev} }

// Up creates the rings if the link is up and they are not, and reports
// whether they are usable.
func (p *Port) Up() error {
	_, err := p.rings()
	return err
}

// rings returns the current link's rings, creating them after a link
// change. The common case is one atomic load and one load of the device's
// generation word.
func (p *Port) rings() (*linkState, error) {
	if st := p.state.Load(); st != nil && st.gen == p.dev.Generation() {
		return st, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	up, gen := p.dev.Link()
	if st := p.state.Load(); st != nil && st.gen == gen && up {
		return st, nil
	}
	// While the link is down the last rings stay readable (their memory
	// stays mapped), so a goroutine between NumTx and TxRing never finds
	// them gone; only the syncs stop.
	if !up {
		return nil, ErrLinkDown
	}
	st, err := p.create(gen)
	if err != nil {
		return nil, err
	}
	p.state.Store(st)
	p.links.Add(1)
	return st, nil
}

func (p *Port) create(gen uint32) (*linkState, error) {
	info, err := ptnetmap.Probe(p.dev, p.dev.Memdev())
	if err != nil {
		return nil, fmt.Errorf("guestdrv: %w", err)
	}
	// A driver that restarts finds its previous rings created: delete
	// them first, as if_ptnet does at detach.
	if err := p.dev.Post(ptnetmap.RegPtctl, ptnetmap.PtctlDelete); err != nil {
		return nil, fmt.Errorf("guestdrv: %w", err)
	}
	csb, atok, ktoa, err := p.dev.CSB(info.NumTx + info.NumRx)
	if err != nil {
		return nil, err
	}
	if err := ptnetmap.Create(p.dev, atok, ktoa); err != nil {
		return nil, fmt.Errorf("guestdrv: PTCTL CREATE: %w", err)
	}
	if err := p.dev.Err(); err != nil {
		return nil, err
	}
	g, err := ptnetmap.NewGuest(ptnetmap.GuestConfig{Mem: p.dev.Region(), Pools: info.Pools, NifpOfs: info.NifpOfs,
		NumTx: info.NumTx, NumRx: info.NumRx, CSB: csb, Kick: p.dev})
	if err != nil {
		return nil, fmt.Errorf("guestdrv: %w", err)
	}
	if p.dev.Generation() != gen {
		return nil, ErrLinkDown // it changed under us; the next call starts over
	}
	return &linkState{gen: gen, g: g, info: info}, nil
}

// WaitUp waits until the link is up and the rings are created, or d
// passes.
func (p *Port) WaitUp(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		err := p.Up()
		if err == nil || !errors.Is(err, ErrLinkDown) || time.Now().After(deadline) {
			return err
		}
		p.t.Wait(100 * time.Millisecond)
	}
}

// Info is what the driver read from the device at the last link up.
func (p *Port) Info() ptnetmap.DeviceInfo {
	if st := p.state.Load(); st != nil {
		return st.info
	}
	return ptnetmap.DeviceInfo{}
}

// Links counts the link-ups the driver has gone through.
func (p *Port) Links() int { return int(p.links.Load()) }

// Mode is "vfio" (interrupts) or "sysfs" (polling).
func (p *Port) Mode() string { return p.t.Mode() }

func (p *Port) guest() *ptnetmap.Guest {
	if st := p.state.Load(); st != nil {
		return st.g
	}
	return nil
}

// NumTx implements Rings; 0 until the link first comes up.
func (p *Port) NumTx() int {
	if g := p.guest(); g != nil {
		return len(g.Tx)
	}
	return 0
}

// NumRx implements Rings; 0 until the link first comes up.
func (p *Port) NumRx() int {
	if g := p.guest(); g != nil {
		return len(g.Rx)
	}
	return 0
}

// TxRing implements Rings; i must be below NumTx.
func (p *Port) TxRing(i int) netmap.Ring { return p.guest().Tx[i].Ring }

// RxRing implements Rings; i must be below NumRx.
func (p *Port) RxRing(i int) netmap.Ring { return p.guest().Rx[i].Ring }

// Buf implements Rings.
func (p *Port) Buf(idx uint32) []byte {
	g := p.guest()
	if g == nil || !g.Region.ValidBuf(idx) {
		return nil
	}
	return g.Region.Buf(idx)
}

// TxSync implements Rings. While the link is down it moves nothing.
func (p *Port) TxSync() error {
	st, err := p.rings()
	if err != nil {
		return nil
	}
	for _, r := range st.g.Tx {
		r.Sync(netmap.NAFForceReclaim)
	}
	return nil
}

// RxSync implements Rings.
func (p *Port) RxSync() error {
	st, err := p.rings()
	if err != nil {
		return nil
	}
	for _, r := range st.g.Rx {
		r.Sync(netmap.NAFForceRead)
	}
	return nil
}

// Wait implements Rings: it sleeps on the rings' interrupts, which the
// last syncs asked for where the rings had no work, and on the control
// vector, which fires at link changes.
func (p *Port) Wait(d time.Duration) error {
	p.t.Wait(d)
	return nil
}

// Close deletes the rings and releases the device.
func (p *Port) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st := p.state.Load(); st != nil && st.gen == p.dev.Generation() {
		p.dev.Post(ptnetmap.RegPtctl, ptnetmap.PtctlDelete)
	}
	return p.t.Close()
}
