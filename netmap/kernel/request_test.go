package kernel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/ptbhyve/ptbhyve/netmap"
)

// field is a little-endian value of size bytes expected at off.
type field struct {
	name      string
	off, size int
	val       uint64
}

func getLE(b []byte, size int) uint64 {
	switch size {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.LittleEndian.Uint16(b))
	case 4:
		return uint64(binary.LittleEndian.Uint32(b))
	case 8:
		return binary.LittleEndian.Uint64(b)
	}
	panic("bad size")
}

// checkFields checks each field of b, and that every byte no field covers
// (padding) is zero.
func checkFields(t *testing.T, what string, b []byte, fields []field) {
	t.Helper()
	covered := make([]bool, len(b))
	for _, f := range fields {
		if got := getLE(b[f.off:], f.size); got != f.val {
			t.Errorf("%s: %s at %d: got %#x, want %#x", what, f.name, f.off, got, f.val)
		}
		for i := f.off; i < f.off+f.size; i++ {
			if covered[i] {
				t.Errorf("%s: %s overlaps another field at byte %d", what, f.name, i)
			}
			covered[i] = true
		}
	}
	for i, c := range covered {
		if !c && b[i] != 0 {
			t.Errorf("%s: padding byte %d is %#x, want 0", what, i, b[i])
		}
	}
}

// dirty is a buffer full of 0xee, so encoders must write their padding.
func dirty(n int) []byte { return bytes.Repeat([]byte{0xee}, n) }

func TestHeaderLayout(t *testing.T) {
	h := Header{Version: 0x1122, ReqType: 0x3344, Reserved: 0x55667788, Name: "vale0:vm1",
		Options: 0x0102030405060708, Body: 0x1112131415161718}
	b := dirty(HeaderSize)
	if err := h.Encode(b); err != nil {
		t.Fatal(err)
	}
	fields := []field{
		{"nr_version", 0, 2, 0x1122},
		{"nr_reqtype", 2, 2, 0x3344},
		{"nr_reserved", 4, 4, 0x55667788},
		{"nr_options", 72, 8, 0x0102030405060708},
		{"nr_body", 80, 8, 0x1112131415161718},
	}
	for i, c := range []byte(h.Name) {
		fields = append(fields, field{"nr_name", 8 + i, 1, uint64(c)})
	}
	checkFields(t, "nmreq_header", b, fields)
	var back Header
	back.Decode(b)
	if back != h {
		t.Errorf("round trip: got %+v, want %+v", back, h)
	}
}

func TestHeaderName(t *testing.T) {
	long63 := strings.Repeat("n", MaxNameLen)
	b := dirty(HeaderSize)
	if err := (&Header{Name: long63}).Encode(b); err != nil {
		t.Fatalf("a %d-byte name: %v", MaxNameLen, err)
	}
	if b[hdrName+MaxNameLen] != 0 {
		t.Errorf("byte 71 (the NUL of a 63-byte name) is %#x", b[hdrName+MaxNameLen])
	}
	var h Header
	h.Decode(b)
	if h.Name != long63 {
		t.Errorf("decoded %q", h.Name)
	}
	// The kernel forces byte 63 to NUL, so a full 64 bytes decodes as 63.
	for i := range 64 {
		b[hdrName+i] = 'x'
	}
	h.Decode(b)
	if len(h.Name) != MaxNameLen {
		t.Errorf("an unterminated nr_name decoded to %d bytes, want %d", len(h.Name), MaxNameLen)
	}

	for _, tc := range []struct {
		name, want string
	}{
		{strings.Repeat("n", 64), "is 64 bytes long; nmreq_header.nr_name holds at most 63 bytes"},
		{strings.Repeat("n", 200), "is 200 bytes long"},
		{"ix\x000", "contains a NUL byte"},
	} {
		err := (&Header{Name: tc.name}).Encode(dirty(HeaderSize))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("name of %d bytes: got %v, want an error containing %q", len(tc.name), err, tc.want)
		}
		r := Request{Type: ReqPortInfoGet, Name: tc.name, Body: make([]byte, PortInfoSize)}
		if _, err := r.Encode(make([]byte, 4096), 0x1000); err == nil {
			t.Errorf("Request.Encode accepted name of %d bytes", len(tc.name))
		}
	}
}

