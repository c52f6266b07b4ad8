package netmap

import (
	"fmt"
	"strconv"
	"strings"
)

// Family says which backend a port name selects. The zero value is
// FamilyNetmap because a name without our extensions is a netmap name.
type Family int

// Port name families.
const (
	FamilyNetmap Family = iota // "netmap:IF": a kernel netmap port on an interface
	FamilyVale                 // "valeX:PORT": a port of the kernel VALE switch X
	FamilyXDP                  // "xdp:IF": an AF_XDP socket (Linux)
	FamilyPipe                 // "pipe:NAME{ID": an in-process zero-copy pipe
	FamilySwitch               // "switchX:PORT": a port of ptbhyve's in-process switch X
)

func (f Family) String() string {
	switch f {
	case FamilyNetmap:
		return "netmap"
	case FamilyVale:
		return "vale"
	case FamilyXDP:
		return "xdp"
	case FamilyPipe:
		return "pipe"
	case FamilySwitch:
		return "switch"
	}
	return "Family(" + strconv.Itoa(int(f)) + ")"
}

// PipeRole is the end of a pipe a name opens. The two ends behave alike
// (each one's TX rings are the other's RX rings); the role only tells them
// apart, so a name must say which end it opens.
type PipeRole int

// Pipe roles.
const (
	PipeNone   PipeRole = iota // not a pipe
	PipeMaster                 // '{'
	PipeSlave                  // '}'
)

func (r PipeRole) String() string {
	switch r {
	case PipeNone:
		return "none"
	case PipeMaster:
		return "master"
	case PipeSlave:
		return "slave"
	}
	return "PipeRole(" + strconv.Itoa(int(r)) + ")"
}

func (r PipeRole) brace() string {
	switch r {
	case PipeMaster:
		return "{"
	case PipeSlave:
		return "}"
	}
	return ""
}

// Name is a parsed port name. The fields mirror what nmport_parse puts into
// nmreq_header and nmreq_register, so a kernel backend can copy them across
// without re-reading the text.
type Name struct {
	Family Family
	// Switch is the switch identifier after "vale" or "switch" (may be
	// empty, as in "vale:x"); FamilyVale and FamilySwitch only.
	Switch string
	// Port is the interface, VALE port, pipe name or xdp interface.
	Port string
	// PipeRole and PipeID are the "{ID" or "}ID" part of the name.
	PipeRole PipeRole
	PipeID   string
	// Mode is RegAllNIC unless the name has ^, ^N, * or -N (or xdp's -Q),
	// so a parsed Name never carries RegDefault, which NIOCCTRL rejects.
	Mode RegMode
	// RingID is the ring of RegOneNIC and RegOneSW; for xdp the queue Q.
	RingID uint16
	// Flags are NR_* register flags from "/xztrRT".
	Flags uint64
	// MemID is the "@N" memory allocator id; 0 lets the kernel choose.
	MemID uint16
	// Conf is "@conf:"; zero fields mean the backend's default.
	Conf Conf
	// Extmem is "@extmem:", or nil.
	Extmem *Extmem
	// Offset is "@offset:", or nil.
	Offset *Offset
	// Share is the port of "@share=port", whose memory this port must use.
	Share string
}

// Conf is the ring geometry of "@conf:". A zero field keeps the default,
// because netmap reads 0 in nmreq_register's ring and slot counts that way.
type Conf struct {
	TxRings, RxRings, HostTxRings, HostRxRings uint16
	TxSlots, RxSlots                           uint32
}

// Extmem is "@extmem:": the buffers live in a file the application mapped
// (NETMAP_REQ_OPT_EXTMEM); zero sizes and counts keep the kernel's defaults.
type Extmem struct {
	File                                              string
	IfNum, IfSize, RingNum, RingSize, BufNum, BufSize uint32
}

// Offset is "@offset:" (NETMAP_REQ_OPT_OFFSETS): per-slot data offsets
// carried in the low Bits of slot.ptr, starting at Initial.
type Offset struct {
	Initial uint64
	Bits    uint32
}

// NameError is a port name that does not parse. Offset is the byte of Name
// the problem was found at, or -1 when it concerns the name as a whole.
type NameError struct {
	Name   string
	Offset int
	Msg    string
}

func (e *NameError) Error() string {
	if e.Offset < 0 {
		return fmt.Sprintf("netmap: bad port name %q: %s", e.Name, e.Msg)
	}
	return fmt.Sprintf("netmap: bad port name %q: %s (at byte %d)", e.Name, e.Msg, e.Offset)
}

// Limits the grammar enforces, so that a name that parses is one the kernel
// (or our own backends) can open, and its text fits where it is copied.
const (
	pnMaxKernelName = ReqIfNameSize - 1 // nr_name is NUL-terminated
	pnMaxIfName     = IfNameSize - 1    // IFNAMSIZ with its NUL
	pnMaxRing       = 4094              // libnetmap: 0 <= N < 4095 (NETMAP_RING_MASK)
	pnMaxQueue      = 65535             // xdp queue ids are the u16 RingID
	pnValeMaxRings  = 16                // NM_BDG_MAXRINGS
	pnValeMaxSlots  = 4096              // NM_BDG_MAXSLOTS
	pnPipeMaxSlots  = 4096              // NM_PIPE_MAXSLOTS
	pnMaxOffsetBits = 64                // the offset lives in the 64-bit slot.ptr
)

