package pci

import (
	"encoding/binary"
	"testing"
	"unsafe"
)

// The ioctl numbers as measured in a guest (feasibility.md §3).
func TestVFIOIoctlNumbers(t *testing.T) {
	tests := []struct {
		name      string
		got, want uintptr
	}{
		{"VFIO_GET_API_VERSION", vfioGetAPIVersion, 0x3B64},
		{"VFIO_CHECK_EXTENSION", vfioCheckExtension, 0x3B65},
		{"VFIO_SET_IOMMU", vfioSetIOMMU, 0x3B66},
		{"VFIO_GROUP_GET_STATUS", vfioGroupGetStatus, 0x3B67},
		{"VFIO_GROUP_SET_CONTAINER", vfioGroupSetContainer, 0x3B68},
		{"VFIO_GROUP_GET_DEVICE_FD", vfioGroupGetDeviceFD, 0x3B6A},
		{"VFIO_DEVICE_GET_REGION_INFO", vfioDeviceGetRegionInfo, 0x3B6C},
		{"VFIO_DEVICE_GET_IRQ_INFO", vfioDeviceGetIRQInfo, 0x3B6D},
		{"VFIO_DEVICE_SET_IRQS", vfioDeviceSetIRQs, 0x3B6E},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %#x, want %#x", tt.name, tt.got, tt.want)
		}
	}
}

// The structures match linux/vfio.h byte for byte.
func TestVFIOLayouts(t *testing.T) {
	var g vfioGroupStatus
	var r vfioRegionInfo
	var i vfioIRQInfo
	tests := []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(vfio_group_status)", unsafe.Sizeof(g), 8},
		{"vfio_group_status.flags", unsafe.Offsetof(g.Flags), 4},
		{"sizeof(vfio_region_info)", unsafe.Sizeof(r), 32},
		{"vfio_region_info.flags", unsafe.Offsetof(r.Flags), 4},
		{"vfio_region_info.index", unsafe.Offsetof(r.Index), 8},
		{"vfio_region_info.cap_offset", unsafe.Offsetof(r.CapOffset), 12},
		{"vfio_region_info.size", unsafe.Offsetof(r.Size), 16},
		{"vfio_region_info.offset", unsafe.Offsetof(r.Offset), 24},
		{"sizeof(vfio_irq_info)", unsafe.Sizeof(i), 16},
		{"vfio_irq_info.flags", unsafe.Offsetof(i.Flags), 4},
		{"vfio_irq_info.index", unsafe.Offsetof(i.Index), 8},
		{"vfio_irq_info.count", unsafe.Offsetof(i.Count), 12},
		{"sizeof(vfio_irq_set) without data", irqSetHeaderSize, 20},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %d, want %d", tt.name, tt.got, tt.want)
		}
	}
}

func TestEncodeIRQSet(t *testing.T) {
	tests := []struct {
		name  string
		flags uint32
		fds   []int
		want  []uint32 // argsz, flags, index, start, count, data...
	}{
		{
			name:  "disable: DATA_NONE|ACTION_TRIGGER, count 0",
			flags: irqSetDataNone | irqSetActionTrigger,
			want:  []uint32{20, 0x21, 2, 0, 0},
		},
		{
			name:  "one eventfd",
			flags: irqSetDataEventfd | irqSetActionTrigger,
			fds:   []int{5},
			want:  []uint32{24, 0x24, 2, 0, 1, 5},
		},
		{
			name:  "three eventfds, -1 unbinds a vector",
			flags: irqSetDataEventfd | irqSetActionTrigger,
			fds:   []int{7, -1, 9},
			want:  []uint32{32, 0x24, 2, 0, 3, 7, 0xffff_ffff, 9},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := encodeIRQSet(tt.flags, irqMSIX, tt.fds)
			if len(buf) != 4*len(tt.want) {
				t.Fatalf("len = %d, want %d", len(buf), 4*len(tt.want))
			}
			for k, w := range tt.want {
				if got := binary.NativeEndian.Uint32(buf[4*k:]); got != w {
					t.Errorf("word %d = %#x, want %#x", k, got, w)
				}
			}
		})
	}
}