func TestBodySizes(t *testing.T) {
	want := map[ReqType]int{
		ReqRegister: 56, ReqPortInfoGet: 32, ReqValeAttach: 64, ReqValeDetach: 8, ReqValeList: 8,
		ReqPortHdrSet: 8, ReqPortHdrGet: 8, ReqValeNewIf: 16, ReqValeDelIf: 0,
		ReqValePollingEnable: 16, ReqValePollingDisable: 16, ReqPoolsInfoGet: 64,
		ReqSyncKloopStart: 8, ReqSyncKloopStop: 0, ReqCSBEnable: 0,
	}
	for typ := ReqType(0); typ <= 20; typ++ {
		n, ok := typ.BodySize()
		w, known := want[typ]
		if ok != known || n != w {
			t.Errorf("%v (%d): BodySize = %d, %v; want %d, %v", typ, typ, n, ok, w, known)
		}
	}
	if len(want) != 15 {
		t.Fatalf("table has %d types", len(want))
	}
	for typ, name := range map[ReqType]string{ReqRegister: "REGISTER", ReqCSBEnable: "CSB_ENABLE", 0: "NETMAP_REQ_0", 16: "NETMAP_REQ_16"} {
		if typ.String() != name {
			t.Errorf("ReqType(%d).String() = %q, want %q", typ, typ.String(), name)
		}
	}
}

