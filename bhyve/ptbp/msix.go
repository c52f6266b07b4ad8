package ptbp

import (
	"sync"
	"sync/atomic"
)

// Raiser raises an MSI in the guest with the address and data the guest
// programmed: VM_LAPIC_MSI on /dev/vmm/VM. bhyve is not involved, so an
// interrupt costs one ioctl from the sync loop's thread.
type Raiser interface {
	RaiseMSI(addr uint64, data uint32) error
}

// Vectors is the device's MSI-X state as bhyve mirrors it (MSIX messages)
// and the ptnetmap.Interrupter the sync loop raises: vector i fires with
// entry i's address and data, or is left pending while it, or the
// function, is masked or MSI-X is off, and fires when that clears.
type Vectors struct {
	raiser Raiser

	mu      sync.Mutex // the loop raises at most once per batch
	enabled bool
	fmask   bool
	entries []entry

	raised, pended, failed atomic.Uint64
}

type entry struct {
	addr    uint64
	data    uint32
	masked  bool
	pending bool
}

// NewVectors makes n vectors, all masked until bhyve says otherwise.
func NewVectors(n int, r Raiser) *Vectors {
	v := &Vectors{raiser: r, entries: make([]entry, n)}
	for i := range v.entries {
		v.entries[i].masked = true
	}
	return v
}

func (v *Vectors) deliverable(e *entry) bool {
	return v.enabled && !v.fmask && !e.masked && e.addr != 0
}

// Interrupt implements ptnetmap.Interrupter.
func (v *Vectors) Interrupt(i int) {
	v.mu.Lock()
	if i < 0 || i >= len(v.entries) {
		v.mu.Unlock()
		return
	}
	e := &v.entries[i]
	if !v.deliverable(e) {
		e.pending = true
		v.mu.Unlock()
		v.pended.Add(1)
		return
	}
	addr, data := e.addr, e.data
	v.mu.Unlock()
	v.raise(addr, data)
}

func (v *Vectors) raise(addr uint64, data uint32) {
	if err := v.raiser.RaiseMSI(addr, data); err != nil {
		v.failed.Add(1)
		return
	}
	v.raised.Add(1)
}

// Update applies an MSIX message: the function's enable and mask bits,
// and entry m.Vector (ignored if out of range). Pending vectors that
// became deliverable fire now.
func (v *Vectors) Update(m MSIX) {
	var fire []entry
	v.mu.Lock()
	v.enabled = m.Flags&MSIXEnabled != 0
	v.fmask = m.Flags&MSIXFuncMasked != 0
	if int(m.Vector) < len(v.entries) {
		e := &v.entries[m.Vector]
		e.addr, e.data, e.masked = m.Addr, m.Data, m.Flags&MSIXMasked != 0
	}
	for i := range v.entries {
		if e := &v.entries[i]; e.pending && v.deliverable(e) {
			e.pending = false
			fire = append(fire, *e)
		}
	}
	v.mu.Unlock()
	for _, e := range fire {
		v.raise(e.addr, e.data)
	}
}

// Reset masks every vector and forgets pending interrupts, as a PCI
// function reset does.
func (v *Vectors) Reset() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.enabled, v.fmask = false, false
	for i := range v.entries {
		v.entries[i] = entry{masked: true}
	}
}

// VectorStats are the interrupt counters.
type VectorStats struct {
	Raised  uint64 `json:"raised"`
	Pending uint64 `json:"left_pending"`
	Failed  uint64 `json:"failed"`
}

// Stats snapshots the counters.
func (v *Vectors) Stats() VectorStats {
	return VectorStats{Raised: v.raised.Load(), Pending: v.pended.Load(), Failed: v.failed.Load()}
}
