package kernel

import (
	"strings"
	"testing"
)

func TestIoctlNumbers(t *testing.T) {
	for _, tc := range []struct {
		os   string
		got  Ioctls
		want Ioctls
	}{
		{"freebsd", FreeBSDIoctls(), Ioctls{Ctrl: 0xC0586997, TxSync: 0x20006994, RxSync: 0x20006995, RegIf: 0xC03C6992, GInfo: 0xC03C6991, Config: 0xC1106996}},
		{"linux", LinuxIoctls(), Ioctls{Ctrl: 0xC0586997, TxSync: 0x00006994, RxSync: 0x00006995, RegIf: 0xC03C6992, GInfo: 0xC03C6991, Config: 0xC1106996}},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %#x, want %#x", tc.os, tc.got, tc.want)
		}
	}
}

func TestIocEncoding(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want uint32
	}{
		{"FreeBSD _IOWR('i', 151, 88)", FreeBSDIoc(0xC0000000, 'i', 151, 88), 0xC0586997},
		{"FreeBSD _IO('i', 148)", FreeBSDIoc(0x20000000, 'i', 148, 0), 0x20006994},
		{"FreeBSD length keeps 13 bits", FreeBSDIoc(0xC0000000, 'i', 1, 0x2000+16), 0xC0106901},
		{"FreeBSD _IOW", FreeBSDIoc(0x80000000, 'x', 2, 4), 0x80047802},
		{"Linux _IOWR('i', 151, 88)", LinuxIoc(3, 'i', 151, 88), 0xC0586997},
		{"Linux _IO('i', 149)", LinuxIoc(0, 'i', 149, 0), 0x00006995},
		{"Linux _IOR", LinuxIoc(2, 'T', 0x31, 4), 0x80045431},
		{"Linux size keeps 14 bits", LinuxIoc(1, 'i', 1, 0x4000+8), 0x40086901},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %#x, want %#x", tc.name, tc.got, tc.want)
		}
	}
}

func TestMissingDeviceHint(t *testing.T) {
	for os, want := range map[string]string{"freebsd": "kldload netmap", "linux": "load the netmap module", "darwin": "only on FreeBSD and on Linux"} {
		if h := missingDeviceHint(os); !strings.Contains(h, want) {
			t.Errorf("%s: %q does not say %q", os, h, want)
		}
	}
}
