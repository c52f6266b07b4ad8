package shmdev

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/ptbhyve/ptbhyve/netmap"
	"github.com/ptbhyve/ptbhyve/ptnetmap"
)

// FuzzDevice plays a hostile guest: each 9 bytes of input are one action
// (a store anywhere in its device and CSB pages or in the netmap region, a
// doorbell, or a mailbox request with any register and value). The host
// must not panic or wedge, and afterwards a driver that starts over must
// get a working device.
func FuzzDevice(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{2, 4, 0, 0, 0, 1, 0, 0, 0, 2, 52, 0, 0, 0, 0x40, 0x10, 0, 0})
	f.Add([]byte{0, 0x00, 0x02, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 2, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 9*64 {
			data = data[:9*64]
		}
		r := newRig(t, Geometry{Devices: 2, Rings: 1, Slots: 64, BufSize: 2048})
		v := r.vms[0]
		peer := v.attachPipe(t, "shmdev-fuzz", 64)
		v.up(t)
		v.guest.Timeout = 2 * time.Second
		page, region := v.guest.page, v.guest.Region()
		for ; len(data) >= 9; data = data[9:] {
			off := binary.LittleEndian.Uint32(data[1:])
			val := binary.LittleEndian.Uint32(data[5:])
			switch data[0] % 4 {
			case 0:
				store(page, uint64(off%(DevicePageSize/4))*4, val)
			case 1:
				store(region, uint64(off%uint32(len(region)/4))*4, val)
			case 2:
				v.kicks[val%uint32(len(v.kicks))].Signal()
			case 3:
				v.guest.seq = load(page, DevMboxAck)
				if err := v.guest.Post(off&0xff, val); err != nil && load(page, DevMboxAck) != v.guest.seq {
					t.Fatalf("the host stopped answering the mailbox: %v", err)
				}
			}
		}
		// Start over as a rebooted driver would; the host must answer and
		// serve the rings again.
		v.guest.seq = load(page, DevMboxAck)
		if err := v.guest.Post(ptnetmap.RegPtctl, ptnetmap.PtctlDelete); err != nil {
			t.Fatalf("DELETE after the scribbles: %v", err)
		}
		v.dev.Detach().Close()
		peer.Close()
		peer = v.attachPipe(t, "shmdev-fuzz2", 64)
		v.up(t)
		sent := v.send(0, 10)
		got := 0
		for deadline := time.Now().Add(5 * time.Second); got < sent && time.Now().Before(deadline); {
			netmap.RxSync(peer)
			rx := peer.If().RxRing(0)
			got += int(rx.Space())
			rx.Advance(rx.Tail())
		}
		if sent == 0 || got != sent {
			t.Fatalf("after the scribbles a fresh driver sent %d frames, %d arrived", sent, got)
		}
	})
}
