//go:build linux

package kernel

import (
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ptbhyve/ptbhyve/ptnetmap"
)

// The sync kloop, as netmap_sync_kloop (netmap_kloop.c) runs it.
//
// Sleep mode (no EVENTFDS: FreeBSD always, Linux when asked so; or Linux
// with some ioeventfd < 0): until STOP, every bound TX ring gets
// tx_ring_work, every bound RX ring rx_ring_work, then the loop sleeps
// sleep_us with k.mu released (STOP cuts the sleep short). Ring work reads
// head and cur from the CSB (never from the shared ring header), runs the
// prologue against the kring, the same backend as NIOCTXSYNC/NIOCRXSYNC,
// publishes hwcur and hwtail in ktoa and sets rtail = hwtail; there is no
// finalize, so the header's tail is never written (netmap_ring_reinit aside).
// In sleep mode kern_need_kick is cleared at every ring work and never set
// again. Irqfds (Linux) are signalled when a ring made progress and the
// application asked for an interrupt, whatever the mode.
//
// Notification mode (Linux, every ioeventfd >= 0): the same passes, but the
// loop waits for an ioeventfd, a backend event on the port (pump moved
// hwtail) or STOP, 3 s at most, and ring work re-enables kern_need_kick
// with the double check before it stops. Direct rings are processed only
// when their ioeventfd fires (the kernel does it in the wake-up callback).
//
// Not modelled: direct TX's forwarding of backend TX events to the TX
// irqfds, and checking that eventfds are eventfds: a descriptor that is
// not an eventfd (tests pass made-up numbers) is neither polled nor
// written, the signal is only counted in fakePriv.irqs.

// kloopRun is netmap_sync_kloop after its preconditions.
func (k *fakeNetmap) kloopRun(p *fakePriv, r *kreq, sleepUS uint32) unix.Errno {
	nTx, nRx := p.last[tTX]-p.first[tTX], p.last[tRX]-p.first[tRX]
	nRings := nTx + nRx
	var direct [2]bool
	busyWait := true
	if o := r.opt(OptSyncKloopMode); o != nil {
		mode := le.Uint32(o.body)
		direct = [2]bool{mode&KloopDirectTX != 0, mode&KloopDirectRX != 0}
		if mode&^kloopModeMask != 0 {
			o.status = unix.EINVAL
			return o.status
		}
		o.status = 0
	}
	var fds [][2]int32
	if o := r.opt(OptSyncKloopEventfds); o != nil {
		if o.size != uint64(EventfdsOptSize(nRings)) {
			o.status = unix.EINVAL
			return o.status
		}
		if k.freebsd {
			o.status = unix.EOPNOTSUPP
			return 0
		}
		o.status = 0
		busyWait = false
		for i := range nRings {
			e := o.body[i*EventfdEntrySize:]
			fds = append(fds, [2]int32{int32(le.Uint32(e)), int32(le.Uint32(e[4:]))})
			if fds[i][0] < 0 {
				busyWait = true
			}
		}
		if busyWait && (direct[tTX] || direct[tRX]) {
			o.status = unix.EINVAL
			return o.status
		}
	}
	if fds == nil {
		// Direct rings are served from eventfd wake-ups only.
		direct = [2]bool{}
	}
	atok, err := k.mem(p.atok, nRings*CSBAlign)
	if err != 0 {
		return err
	}
	ktoa, err := k.mem(p.ktoa, nRings*CSBAlign)
	if err != 0 {
		return err
	}
	csb := ptnetmap.CSBFromBytes(atok, ktoa, nRings)
	wake, werr := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if werr != nil {
		return unix.ENOMEM
	}
	defer unix.Close(wake)
	p.sleepUS, p.direct, p.busyWait, p.eventfds = sleepUS, direct, busyWait, fds
	p.wakeFd, p.irqs, p.passes = wake, make([]int, nRings), 0
	defer func() { p.wakeFd = -1 }()
	k.cond.Broadcast()

	// The ioeventfds worth polling, by CSB entry.
	var kicks []int
	if !busyWait {
		for _, f := range fds {
			kicks = append(kicks, int(f[0]))
		}
	}
	fired := make([]bool, nRings)
	for !p.stopping {
		for e := range nRings {
			t, i := tTX, p.first[tTX]+e
			if e >= nTx {
				t, i = tRX, p.first[tRX]+e-nTx
			}
			if direct[t] && !fired[e] {
				continue
			}
			k.ringWork(p, csb, e, t, i, busyWait, direct[t])
		}
		p.passes++
		k.cond.Broadcast()
		if p.stopping {
			break
		}
		fired = k.kloopWait(p, wake, kicks, sleepUS, nRings)
	}
	return 0
}

