//go:build linux

package xdp

import "fmt"

// QueueStats are one queue's counters: what the port moved and what the
// kernel reports for its socket (XDP_STATISTICS).
type QueueStats struct {
	Queue     int    `json:"queue"`
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	// RxDropped counts frames the kernel dropped for this socket;
	// RxFillEmpty the drops because no buffer was on FILL (the receiver
	// is behind), RxRingFull those because the RX ring was full.
	RxDropped      uint64 `json:"rx_dropped"`
	RxFillEmpty    uint64 `json:"rx_fill_empty"`
	RxRingFull     uint64 `json:"rx_ring_full"`
	RxInvalidDescs uint64 `json:"rx_invalid_descs"`
	TxInvalidDescs uint64 `json:"tx_invalid_descs"`
}

// Stats describes the port: how it is attached and each queue's counters.
type Stats struct {
	// XDP is the program's mode and how it is attached ("native XDP on
	// ve0 (ifindex 3) by bpf_link"); Fallback says why native mode was
	// refused, if it was.
	XDP      string       `json:"xdp"`
	Fallback string       `json:"fallback,omitempty"`
	CopyMode bool         `json:"copy_mode"` // false: zero copy
	Queues   []QueueStats `json:"queues"`
}

// Stats snapshots the port's counters. It may be called from any goroutine.
func (p *Port) Stats() (Stats, error) {
	var s Stats
	if p.att != nil {
		s.XDP, s.Fallback = p.att.String(), p.att.Note()
	}
	for i, sock := range p.socks {
		st, err := sock.Stats()
		if err != nil {
			return s, fmt.Errorf("xdp: %s queue %d: XDP_STATISTICS: %w", p.name, i, err)
		}
		s.CopyMode = sock.CopyMode()
		c := &p.counters[i]
		s.Queues = append(s.Queues, QueueStats{Queue: sock.queue,
			TxPackets: c.txPackets.Load(), TxBytes: c.txBytes.Load(), RxPackets: c.rxPackets.Load(), RxBytes: c.rxBytes.Load(),
			RxDropped: st.Rx_dropped, RxFillEmpty: st.Rx_fill_ring_empty_descs, RxRingFull: st.Rx_ring_full,
			RxInvalidDescs: st.Rx_invalid_descs, TxInvalidDescs: st.Tx_invalid_descs})
	}
	return s, nil
}