const pnFamilies = "netmap:, valeX: (X is [A-Za-z0-9_]*, possibly empty), xdp:, pipe: and switchX:"

const pnFlagHelp = "x (exclusive), z (zero-copy monitor), t (monitor TX), r (monitor RX), R (RX rings only), T (TX rings only)"

// pnFlags maps flag letters to NR_* bits, in the order String writes them.
var pnFlags = []struct {
	c   byte
	bit uint64
}{
	{'x', FlagExclusive},
	{'z', FlagZcopyMon},
	{'t', FlagMonitorTx},
	{'r', FlagMonitorRx},
	{'R', FlagRxRingsOnly},
	{'T', FlagTxRingsOnly},
}

// Keys of @conf, in the order the Conf fields are resolved. The first key
// of each group of three is the general one that the other two override.
var pnConfKeys = []string{
	"rings", "tx-rings", "rx-rings",
	"host-rings", "host-tx-rings", "host-rx-rings",
	"slots", "tx-slots", "rx-slots",
}

var pnExtmemKeys = []string{"file", "if-num", "if-size", "ring-num", "ring-size", "buf-num", "buf-size"}

var pnOffsetKeys = []string{"initial", "bits"}

// pnOptions lists the options with their default key.
var pnOptions = []struct{ name, dflt, example string }{
	{"conf", "rings", "@conf:rings=4"},
	{"extmem", "file", "@extmem:file=/dev/shm/pool"},
	{"offset", "initial", "@offset:initial=64,bits=8"},
	{"share", "port", "@share=netmap:ix0"},
}

// ParseName parses a port name: the grammar of libnetmap's nmport_parse,
// so that names users already know from pkt-gen and bhyve work unchanged,
// extended with two families of our own:
//
//	netmap:IF[{ID|}ID][MODE][/FLAGS][@MEMID][@OPTION...]
//	valeX:PORT[{ID|}ID][MODE][/FLAGS][@MEMID][@OPTION...]
//	xdp:IF[-Q][@conf:slots=N]
//	pipe:NAME{ID[/x][@conf:slots=N]      (or pipe:NAME}ID)
//	switchX:PORT[@conf:slots=N]
//
//	MODE    ^  host rings          ^N  host ring N
//	        *  NIC and host rings  -N  NIC ring N      (0 <= N < 4095)
//	FLAGS   x exclusive, z zero-copy monitor, t monitor TX, r monitor RX,
//	        R RX rings only, T TX rings only
//	MEMID   @N with 1 <= N <= 65535
//	OPTION  @conf:K=V,...    rings*, tx-rings, rx-rings, host-rings,
//	                         host-tx-rings, host-rx-rings, slots, tx-slots,
//	                         rx-slots
//	        @extmem:K=V,...  file*, if-num, if-size, ring-num, ring-size,
//	                         buf-num, buf-size
//	        @offset:K=V,...  initial*, bits
//	        @share=PORT
//
// IF may contain '.' (vlan0.100); VALE and switch ports, pipe names and
// pipe ids are [A-Za-z0-9_]+; switch names X, like VALE's, are
// [A-Za-z0-9_]*. switchX: is ptbhyve's own learning switch, which copies
// between ports that each keep their own memory (netmap's VALE semantics
// without a netmap kernel). The name ends at the first of - * ^ / @. A starred key is
// the option's default: a bare value sets it ("@conf:4"), and so does the
// short form "@option=value", which takes the rest of the option verbatim.
// @N and the options may come in any order, each at most once. Values
// cannot contain '@' (it starts the next option) nor, in the long form, ','.
//
// The parser is stricter than netmap, which ignores what it does not know:
// a typo in a port name otherwise gives a port that opens but moves
// packets on the wrong rings, far harder to diagnose than a message at
// startup. Every failure is a *NameError that quotes the name and says
// where and why; ParseName never panics, whatever the input.
func ParseName(s string) (Name, error) {
	p := pnParser{s: s, memidAt: -1, shareAt: -1}
	if err := p.parse(); err != nil {
		return Name{}, err
	}
	return p.n, nil
}

type pnParser struct {
	s       string
	n       Name
	memidAt int // offset of "@N", -1 if none
	shareAt int // offset of "@share", -1 if none
	seen    [4]bool
}

