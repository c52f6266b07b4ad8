package netmap

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// pnValid is a name that must parse to want, with the given kernel name and
// canonical text (canon "" means the input is already canonical).
type pnValid struct {
	in     string
	want   Name
	kernel string
	canon  string
}

var (
	pnLong15 = "abcdefghijklmno"                              // IFNAMSIZ-1
	pnLongSw = strings.Repeat("s", 63-len("vale:")-15)        // "valeX:PORT" of 63 bytes
	pnLongID = strings.Repeat("9", 63-len("ix0{"))            // "ix0{ID" of 63 bytes
	pnTooID  = strings.Repeat("9", 63-len("ix0{")+1)          // one byte too many
	pnTooSw  = strings.Repeat("s", 63-len("vale:")-15+1)      // one byte too many
	pnPipeID = strings.Repeat("p", 63-len("p{")+1)            // pipe: name of 64 bytes
	pnHuge   = "netmap:ix0-" + strings.Repeat("9", 40)        // overflows uint64
	pnMemBig = "netmap:ix0@" + strings.Repeat("1", 30)        // overflows uint64
	pnExtBig = "netmap:ix0@extmem:/f,buf-num=" + "4294967296" // overflows uint32
)

func pnNetmap(port string) Name { return Name{Family: FamilyNetmap, Port: port, Mode: RegAllNIC} }

