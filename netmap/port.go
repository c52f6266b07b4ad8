package netmap

import "errors"

// Port is a netmap port: a set of TX and RX rings in a region, and a backend
// that moves packets between them and the world. It is what netmap calls an
// adapter with a bound file descriptor; `ptbhyve` hands its rings to a guest
// and runs the syncs on the guest's behalf.
//
// TxSync and RxSync are the backend half of a sync (nm_sync): the caller has
// already validated the application's indexes with KRing.Prologue. A TX sync
// consumes [HwCur, RHead) and may advance HwTail as transmissions complete; an
// RX sync takes back [HwCur, RHead) and advances HwTail over new packets. Each
// ring is synced by one goroutine at a time.
type Port interface {
	// Name is the port's name as opened.
	Name() string
	// Region is the memory the port's netmap_if, rings and buffers live in.
	Region() *Region
	// If is the port's netmap_if.
	If() *If
	// MemID identifies the region; ports with equal MemID share buffers.
	MemID() uint16
	// TxRings and RxRings are the kernel-side rings, in netmap order.
	TxRings() []*KRing
	RxRings() []*KRing
	TxSync(ring int, flags int) error
	RxSync(ring int, flags int) error
	// Waker is how a sync loop sleeps until the backend makes progress.
	Waker() Waker
	Close() error
}

// Waker lets a sync loop sleep until a backend has news for it (packets to
// receive, transmit slots freed) without the backend paying a system call
// for every batch: the loop announces it is about to sleep with Arm, and
// the backend signals only an armed waiter.
type Waker interface {
	// Fd is a descriptor to poll for Events; Events is asked again before
	// every sleep, as what to wait for may depend on the rings' state.
	Fd() int
	Events() int16
	// Arm declares that the caller will sleep on Fd. It returns false when
	// progress arrived since the last Disarm, in which case the caller must
	// not sleep.
	Arm() bool
	// Disarm ends a sleep and clears the notification.
	Disarm()
}

// DropCounter is implemented by ports that drop frames outside their rings:
// a switch port whose receiver's ring is full, an AF_XDP socket whose FILL
// ring ran empty. Drops reports ring's count so far; it may make system
// calls and is for statistics, never the data path.
type DropCounter interface {
	Drops(tx bool, ring int) uint64
}

// Errors a sync can return. ErrBadSlot means the application broke the ring
// protocol (a bad buffer index or length): the ring must be reinitialised.
var (
	ErrBadSlot = errors.New("netmap: slot names an invalid buffer or length")
	ErrClosed  = errors.New("netmap: port closed")
)

// TxSync syncs every TX ring of p for an application in this process that
// writes head and cur into the shared rings, as NIOCTXSYNC does.
func TxSync(p Port) error { return syncAll(p, p.TxRings(), p.TxSync, NAFForceReclaim) }

// RxSync syncs every RX ring of p, as NIOCRXSYNC does.
func RxSync(p Port) error { return syncAll(p, p.RxRings(), p.RxSync, NAFForceRead) }

func syncAll(p Port, rings []*KRing, sync func(int, int) error, flags int) error {
	var first error
	for i, k := range rings {
		if !k.Prologue(k.Ring.Head(), k.Ring.Cur()) {
			k.Reinit()
			continue
		}
		err := sync(i, flags)
		if errors.Is(err, ErrBadSlot) {
			k.Reinit()
			continue
		}
		if err != nil && first == nil {
			first = err
		}
		k.Finalize()
	}
	return first
}