func (p *pnParser) errf(off int, format string, args ...any) error {
	return &NameError{Name: p.s, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

func pnIsIdent(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
}

func pnIsDigit(c byte) bool { return '0' <= c && c <= '9' }

// pnIsNameEnd reports the characters that end the name part; they start the
// mode, the flags and the @ items.
func pnIsNameEnd(c byte) bool {
	return c == '-' || c == '*' || c == '^' || c == '/' || c == '@'
}

func (p *pnParser) parse() error {
	s := p.s
	if s == "" {
		return p.errf(-1, "empty port name; expected a name such as netmap:ix0, vale0:p1, xdp:eth0 or pipe:p{0")
	}
	// Reject what cannot appear anywhere first, so that the rest of the
	// parser deals only in printable ASCII and error messages stay legible.
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 0x80:
			return p.errf(i, "non-ASCII byte 0x%02x; port names are plain ASCII", c)
		case c < 0x20 || c == 0x7f:
			return p.errf(i, "control character 0x%02x", c)
		case c == ' ':
			return p.errf(i, "space in port name")
		}
	}
	j := 0
	for j < len(s) && pnIsIdent(s[j]) {
		j++
	}
	if j == len(s) || s[j] != ':' {
		return p.missingFamily(j)
	}
	prefix := s[:j]
	i := j + 1
	switch {
	case prefix == "netmap":
		p.n.Family = FamilyNetmap
	case strings.HasPrefix(prefix, "vale"):
		p.n.Family = FamilyVale
		p.n.Switch = prefix[len("vale"):]
	case prefix == "xdp":
		p.n.Family = FamilyXDP
		return p.parseXDP(i)
	case prefix == "pipe":
		p.n.Family = FamilyPipe
		return p.parsePipe(i)
	case strings.HasPrefix(prefix, "switch"):
		p.n.Family = FamilySwitch
		p.n.Switch = prefix[len("switch"):]
		return p.parseSwitch(i)
	default:
		return p.unknownFamily(prefix)
	}
	p.n.Mode = RegAllNIC
	i, err := p.parseKernelName(i)
	if err != nil {
		return err
	}
	if i, err = p.parseMode(i); err != nil {
		return err
	}
	if i, err = p.parseFlags(i); err != nil {
		return err
	}
	return p.parseAts(i)
}

// pnIsFamily reports whether s is a family prefix without its ':'.
func pnIsFamily(s string) bool {
	return s == "netmap" || s == "xdp" || s == "pipe" || strings.HasPrefix(s, "vale") || strings.HasPrefix(s, "switch")
}

func (p *pnParser) missingFamily(j int) error {
	s := p.s
	cand := s[:j]
	// A ':' before any option ends a prefix with a character no prefix
	// can have.
	colon := strings.IndexByte(s, ':')
	at := strings.IndexByte(s, '@')
	if colon >= 0 && (at < 0 || colon < at) {
		for _, sw := range []struct{ prefix, what string }{{"vale", "VALE switch"}, {"switch", "switch"}} {
			if strings.HasPrefix(cand, sw.prefix) {
				return p.errf(j, "invalid character %q in %s name %q; switch names use letters, digits and '_'", s[j], sw.what, s[len(sw.prefix):colon])
			}
		}
		return p.unknownFamily(s[:colon])
	}
	if pnIsFamily(cand) {
		var eg string
		switch {
		case cand == "netmap", cand == "xdp":
			eg = cand + ":IFNAME"
		case cand == "pipe":
			eg = "pipe:NAME{0"
		default:
			eg = cand + ":PORT"
		}
		return p.errf(j, "missing ':' after %q; write %s", cand, eg)
	}
	if j == 0 {
		return p.errf(0, "missing family prefix; port names start with %s", pnFamilies)
	}
	return p.errf(0, "missing family prefix; did you mean %q? (known families: %s)", "netmap:"+s, pnFamilies)
}

func (p *pnParser) unknownFamily(prefix string) error {
	if prefix == "" {
		return p.errf(0, "empty family prefix before ':'; known families are %s", pnFamilies)
	}
	if lp := strings.ToLower(prefix); lp != prefix && pnIsFamily(lp) {
		return p.errf(0, "unknown family %q; family prefixes are lower case: %q", prefix+":", lp+":")
	}
	return p.errf(0, "unknown family %q; known families are %s", prefix+":", pnFamilies)
}

// parseKernelName parses the name part of netmap: and vale names, the text
// that ends up in nr_name, starting at i (just after the ':').
func (p *pnParser) parseKernelName(start int) (int, error) {
	s := p.s
	vale := p.n.Family == FamilyVale
	i := start
	for i < len(s) && (pnIsIdent(s[i]) || !vale && s[i] == '.') {
		i++
	}
	if i == start && (i == len(s) || pnIsNameEnd(s[i]) || s[i] == '{' || s[i] == '}') {
		return 0, p.errf(start, "missing port name after %q", s[:start])
	}
	if i < len(s) && !pnIsNameEnd(s[i]) && s[i] != '{' && s[i] != '}' {
		return 0, p.badNameChar(i)
	}
	p.n.Port = s[start:i]
	if p.n.Port == "." || p.n.Port == ".." {
		return 0, p.errf(start, "%q is not an interface name", p.n.Port)
	}
	if len(p.n.Port) > pnMaxIfName {
		what := "interface name"
		if vale {
			what = "VALE port name"
		}
		return 0, p.errf(start, "%s %q is %d bytes; at most %d fit in IFNAMSIZ", what, p.n.Port, len(p.n.Port), pnMaxIfName)
	}
	if i < len(s) && (s[i] == '{' || s[i] == '}') {
		var err error
		if i, err = p.parsePipeID(i); err != nil {
			return 0, err
		}
	}
	if kn := p.n.KernelName(); len(kn) > pnMaxKernelName {
		return 0, p.errf(0, "kernel name %q is %d bytes; nr_name holds at most %d", kn, len(kn), pnMaxKernelName)
	}
	return i, nil
}