var pnValidNames = []pnValid{
	// Families and names.
	{in: "netmap:ix0", want: pnNetmap("ix0"), kernel: "ix0"},
	{in: "netmap:vlan0.100", want: pnNetmap("vlan0.100"), kernel: "vlan0.100"},
	{in: "netmap:em0.5", want: pnNetmap("em0.5"), kernel: "em0.5"},
	{in: "netmap:A_b9", want: pnNetmap("A_b9"), kernel: "A_b9"},
	{in: "netmap:" + pnLong15, want: pnNetmap(pnLong15), kernel: pnLong15},
	{in: "vale0:p1", want: Name{Family: FamilyVale, Switch: "0", Port: "p1", Mode: RegAllNIC}, kernel: "vale0:p1"},
	{in: "vale:x", want: Name{Family: FamilyVale, Port: "x", Mode: RegAllNIC}, kernel: "vale:x"},
	{in: "valeABC_1:port_2", want: Name{Family: FamilyVale, Switch: "ABC_1", Port: "port_2", Mode: RegAllNIC}, kernel: "valeABC_1:port_2"},
	{in: "vale" + pnLongSw + ":" + pnLong15, want: Name{Family: FamilyVale, Switch: pnLongSw, Port: pnLong15, Mode: RegAllNIC}, kernel: "vale" + pnLongSw + ":" + pnLong15},

	// Modes.
	{in: "netmap:ix0^", want: Name{Port: "ix0", Mode: RegSW}, kernel: "ix0"},
	{in: "netmap:ix0^0", want: Name{Port: "ix0", Mode: RegOneSW}, kernel: "ix0"},
	{in: "netmap:ix0^3", want: Name{Port: "ix0", Mode: RegOneSW, RingID: 3}, kernel: "ix0"},
	{in: "netmap:ix0^4094", want: Name{Port: "ix0", Mode: RegOneSW, RingID: 4094}, kernel: "ix0"},
	{in: "netmap:ix0*", want: Name{Port: "ix0", Mode: RegNICSW}, kernel: "ix0"},
	{in: "netmap:ix0-0", want: Name{Port: "ix0", Mode: RegOneNIC}, kernel: "ix0"},
	{in: "netmap:ix0-7", want: Name{Port: "ix0", Mode: RegOneNIC, RingID: 7}, kernel: "ix0"},
	{in: "netmap:ix0-4094", want: Name{Port: "ix0", Mode: RegOneNIC, RingID: 4094}, kernel: "ix0"},
	{in: "netmap:ix0-007", want: Name{Port: "ix0", Mode: RegOneNIC, RingID: 7}, kernel: "ix0", canon: "netmap:ix0-7"},
	{in: "netmap:vlan0.100-1", want: Name{Port: "vlan0.100", Mode: RegOneNIC, RingID: 1}, kernel: "vlan0.100"},

	// Flags.
	{in: "netmap:ix0/x", want: Name{Port: "ix0", Mode: RegAllNIC, Flags: FlagExclusive}, kernel: "ix0"},
	{in: "netmap:ix0/z", want: Name{Port: "ix0", Mode: RegAllNIC, Flags: FlagZcopyMon}, kernel: "ix0"},
	{in: "netmap:ix0/t", want: Name{Port: "ix0", Mode: RegAllNIC, Flags: FlagMonitorTx}, kernel: "ix0"},
	{in: "netmap:ix0/r", want: Name{Port: "ix0", Mode: RegAllNIC, Flags: FlagMonitorRx}, kernel: "ix0"},
	{in: "netmap:ix0/R", want: Name{Port: "ix0", Mode: RegAllNIC, Flags: FlagRxRingsOnly}, kernel: "ix0"},
	{in: "netmap:ix0/T", want: Name{Port: "ix0", Mode: RegAllNIC, Flags: FlagTxRingsOnly}, kernel: "ix0"},
	{in: "netmap:ix0/rtzx", want: Name{Port: "ix0", Mode: RegAllNIC, Flags: FlagExclusive | FlagZcopyMon | FlagMonitorTx | FlagMonitorRx}, kernel: "ix0", canon: "netmap:ix0/xztr"},
	{in: "netmap:ix0-2/xT", want: Name{Port: "ix0", Mode: RegOneNIC, RingID: 2, Flags: FlagExclusive | FlagTxRingsOnly}, kernel: "ix0"},
	{in: "netmap:ix0^/R", want: Name{Port: "ix0", Mode: RegSW, Flags: FlagRxRingsOnly}, kernel: "ix0"},

	// Mem id.
	{in: "netmap:ix0@1", want: Name{Port: "ix0", Mode: RegAllNIC, MemID: 1}, kernel: "ix0"},
	{in: "netmap:ix0@65535", want: Name{Port: "ix0", Mode: RegAllNIC, MemID: 65535}, kernel: "ix0"},
	{in: "netmap:ix0*/x@2", want: Name{Port: "ix0", Mode: RegNICSW, Flags: FlagExclusive, MemID: 2}, kernel: "ix0"},
	{in: "netmap:ix0@conf:rings=1@3", want: Name{Port: "ix0", Mode: RegAllNIC, MemID: 3, Conf: Conf{TxRings: 1, RxRings: 1}}, kernel: "ix0", canon: "netmap:ix0@3@conf:rings=1"},

	// Netmap pipes.
	{in: "netmap:ix0{1", want: Name{Port: "ix0", PipeRole: PipeMaster, PipeID: "1", Mode: RegAllNIC}, kernel: "ix0{1"},
	{in: "netmap:ix0}1", want: Name{Port: "ix0", PipeRole: PipeSlave, PipeID: "1", Mode: RegAllNIC}, kernel: "ix0}1"},
	{in: "netmap:em0.5{a_b-1/x@2", want: Name{Port: "em0.5", PipeRole: PipeMaster, PipeID: "a_b", Mode: RegOneNIC, RingID: 1, Flags: FlagExclusive, MemID: 2}, kernel: "em0.5{a_b"},
	{in: "netmap:ix0{" + pnLongID, want: Name{Port: "ix0", PipeRole: PipeMaster, PipeID: pnLongID, Mode: RegAllNIC}, kernel: "ix0{" + pnLongID},
	{in: "netmap:ix0}1@conf:slots=4096", want: Name{Port: "ix0", PipeRole: PipeSlave, PipeID: "1", Mode: RegAllNIC, Conf: Conf{TxSlots: 4096, RxSlots: 4096}}, kernel: "ix0}1"},

	// VALE with modes, pipes and options.
	{in: "vale0:p{1", want: Name{Family: FamilyVale, Switch: "0", Port: "p", PipeRole: PipeMaster, PipeID: "1", Mode: RegAllNIC}, kernel: "vale0:p{1"},
	{in: "vale0:p}peer", want: Name{Family: FamilyVale, Switch: "0", Port: "p", PipeRole: PipeSlave, PipeID: "peer", Mode: RegAllNIC}, kernel: "vale0:p}peer"},
	{in: "vale:x{0@2", want: Name{Family: FamilyVale, Port: "x", PipeRole: PipeMaster, PipeID: "0", Mode: RegAllNIC, MemID: 2}, kernel: "vale:x{0"},
	{in: "vale0:p^", want: Name{Family: FamilyVale, Switch: "0", Port: "p", Mode: RegSW}, kernel: "vale0:p"},
	{in: "vale0:p-3/x@conf:rings=16,slots=4096", want: Name{Family: FamilyVale, Switch: "0", Port: "p", Mode: RegOneNIC, RingID: 3, Flags: FlagExclusive, Conf: Conf{TxRings: 16, RxRings: 16, TxSlots: 4096, RxSlots: 4096}}, kernel: "vale0:p"},

	// @conf: default key, short form, every key, precedence in both orders.
	{in: "netmap:ix0@conf:4", want: Name{Port: "ix0", Mode: RegAllNIC, Conf: Conf{TxRings: 4, RxRings: 4}}, kernel: "ix0", canon: "netmap:ix0@conf:rings=4"},
	{in: "netmap:ix0@conf=4", want: Name{Port: "ix0", Mode: RegAllNIC, Conf: Conf{TxRings: 4, RxRings: 4}}, kernel: "ix0", canon: "netmap:ix0@conf:rings=4"},
	{in: "netmap:ix0@conf:rings=4", want: Name{Port: "ix0", Mode: RegAllNIC, Conf: Conf{TxRings: 4, RxRings: 4}}, kernel: "ix0"},
	{in: "netmap:ix0@conf:tx-rings=2", want: Name{Port: "ix0", Mode: RegAllNIC, Conf: Conf{TxRings: 2}}, kernel: "ix0"},
	{in: "netmap:ix0@conf:rx-rings=3", want: Name{Port: "ix0", Mode: RegAllNIC, Conf: Conf{RxRings: 3}}, kernel: "ix0"},
	{in: "netmap:ix0@conf:rings=4,tx-rings=2", want: Name{Port: "ix0", Mode: RegAllNIC, Conf: Conf{TxRings: 2, RxRings: 4}}, kernel: "ix0", canon: "netmap:ix0@conf:tx-rings=2,rx-rings=4"},
	{in: "netmap:ix0@conf:tx-rings=2,rings=4", want: Name{Port: "ix0", Mode: RegAllNIC, Conf: Conf{TxRings: 2, RxRings: 4}}, kernel: "ix0", canon: "netmap:ix0@conf:tx-rings=2,rx-rings=4"},
	{in: "netmap:ix0@conf:rx-rings=1,4", want: Name{Port: "ix0", Mode: RegAllNIC, Conf: Conf{TxRings: 4, RxRings: 1}}, kernel: "ix0", canon: "netmap:ix0@conf:tx-rings=4,rx-rings=1"},
	{in: "netmap:ix0@conf:host-rings=1", want: Name{Port: "ix0", Mode: RegAllNIC, Conf: Conf{HostTxRings: 1, HostRxRings: 1}}, kernel: "ix0"},
	{in: "netmap:ix0@conf:host-rings=2,host-rx-rings=1", want: Name{Port: "ix0", Mode: RegAllNIC, Conf: Conf{HostTxRings: 2, HostRxRings: 1}}, kernel: "ix0", canon: "netmap:ix0@conf:host-tx-rings=2,host-rx-rings=1"},
	{in: "netmap:ix0@conf:host-tx-rings=3,host-rings=2", want: Name{Port: "ix0", Mode: RegAllNIC, Conf: Conf{HostTxRings: 3, HostRxRings: 2}}, kernel: "ix0", canon: "netmap:ix0@conf:host-tx-rings=3,host-rx-rings=2"},
	{in: "netmap:ix0@conf:slots=1024", want: Name{Port: "ix0", Mode: RegAllNIC, Conf: Conf{TxSlots: 1024, RxSlots: 1024}}, kernel: "ix0"},
	{in: "netmap:ix0@conf:slots=1024,rx-slots=512", want: Name{Port: "ix0", Mode: RegAllNIC, Conf: Conf{TxSlots: 1024, RxSlots: 512}}, kernel: "ix0", canon: "netmap:ix0@conf:tx-slots=1024,rx-slots=512"},
	{in: "netmap:ix0@conf:rx-slots=512,slots=1024", want: Name{Port: "ix0", Mode: RegAllNIC, Conf: Conf{TxSlots: 1024, RxSlots: 512}}, kernel: "ix0", canon: "netmap:ix0@conf:tx-slots=1024,rx-slots=512"},
	{in: "netmap:ix0@conf:tx-slots=256", want: Name{Port: "ix0", Mode: RegAllNIC, Conf: Conf{TxSlots: 256}}, kernel: "ix0"},
	{in: "netmap:ix0@conf:tx-slots=256,rx-slots=256", want: Name{Port: "ix0", Mode: RegAllNIC, Conf: Conf{TxSlots: 256, RxSlots: 256}}, kernel: "ix0", canon: "netmap:ix0@conf:slots=256"},
	{in: "netmap:ix0@conf:rings=0", want: pnNetmap("ix0"), kernel: "ix0", canon: "netmap:ix0"},
	{in: "netmap:ix0@conf:rings=65535,slots=4294967295", want: Name{Port: "ix0", Mode: RegAllNIC, Conf: Conf{TxRings: 65535, RxRings: 65535, TxSlots: 4294967295, RxSlots: 4294967295}}, kernel: "ix0"},
	{in: "netmap:ix0@conf:tx-rings=1,rx-rings=2,host-tx-rings=3,host-rx-rings=4,tx-slots=5,rx-slots=6", want: Name{Port: "ix0", Mode: RegAllNIC, Conf: Conf{1, 2, 3, 4, 5, 6}}, kernel: "ix0"},

	// @extmem.
	{in: "netmap:ix0@extmem:/dev/shm/pool", want: Name{Port: "ix0", Mode: RegAllNIC, Extmem: &Extmem{File: "/dev/shm/pool"}}, kernel: "ix0", canon: "netmap:ix0@extmem:file=/dev/shm/pool"},
	{in: "netmap:ix0@extmem=/dev/shm/x", want: Name{Port: "ix0", Mode: RegAllNIC, Extmem: &Extmem{File: "/dev/shm/x"}}, kernel: "ix0", canon: "netmap:ix0@extmem:file=/dev/shm/x"},
	{in: "netmap:ix0@extmem:file=/tmp/a,if-num=1,if-size=1024,ring-num=2,ring-size=36864,buf-num=4096,buf-size=2048",
		want:   Name{Port: "ix0", Mode: RegAllNIC, Extmem: &Extmem{File: "/tmp/a", IfNum: 1, IfSize: 1024, RingNum: 2, RingSize: 36864, BufNum: 4096, BufSize: 2048}},
		kernel: "ix0"},
	{in: "netmap:ix0@extmem:buf-num=4294967295,/tmp/b", want: Name{Port: "ix0", Mode: RegAllNIC, Extmem: &Extmem{File: "/tmp/b", BufNum: 4294967295}}, kernel: "ix0", canon: "netmap:ix0@extmem:file=/tmp/b,buf-num=4294967295"},
	{in: "netmap:ix0@extmem:file=/a=b:c-d*e^f/g", want: Name{Port: "ix0", Mode: RegAllNIC, Extmem: &Extmem{File: "/a=b:c-d*e^f/g"}}, kernel: "ix0"},
	{in: "netmap:ix0@extmem=/a=b", want: Name{Port: "ix0", Mode: RegAllNIC, Extmem: &Extmem{File: "/a=b"}}, kernel: "ix0", canon: "netmap:ix0@extmem:file=/a=b"},

	// @offset.
	{in: "netmap:ix0@offset:64", want: Name{Port: "ix0", Mode: RegAllNIC, Offset: &Offset{Initial: 64}}, kernel: "ix0", canon: "netmap:ix0@offset:initial=64"},
	{in: "netmap:ix0@offset=18446744073709551615", want: Name{Port: "ix0", Mode: RegAllNIC, Offset: &Offset{Initial: 18446744073709551615}}, kernel: "ix0", canon: "netmap:ix0@offset:initial=18446744073709551615"},
	{in: "netmap:ix0@offset:initial=8,bits=8", want: Name{Port: "ix0", Mode: RegAllNIC, Offset: &Offset{Initial: 8, Bits: 8}}, kernel: "ix0"},
	{in: "netmap:ix0@offset:bits=64", want: Name{Port: "ix0", Mode: RegAllNIC, Offset: &Offset{Bits: 64}}, kernel: "ix0", canon: "netmap:ix0@offset:initial=0,bits=64"},
	{in: "netmap:ix0@offset:initial=0", want: Name{Port: "ix0", Mode: RegAllNIC, Offset: &Offset{}}, kernel: "ix0"},

	// @share.
	{in: "netmap:ix0@share=netmap:ix1", want: Name{Port: "ix0", Mode: RegAllNIC, Share: "netmap:ix1"}, kernel: "ix0"},
	{in: "vale0:a@share:vale0:b", want: Name{Family: FamilyVale, Switch: "0", Port: "a", Mode: RegAllNIC, Share: "vale0:b"}, kernel: "vale0:a", canon: "vale0:a@share=vale0:b"},
	{in: "netmap:ix0{1@share:port=ix1.5{2", want: Name{Port: "ix0", PipeRole: PipeMaster, PipeID: "1", Mode: RegAllNIC, Share: "ix1.5{2"}, kernel: "ix0{1", canon: "netmap:ix0{1@share=ix1.5{2"},

	// Everything at once, options in a non-canonical order.
	{in: "netmap:ix0}p-1/Tzx@share=ix9@offset:bits=4@extmem:/f,if-num=2@conf:slots=64,host-rings=1,tx-rings=3",
		want: Name{Port: "ix0", PipeRole: PipeSlave, PipeID: "p", Mode: RegOneNIC, RingID: 1,
			Flags:  FlagTxRingsOnly | FlagZcopyMon | FlagExclusive,
			Conf:   Conf{TxRings: 3, HostTxRings: 1, HostRxRings: 1, TxSlots: 64, RxSlots: 64},
			Extmem: &Extmem{File: "/f", IfNum: 2}, Offset: &Offset{Bits: 4}, Share: "ix9"},
		kernel: "ix0}p",
		canon:  "netmap:ix0}p-1/xzT@conf:tx-rings=3,host-rings=1,slots=64@extmem:file=/f,if-num=2@offset:initial=0,bits=4@share=ix9"},

	// xdp.
	{in: "xdp:eth0", want: Name{Family: FamilyXDP, Port: "eth0", Mode: RegAllNIC}},
	{in: "xdp:eth0-3", want: Name{Family: FamilyXDP, Port: "eth0", Mode: RegOneNIC, RingID: 3}},
	{in: "xdp:eth0-0", want: Name{Family: FamilyXDP, Port: "eth0", Mode: RegOneNIC}},
	{in: "xdp:eth0-65535", want: Name{Family: FamilyXDP, Port: "eth0", Mode: RegOneNIC, RingID: 65535}},
	{in: "xdp:enp3s0f0.100", want: Name{Family: FamilyXDP, Port: "enp3s0f0.100", Mode: RegAllNIC}},
	{in: "xdp:" + pnLong15, want: Name{Family: FamilyXDP, Port: pnLong15, Mode: RegAllNIC}},
	{in: "xdp:a,b=c%d", want: Name{Family: FamilyXDP, Port: "a,b=c%d", Mode: RegAllNIC}},
	{in: "xdp:eth0@conf:slots=2048", want: Name{Family: FamilyXDP, Port: "eth0", Mode: RegAllNIC, Conf: Conf{TxSlots: 2048, RxSlots: 2048}}},
	{in: "xdp:eth0-1@conf:tx-slots=512,rx-slots=1024", want: Name{Family: FamilyXDP, Port: "eth0", Mode: RegOneNIC, RingID: 1, Conf: Conf{TxSlots: 512, RxSlots: 1024}}},

	// Our pipes.
	{in: "pipe:p{0", want: Name{Family: FamilyPipe, Port: "p", PipeRole: PipeMaster, PipeID: "0", Mode: RegAllNIC}},
	{in: "pipe:p}0", want: Name{Family: FamilyPipe, Port: "p", PipeRole: PipeSlave, PipeID: "0", Mode: RegAllNIC}},
	{in: "pipe:name_1{end/x", want: Name{Family: FamilyPipe, Port: "name_1", PipeRole: PipeMaster, PipeID: "end", Mode: RegAllNIC, Flags: FlagExclusive}},
	{in: "switch0:vm1", want: Name{Family: FamilySwitch, Switch: "0", Port: "vm1", Mode: RegAllNIC}},
	{in: "switch:p_2@conf:slots=512", want: Name{Family: FamilySwitch, Port: "p_2", Mode: RegAllNIC, Conf: Conf{TxSlots: 512, RxSlots: 512}}},
	{in: "pipe:p{0@conf:slots=4096", want: Name{Family: FamilyPipe, Port: "p", PipeRole: PipeMaster, PipeID: "0", Mode: RegAllNIC, Conf: Conf{TxSlots: 4096, RxSlots: 4096}}},
	{in: "pipe:p}1/x@conf:rx-slots=128", want: Name{Family: FamilyPipe, Port: "p", PipeRole: PipeSlave, PipeID: "1", Mode: RegAllNIC, Flags: FlagExclusive, Conf: Conf{RxSlots: 128}}},
}

