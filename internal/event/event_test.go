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
