package seqframe_test

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/ptbhyve/ptbhyve/internal/seqframe"
	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/netmap/pipe"
)

func TestFillCheck(t *testing.T) {
	hdr := []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x88, 0xb5, 0xee, 0xee} // longer than Off: the tail is ignored
	for _, tt := range []struct {
		name    string
		seq     uint64
		end     uint64
		hdr     []byte
		tamper  func(s *netmap.Slot, buf []byte, i int) // on the i-th frame before it is received
		next    uint64                                  // *seq after Check
		wantErr string
	}{
		{name: "all in order", seq: 5, end: 25, next: 25},
		{name: "with a header", seq: 0, end: 10, hdr: hdr, next: 10},
		{name: "end bounds the batch", seq: 7, end: 7, next: 7},
		{name: "ring full", seq: 0, end: 1000, next: 63}, // 64 slots, one always free
		{name: "a frame lost", seq: 0, end: 10, next: 3, wantErr: "expected frame 3, got 4",
			tamper: func(s *netmap.Slot, buf []byte, i int) {
				if i >= 3 {
					binary.LittleEndian.PutUint64(buf[seqframe.Off:], uint64(i+1))
				}
			}},
		{name: "a frame cut short", seq: 0, end: 10, next: 6, wantErr: "expected frame 6, got 6 (len 59)",
			tamper: func(s *netmap.Slot, buf []byte, i int) {
				if i == 6 {
					s.Len--
				}
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key := t.Name()
			tx, err := pipe.Open(key, true, pipe.Config{Slots: 64})
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			rx, err := pipe.Open(key, false, pipe.Config{Slots: 64})
			if err != nil {
				t.Fatal(err)
			}
			defer rx.Close()
			tr := tx.If().TxRing(0)
			h0 := tr.Head()
			if got, want := seqframe.Fill(tr, tx.Region(), tt.hdr, tt.seq, tt.end), min(tt.end, tt.seq+63); got != want {
				t.Fatalf("Fill returned %d, want %d", got, want)
			}
			for h, i := h0, 0; h != tr.Head(); h, i = tr.Next(h), i+1 {
				s := tr.Slot(h)
				buf := tx.Region().Buf(s.BufIdx)
				if tt.hdr != nil && !bytes.Equal(buf[:seqframe.Off], tt.hdr[:seqframe.Off]) {
					t.Fatalf("frame %d starts % x, want the header", i, buf[:seqframe.Off])
				}
				if tt.tamper != nil {
					tt.tamper(s, buf, i)
				}
			}
			if err := netmap.TxSync(tx); err != nil {
				t.Fatal(err)
			}
			if err := netmap.RxSync(rx); err != nil {
				t.Fatal(err)
			}
			rr := rx.If().RxRing(0)
			seq := tt.seq
			err = seqframe.Check(rr, rx.Region(), &seq)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Check: %v, want an error containing %q", err, tt.wantErr)
			}
			if seq != tt.next {
				t.Fatalf("Check counted up to %d, want %d", seq, tt.next)
			}
			if released := netmap.Dist(rr.Head(), rr.Tail(), rr.NumSlots()); tt.wantErr == "" && released != 0 || tt.wantErr != "" && released == 0 {
				t.Fatalf("%d frames left unreleased", released)
			}
		})
	}
}