// pnInvalid is a name that must fail with an error containing msg.
type pnInvalid struct{ in, msg string }

var pnInvalidNames = []pnInvalid{
	// Whole-name and family problems.
	{"", "empty port name"},
	{"ix0", `did you mean "netmap:ix0"`},
	{"vlan0.100", `did you mean "netmap:vlan0.100"`},
	{"ix0-1@conf:rings=1", `did you mean "netmap:ix0-1@conf:rings=1"`},
	{"{1", "missing family prefix"},
	{"netmap", `missing ':' after "netmap"; write netmap:IFNAME`},
	{"vale0", `missing ':' after "vale0"; write vale0:PORT`},
	{"xdp", `write xdp:IFNAME`},
	{"pipe", `write pipe:NAME{0`},
	{"foo:ix0", `unknown family "foo:"; known families are netmap:`},
	{"my-if:x", `unknown family "my-if:"`},
	{"NETMAP:ix0", `family prefixes are lower case: "netmap:"`},
	{":ix0", "empty family prefix"},
	{"netmap:ix0\n", "control character 0x0a"},
	{"netmap:ix0\x00", "control character 0x00"},
	{"netmap:ix0\x7f", "control character 0x7f"},
	{"netmap:\xefx0", "non-ASCII byte 0xef"},
	{"netmap:ïx0", "non-ASCII"},
	{"netmap:ix 0", "space in port name"},

	// Names.
	{"netmap:", `missing port name after "netmap:"`},
	{"vale0:", `missing port name after "vale0:"`},
	{"vale:", `missing port name after "vale:"`},
	{"netmap:-1", "missing port name"},
	{"netmap:{1", "missing port name"},
	{"netmap:ix!0", `invalid character '!' in port name; names use letters, digits, '_' and '.'`},
	{"netmap:ix0:1", `invalid character ':'`},
	{"vale0:p.1", "'.' is allowed only in netmap: interface names"},
	{"vale0:p!", "names use letters, digits and '_'"},
	{"netmap:.", `"." is not an interface name`},
	{"netmap:..{1", `".." is not an interface name`},
	{"vale0.1:p", `invalid character '.' in VALE switch name "0.1"`},
	{"netmap.x:p", `unknown family "netmap.x:"`},
	{"netmap:" + pnLong15 + "p", "interface name \"" + pnLong15 + "p\" is 16 bytes; at most 15"},
	{"vale0:" + pnLong15 + "p", "VALE port name"},
	{"netmap:ix0{" + pnTooID, "nr_name holds at most 63"},
	{"vale" + pnTooSw + ":" + pnLong15, "nr_name holds at most 63"},
	{"netmap:ix0{", "missing pipe id after '{', e.g. netmap:ix0{0"},
	{"netmap:ix0}-1", "missing pipe id after '}'"},
	{"netmap:ix0{!", "invalid character '!'"},
	{"netmap:ix0{1{2", "second pipe brace '{'"},
	{"netmap:ix0{1}2", "second pipe brace '}'"},
	{"netmap:ix0{a.b", "'.' is allowed only in netmap: interface names"},

	// Modes.
	{"netmap:ix0-", "'-' must be followed by a ring number, e.g. netmap:ix0-0"},
	{"netmap:ix0--1", "'-' must be followed by a ring number"},
	{"netmap:ix0-x", "'-' must be followed by a ring number"},
	{"netmap:ix0-4095", "ring number 4095 out of range 0..4094"},
	{"netmap:ix0^4095", "host ring number 4095 out of range 0..4094"},
	{pnHuge, "out of range 0..4094"},
	{"netmap:ix0^*", `second ring mode '*' after "^"`},
	{"netmap:ix0*^", `second ring mode '^' after "*"`},
	{"netmap:ix0-1-2", `second ring mode '-' after "-1"`},
	{"netmap:ix0^1^", "second ring mode"},
	{"netmap:ix0**", "second ring mode"},
	{"netmap:ix0^x", `unexpected 'x' after ring mode "^"`},
	{"netmap:ix0-1{2", `unexpected '{' after ring mode "-1"`},

	// Flags.
	{"netmap:ix0/q", "unknown flag 'q'; flags are x (exclusive)"},
	{"netmap:ix0/x{", "unknown flag '{'"},
	{"netmap:ix0/", "empty flags after '/'"},
	{"netmap:ix0/@1", "empty flags after '/'"},
	{"netmap:ix0/RT", "flags R (RX rings only) and T (TX rings only) exclude each other"},
	{"netmap:ix0/TxR", "exclude each other"},
	{"netmap:ix0/xx", "flag 'x' given twice"},
	{"netmap:ix0/x/z", "second '/'"},
	{"netmap:ix0/x^", "ring mode '^' must come before the /flags"},
	{"netmap:ix0/x-1", "ring mode '-' must come before the /flags"},

	// Mem id.
	{"netmap:ix0@0", "mem id 0 out of range 1..65535"},
	{"netmap:ix0@65536", "mem id 65536 out of range 1..65535"},
	{pnMemBig, "out of range 1..65535"},
	{"netmap:ix0@1x", `bad mem id "1x"`},
	{"netmap:ix0@1:conf", `bad mem id "1:conf"`},
	{"netmap:ix0@1@2", "mem id given twice (@1 and @2)"},

	// Options.
	{"netmap:ix0@", "empty option after '@'"},
	{"netmap:ix0@@conf:1", "empty option after '@'"},
	{"netmap:ix0@foo", `unknown option "@foo"; options are @conf:, @extmem:, @offset: and @share=`},
	{"netmap:ix0@Conf:1", `unknown option "@Conf"`},
	{"netmap:ix0@=4", "missing option name after '@'"},
	{"netmap:ix0@:4", "missing option name after '@'"},
	{"netmap:ix0@conf", "option @conf needs a value, e.g. @conf:rings=4"},
	{"netmap:ix0@offset", "option @offset needs a value"},
	{"netmap:ix0@conf:", `empty value after "@conf:"`},
	{"netmap:ix0@conf=", `empty value after "@conf="`},
	{"netmap:ix0@conf:rings=", "empty value for rings in @conf"},
	{"netmap:ix0@conf:=4", "missing key before '=' in @conf"},
	{"netmap:ix0@conf:rings=4,", "empty item in @conf (stray ',')"},
	{"netmap:ix0@conf:,rings=4", "stray ','"},
	{"netmap:ix0@conf:foo=1", `unknown key "foo" in @conf; keys are rings, tx-rings`},
	{"netmap:ix0@conf:rings=1,rings=2", "key rings given twice in @conf"},
	{"netmap:ix0@conf:4,rings=2", "key rings given twice in @conf"},
	{"netmap:ix0@conf:rings=x", `bad number "x" for rings in @conf`},
	{"netmap:ix0@conf:rings=-1", `bad number "-1"`},
	{"netmap:ix0@conf:rings=+1", `bad number "+1"`},
	{"netmap:ix0@conf:rings=0x10", `bad number "0x10"`},
	{"netmap:ix0@conf:rings=65536", "rings=65536 in @conf overflows: at most 65535"},
	{"netmap:ix0@conf:host-tx-rings=70000", "overflows: at most 65535"},
	{"netmap:ix0@conf:slots=4294967296", "slots=4294967296 in @conf overflows: at most 4294967295"},
	{"netmap:ix0@conf=rings=4", "@conf=VALUE sets only rings, write @conf:key=value"},
	{"netmap:ix0@conf:rings=1@conf:slots=2", "option @conf given twice"},
	{"netmap:ix0@extmem:if-num=1", "@extmem needs a file"},
	{"netmap:ix0@extmem:file=/a,bogus=1", `unknown key "bogus" in @extmem`},
	{"netmap:ix0@extmem=/a,b", "',' cannot appear in an @extmem file name"},
	{"netmap:ix0@extmem:/a,/b", "key file given twice in @extmem"},
	{pnExtBig, "buf-num=4294967296 in @extmem overflows"},
	{"netmap:ix0@extmem:/a@extmem:/b", "option @extmem given twice"},
	{"netmap:ix0@offset:bits=65", "bits=65 in @offset"},
	{"netmap:ix0@offset:initial=18446744073709551616", "initial=18446744073709551616 in @offset overflows"},
	{"netmap:ix0@offset:size=1", `unknown key "size" in @offset`},
	{"netmap:ix0@share=a/b", `invalid character '/' in @share port "a/b"`},
	{"netmap:ix0@share=a=b", `invalid character '='`},
	{"netmap:ix0@share:a,b", "key port given twice in @share"},
	{"netmap:ix0@share=" + strings.Repeat("a", 64), "is 64 bytes; at most 63"},
	{"netmap:ix0@1@share=ix1", "@share and @1 both choose the memory region"},
	{"netmap:ix0@share=ix1@1", "@share and @1 both choose the memory region"},

	// VALE and pipe limits.
	{"vale0:p@conf:rings=17", "rings=17: VALE ports have at most 16 rings"},
	{"vale0:p@conf:tx-rings=17", "at most 16 rings"},
	{"vale0:p@conf:tx-slots=4097", "tx-slots=4097: VALE rings have at most 4096 slots"},
	{"netmap:ix0{1@conf:slots=8192", "slots=8192: pipe rings have at most 4096 slots"},

	// pipe: family.
	{"pipe:p", "pipe:p needs an endpoint: pipe:p{0 or pipe:p}0"},
	{"switch0:", `missing port name after "switch0:", e.g. switch0:p1`},
	{"switch0:@conf:2", `missing port name after "switch0:"`},
	{"switch0:a{1", "switch ports have no pipes"},
	{"switch0:a-1", "switch ports take no ring mode ('-')"},
	{"switch0:a/x", "switch ports take no /flags"},
	{"switch0:a.b", "'.' is allowed only in netmap: interface names, not in switch names"},
	{"switch0:a@2", "switch ports take no mem id"},
	{"switch0:a@conf:rings=2", "switch: ports accept only the slots"},
	{"switch0:a@conf:slots=8192", "VALE rings have at most 4096 slots"},
	{"switch-0:a", `invalid character '-' in switch name "-0"`},
	{"pipe:p/x", "pipe:p needs an endpoint"},
	{"pipe:", `missing pipe name after "pipe:"`},
	{"pipe:{0", `missing pipe name after "pipe:"`},
	{"pipe:p.q{0", "'.' is allowed only in netmap: interface names"},
	{"pipe:p{", "missing pipe id after '{', e.g. pipe:p{0"},
	{"pipe:p{0{1", "second pipe brace"},
	{"pipe:p{" + pnPipeID, "is 64 bytes; at most 63"},
	{"pipe:p{0-1", "pipe: ports take no ring mode ('-')"},
	{"pipe:p{0^", "pipe: ports take no ring mode ('^')"},
	{"pipe:p{0*", "pipe: ports take no ring mode ('*')"},
	{"pipe:p{0/z", "pipe: ports accept only the x flag, not 'z'"},
	{"pipe:p{0/q", "unknown flag 'q'"},
	{"pipe:p{0@1", "pipe: ports take no mem id"},
	{"pipe:p{0@extmem:/a", "pipe: ports accept only @conf:slots=N, not @extmem"},
	{"pipe:p{0@share=ix0", "not @share"},
	{"pipe:p{0@offset:1", "not @offset"},
	{"pipe:p{0@conf:rings=2", "pipe: ports accept only the slots, tx-slots and rx-slots keys of @conf, not rings"},
	{"pipe:p{0@conf:4", "not rings"},
	{"pipe:p{0@conf:slots=5000", "pipe rings have at most 4096 slots"},

	// xdp: family.
	{"xdp:", `missing interface name after "xdp:"`},
	{"xdp:-1", `missing interface name after "xdp:"`},
	{"xdp:eth0{1", "xdp: ports have no pipes; '{' cannot appear"},
	{"xdp:eth0}1", "xdp: ports have no pipes; '}'"},
	{"xdp:a:b", "':' cannot appear in a Linux interface name"},
	{"xdp:.", `"." is not a valid Linux interface name`},
	{"xdp:..", `".." is not a valid Linux interface name`},
	{"xdp:" + pnLong15 + "p", "is 16 bytes; at most 15"},
	{"xdp:eth0^", "xdp: ports have no host rings; '^' is not allowed"},
	{"xdp:eth0*", "xdp: ports have no host rings; '*'"},
	{"xdp:eth0-1^", "no host rings"},
	{"xdp:eth0/x", "xdp: ports take no /flags"},
	{"xdp:eth0-1/x", "xdp: ports take no /flags"},
	{"xdp:eth0@1", "xdp: ports take no mem id"},
	{"xdp:eth0@offset:1", "xdp: ports accept only @conf:slots=N, not @offset"},
	{"xdp:eth0@extmem:/a", "not @extmem"},
	{"xdp:eth0@conf:rings=2", "xdp: ports accept only the slots, tx-slots and rx-slots keys of @conf, not rings"},
	{"xdp:eth0-", "'-' must be followed by a queue number, e.g. xdp:eth0-0"},
	{"xdp:br-lan", "interface names containing '-' cannot be used with xdp:"},
	{"xdp:eth0-65536", "queue number 65536 out of range 0..65535"},
	{"xdp:eth0-1-2", "second '-'; xdp: names take one queue"},
	{"xdp:eth0-1x", "unexpected 'x' after the queue number"},
}

