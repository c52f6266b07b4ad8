package netmap

import "testing"

func TestTxPrologue(t *testing.T) {
	r, f := newTestRegion(t, IfConfig{Name: "p", TxRings: 1, RxRings: 1, TxSlots: 8, RxSlots: 8})
	for _, c := range []struct {
		name             string
		rhead, rtail     uint32
		head, cur        uint32
		ok               bool
		wantHead, wantCr uint32
	}{
		{"advance", 0, 7, 3, 3, true, 3, 3},
		{"cur ahead of head", 0, 7, 3, 5, true, 3, 5},
		{"head to tail", 0, 7, 7, 7, true, 7, 7},
		{"head past tail", 0, 6, 7, 7, false, 0, 0},
		{"head backwards", 4, 2, 3, 3, false, 4, 4},
		{"wrapped ok", 6, 2, 1, 2, true, 1, 2},
		{"cur behind head", 0, 7, 4, 3, false, 0, 0},
		{"out of range", 0, 7, 8, 8, false, 0, 0},
		{"no change", 5, 3, 5, 5, true, 5, 5},
	} {
		k := NewKRing(r, f.TxRing(0), true)
		k.RHead, k.RCur, k.RTail, k.HwTail = c.rhead, c.rhead, c.rtail, c.rtail
		ok := k.TxPrologue(c.head, c.cur)
		if ok != c.ok {
			t.Errorf("%s: ok = %v", c.name, ok)
			continue
		}
		if ok && (k.RHead != c.wantHead || k.RCur != c.wantCr) {
			t.Errorf("%s: rhead/rcur = %d/%d", c.name, k.RHead, k.RCur)
		}
		if !ok && k.RHead != c.rhead {
			t.Errorf("%s: a refused prologue changed rhead", c.name)
		}
	}
}

func TestRxPrologue(t *testing.T) {
	r, f := newTestRegion(t, IfConfig{Name: "p", TxRings: 1, RxRings: 1, TxSlots: 8, RxSlots: 8})
	for _, c := range []struct {
		name          string
		hwcur, hwtail uint32
		head, cur     uint32
		ok            bool
	}{
		{"release some", 0, 5, 3, 3, true},
		{"release all", 0, 5, 5, 5, true},
		{"past tail", 0, 5, 6, 6, false},
		{"behind hwcur", 3, 5, 2, 2, false},
		{"wrapped", 6, 2, 1, 2, true},
		{"cur past tail", 0, 5, 2, 6, false},
		{"out of range", 0, 5, 9, 9, false},
	} {
		k := NewKRing(r, f.RxRing(0), false)
		k.HwCur, k.HwTail, k.RHead = c.hwcur, c.hwtail, c.hwcur
		if ok := k.RxPrologue(c.head, c.cur); ok != c.ok {
			t.Errorf("%s: ok = %v", c.name, ok)
		}
	}
}

// Reinit puts the ring back into the kernel's state and neutralises slots
// that name buffers the application may not use.
func TestReinit(t *testing.T) {
	r, f := newTestRegion(t, IfConfig{Name: "p", TxRings: 1, RxRings: 1, TxSlots: 8, RxSlots: 8})
	ring := f.TxRing(0)
	k := NewKRing(r, ring, true)
	k.HwCur, k.HwTail = 3, 1
	good := ring.Slot(0).BufIdx
	ring.Slot(0).Len = 100
	ring.Slot(1).BufIdx = 1
	ring.Slot(2).BufIdx = r.NumBufs()
	ring.Slot(3).Len = 4096
	ring.Advance(6)
	ring.SetTail(5)
	k.Reinit()
	if ring.Head() != 3 || ring.Cur() != 3 || ring.Tail() != 1 || k.RHead != 3 || k.RTail != 1 {
		t.Errorf("after Reinit head/cur/tail = %d/%d/%d", ring.Head(), ring.Cur(), ring.Tail())
	}
	if s := ring.Slot(0); s.BufIdx != good || s.Len != 100 {
		t.Error("Reinit touched a valid slot")
	}
	for i, want := range []struct{ idx uint32 }{{0}, {0}} {
		if s := ring.Slot(uint32(i + 1)); s.BufIdx != want.idx || s.Len != 0 {
			t.Errorf("slot %d not neutralised: %+v", i+1, *s)
		}
	}
	if ring.Slot(3).Len != 0 {
		t.Error("oversized length kept")
	}
	if k.Resets != 1 {
		t.Errorf("Resets = %d", k.Resets)
	}
}

func TestRingArithmetic(t *testing.T) {
	for _, c := range []struct{ a, b, n, dist uint32 }{{0, 0, 8, 0}, {2, 5, 8, 3}, {6, 1, 8, 3}, {7, 6, 8, 7}} {
		if d := Dist(c.a, c.b, c.n); d != c.dist {
			t.Errorf("Dist(%d,%d,%d) = %d, want %d", c.a, c.b, c.n, d, c.dist)
		}
		if Add(c.a, c.dist, c.n) != c.b {
			t.Errorf("Add(%d,%d,%d) != %d", c.a, c.dist, c.n, c.b)
		}
	}
	if Prev(0, 8) != 7 || Prev(3, 8) != 2 {
		t.Error("Prev")
	}
	if !Between(6, 0, 2) || Between(2, 4, 3) || !Between(2, 2, 2) {
		t.Error("Between")
	}
}
