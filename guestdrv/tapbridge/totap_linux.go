package tapbridge

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ringToTap writes each frame of the RX rings to the TAP (one write per
// frame: a TAP takes no batches) and returns the slots with one RxSync per
// pass.
func (b *Bridge) ringToTap(ctx context.Context) error {
	rc, err := b.tap.SyscallConn()
	if err != nil {
		return fmt.Errorf("tapbridge: %s: %w", b.name, err)
	}
	for {
		// The sync also returns what the previous pass consumed, so it
		// runs before the exit check.
		if err := b.r.RxSync(); err != nil {
			return fmt.Errorf("tapbridge: %s: RX sync: %w", b.name, err)
		}
		if ctx.Err() != nil {
			return nil
		}
		got := 0
		for i := range b.r.NumRx() {
			var n int
			var werr error
			err := rc.Write(func(fd uintptr) bool {
				var k int
				k, werr = b.drain(int(fd), i)
				n += k
				return !errors.Is(werr, unix.EAGAIN)
			})
			if err = errors.Join(err, werr); err != nil {
				return tapDone(err, b.name, "write")
			}
			got += n
		}
		if got == 0 {
			if err := b.r.Wait(waitSlice); err != nil {
				return fmt.Errorf("tapbridge: %s: wait for RX frames: %w", b.name, err)
			}
		}
	}
}

// drain writes RX ring i's frames to the TAP descriptor and advances the
// ring over them. It stops early only when the TAP would block (EAGAIN);
// frames the TAP refuses are counted and skipped.
func (b *Bridge) drain(fd, i int) (int, error) {
	ring := b.r.RxRing(i)
	h := ring.Head()
	defer func() { ring.Advance(h) }()
	n := min(ring.Space(), ring.NumSlots()-1)
	done := 0
	for range n {
		s := ring.Slot(h)
		buf := b.r.Buf(s.BufIdx)
		if l := int(s.Len); l > len(buf) {
			b.st.badSlot.Add(1)
		} else {
			_, err := unix.Write(fd, buf[:l])
			for err == unix.EINTR {
				_, err = unix.Write(fd, buf[:l])
			}
			switch err {
			case nil:
				b.st.toTapFrames.Add(1)
				b.st.toTapBytes.Add(uint64(l))
			case unix.EAGAIN:
				return done, err
			default:
				b.st.tapErrors.Add(1)
			}
		}
		h = ring.Next(h)
		done++
	}
	return done, nil
}