func TestParseNameValid(t *testing.T) {
	for _, tc := range pnValidNames {
		got, err := ParseName(tc.in)
		if err != nil {
			t.Errorf("ParseName(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseName(%q)\n got %s\nwant %s", tc.in, pnDump(got), pnDump(tc.want))
		}
		if k := got.KernelName(); k != tc.kernel {
			t.Errorf("ParseName(%q).KernelName() = %q, want %q", tc.in, k, tc.kernel)
		}
		canon := tc.canon
		if canon == "" {
			canon = tc.in
		}
		if s := got.String(); s != canon {
			t.Errorf("ParseName(%q).String() = %q, want %q", tc.in, s, canon)
		}
		again, err := ParseName(got.String())
		if err != nil {
			t.Errorf("ParseName(%q) (String of %q): %v", got.String(), tc.in, err)
		} else if !reflect.DeepEqual(again, got) {
			t.Errorf("round trip of %q through %q\n got %s\nwant %s", tc.in, got.String(), pnDump(again), pnDump(got))
		}
	}
}

func TestParseNameInvalid(t *testing.T) {
	for _, tc := range pnInvalidNames {
		got, err := ParseName(tc.in)
		if err == nil {
			t.Errorf("ParseName(%q) = %s, want an error containing %q", tc.in, pnDump(got), tc.msg)
			continue
		}
		var ne *NameError
		if !errors.As(err, &ne) {
			t.Errorf("ParseName(%q): error %T %v is not a *NameError", tc.in, err, err)
			continue
		}
		if ne.Name != tc.in {
			t.Errorf("ParseName(%q): NameError.Name = %q", tc.in, ne.Name)
		}
		if ne.Offset < -1 || ne.Offset > len(tc.in) {
			t.Errorf("ParseName(%q): NameError.Offset = %d out of range", tc.in, ne.Offset)
		}
		msg := err.Error()
		if !strings.Contains(msg, fmt.Sprintf("%q", tc.in)) {
			t.Errorf("ParseName(%q): error %q does not quote the name", tc.in, msg)
		}
		if !strings.Contains(msg, tc.msg) {
			t.Errorf("ParseName(%q): error %q does not contain %q", tc.in, msg, tc.msg)
		}
		if !reflect.DeepEqual(got, Name{}) {
			t.Errorf("ParseName(%q) failed but returned %s", tc.in, pnDump(got))
		}
	}
}