// parsePipeID parses "{ID" or "}ID" at i, as netmap, vale and pipe names
// share it.
func (p *pnParser) parsePipeID(i int) (int, error) {
	s := p.s
	b := s[i]
	p.n.PipeRole = PipeMaster
	if b == '}' {
		p.n.PipeRole = PipeSlave
	}
	i++
	start := i
	for i < len(s) && pnIsIdent(s[i]) {
		i++
	}
	if i == start {
		if i < len(s) && s[i] != '{' && s[i] != '}' && !pnIsNameEnd(s[i]) {
			return 0, p.badNameChar(i)
		}
		return 0, p.errf(start, "missing pipe id after %q, e.g. %s%c0", b, s[:start-1], b)
	}
	if i < len(s) && (s[i] == '{' || s[i] == '}') {
		return 0, p.errf(i, "second pipe brace %q; a name holds one { or } at most", s[i])
	}
	if i < len(s) && !pnIsNameEnd(s[i]) {
		return 0, p.badNameChar(i)
	}
	p.n.PipeID = s[start:i]
	return i, nil
}

func (p *pnParser) badNameChar(i int) error {
	c := p.s[i]
	if c == '.' {
		return p.errf(i, "'.' is allowed only in netmap: interface names, not in %s names or pipe ids", p.n.Family)
	}
	if p.n.Family == FamilyNetmap {
		return p.errf(i, "invalid character %q in port name; names use letters, digits, '_' and '.'", c)
	}
	return p.errf(i, "invalid character %q in port name; names use letters, digits and '_'", c)
}

// number parses the decimal digits at i, which must be at most max; what
// names the number in messages.
func (p *pnParser) number(i int, max uint64, what string) (uint64, int, error) {
	s := p.s
	start := i
	for i < len(s) && pnIsDigit(s[i]) {
		i++
	}
	if i == start {
		return 0, 0, p.errf(start, "missing %s", what)
	}
	v, err := strconv.ParseUint(s[start:i], 10, 64)
	if err != nil || v > max {
		return 0, 0, p.errf(start, "%s %s out of range 0..%d", what, s[start:i], max)
	}
	return v, i, nil
}

// parseMode parses ^, ^N, * or -N of netmap and vale names.
func (p *pnParser) parseMode(i int) (int, error) {
	s := p.s
	if i == len(s) {
		return i, nil
	}
	at := i
	switch s[i] {
	case '^':
		i++
		p.n.Mode = RegSW
		if i < len(s) && pnIsDigit(s[i]) {
			v, j, err := p.number(i, pnMaxRing, "host ring number")
			if err != nil {
				return 0, err
			}
			p.n.Mode, p.n.RingID, i = RegOneSW, uint16(v), j
		}
	case '*':
		i++
		p.n.Mode = RegNICSW
	case '-':
		i++
		if i == len(s) || !pnIsDigit(s[i]) {
			return 0, p.errf(i, "'-' must be followed by a ring number, e.g. %s-0", s[:at])
		}
		v, j, err := p.number(i, pnMaxRing, "ring number")
		if err != nil {
			return 0, err
		}
		p.n.Mode, p.n.RingID, i = RegOneNIC, uint16(v), j
	default:
		return i, nil
	}
	if i < len(s) {
		switch c := s[i]; c {
		case '^', '*', '-':
			return 0, p.errf(i, "second ring mode %q after %q; use only one of ^, ^N, * and -N", c, s[at:i])
		case '/', '@':
		default:
			return 0, p.errf(i, "unexpected %q after ring mode %q; expected /flags or @options", c, s[at:i])
		}
	}
	return i, nil
}

// parseFlags parses "/flags" at i, if present; pipe: names allow only x.
func (p *pnParser) parseFlags(i int) (int, error) {
	s := p.s
	if i == len(s) || s[i] != '/' {
		return i, nil
	}
	slash := i
	for i++; i < len(s) && s[i] != '@'; i++ {
		c := s[i]
		var bit uint64
		for _, f := range pnFlags {
			if f.c == c {
				bit = f.bit
			}
		}
		switch {
		case bit != 0:
		case c == '/':
			return 0, p.errf(i, "second '/'; put all flags after one '/', e.g. /xz")
		case c == '^' || c == '*' || c == '-':
			return 0, p.errf(i, "ring mode %q must come before the /flags", c)
		default:
			return 0, p.errf(i, "unknown flag %q; flags are %s", c, pnFlagHelp)
		}
		if p.n.Family == FamilyPipe && c != 'x' {
			return 0, p.errf(i, "pipe: ports accept only the x flag, not %q", c)
		}
		if p.n.Flags&bit != 0 {
			return 0, p.errf(i, "flag %q given twice", c)
		}
		p.n.Flags |= bit
	}
	if i == slash+1 {
		return 0, p.errf(slash, "empty flags after '/'; drop the '/' or add flags from %s", pnFlagHelp)
	}
	if p.n.Flags&FlagRxRingsOnly != 0 && p.n.Flags&FlagTxRingsOnly != 0 {
		return 0, p.errf(slash, "flags R (RX rings only) and T (TX rings only) exclude each other; drop one")
	}
	return i, nil
}

