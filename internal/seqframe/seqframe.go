// Package seqframe fills netmap rings with numbered frames and checks them
// where they arrive. It is the traffic of ptbhyve's tests and of `ptbhyve
// bench`: a sequence number in every frame is enough to see a frame lost,
// duplicated, reordered or overwritten on its way through a data path.
package seqframe

import (
	"encoding/binary"
	"fmt"

	"github.com/ptbhyve/ptbhyve/netmap"
)

const (
	// Off is where a frame carries its sequence number (8 bytes, little
	// endian): after the Ethernet header, which switches read.
	Off = 14
	// Len is every frame's length: 64 bytes on the wire less the CRC.
	Len = 60
)

// Fill numbers the free slots of the TX ring r, from head on, with seq,
// seq+1, ... up to end (not included), advances head and cur past them and
// returns the next number. hdr, if not nil, is copied to the start of each
// buffer first (at most Off bytes of it count). The caller syncs.
func Fill(r netmap.Ring, region *netmap.Region, hdr []byte, seq, end uint64) uint64 {
	h, t := r.Head(), r.Tail()
	for ; seq < end && h != t; h = r.Next(h) {
		s := r.Slot(h)
		buf := region.Buf(s.BufIdx)
		copy(buf[:Off], hdr)
		binary.LittleEndian.PutUint64(buf[Off:], seq)
		s.Len = Len
		seq++
	}
	r.Advance(h)
	return seq
}

// Check takes the frames between head and tail of the RX ring r, which
// must be numbered *seq, *seq+1, ... and Len bytes long, counts them in
// *seq and releases them (advances head and cur). At the first frame that
// is not the next one it stops, releasing only the frames before it, and
// says what it found. The caller syncs.
func Check(r netmap.Ring, region *netmap.Region, seq *uint64) error {
	h, t := r.Head(), r.Tail()
	var err error
	for ; h != t; h = r.Next(h) {
		s := r.Slot(h)
		if v := binary.LittleEndian.Uint64(region.Buf(s.BufIdx)[Off:]); v != *seq || s.Len != Len {
			err = fmt.Errorf("expected frame %d, got %d (len %d)", *seq, v, s.Len)
			break
		}
		*seq++
	}
	r.Advance(h)
	return err
}