// TestNameErrorText pins the message format that users see.
func TestNameErrorText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"vale0:", `netmap: bad port name "vale0:": missing port name after "vale0:" (at byte 6)`},
		{"", `netmap: bad port name "": empty port name; expected a name such as netmap:ix0, vale0:p1, xdp:eth0 or pipe:p{0`},
		{"pipe:p", `netmap: bad port name "pipe:p": pipe:p needs an endpoint: pipe:p{0 or pipe:p}0 (at byte 6)`},
		{"netmap:ix0/xq", `netmap: bad port name "netmap:ix0/xq": unknown flag 'q'; flags are x (exclusive), z (zero-copy monitor), t (monitor TX), r (monitor RX), R (RX rings only), T (TX rings only) (at byte 12)`},
		{"netmap:ix0@conf:rings=1,bad=2", `netmap: bad port name "netmap:ix0@conf:rings=1,bad=2": unknown key "bad" in @conf; keys are rings, tx-rings, rx-rings, host-rings, host-tx-rings, host-rx-rings, slots, tx-slots, rx-slots (default rings) (at byte 24)`},
		{"netmap:\xff", `netmap: bad port name "netmap:\xff": non-ASCII byte 0xff; port names are plain ASCII (at byte 7)`},
	} {
		_, err := ParseName(tc.in)
		if err == nil || err.Error() != tc.want {
			t.Errorf("ParseName(%q) error\n got %v\nwant %s", tc.in, err, tc.want)
		}
	}
}