// pnItem is one value of an option: key=value, or a bare value for the
// option's default key.
type pnItem struct {
	key, val       string
	keyOff, valOff int
	short          bool // from "@name=value"
}

// parseAts parses the @N and @option items that run from i (an '@') to the
// end of the name. They may come in any order as they are independent; each
// at most once.
func (p *pnParser) parseAts(i int) error {
	s := p.s
	for i < len(s) {
		// s[i] == '@': everything before has stopped only at '@' or the end.
		at := i
		i++
		end := strings.IndexByte(s[i:], '@')
		if end < 0 {
			end = len(s)
		} else {
			end += i
		}
		seg := s[i:end]
		var err error
		switch {
		case seg == "":
			err = p.errf(at, "empty option after '@'")
		case pnIsDigit(seg[0]):
			err = p.parseMemID(at, seg)
		default:
			err = p.parseOption(at, seg)
		}
		if err != nil {
			return err
		}
		i = end
	}
	if p.memidAt >= 0 && p.shareAt >= 0 {
		return p.errf(p.shareAt, "@share and @%d both choose the memory region; use one", p.n.MemID)
	}
	return nil
}

func (p *pnParser) parseMemID(at int, seg string) error {
	switch p.n.Family {
	case FamilyXDP:
		return p.errf(at, "xdp: ports take no mem id (@%s): each AF_XDP socket has its own UMEM", seg)
	case FamilyPipe:
		return p.errf(at, "pipe: ports take no mem id (@%s): both ends share one in-process region", seg)
	case FamilySwitch:
		return p.errf(at, "switch ports take no mem id (@%s): each port has its own region", seg)
	}
	if p.memidAt >= 0 {
		return p.errf(at, "mem id given twice (@%d and @%s)", p.n.MemID, seg)
	}
	for k := 0; k < len(seg); k++ {
		if !pnIsDigit(seg[k]) {
			return p.errf(at+1+k, "bad mem id %q: @N takes a decimal number 1..65535 (an option name cannot start with a digit)", seg)
		}
	}
	v, err := strconv.ParseUint(seg, 10, 16)
	if err != nil || v == 0 {
		return p.errf(at+1, "mem id %s out of range 1..65535", seg)
	}
	p.n.MemID = uint16(v)
	p.memidAt = at
	return nil
}

func (p *pnParser) parseOption(at int, seg string) error {
	k := strings.IndexAny(seg, ":=")
	if k < 0 {
		k = len(seg)
	}
	name := seg[:k]
	if name == "" {
		return p.errf(at+1, "missing option name after '@'")
	}
	idx := -1
	for j, o := range pnOptions {
		if o.name == name {
			idx = j
		}
	}
	if idx < 0 {
		return p.errf(at+1, "unknown option %q; options are @conf:, @extmem:, @offset: and @share=", "@"+name)
	}
	opt := pnOptions[idx]
	if p.n.Family >= FamilyXDP && name != "conf" {
		return p.errf(at, "%s: ports accept only @conf:slots=N, not @%s", p.n.Family, name)
	}
	if p.seen[idx] {
		return p.errf(at, "option @%s given twice; put all its keys in one, e.g. %s", name, opt.example)
	}
	p.seen[idx] = true
	if k == len(seg) {
		return p.errf(at+1+k, "option @%s needs a value, e.g. %s", name, opt.example)
	}
	base := at + 1 + k + 1 // offset of the first value byte
	rest := seg[k+1:]
	if rest == "" {
		return p.errf(base, "empty value after %q", "@"+seg)
	}
	var items []pnItem
	if seg[k] == '=' {
		items = []pnItem{{key: opt.dflt, val: rest, keyOff: base, valOff: base, short: true}}
	} else {
		off := base
		for _, it := range strings.Split(rest, ",") {
			if it == "" {
				return p.errf(off, "empty item in @%s (stray ',')", name)
			}
			if eq := strings.IndexByte(it, '='); eq >= 0 {
				if eq == 0 {
					return p.errf(off, "missing key before '=' in @%s", name)
				}
				if eq == len(it)-1 {
					return p.errf(off+eq+1, "empty value for %s in @%s", it[:eq], name)
				}
				items = append(items, pnItem{key: it[:eq], val: it[eq+1:], keyOff: off, valOff: off + eq + 1})
			} else {
				items = append(items, pnItem{key: opt.dflt, val: it, keyOff: off, valOff: off})
			}
			off += len(it) + 1
		}
	}
	switch name {
	case "conf":
		return p.applyConf(items)
	case "extmem":
		return p.applyExtmem(at, items)
	case "offset":
		return p.applyOffset(items)
	default:
		p.shareAt = at
		return p.applyShare(items)
	}
}

