package pci

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestFind(t *testing.T) {
	ivshmem := func(addr, driver string) fakeFn {
		return fakeFn{addr: addr, vendor: "0x1af4\n", device: "0x1110\n", driver: driver}
	}
	tests := []struct {
		name    string
		fns     []fakeFn
		want    []Device
		wantErr string // substring; "" for success
	}{
		{
			name: "matches sorted by address, others left out",
			fns: []fakeFn{
				ivshmem("0000:00:05.0", "vfio-pci"),
				{addr: "0000:00:01.0", vendor: "0x8086\n", device: "0x1237\n", driver: "piix"},
				{addr: "0000:00:02.0", vendor: "0x1af4\n", device: "0x1000\n", driver: "virtio-pci"},
				ivshmem("0000:00:03.0", ""),
			},
			want: []Device{
				{Addr: "0000:00:03.0", Vendor: 0x1af4, DeviceID: 0x1110},
				{Addr: "0000:00:05.0", Vendor: 0x1af4, DeviceID: 0x1110, Driver: "vfio-pci"},
			},
		},
		{
			name: "no match is no error",
			fns:  []fakeFn{{addr: "0000:00:01.0", vendor: "0x8086\n", device: "0x1237\n"}},
		},
		{
			name: "entries without ID files are skipped",
			fns: []fakeFn{
				{addr: "0000:00:01.0", device: "0x1110\n"},
				{addr: "0000:00:02.0", vendor: "0x1af4\n"},
				ivshmem("0000:00:04.0", ""),
			},
			want: []Device{{Addr: "0000:00:04.0", Vendor: 0x1af4, DeviceID: 0x1110}},
		},
		{
			name:    "garbage vendor",
			fns:     []fakeFn{{addr: "0000:00:01.0", vendor: "hello\n", device: "0x1110\n"}},
			wantErr: `vendor: "hello" is not a 16-bit ID`,
		},
		{
			name:    "ID without 0x",
			fns:     []fakeFn{{addr: "0000:00:01.0", vendor: "1af4\n", device: "0x1110\n"}},
			wantErr: `"1af4" is not a 16-bit ID`,
		},
		{
			name:    "ID too wide",
			fns:     []fakeFn{{addr: "0000:00:01.0", vendor: "0x1af4\n", device: "0x11100\n"}},
			wantErr: `device: "0x11100" is not a 16-bit ID`,
		},
		{
			name:    "unreadable device file",
			fns:     []fakeFn{{addr: "0000:00:01.0", vendor: "0x1af4\n", device: unreadable}},
			wantErr: "0000:00:01.0/device",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fakeTree(t, tt.fns...).find(0x1af4, 0x1110)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("find = %v, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("find = %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestFindWithoutSysfs(t *testing.T) {
	p := paths{pci: filepath.Join(t.TempDir(), "missing")}
	if _, err := p.find(0x1af4, 0x1110); err == nil || !strings.Contains(err.Error(), "sysfs") {
		t.Fatalf("find over a missing tree: %v; want an error that mentions sysfs", err)
	}
}
