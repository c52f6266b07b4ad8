package tapbridge

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// waitSlice bounds a sleep in Rings.Wait, so the end of the run is
	// noticed within it even when no traffic wakes the loop.
	waitSlice = 20 * time.Millisecond
	// ringFullWait is how long the TAP side holds the guest's frames back
	// (leaving them queued in the TAP) while the TX ring is full, before
	// concluding the device is not draining it and discarding them, as a
	// NIC does with a stuck ring.
	ringFullWait = 100 * time.Millisecond
	// maxFrame covers any frame a TAP device returns: the largest a
	// read can produce, 64 KiB.
	maxFrame = 64 << 10
)

// tapToRing reads frames from the TAP straight into TX slot buffers, as
// many as the ring has room for, then publishes them with one TxSync.
func (b *Bridge) tapToRing(ctx context.Context) error {
	rc, err := b.tap.SyscallConn()
	if err != nil {
		return fmt.Errorf("tapbridge: %s: %w", b.name, err)
	}
	ring := b.r.TxRing(0)
	// spill takes what does not fit a slot buffer: an oversize frame,
	// or a discarded one.
	spill := make([]byte, maxFrame)
	var iov [2]unix.Iovec
	iov[1].Base = &spill[0]
	iov[1].SetLen(len(spill))
	var fullSince time.Time
	for ctx.Err() == nil {
		if ring.Space() == 0 {
			if err := b.r.TxSync(); err != nil {
				return fmt.Errorf("tapbridge: %s: TX sync: %w", b.name, err)
			}
		}
		if ring.Space() == 0 {
			now := time.Now()
			if fullSince.IsZero() {
				fullSince = now
			}
			if now.Sub(fullSince) < ringFullWait {
				if err := b.r.Wait(waitSlice); err != nil {
					return fmt.Errorf("tapbridge: %s: wait for TX space: %w", b.name, err)
				}
				continue
			}
			if err := b.discard(rc, spill); err != nil {
				return tapDone(err, b.name, "read")
			}
			if err := b.r.Wait(waitSlice); err != nil {
				return fmt.Errorf("tapbridge: %s: wait for TX space: %w", b.name, err)
			}
			continue
		}
		fullSince = time.Time{}
		var got int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			got, rerr = b.fill(fd, &iov)
			return got > 0 || rerr != nil
		})
		if got > 0 {
			if err := b.r.TxSync(); err != nil {
				return fmt.Errorf("tapbridge: %s: TX sync: %w", b.name, err)
			}
		}
		if err = errors.Join(err, rerr); err != nil {
			return tapDone(err, b.name, "read")
		}
	}
	return nil
}

// fill reads frames from the non-blocking TAP descriptor into the free TX
// slots until the TAP is empty or the ring is full, and advances the ring
// over them.
func (b *Bridge) fill(fd uintptr, iov *[2]unix.Iovec) (int, error) {
	ring := b.r.TxRing(0)
	h := ring.Head()
	space := min(int(ring.Space()), int(ring.NumSlots())-1)
	got := 0
	defer func() { ring.Advance(h) }()
	for got < space {
		s := ring.Slot(h)
		buf := b.r.Buf(s.BufIdx)
		if len(buf) == 0 {
			return got, fmt.Errorf("tapbridge: %s: TX slot %d names no buffer (index %d): the device's ring is corrupt", b.name, h, s.BufIdx)
		}
		iov[0].Base = &buf[0]
		iov[0].SetLen(len(buf))
		n, _, errno := unix.Syscall(unix.SYS_READV, fd, uintptr(unsafe.Pointer(&iov[0])), 2)
		switch errno {
		case 0:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return got, nil
		default:
			return got, errno
		}
		if int(n) > len(buf) {
			b.st.oversize.Add(1)
			continue
		}
		s.Len, s.Flags = uint16(n), 0
		h = ring.Next(h)
		got++
		b.st.toRingFrames.Add(1)
		b.st.toRingBytes.Add(uint64(n))
	}
	return got, nil
}

// discard reads and drops what the TAP holds now, counting it as lost to
// a full ring; it does not wait for more.
func (b *Bridge) discard(rc syscall.RawConn, spill []byte) error {
	var rerr error
	err := rc.Read(func(fd uintptr) bool {
		for {
			_, err := unix.Read(int(fd), spill)
			switch err {
			case nil:
				b.st.ringFull.Add(1)
			case unix.EINTR:
			case unix.EAGAIN:
				return true
			default:
				rerr = err
				return true
			}
		}
	})
	return errors.Join(err, rerr)
}

// tapDone turns the end of TAP I/O into Run's result: the deadline set
// when the run ends, or Close, is a normal end.
func tapDone(err error, name, op string) error {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, os.ErrClosed) {
		return nil
	}
	return fmt.Errorf("tapbridge: %s: TAP %s: %w", name, op, err)
}