// keyIndex finds it.key in keys, rejecting unknown and repeated keys.
func (p *pnParser) keyIndex(opt string, keys []string, seen []bool, it pnItem) (int, error) {
	for j, k := range keys {
		if k == it.key {
			if seen[j] {
				return 0, p.errf(it.keyOff, "key %s given twice in @%s", k, opt)
			}
			seen[j] = true
			return j, nil
		}
	}
	return 0, p.errf(it.keyOff, "unknown key %q in @%s; keys are %s (default %s)", it.key, opt, strings.Join(keys, ", "), keys[0])
}

// value parses it.val as a decimal number of the given bit width.
func (p *pnParser) value(opt string, it pnItem, bits int) (uint64, error) {
	hint := ""
	if it.short && strings.ContainsAny(it.val, "=,") {
		hint = fmt.Sprintf("; @%s=VALUE sets only %s, write @%s:key=value,... for other keys", opt, it.key, opt)
	}
	for k := 0; k < len(it.val); k++ {
		if !pnIsDigit(it.val[k]) {
			return 0, p.errf(it.valOff, "bad number %q for %s in @%s: want decimal digits%s", it.val, it.key, opt, hint)
		}
	}
	v, err := strconv.ParseUint(it.val, 10, bits)
	if err != nil {
		return 0, p.errf(it.valOff, "%s=%s in @%s overflows: at most %d", it.key, it.val, opt, uint64(1)<<bits-1)
	}
	return v, nil
}

func (p *pnParser) applyConf(items []pnItem) error {
	var v [9]uint64
	seen := make([]bool, len(pnConfKeys))
	for _, it := range items {
		k, err := p.keyIndex("conf", pnConfKeys, seen, it)
		if err != nil {
			return err
		}
		slots := k >= 6
		if !slots && p.n.Family >= FamilyXDP {
			return p.errf(it.keyOff, "%s: ports accept only the slots, tx-slots and rx-slots keys of @conf, not %s", p.n.Family, it.key)
		}
		bits := 16
		if slots {
			bits = 32
		}
		n, err := p.value("conf", it, bits)
		if err != nil {
			return err
		}
		switch {
		case p.n.Family == FamilyVale && k < 3 && n > pnValeMaxRings:
			return p.errf(it.valOff, "%s=%d: VALE ports have at most %d rings", it.key, n, pnValeMaxRings)
		case (p.n.Family == FamilyVale || p.n.Family == FamilySwitch) && slots && n > pnValeMaxSlots:
			return p.errf(it.valOff, "%s=%d: VALE rings have at most %d slots", it.key, n, pnValeMaxSlots)
		case p.n.PipeRole != PipeNone && slots && n > pnPipeMaxSlots:
			return p.errf(it.valOff, "%s=%d: pipe rings have at most %d slots", it.key, n, pnPipeMaxSlots)
		}
		v[k] = n
	}
	// The specific key wins over the general one whatever their order.
	pick := func(specific, general int) uint64 {
		if seen[specific] {
			return v[specific]
		}
		return v[general]
	}
	p.n.Conf = Conf{
		TxRings:     uint16(pick(1, 0)),
		RxRings:     uint16(pick(2, 0)),
		HostTxRings: uint16(pick(4, 3)),
		HostRxRings: uint16(pick(5, 3)),
		TxSlots:     uint32(pick(7, 6)),
		RxSlots:     uint32(pick(8, 6)),
	}
	return nil
}

func (p *pnParser) applyExtmem(at int, items []pnItem) error {
	e := &Extmem{}
	seen := make([]bool, len(pnExtmemKeys))
	fields := []*uint32{nil, &e.IfNum, &e.IfSize, &e.RingNum, &e.RingSize, &e.BufNum, &e.BufSize}
	for _, it := range items {
		k, err := p.keyIndex("extmem", pnExtmemKeys, seen, it)
		if err != nil {
			return err
		}
		if k == 0 {
			// The short form takes the rest of the option verbatim, but
			// String writes the long one, where ',' would split the path.
			if c := strings.IndexByte(it.val, ','); c >= 0 {
				return p.errf(it.valOff+c, "',' cannot appear in an @extmem file name (it separates keys)")
			}
			e.File = it.val
			continue
		}
		n, err := p.value("extmem", it, 32)
		if err != nil {
			return err
		}
		*fields[k] = uint32(n)
	}
	if !seen[0] {
		return p.errf(at, "@extmem needs a file, e.g. @extmem:/dev/shm/pool or @extmem:file=PATH,buf-num=N")
	}
	p.n.Extmem = e
	return nil
}

func (p *pnParser) applyOffset(items []pnItem) error {
	o := &Offset{}
	seen := make([]bool, len(pnOffsetKeys))
	for _, it := range items {
		k, err := p.keyIndex("offset", pnOffsetKeys, seen, it)
		if err != nil {
			return err
		}
		if k == 0 {
			if o.Initial, err = p.value("offset", it, 64); err != nil {
				return err
			}
			continue
		}
		n, err := p.value("offset", it, 32)
		if err != nil {
			return err
		}
		if n > pnMaxOffsetBits {
			return p.errf(it.valOff, "bits=%d in @offset: the offset is kept in the 64-bit slot pointer, so at most %d", n, pnMaxOffsetBits)
		}
		o.Bits = uint32(n)
	}
	p.n.Offset = o
	return nil
}

