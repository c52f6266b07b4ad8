package pktgen

// window is how many sequence numbers behind the newest the receiver
// remembers, to tell a late frame (reordered) from a second copy
// (duplicated). Older frames are counted as reordered.
const window = 4096

// seqTracker counts loss, reordering and duplication from the sequence
// numbers of received frames, in constant space: a bitmap of the last
// window sequence numbers.
type seqTracker struct {
	started bool
	next    uint64 // one past the highest sequence number seen
	seen    [window / 64]uint64

	lost, reordered, duplicated uint64
}

func (t *seqTracker) bit(s uint64) (*uint64, uint64) {
	i := s % window
	return &t.seen[i/64], 1 << (i % 64)
}

// add records one frame. A jump forward counts the skipped numbers lost;
// one of them arriving later is reordered, and no longer lost.
func (t *seqTracker) add(s uint64) {
	if !t.started {
		t.started, t.next = true, s
	}
	switch {
	case s >= t.next:
		gap := s - t.next
		t.lost += gap
		if gap >= window {
			t.seen = [window / 64]uint64{}
		} else {
			for n := t.next; n < s; n++ {
				w, b := t.bit(n)
				*w &^= b
			}
		}
		w, b := t.bit(s)
		*w |= b
		t.next = s + 1
	case t.next-s > window:
		t.reordered++ // too old to know whether it is a copy
	default:
		w, b := t.bit(s)
		if *w&b != 0 {
			t.duplicated++
			return
		}
		*w |= b
		t.reordered++
		t.lost--
	}
}