// kloopWait sleeps between passes with k.mu released: sleepUS in sleep
// mode, until an ioeventfd, a backend event or STOP (3 s at most) in
// notification mode. It reports which ioeventfds fired.
func (k *fakeNetmap) kloopWait(p *fakePriv, wake int, kicks []int, sleepUS uint32, n int) []bool {
	fired := make([]bool, n)
	pfds := []unix.PollFd{{Fd: int32(wake), Events: unix.POLLIN}}
	var idx []int
	for e, fd := range kicks {
		if isEventfd(fd) {
			pfds = append(pfds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
			idx = append(idx, e)
		}
	}
	d := time.Duration(sleepUS) * time.Microsecond
	if kicks != nil {
		d = 3 * time.Second
	}
	ts := unix.NsecToTimespec(d.Nanoseconds())
	k.mu.Unlock()
	_, _ = unix.Ppoll(pfds, &ts, nil)
	var buf [8]byte
	for j, pf := range pfds {
		if pf.Revents&unix.POLLIN == 0 {
			continue
		}
		_, _ = unix.Read(int(pf.Fd), buf[:])
		if j > 0 {
			fired[idx[j-1]] = true
		}
	}
	k.mu.Lock()
	return fired
}

// wakeKloop cuts the sleep of the loop running on p (SYNC_KLOOP_STOP wakes
// the descriptor's wait queue).
func (k *fakeNetmap) wakeKloop(p *fakePriv) {
	if p.running && p.wakeFd > 0 {
		_, _ = unix.Write(p.wakeFd, le.AppendUint64(nil, 1))
	}
}

// backendIrq is netmap_tx_irq/netmap_rx_irq for port: it wakes the kloops
// that wait for backend events (notification mode only).
func (k *fakeNetmap) backendIrq(port *fakePort) {
	if port == nil {
		return
	}
	for _, p := range k.fds {
		if p.port == port && p.running && !p.busyWait {
			k.wakeKloop(p)
		}
	}
}

// ringWork is netmap_sync_kloop_tx_ring / _rx_ring for CSB entry e, kring
// i of direction t.
func (k *fakeNetmap) ringWork(p *fakePriv, csb ptnetmap.CSB, e, t, i int, busyWait, direct bool) {
	port := p.port
	kr, fr := port.krings[t][i], port.rings[t][i]
	if fr.off == 0 {
		return
	}
	n := fr.n
	a, kt := &csb.Atok[e], &csb.Ktoa[e]
	irqfd := int32(-1)
	if p.eventfds != nil {
		irqfd = p.eventfds[e][1]
	}
	irq := func(progress *bool) {
		if irqfd >= 0 && *progress && a.ApplNeedKick() {
			p.irqs[e]++
			if isEventfd(int(irqfd)) {
				_, _ = unix.Write(int(irqfd), le.AppendUint64(nil, 1))
			}
			*progress = false
		}
	}
	if !direct {
		kt.SetKernNeedKick(false)
	}
	head, cur, _ := ptnetmap.KernRead(a)
	progress := false
	dry := 0
	for {
		if t == tTX {
			if !txPrologue(kr, n, head, cur) {
				k.reinit(port, t, i)
				if !busyWait {
					kt.SetKernNeedKick(true)
				}
				break
			}
			if !k.txBackend(port, i) {
				if !busyWait {
					kt.SetKernNeedKick(true)
				}
				break
			}
		} else {
			if !rxPrologue(kr, n, head, cur) {
				k.reinit(port, t, i)
				if !busyWait {
					kt.SetKernNeedKick(true)
				}
				break
			}
			if !k.rxBackend(port, i) {
				if !busyWait {
					kt.SetKernNeedKick(true)
				}
				break
			}
		}
		hwtail := kr.hwtail
		ptnetmap.KernWrite(kt, kr.hwcur, hwtail)
		if kr.rtail != hwtail {
			kr.rtail = hwtail
			progress, dry = true, 0
		} else {
			dry++
		}
		irq(&progress)
		head, cur, _ = ptnetmap.KernRead(a)
		// Nothing new from the application: TX head did not move, RX
		// has no slot left to fill.
		idle := func() bool {
			if t == tTX {
				return head == kr.rhead
			}
			return kr.hwtail == prevSlot(head, n)
		}
		if idle() {
			if busyWait {
				break
			}
			kt.SetKernNeedKick(true)
			head, cur, _ = ptnetmap.KernRead(a)
			if !idle() {
				kt.SetKernNeedKick(false)
				continue
			}
			break
		}
		if t == tTX && kr.rhead == kr.hwtail { // nm_kr_txempty
			break
		}
		if t == tRX && (kr.hwtail == kr.rhead || dry >= 2) {
			break
		}
	}
	irq(&progress)
}

// prevSlot is nm_prev(i, n-1).
func prevSlot(i, n uint32) uint32 {
	if i == 0 {
		return n - 1
	}
	return i - 1
}

// isEventfd reports whether fd is an eventfd of this process.
func isEventfd(fd int) bool {
	if fd < 0 {
		return false
	}
	l, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	return err == nil && l == "anon_inode:[eventfd]"
}
