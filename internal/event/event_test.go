package event

import "testing"

func TestSignalCoalescesAndDrains(t *testing.T) {
	e, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if ok, _ := e.Wait(0); ok {
		t.Fatal("fresh event is signalled")
	}
	for range 3 {
		e.Signal()
	}
	if ok, err := e.Wait(1000); !ok || err != nil {
		t.Fatalf("Wait after Signal = %v, %v; want true", ok, err)
	}
	if ok, _ := e.Wait(0); ok {
		t.Fatal("signals did not coalesce: still signalled after one Wait")
	}
}

// A producer's Signal reaches an armed sleeper and costs nothing otherwise;
// Arm refuses to sleep when progress is already published.
func TestWaker(t *testing.T) {
	published := false
	w, err := NewWaker(func() bool { return published })
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Signal() // not armed: no wakeup is stored
	if ok, _ := w.ev.Wait(0); ok {
		t.Fatal("Signal without a sleeper left a wakeup behind")
	}
	if !w.Arm() {
		t.Fatal("Arm refused with nothing pending")
	}
	w.Signal()
	if ok, _ := w.ev.Wait(1000); !ok {
		t.Fatal("armed sleeper was not woken")
	}
	w.Disarm()
	published = true
	if w.Arm() {
		t.Fatal("Arm agreed to sleep with progress pending")
	}
	if w.armed.Load() != 0 {
		t.Fatal("a refused Arm left the waker armed")
	}
}

func TestNewN(t *testing.T) {
	evs, err := NewN(3)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, e := range evs {
		if seen[e.Fd()] {
			t.Fatalf("descriptor %d handed out twice", e.Fd())
		}
		seen[e.Fd()] = true
		e.Close()
	}
	if len(evs) != 3 {
		t.Fatalf("NewN(3) made %d events", len(evs))
	}
}
