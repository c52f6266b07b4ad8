package pktgen

import "encoding/binary"

// Frame layout: Ethernet (14) + IPv4 without options (20) + UDP (8), then
// the payload header. At the 60-byte minimum the payload is exactly
// magic(2) + sequence(8) + timestamp(8).
const (
	offIP    = 14
	offUDP   = offIP + 20
	offMagic = offUDP + 8
	offSeq   = offMagic + 2
	offTS    = offSeq + 8

	// magic marks pktgen's payload ("pG"); a receiver counts frames
	// without it as bad rather than as lost or reordered traffic.
	magic = 0x7047
)

// template builds the frame every TX slot starts from; only the sequence
// number and timestamp change per frame, so the IPv4 checksum is computed
// once here.
func template(c Config) []byte {
	f := make([]byte, c.Size)
	copy(f[0:6], c.Dst)
	copy(f[6:12], c.Src)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[offIP:offUDP]
	ip[0] = 0x45 // version 4, 20-byte header
	binary.BigEndian.PutUint16(ip[2:], uint16(c.Size-offIP))
	ip[8] = 64 // TTL
	ip[9] = 17 // UDP
	src, dst := c.SrcIP.As4(), c.DstIP.As4()
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip))
	udp := f[offUDP:offMagic]
	binary.BigEndian.PutUint16(udp[0:], c.SrcPort)
	binary.BigEndian.PutUint16(udp[2:], c.DstPort)
	binary.BigEndian.PutUint16(udp[4:], uint16(c.Size-offUDP))
	// UDP checksum 0: none, which IPv4 allows; it would change per frame.
	binary.BigEndian.PutUint16(f[offMagic:], magic)
	return f
}

// stamp writes a frame's sequence number and transmit time (ns).
func stamp(f []byte, seq uint64, ts int64) {
	binary.BigEndian.PutUint64(f[offSeq:], seq)
	binary.BigEndian.PutUint64(f[offTS:], uint64(ts))
}

// ipChecksum is the Internet checksum of an IPv4 header whose checksum
// field is zero; over a header with its checksum filled in it returns 0.
func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// parse checks that f is a pktgen frame, whole and undamaged in the
// fields a receiver relies on, and returns its sequence number and
// timestamp.
func parse(f []byte) (seq uint64, ts int64, ok bool) {
	if len(f) < minSize ||
		binary.BigEndian.Uint16(f[12:]) != 0x0800 ||
		f[offIP] != 0x45 || f[offIP+9] != 17 ||
		int(binary.BigEndian.Uint16(f[offIP+2:])) != len(f)-offIP ||
		int(binary.BigEndian.Uint16(f[offUDP+4:])) != len(f)-offUDP ||
		ipChecksum(f[offIP:offUDP]) != 0 ||
		binary.BigEndian.Uint16(f[offMagic:]) != magic {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(f[offSeq:]), int64(binary.BigEndian.Uint64(f[offTS:])), true
}

// swapMACs turns a received frame into its echo.
func swapMACs(f []byte) {
	var t [6]byte
	copy(t[:], f[0:6])
	copy(f[0:6], f[6:12])
	copy(f[6:12], t[:])
}
