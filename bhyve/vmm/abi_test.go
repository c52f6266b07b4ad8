package vmm

import (
	"errors"
	"syscall"
	"testing"
	"unsafe"
)

// The layouts of machine/vmm_dev.h on amd64 (research §1.5): sizes and
// byte offsets of every field the kernel reads or writes.
func TestStructLayout(t *testing.T) {
	var mm memmap
	var ms memseg
	var msi lapicMSI
	tests := []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof(vm_memmap)", unsafe.Sizeof(mm), 40},
		{"vm_memmap.gpa", unsafe.Offsetof(mm.GPA), 0},
		{"vm_memmap.segid", unsafe.Offsetof(mm.Segid), 8},
		{"vm_memmap.segoff", unsafe.Offsetof(mm.Segoff), 16},
		{"vm_memmap.len", unsafe.Offsetof(mm.Len), 24},
		{"vm_memmap.prot", unsafe.Offsetof(mm.Prot), 32},
		{"vm_memmap.flags", unsafe.Offsetof(mm.Flags), 36},

		{"sizeof(vm_memseg) 15", unsafe.Sizeof(ms), 56},
		{"vm_memseg.segid", unsafe.Offsetof(ms.Segid), 0},
		{"vm_memseg.len", unsafe.Offsetof(ms.Len), 8},
		{"vm_memseg.name", unsafe.Offsetof(ms.Name), 16},
		{"sizeof(vm_memseg.name)", unsafe.Sizeof(ms.Name), 16},
		// 14's struct ends where 15's NUMA fields begin.
		{"sizeof(vm_memseg) 14 = offsetof(ds_mask)", unsafe.Offsetof(ms.DSMask), 32},
		{"vm_memseg.ds_mask_size", unsafe.Offsetof(ms.DSMaskSize), 40},
		{"vm_memseg.ds_policy", unsafe.Offsetof(ms.DSPolicy), 48},

		{"sizeof(vm_lapic_msi)", unsafe.Sizeof(msi), 16},
		{"vm_lapic_msi.msg", unsafe.Offsetof(msi.Msg), 0},
		{"vm_lapic_msi.addr", unsafe.Offsetof(msi.Addr), 8},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %d, want %d", tt.name, tt.got, tt.want)
		}
	}
}

// ioc against the numbers of the research's table (§1.6), computed there
// from <sys/ioccom.h>: the helper and the commands the package issues.
func TestIoctlNumbers(t *testing.T) {
	tests := []struct {
		name string
		got  uint32
		want uint32
	}{
		{"VM_ALLOC_MEMSEG 14", ioc(iocIn, 'v', 14, 32), 0x8020760e},
		{"VM_ALLOC_MEMSEG 15", ioc(iocIn, 'v', 14, 56), 0x8038760e},
		{"VM_ALLOC_MEMSEG_FBSD12", ioc(iocIn, 'v', 14, 80), 0x8050760e},
		{"VM_GET_MEMSEG_FBSD12", ioc(iocInOut, 'v', 15, 80), 0xc050760f},
		{"VM_MMAP_MEMSEG", ioc(iocIn, 'v', 16, 40), 0x80287610},
		{"VM_MUNMAP_MEMSEG", ioc(iocIn, 'v', 19, 16), 0x80107613},
		{"VM_REINIT", ioc(iocVoid, 'v', 5, 0), 0x20007605},
		{"VM_IOAPIC_PINCOUNT", ioc(iocOut, 'v', 38, 4), 0x40047626},
		{"VM_GET_TOPOLOGY", ioc(iocOut, 'v', 64, 8), 0x40087640},
		{"VMMCTL_VM_CREATE", ioc(iocInOut, 'V', 0, 296), 0xc1285600},

		{"VM_GET_MEMSEG 14", abi14.getMemseg, 0xc020760f},
		{"VM_GET_MEMSEG 15", abi15.getMemseg, 0xc038760f},
		{"VM_MMAP_GETNEXT", cmdMmapGetnext, 0xc0287611},
		{"VM_LAPIC_MSI", cmdLapicMSI, 0x80107624},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %#x, want %#x", tt.name, tt.got, tt.want)
		}
	}
	if abi14.segments != 4 || abi15.segments != 11 {
		t.Errorf("VM_MAX_MEMSEGS = %d (14), %d (15), want 4, 11", abi14.segments, abi15.segments)
	}
}

func TestDetectABI(t *testing.T) {
	tests := []struct {
		name    string
		answers map[uint32]error // absent: success
		want    *abi
		wantErr error
	}{
		{name: "15 kernel", want: &abi15},
		{name: "14 kernel", answers: map[uint32]error{abi15.getMemseg: syscall.ENOTTY}, want: &abi14},
		{name: "neither", answers: map[uint32]error{abi15.getMemseg: syscall.ENOTTY, abi14.getMemseg: syscall.ENOTTY}, wantErr: syscall.ENOTTY},
		{name: "VM gone", answers: map[uint32]error{abi15.getMemseg: syscall.ENXIO}, wantErr: syscall.ENXIO},
		// Only ENOTTY means "not this ABI": anything else is reported,
		// not papered over with the 14 encoding.
		{name: "other error", answers: map[uint32]error{abi15.getMemseg: syscall.EFAULT}, wantErr: syscall.EFAULT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked []uint32
			got, err := detectABI(func(cmd uint32) error {
				asked = append(asked, cmd)
				return tt.answers[cmd]
			})
			if asked[0] != abi15.getMemseg {
				t.Errorf("first probe %#x, want the 15 command %#x", asked[0], abi15.getMemseg)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %s", got, err, tt.want.name)
			}
		})
	}
}
