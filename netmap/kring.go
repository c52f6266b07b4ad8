package netmap

// KRing is the kernel side of one ring: the indexes netmap keeps in struct
// netmap_kring. The application publishes head and cur (in the shared ring,
// or through a CSB); a sync first validates them against this state (the
// prologue), then the backend moves slots in [HwCur, RHead) and advances
// HwTail. Only one goroutine syncs a KRing at a time.
type KRing struct {
	Ring Ring
	Tx   bool
	N    uint32

	HwCur, HwTail      uint32 // what the backend has consumed / produced
	RHead, RCur, RTail uint32 // the last validated application view

	// Resets counts the times the application broke the ring protocol and
	// the ring was reinitialised.
	Resets uint64

	region *Region
}

// NewKRing starts a ring in netmap's initial state: a TX ring offers all
// but one slot to the application, an RX ring offers none.
func NewKRing(r *Region, ring Ring, tx bool) *KRing {
	k := &KRing{Ring: ring, Tx: tx, N: ring.NumSlots(), region: r}
	if tx {
		k.HwTail = k.N - 1
	}
	k.RTail = k.HwTail
	return k
}

// Region is the memory the ring's buffers live in.
func (k *KRing) Region() *Region { return k.region }

// TxPrologue validates a TX head and cur as nm_txsync_prologue does: head
// may move forward from the last validated head up to the kernel's tail,
// and cur may lie anywhere from head to that tail. On success it records
// them as RHead and RCur.
func (k *KRing) TxPrologue(head, cur uint32) bool {
	if head >= k.N || cur >= k.N {
		return false
	}
	if !Between(k.RHead, head, k.RTail) || !Between(head, cur, k.RTail) {
		return false
	}
	k.RHead, k.RCur = head, cur
	return true
}

// RxPrologue validates an RX head and cur as nm_rxsync_prologue does:
// HwCur <= head <= cur <= HwTail on the circle.
func (k *KRing) RxPrologue(head, cur uint32) bool {
	if head >= k.N || cur >= k.N {
		return false
	}
	if !Between(k.HwCur, head, k.HwTail) || !Between(head, cur, k.HwTail) {
		return false
	}
	k.RHead, k.RCur = head, cur
	return true
}

// Prologue applies the prologue of the ring's direction.
func (k *KRing) Prologue(head, cur uint32) bool {
	if k.Tx {
		return k.TxPrologue(head, cur)
	}
	return k.RxPrologue(head, cur)
}

// Finalize publishes the backend's tail to the application, as
// nm_sync_finalize does for a ring the application syncs directly.
func (k *KRing) Finalize() {
	k.RTail = k.HwTail
	k.Ring.SetTail(k.HwTail)
}

// Reinit recovers from a protocol violation as netmap_ring_reinit does:
// the application's indexes go back to the kernel's (head = cur = HwCur,
// tail = HwTail) and every slot that names a reserved or nonexistent
// buffer, or a length past the buffer, is pointed at the scratch buffer 0
// with length 0.
func (k *KRing) Reinit() {
	k.Resets++
	k.RHead, k.RCur, k.RTail = k.HwCur, k.HwCur, k.HwTail
	k.Ring.SetHead(k.HwCur)
	k.Ring.SetCur(k.HwCur)
	k.Ring.SetTail(k.HwTail)
	bs := k.region.BufSize()
	for i := range k.N {
		s := k.Ring.Slot(i)
		if !k.region.ValidBuf(s.BufIdx) {
			s.BufIdx, s.Len = 0, 0
		} else if uint32(s.Len) > bs {
			s.Len = 0
		}
	}
}

// TxSpace is nm_kr_txspace: TX slots the application may still fill.
func (k *KRing) TxSpace() uint32 { return Dist(k.RHead, k.HwTail, k.N) }