func (p *pnParser) applyShare(items []pnItem) error {
	seen := []bool{false}
	for _, it := range items {
		if _, err := p.keyIndex("share", []string{"port"}, seen, it); err != nil {
			return err
		}
		for k := 0; k < len(it.val); k++ {
			if c := it.val[k]; !pnIsIdent(c) && !strings.ContainsRune(".:{}", rune(c)) {
				return p.errf(it.valOff+k, "invalid character %q in @share port %q; give a port name such as ix0, netmap:ix0 or vale0:p", c, it.val)
			}
		}
		if len(it.val) > pnMaxKernelName {
			return p.errf(it.valOff, "@share port %q is %d bytes; at most %d", it.val, len(it.val), pnMaxKernelName)
		}
		p.n.Share = it.val
	}
	return nil
}

// parseXDP parses what follows "xdp:". The interface is a Linux name, which
// may hold any printable character but '/', ':' and whitespace. Since '-'
// introduces the queue, and '*', '^' and '@' end the name as in netmap
// names (braces are refused so that a netmap pipe name cannot be mistaken
// for one), interfaces whose names contain any of - * ^ @ { } cannot be
// named here: rename them or give them an altname.
func (p *pnParser) parseXDP(start int) error {
	s := p.s
	p.n.Mode = RegAllNIC
	i := start
	for i < len(s) && !pnIsNameEnd(s[i]) && s[i] != ':' && s[i] != '{' && s[i] != '}' {
		i++
	}
	if i < len(s) {
		switch c := s[i]; c {
		case ':':
			return p.errf(i, "':' cannot appear in a Linux interface name")
		case '{', '}':
			return p.errf(i, "xdp: ports have no pipes; %q cannot appear in the interface name", c)
		}
	}
	p.n.Port = s[start:i]
	switch {
	case p.n.Port == "":
		return p.errf(start, "missing interface name after \"xdp:\"")
	case p.n.Port == "." || p.n.Port == "..":
		return p.errf(start, "%q is not a valid Linux interface name", p.n.Port)
	case len(p.n.Port) > pnMaxIfName:
		return p.errf(start, "interface name %q is %d bytes; at most %d fit in IFNAMSIZ", p.n.Port, len(p.n.Port), pnMaxIfName)
	}
	if i < len(s) && s[i] == '-' {
		at := i
		i++
		if i == len(s) || !pnIsDigit(s[i]) {
			return p.errf(i, "'-' must be followed by a queue number, e.g. %s-0 (interface names containing '-' cannot be used with xdp:)", s[:at])
		}
		v, j, err := p.number(i, pnMaxQueue, "queue number")
		if err != nil {
			return err
		}
		p.n.Mode, p.n.RingID, i = RegOneNIC, uint16(v), j
	}
	if i < len(s) {
		switch c := s[i]; c {
		case '-':
			return p.errf(i, "second '-'; xdp: names take one queue, xdp:IF-Q")
		case '^', '*':
			return p.errf(i, "xdp: ports have no host rings; %q is not allowed (use xdp:IF or xdp:IF-Q)", c)
		case '/':
			return p.errf(i, "xdp: ports take no /flags")
		case '@':
		default:
			return p.errf(i, "unexpected %q after the queue number; expected the end or @conf:slots=N", c)
		}
	}
	return p.parseAts(i)
}

// parseSwitch parses what follows "switchX:": a port name and @conf.
func (p *pnParser) parseSwitch(start int) error {
	s := p.s
	p.n.Mode = RegAllNIC
	i := start
	for i < len(s) && pnIsIdent(s[i]) {
		i++
	}
	if i == start && (i == len(s) || s[i] == '@') {
		return p.errf(start, "missing port name after %q, e.g. %sp1", s[:start], s[:start])
	}
	if i < len(s) && s[i] != '@' {
		switch c := s[i]; c {
		case '{', '}':
			return p.errf(i, "switch ports have no pipes; use pipe:NAME{ID for a pipe")
		case '-', '^', '*':
			return p.errf(i, "switch ports take no ring mode (%q); a port binds all its rings", c)
		case '/':
			return p.errf(i, "switch ports take no /flags")
		}
		return p.badNameChar(i)
	}
	p.n.Port = s[start:i]
	if n := len(s[:i]); n > pnMaxKernelName {
		return p.errf(0, "switch port name %q is %d bytes; at most %d", s[:i], n, pnMaxKernelName)
	}
	return p.parseAts(i)
}