func TestBodyLayouts(t *testing.T) {
	reg := Register{Offset: 0x1011121314151617, MemSize: 0x2021222324252627, TxSlots: 0x30313233, RxSlots: 0x40414243,
		TxRings: 0x5051, RxRings: 0x6061, HostTxRings: 0x7071, HostRxRings: 0x8081, MemID: 0x9091, RingID: 0xa0a1,
		Mode: 0xb0b1b2b3, ExtraBufs: 0xc0c1c2c3, Flags: 0xd0d1d2d3d4d5d6d7}
	pi := PortInfo{MemSize: 0x1011121314151617, TxSlots: 0x20212223, RxSlots: 0x30313233, TxRings: 0x4041,
		RxRings: 0x5051, HostTxRings: 0x6061, HostRxRings: 0x7071, MemID: 0x8081}
	pools := PoolsInfo{MemSize: 0x1011121314151617, MemID: 0x2021, IfPoolOffset: 0x3031323334353637,
		IfPoolObjTotal: 0x40414243, IfPoolObjSize: 0x50515253, RingPoolOffset: 0x6061626364656667,
		RingPoolObjTotal: 0x70717273, RingPoolObjSize: 0x80818283, BufPoolOffset: 0x9091929394959697,
		BufPoolObjTotal: 0xa0a1a2a3, BufPoolObjSize: 0xb0b1b2b3}
	kl := SyncKloopStart{SleepUS: 0x10111213}

	for _, tc := range []struct {
		name   string
		size   int
		encode func([]byte)
		decode func([]byte) any
		want   any
		fields []field
	}{
		{"nmreq_register", RegisterSize, reg.Encode, func(b []byte) any { var v Register; v.Decode(b); return v }, reg, []field{
			{"nr_offset", 0, 8, reg.Offset}, {"nr_memsize", 8, 8, reg.MemSize},
			{"nr_tx_slots", 16, 4, 0x30313233}, {"nr_rx_slots", 20, 4, 0x40414243},
			{"nr_tx_rings", 24, 2, 0x5051}, {"nr_rx_rings", 26, 2, 0x6061},
			{"nr_host_tx_rings", 28, 2, 0x7071}, {"nr_host_rx_rings", 30, 2, 0x8081},
			{"nr_mem_id", 32, 2, 0x9091}, {"nr_ringid", 34, 2, 0xa0a1}, {"nr_mode", 36, 4, 0xb0b1b2b3},
			{"nr_extra_bufs", 40, 4, 0xc0c1c2c3}, {"nr_flags", 48, 8, reg.Flags},
		}},
		{"nmreq_port_info_get", PortInfoSize, pi.Encode, func(b []byte) any { var v PortInfo; v.Decode(b); return v }, pi, []field{
			{"nr_memsize", 0, 8, pi.MemSize}, {"nr_tx_slots", 8, 4, 0x20212223}, {"nr_rx_slots", 12, 4, 0x30313233},
			{"nr_tx_rings", 16, 2, 0x4041}, {"nr_rx_rings", 18, 2, 0x5051},
			{"nr_host_tx_rings", 20, 2, 0x6061}, {"nr_host_rx_rings", 22, 2, 0x7071}, {"nr_mem_id", 24, 2, 0x8081},
		}},
		{"nmreq_pools_info", PoolsInfoSize, pools.Encode, func(b []byte) any { var v PoolsInfo; v.Decode(b); return v }, pools, []field{
			{"nr_memsize", 0, 8, pools.MemSize}, {"nr_mem_id", 8, 2, 0x2021},
			{"nr_if_pool_offset", 16, 8, pools.IfPoolOffset}, {"nr_if_pool_objtotal", 24, 4, 0x40414243},
			{"nr_if_pool_objsize", 28, 4, 0x50515253}, {"nr_ring_pool_offset", 32, 8, pools.RingPoolOffset},
			{"nr_ring_pool_objtotal", 40, 4, 0x70717273}, {"nr_ring_pool_objsize", 44, 4, 0x80818283},
			{"nr_buf_pool_offset", 48, 8, pools.BufPoolOffset}, {"nr_buf_pool_objtotal", 56, 4, 0xa0a1a2a3},
			{"nr_buf_pool_objsize", 60, 4, 0xb0b1b2b3},
		}},
		{"nmreq_sync_kloop_start", SyncKloopStartSize, kl.Encode, func(b []byte) any { var v SyncKloopStart; v.Decode(b); return v }, kl, []field{
			{"sleep_us", 0, 4, 0x10111213},
		}},
	} {
		b := dirty(tc.size)
		tc.encode(b)
		checkFields(t, tc.name, b, tc.fields)
		if got := tc.decode(b); got != tc.want {
			t.Errorf("%s round trip: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if RegisterSize != 56 || PortInfoSize != 32 || PoolsInfoSize != 64 || SyncKloopStartSize != 8 || ValeAttachSize != RegisterSize+8 {
		t.Error("body size constants drifted")
	}
}

// rawOption is an option of any type and size, for requests the encoder
// would refuse.
type rawOption struct {
	typ  OptType
	size int
	nro  uint64
	fill byte
}

func (o *rawOption) Type() OptType   { return o.typ }
func (o *rawOption) Size() int       { return o.size }
func (o *rawOption) nroSize() uint64 { return o.nro }
func (o *rawOption) encodeBody(b []byte) {
	for i := OptionHeaderSize; i < o.size; i++ {
		b[i] = o.fill
	}
}
func (o *rawOption) decodeBody([]byte) {}

const testBase = 0x7f00_1234_5000

func TestOptionLayouts(t *testing.T) {
	info := PoolsInfo{MemSize: 0x1011121314151617, MemID: 0x2021, IfPoolOffset: 0x3031323334353637,
		IfPoolObjTotal: 0x40414243, IfPoolObjSize: 0x50515253, RingPoolOffset: 0x6061626364656667,
		RingPoolObjTotal: 0x70717273, RingPoolObjSize: 0x80818283, BufPoolOffset: 0x9091929394959697,
		BufPoolObjTotal: 0xa0a1a2a3, BufPoolObjSize: 0xb0b1b2b3}
	hdr := func(typ OptType, size uint64) []field {
		return []field{{"nro_next", 0, 8, 0}, {"nro_reqtype", 8, 4, uint64(typ)}, {"nro_status", 12, 4, 0}, {"nro_size", 16, 8, size}}
	}
	extFields := append(hdr(OptExtmem, 0), field{"nro_usrptr", 24, 8, 0x0102030405060708},
		field{"nr_memsize", 32, 8, info.MemSize}, field{"nr_mem_id", 40, 2, 0x2021},
		field{"nr_if_pool_offset", 48, 8, info.IfPoolOffset}, field{"nr_if_pool_objtotal", 56, 4, 0x40414243},
		field{"nr_if_pool_objsize", 60, 4, 0x50515253}, field{"nr_ring_pool_offset", 64, 8, info.RingPoolOffset},
		field{"nr_ring_pool_objtotal", 72, 4, 0x70717273}, field{"nr_ring_pool_objsize", 76, 4, 0x80818283},
		field{"nr_buf_pool_offset", 80, 8, info.BufPoolOffset}, field{"nr_buf_pool_objtotal", 88, 4, 0xa0a1a2a3},
		field{"nr_buf_pool_objsize", 92, 4, 0xb0b1b2b3})
	evFields := func(pairs [][2]int32) []field {
		f := hdr(OptSyncKloopEventfds, uint64(24+8*len(pairs)))
		for i, p := range pairs {
			f = append(f, field{"ioeventfd", 24 + 8*i, 4, uint64(uint32(p[0]))}, field{"irqfd", 28 + 8*i, 4, uint64(uint32(p[1]))})
		}
		return f
	}
	pairs3 := [][2]int32{{0x11121314, 0x21222324}, {-1, 0x31323334}, {0x41424344, -2}}
	for _, tc := range []struct {
		name   string
		typ    ReqType
		body   int
		opt    Option
		size   int
		fields []field
	}{
		{"EXTMEM", ReqRegister, RegisterSize, &ExtmemOption{UsrPtr: 0x0102030405060708, Info: info}, 96, extFields},
		{"CSB", ReqCSBEnable, 0, &CSBOption{Atok: 0x1011121314151617, Ktoa: 0x2021222324252627}, 40,
			append(hdr(OptCSB, 0), field{"csb_atok", 24, 8, 0x1011121314151617}, field{"csb_ktoa", 32, 8, 0x2021222324252627})},
		{"SYNC_KLOOP_MODE", ReqSyncKloopStart, 8, &KloopModeOption{Mode: KloopDirectTX | KloopDirectRX}, 32,
			append(hdr(OptSyncKloopMode, 0), field{"mode", 24, 4, 3})},
		{"OFFSETS", ReqRegister, RegisterSize, &OffsetsOption{MaxOffset: 0x1011121314151617, InitialOffset: 0x2021222324252627,
			Bits: 0x30313233, TxAlign: 0x40414243, MinGap: 0x5051525354555657}, 56,
			append(hdr(OptOffsets, 0), field{"nro_max_offset", 24, 8, 0x1011121314151617}, field{"nro_initial_offset", 32, 8, 0x2021222324252627},
				field{"nro_offset_bits", 40, 4, 0x30313233}, field{"nro_tx_align", 44, 4, 0x40414243}, field{"nro_min_gap", 48, 8, 0x5051525354555657})},
		{"SYNC_KLOOP_EVENTFDS/0", ReqSyncKloopStart, 8, &EventfdsOption{}, 24, evFields(nil)},
		{"SYNC_KLOOP_EVENTFDS/1", ReqSyncKloopStart, 8, &EventfdsOption{Pairs: pairs3[:1]}, 32, evFields(pairs3[:1])},
		{"SYNC_KLOOP_EVENTFDS/3", ReqSyncKloopStart, 8, &EventfdsOption{Pairs: pairs3}, 48, evFields(pairs3)},
	} {
		if tc.opt.Size() != tc.size {
			t.Errorf("%s: Size() = %d, want %d", tc.name, tc.opt.Size(), tc.size)
		}
		r := Request{Type: tc.typ, Name: "ix0", Body: make([]byte, tc.body), Options: []Option{tc.opt}}
		buf := dirty(4096)
		l, err := r.Encode(buf, testBase)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		off := HeaderSize + tc.body
		if len(l.Options) != 1 || l.Options[0] != off || l.Size != off+tc.size {
			t.Errorf("%s: layout %+v, want the option at %d and size %d", tc.name, l, off, off+tc.size)
		}
		checkFields(t, tc.name, buf[off:off+tc.size], tc.fields)
		if got := le.Uint64(buf[hdrOptions:]); got != testBase+uint64(off) {
			t.Errorf("%s: nr_options = %#x, want %#x", tc.name, got, testBase+uint64(off))
		}
	}
	if EventfdsOptSize(5) != 64 {
		t.Errorf("EventfdsOptSize(5) = %d", EventfdsOptSize(5))
	}
	for typ, name := range map[OptType]string{OptExtmem: "EXTMEM", OptSyncKloopEventfds: "SYNC_KLOOP_EVENTFDS", OptCSB: "CSB",
		OptSyncKloopMode: "SYNC_KLOOP_MODE", OptOffsets: "OFFSETS", 6: "NETMAP_REQ_OPT_6"} {
		if typ.String() != name {
			t.Errorf("OptType(%d) = %q, want %q", typ, typ.String(), name)
		}
	}
}

func TestRequestChains(t *testing.T) {
	for _, tc := range []struct {
		name    string
		typ     ReqType
		body    int
		opts    []Option
		offsets []int
		size    int
	}{
		{"no body, 1 option", ReqCSBEnable, 0, []Option{&CSBOption{Atok: 64, Ktoa: 128}}, []int{88}, 128},
		{"body, 2 options", ReqSyncKloopStart, 8,
			[]Option{&KloopModeOption{Mode: 1}, &EventfdsOption{Pairs: [][2]int32{{3, 4}, {5, 6}}}}, []int{96, 128}, 168},
		{"body, 3 options", ReqRegister, 56,
			[]Option{&CSBOption{Atok: 64, Ktoa: 128}, &ExtmemOption{UsrPtr: 0x1000}, &OffsetsOption{MaxOffset: 8}}, []int{144, 184, 280}, 336},
		{"body, no option", ReqRegister, 56, nil, nil, 144},
		{"nothing", ReqSyncKloopStop, 0, nil, nil, 88},
	} {
		body := make([]byte, tc.body)
		for i := range body {
			body[i] = byte(0x40 + i)
		}
		r := Request{Type: tc.typ, Name: "ix0", Body: body, Options: tc.opts}
		if r.Size() != tc.size {
			t.Errorf("%s: Size() = %d, want %d", tc.name, r.Size(), tc.size)
		}
		buf := dirty(tc.size + 16)
		l, err := r.Encode(buf, testBase)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var h Header
		h.Decode(buf)
		want := Header{Version: netmap.API, ReqType: tc.typ, Name: "ix0"}
		if tc.body > 0 {
			want.Body = testBase + HeaderSize
			if !bytes.Equal(buf[HeaderSize:HeaderSize+tc.body], body) || l.Body != HeaderSize {
				t.Errorf("%s: body not at %d", tc.name, HeaderSize)
			}
		}
		if len(tc.offsets) > 0 {
			want.Options = testBase + uint64(tc.offsets[0])
		}
		if h != want {
			t.Errorf("%s: header %+v, want %+v", tc.name, h, want)
		}
		if l.Size != tc.size || len(l.Options) != len(tc.offsets) {
			t.Fatalf("%s: layout %+v", tc.name, l)
		}
		for i, off := range tc.offsets {
			if l.Options[i] != off {
				t.Errorf("%s: option %d at %d, want %d", tc.name, i, l.Options[i], off)
			}
			var next uint64
			if i+1 < len(tc.offsets) {
				next = testBase + uint64(tc.offsets[i+1])
			}
			if got := le.Uint64(buf[off+optNext:]); got != next {
				t.Errorf("%s: option %d nro_next = %#x, want %#x", tc.name, i, got, next)
			}
			if got := OptType(le.Uint32(buf[off+optReqType:])); got != tc.opts[i].Type() {
				t.Errorf("%s: option %d type %v, want %v", tc.name, i, got, tc.opts[i].Type())
			}
		}
		if buf[tc.size] != 0xee {
			t.Errorf("%s: wrote past the request", tc.name)
		}
	}
}

func TestRequestLimits(t *testing.T) {
	ev := func(n int) *EventfdsOption { return &EventfdsOption{Pairs: make([][2]int32, n)} }
	for _, tc := range []struct {
		name  string
		r     Request
		total int // body plus options; 0 if it fits
	}{
		{"REGISTER + EVENTFDS/502 = 4096", Request{Type: ReqRegister, Body: make([]byte, 56), Options: []Option{ev(502)}}, 0},
		{"REGISTER + EVENTFDS/503 = 4104", Request{Type: ReqRegister, Body: make([]byte, 56), Options: []Option{ev(503)}}, 4104},
		{"KLOOP + MODE + EVENTFDS/504 = 4096", Request{Type: ReqSyncKloopStart, Body: make([]byte, 8), Options: []Option{&KloopModeOption{}, ev(504)}}, 0},
		{"KLOOP + MODE + EVENTFDS/505 = 4104", Request{Type: ReqSyncKloopStart, Body: make([]byte, 8), Options: []Option{&KloopModeOption{}, ev(505)}}, 4104},
		{"CSB_ENABLE + raw 4072 + CSB = 4112", Request{Type: ReqCSBEnable, Options: []Option{&rawOption{typ: OptSyncKloopEventfds, size: 4072}, &CSBOption{}}}, 4112},
	} {
		buf := make([]byte, 8192)
		_, err := tc.r.Encode(buf, testBase)
		if tc.total == 0 {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: got %v, want ErrTooLarge", tc.name, err)
			continue
		}
		for _, s := range []string{tc.r.Type.String(), strconv.Itoa(tc.total), "4096", "NETMAP_REQ_MAXSIZE"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: %q does not mention %q", tc.name, err, s)
			}
		}
	}
}

func TestRequestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Request
		buf  int
		want string
	}{
		{"body too short", Request{Type: ReqRegister, Body: make([]byte, 48)}, 4096, "REGISTER takes a 56-byte body, got 48"},
		{"body where none", Request{Type: ReqCSBEnable, Body: make([]byte, 8)}, 4096, "CSB_ENABLE takes a 0-byte body, got 8"},
		{"unknown type", Request{Type: 16}, 4096, "unknown request type 16"},
		{"type 0", Request{Type: 0}, 4096, "unknown request type 0"},
		{"option twice", Request{Type: ReqCSBEnable, Options: []Option{&CSBOption{}, &CSBOption{}}}, 4096, "option CSB appears twice"},
		{"option type 0", Request{Type: ReqCSBEnable, Options: []Option{&rawOption{size: 24}}}, 4096, "option type 0"},
		{"option type 6", Request{Type: ReqCSBEnable, Options: []Option{&rawOption{typ: 6, size: 24}}}, 4096, "option type 6"},
		{"short buffer", Request{Type: ReqRegister, Body: make([]byte, 56)}, 143, "needs 144 bytes, the buffer has 143"},
	} {
		_, err := tc.r.Encode(make([]byte, tc.buf), testBase)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestDecodeReply(t *testing.T) {
	body := make([]byte, RegisterSize)
	(&Register{Mode: netmap.RegAllNIC, Flags: netmap.FlagExclusive}).Encode(body)
	ext := &ExtmemOption{UsrPtr: 0x10000, Info: PoolsInfo{MemSize: 1 << 20}}
	off := &OffsetsOption{MaxOffset: 64}
	csb := &CSBOption{Atok: 0x40, Ktoa: 0x80}
	r := Request{Type: ReqRegister, Name: "ix0", Body: body, Options: []Option{ext, off, csb}}
	buf := make([]byte, 4096)
	l, err := r.Encode(buf, testBase)
	if err != nil {
		t.Fatal(err)
	}
	// Play the kernel: answer the body, process EXTMEM, refuse OFFSETS.
	(&Register{MemSize: 0x123000, Offset: 0x400, TxRings: 4, RxRings: 4, MemID: 7, Mode: netmap.RegAllNIC, Flags: netmap.FlagExclusive}).Encode(buf[l.Body:])
	(&PoolsInfo{MemSize: 1 << 20, MemID: 7, BufPoolObjTotal: 100}).Encode(buf[l.Options[0]+32:])
	le.PutUint64(buf[l.Options[1]+24:], 9999)
	le.PutUint32(buf[l.Options[1]+optStatus:], 95)
	rep, err := r.Decode(buf, l)
	if err != nil {
		t.Fatal(err)
	}
	var out Register
	out.Decode(r.Body)
	if out.MemSize != 0x123000 || out.Offset != 0x400 || out.MemID != 7 || out.TxRings != 4 {
		t.Errorf("body not decoded back: %+v", out)
	}
	if len(rep.Status) != 3 || rep.Status[0] != 0 || rep.Status[1] != 95 || rep.Status[2] != 0 {
		t.Errorf("statuses %v", rep.Status)
	}
	if ext.Info.MemID != 7 || ext.Info.BufPoolObjTotal != 100 {
		t.Errorf("EXTMEM (status 0) not decoded back: %+v", ext.Info)
	}
	if off.MaxOffset != 64 {
		t.Errorf("OFFSETS (status 95) decoded back: max offset %d", off.MaxOffset)
	}
	if rep.Header.Name != "ix0" || rep.Header.ReqType != ReqRegister {
		t.Errorf("header %+v", rep.Header)
	}
	if _, err := r.Decode(buf[:l.Size-1], l); err == nil {
		t.Error("Decode accepted a short buffer")
	}
}
