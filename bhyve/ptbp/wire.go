// Package ptbp is ptbhyve's side of the bhyve plugin protocol
// (docs/plugin-protocol.md): the messages bhyve's ptnet device model and
// the daemon exchange over a SOCK_SEQPACKET socket, and the server that
// answers them with a ptnet register file, hands bhyve the kick
// descriptors, and raises the guest's MSI-X vectors itself.
package ptbp

import (
	"encoding/binary"
	"fmt"
)

// Protocol constants.
const (
	Magic   = 0x50544250 // "PTBP"
	Version = 1
	MaxMsg  = 4096
	// MaxSegName is the longest devmem segment name vmm accepts
	// (VM_MAX_SUFFIXLEN); the wire field has room for more.
	MaxSegName = 15

	hdrLen   = 8
	vmLen    = 64
	segLen   = 32
	errMsgLn = 128
)

// Type is a message type.
type Type uint16

// Message types.
const (
	THello   Type = 1
	TWelcome Type = 2
	TRead    Type = 3
	TValue   Type = 4
	TWrite   Type = 5
	TDone    Type = 6
	TMSIX    Type = 7
	TReset   Type = 8
	TGoodbye Type = 9
	TError   Type = 10
)

// sizes are the exact message lengths, header included.
var sizes = map[Type]int{THello: 80, TWelcome: 64, TRead: 16, TValue: 12, TWrite: 20, TDone: 12,
	TMSIX: 24, TReset: 8, TGoodbye: 8, TError: 140}

// Functions a register access addresses.
const (
	FnPtnet  = 0
	FnMemdev = 1
)

// MSIX flags.
const (
	MSIXMasked     = 1 << 0 // this vector's mask bit
	MSIXEnabled    = 1 << 1 // MSI-X enabled for the function
	MSIXFuncMasked = 1 << 2 // the function mask
)

// Messages.
type (
	Hello struct {
		Magic, Version uint32
		VM             string
	}
	Welcome struct {
		Version  uint32
		NTx, NRx uint16
		MAC      [6]byte
		MemSize  uint64
		SegName  string
	}
	Read struct {
		Fn, Size uint8
		Off      uint32
	}
	Value struct{ Val uint32 }
	Write struct {
		Fn, Size uint8
		Off, Val uint32
	}
	Done struct{ Status uint32 }
	MSIX struct {
		Vector, Flags uint16
		Data          uint32
		Addr          uint64
	}
	Reset   struct{}
	Goodbye struct{}
	Error   struct {
		Errno uint32
		Msg   string
	}
)

var le = binary.LittleEndian

// Encode lays m out after a header carrying seq.
func Encode(seq uint32, m any) []byte {
	var t Type
	switch m.(type) {
	case Hello:
		t = THello
	case Welcome:
		t = TWelcome
	case Read:
		t = TRead
	case Value:
		t = TValue
	case Write:
		t = TWrite
	case Done:
		t = TDone
	case MSIX:
		t = TMSIX
	case Reset:
		t = TReset
	case Goodbye:
		t = TGoodbye
	case Error:
		t = TError
	default:
		panic(fmt.Sprintf("ptbp: cannot encode %T", m))
	}
	b := make([]byte, sizes[t])
	le.PutUint16(b[0:], uint16(t))
	le.PutUint32(b[4:], seq)
	p := b[hdrLen:]
	switch m := m.(type) {
	case Hello:
		le.PutUint32(p[0:], m.Magic)
		le.PutUint32(p[4:], m.Version)
		copy(p[8:8+vmLen-1], m.VM)
	case Welcome:
		le.PutUint32(p[0:], m.Version)
		le.PutUint16(p[4:], m.NTx)
		le.PutUint16(p[6:], m.NRx)
		copy(p[8:14], m.MAC[:])
		le.PutUint64(p[16:], m.MemSize)
		copy(p[24:24+segLen-1], m.SegName)
	case Read:
		p[0], p[1] = m.Fn, m.Size
		le.PutUint32(p[4:], m.Off)
	case Value:
		le.PutUint32(p[0:], m.Val)
	case Write:
		p[0], p[1] = m.Fn, m.Size
		le.PutUint32(p[4:], m.Off)
		le.PutUint32(p[8:], m.Val)
	case Done:
		le.PutUint32(p[0:], m.Status)
	case MSIX:
		le.PutUint16(p[0:], m.Vector)
		le.PutUint16(p[2:], m.Flags)
		le.PutUint32(p[4:], m.Data)
		le.PutUint64(p[8:], m.Addr)
	case Error:
		le.PutUint32(p[0:], m.Errno)
		copy(p[4:4+errMsgLn-1], m.Msg)
	}
	return b
}

// Decode parses one message. Its length must be exactly its type's: a
// peer that sends anything else is broken or hostile, and the caller
// closes the connection.
func Decode(b []byte) (seq uint32, m any, err error) {
	if len(b) < hdrLen {
		return 0, nil, fmt.Errorf("ptbp: %d-byte message is shorter than a header", len(b))
	}
	t := Type(le.Uint16(b))
	want, ok := sizes[t]
	if !ok {
		return 0, nil, fmt.Errorf("ptbp: unknown message type %d", t)
	}
	if len(b) != want {
		return 0, nil, fmt.Errorf("ptbp: message type %d of %d bytes; want %d", t, len(b), want)
	}
	seq = le.Uint32(b[4:])
	p := b[hdrLen:]
	// Strings are NUL-terminated within their fields; one that fills its
	// field is malformed (the C side would read past it).
	if f, ok := stringField[t]; ok {
		if _, ok := cstring(p[f[0] : f[0]+f[1]]); !ok {
			return 0, nil, fmt.Errorf("ptbp: message type %d: string field not NUL-terminated", t)
		}
	}
	switch t {
	case THello:
		m = Hello{Magic: le.Uint32(p[0:]), Version: le.Uint32(p[4:]), VM: str(p[8 : 8+vmLen])}
	case TWelcome:
		w := Welcome{Version: le.Uint32(p[0:]), NTx: le.Uint16(p[4:]), NRx: le.Uint16(p[6:]),
			MemSize: le.Uint64(p[16:]), SegName: str(p[24 : 24+segLen])}
		copy(w.MAC[:], p[8:14])
		m = w
	case TRead:
		m = Read{Fn: p[0], Size: p[1], Off: le.Uint32(p[4:])}
	case TValue:
		m = Value{Val: le.Uint32(p[0:])}
	case TWrite:
		m = Write{Fn: p[0], Size: p[1], Off: le.Uint32(p[4:]), Val: le.Uint32(p[8:])}
	case TDone:
		m = Done{Status: le.Uint32(p[0:])}
	case TMSIX:
		m = MSIX{Vector: le.Uint16(p[0:]), Flags: le.Uint16(p[2:]), Data: le.Uint32(p[4:]), Addr: le.Uint64(p[8:])}
	case TReset:
		m = Reset{}
	case TGoodbye:
		m = Goodbye{}
	case TError:
		m = Error{Errno: le.Uint32(p[0:]), Msg: str(p[4 : 4+errMsgLn])}
	}
	return seq, m, nil
}

// stringField is where each message's string field is (offset in the
// payload, length).
var stringField = map[Type][2]int{THello: {8, vmLen}, TWelcome: {24, segLen}, TError: {4, errMsgLn}}

// cstring is a NUL-padded field as a string, up to its first NUL; ok is
// false when the field holds no NUL.
func cstring(b []byte) (string, bool) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), true
		}
	}
	return "", false
}

func str(b []byte) string {
	s, _ := cstring(b)
	return s
}