func TestNameKernelNameAndString(t *testing.T) {
	for _, tc := range []struct {
		n            Name
		kernel, text string
	}{
		{pnNetmap("ix0"), "ix0", "netmap:ix0"},
		{Name{Port: "ix0", PipeRole: PipeSlave, PipeID: "3", Mode: RegOneSW, RingID: 2}, "ix0}3", "netmap:ix0}3^2"},
		{Name{Family: FamilyVale, Port: "p", Mode: RegAllNIC}, "vale:p", "vale:p"},
		{Name{Family: FamilyVale, Switch: "1", Port: "p", PipeRole: PipeMaster, PipeID: "x", Mode: RegNICSW}, "vale1:p{x", "vale1:p{x*"},
		{Name{Family: FamilyXDP, Port: "eth0", Mode: RegOneNIC, RingID: 9}, "", "xdp:eth0-9"},
		{Name{Family: FamilyPipe, Port: "p", PipeRole: PipeMaster, PipeID: "0", Mode: RegAllNIC, Flags: FlagExclusive}, "", "pipe:p{0/x"},
	} {
		if k := tc.n.KernelName(); k != tc.kernel {
			t.Errorf("%s.KernelName() = %q, want %q", pnDump(tc.n), k, tc.kernel)
		}
		if s := tc.n.String(); s != tc.text {
			t.Errorf("%s.String() = %q, want %q", pnDump(tc.n), s, tc.text)
		}
		back, err := ParseName(tc.text)
		if err != nil || !reflect.DeepEqual(back, tc.n) {
			t.Errorf("ParseName(%q) = %s, %v; want %s", tc.text, pnDump(back), err, pnDump(tc.n))
		}
	}
}

func TestNameEnumStrings(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{FamilyNetmap.String(), "netmap"},
		{FamilyVale.String(), "vale"},
		{FamilyXDP.String(), "xdp"},
		{FamilyPipe.String(), "pipe"},
		{Family(9).String(), "Family(9)"},
		{PipeNone.String(), "none"},
		{PipeMaster.String(), "master"},
		{PipeSlave.String(), "slave"},
		{PipeRole(-1).String(), "PipeRole(-1)"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// pnDump prints a Name with its pointers followed, for test failures.
func pnDump(n Name) string {
	s := fmt.Sprintf("%+v", n)
	if n.Extmem != nil {
		s += fmt.Sprintf(" Extmem=%+v", *n.Extmem)
	}
	if n.Offset != nil {
		s += fmt.Sprintf(" Offset=%+v", *n.Offset)
	}
	return s
}
