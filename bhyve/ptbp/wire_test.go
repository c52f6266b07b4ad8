package ptbp

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
)

// Byte images written from docs/plugin-protocol.md, field by field.
func TestWireImages(t *testing.T) {
	cases := []struct {
		m   any
		hex string
	}{
		{Read{Fn: 1, Size: 4, Off: 0x40}, "0300 0000 07000000 01 04 0000 40000000"},
		{Value{Val: 0xdeadbeef}, "0400 0000 07000000 efbeadde"},
		{Write{Fn: 0, Size: 4, Off: 4, Val: 1}, "0500 0000 07000000 00 04 0000 04000000 01000000"},
		{Done{Status: 6}, "0600 0000 07000000 06000000"},
		{MSIX{Vector: 2, Flags: 3, Data: 0x4041, Addr: 0xfee00000}, "0700 0000 07000000 0200 0300 41400000 0000e0fe00000000"},
		{Reset{}, "0800 0000 07000000"},
		{Goodbye{}, "0900 0000 07000000"},
	}
	for _, c := range cases {
		want, err := hex.DecodeString(strings.ReplaceAll(c.hex, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		got := Encode(7, c.m)
		if !bytes.Equal(got, want) {
			t.Errorf("%T: encoded\n%x\nwant\n%x", c.m, got, want)
		}
		seq, m, err := Decode(got)
		if err != nil || seq != 7 || !reflect.DeepEqual(m, c.m) {
			t.Errorf("%T: decoded %d %+v %v", c.m, seq, m, err)
		}
	}
}

func TestWireStrings(t *testing.T) {
	for _, m := range []any{
		Hello{Magic: Magic, Version: Version, VM: "vm0"},
		Welcome{Version: 1, NTx: 2, NRx: 2, MAC: [6]byte{2, 0, 0, 0, 0, 1}, MemSize: 1 << 22, SegName: "ptbhyve"},
		Error{Errno: 2, Msg: "no VM named vm9"},
		Hello{VM: strings.Repeat("x", 63)},
	} {
		b := Encode(1, m)
		if len(b) != sizes[Type(le.Uint16(b))] {
			t.Errorf("%T: %d bytes", m, len(b))
		}
		_, got, err := Decode(b)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Errorf("%T: %+v %v", m, got, err)
		}
	}
	// A name too long for its field is cut, never spilled.
	_, m, _ := Decode(Encode(1, Hello{VM: strings.Repeat("y", 100)}))
	if h := m.(Hello); len(h.VM) != 63 {
		t.Errorf("long VM name decoded to %d bytes", len(h.VM))
	}
	w := Encode(1, Welcome{SegName: "s"})
	if w[8+24] != 's' || w[8+16] != 0 {
		t.Errorf("welcome layout: %x", w)
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, b := range [][]byte{
		nil, {1, 0, 0}, {0x63, 0, 0, 0, 0, 0, 0, 0},
		append(Encode(1, Reset{}), 0), Encode(1, Value{})[:10],
		unterminated(Encode(1, Hello{}), 8+8, vmLen),
	} {
		if _, _, err := Decode(b); err == nil {
			t.Errorf("Decode(%x) accepted", b)
		}
	}
}

// unterminated fills a string field with 'a', leaving it no NUL.
func unterminated(b []byte, at, n int) []byte {
	for i := range n {
		b[at+i] = 'a'
	}
	return b
}

func FuzzDecode(f *testing.F) {
	for _, m := range []any{Hello{VM: "a"}, Welcome{}, Read{}, Write{}, MSIX{}, Error{Msg: "x"}} {
		f.Add(Encode(3, m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, m, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to the same length and decodes to
		// the same message.
		again := Encode(seq, m)
		if len(again) != len(b) {
			t.Fatalf("%T re-encoded to %d bytes, was %d", m, len(again), len(b))
		}
		if _, m2, err := Decode(again); err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("%+v round trip: %+v %v", m, m2, err)
		}
	})
}