// parsePipe parses what follows "pipe:".
func (p *pnParser) parsePipe(start int) error {
	s := p.s
	p.n.Mode = RegAllNIC // each end binds all of its rings
	i := start
	for i < len(s) && pnIsIdent(s[i]) {
		i++
	}
	if i == start && (i == len(s) || pnIsNameEnd(s[i]) || s[i] == '{' || s[i] == '}') {
		return p.errf(start, "missing pipe name after \"pipe:\"")
	}
	if i < len(s) && !pnIsNameEnd(s[i]) && s[i] != '{' && s[i] != '}' {
		return p.badNameChar(i)
	}
	p.n.Port = s[start:i]
	if i == len(s) || s[i] != '{' && s[i] != '}' {
		return p.errf(i, "pipe:%s needs an endpoint: pipe:%s{0 or pipe:%s}0", p.n.Port, p.n.Port, p.n.Port)
	}
	i, err := p.parsePipeID(i)
	if err != nil {
		return err
	}
	if n := len(p.n.Port) + 1 + len(p.n.PipeID); n > pnMaxKernelName {
		return p.errf(start, "pipe name %q is %d bytes; at most %d", s[start:i], n, pnMaxKernelName)
	}
	if i < len(s) {
		switch c := s[i]; c {
		case '^', '*', '-':
			return p.errf(i, "pipe: ports take no ring mode (%q); each end binds all its rings", c)
		}
	}
	if i, err = p.parseFlags(i); err != nil {
		return err
	}
	return p.parseAts(i)
}

// KernelName is the name to put in nmreq_header.nr_name: netmap strips its
// "netmap:" prefix while VALE keeps "valeX:" to find the switch. xdp: and
// pipe: ports never reach the kernel's netmap, so theirs is "".
func (n Name) KernelName() string {
	switch n.Family {
	case FamilyNetmap:
		return n.Port + n.PipeRole.brace() + n.PipeID
	case FamilyVale:
		return "vale" + n.Switch + ":" + n.Port + n.PipeRole.brace() + n.PipeID
	}
	return ""
}

// String is the canonical text of n: every Name that ParseName returns
// parses back from it to an equal Name, so a Name can be logged and stored
// as text. Defaults are left out, options come in a fixed order and @conf
// merges equal TX/RX values into rings, host-rings and slots. What
// ParseName never produces (other modes, other flag bits) is left out.
func (n Name) String() string {
	var b strings.Builder
	switch n.Family {
	case FamilyNetmap:
		b.WriteString("netmap:")
	case FamilyVale:
		b.WriteString("vale" + n.Switch + ":")
	case FamilyXDP:
		b.WriteString("xdp:")
	case FamilyPipe:
		b.WriteString("pipe:")
	case FamilySwitch:
		b.WriteString("switch" + n.Switch + ":")
	default:
		b.WriteString(n.Family.String() + ":")
	}
	b.WriteString(n.Port + n.PipeRole.brace() + n.PipeID)
	switch n.Mode {
	case RegSW:
		b.WriteString("^")
	case RegOneSW:
		fmt.Fprintf(&b, "^%d", n.RingID)
	case RegNICSW:
		b.WriteString("*")
	case RegOneNIC:
		fmt.Fprintf(&b, "-%d", n.RingID)
	}
	if n.Flags != 0 {
		b.WriteString("/")
		for _, f := range pnFlags {
			if n.Flags&f.bit != 0 {
				b.WriteByte(f.c)
			}
		}
	}
	if n.MemID != 0 {
		fmt.Fprintf(&b, "@%d", n.MemID)
	}
	if conf := pnConfText(n.Conf); conf != "" {
		b.WriteString("@conf:" + conf)
	}
	if e := n.Extmem; e != nil {
		b.WriteString("@extmem:file=" + e.File)
		for _, kv := range []struct {
			k string
			v uint32
		}{
			{"if-num", e.IfNum}, {"if-size", e.IfSize}, {"ring-num", e.RingNum},
			{"ring-size", e.RingSize}, {"buf-num", e.BufNum}, {"buf-size", e.BufSize},
		} {
			if kv.v != 0 {
				fmt.Fprintf(&b, ",%s=%d", kv.k, kv.v)
			}
		}
	}
	if o := n.Offset; o != nil {
		fmt.Fprintf(&b, "@offset:initial=%d", o.Initial)
		if o.Bits != 0 {
			fmt.Fprintf(&b, ",bits=%d", o.Bits)
		}
	}
	if n.Share != "" {
		b.WriteString("@share=" + n.Share)
	}
	return b.String()
}

// pnConfText is the key list of "@conf:" for c, "" when all are defaults.
func pnConfText(c Conf) string {
	var parts []string
	pair := func(both, tx, rx string, t, r uint64) {
		switch {
		case t == r && t != 0:
			parts = append(parts, fmt.Sprintf("%s=%d", both, t))
		default:
			if t != 0 {
				parts = append(parts, fmt.Sprintf("%s=%d", tx, t))
			}
			if r != 0 {
				parts = append(parts, fmt.Sprintf("%s=%d", rx, r))
			}
		}
	}
	pair("rings", "tx-rings", "rx-rings", uint64(c.TxRings), uint64(c.RxRings))
	pair("host-rings", "host-tx-rings", "host-rx-rings", uint64(c.HostTxRings), uint64(c.HostRxRings))
	pair("slots", "tx-slots", "rx-slots", uint64(c.TxSlots), uint64(c.RxSlots))
	return strings.Join(parts, ",")
}
