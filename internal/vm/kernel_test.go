package vm

import (
	"strings"
	"testing"
)

func TestParseAptDepends(t *testing.T) {
	tests := []struct {
		name, out, want string
	}{
		{"bookworm", "linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-56-cloud-amd64\n", "linux-image-6.1.0-56-cloud-amd64"},
		{
			"other deps first",
			"linux-image-cloud-amd64\n  Depends: initramfs-tools\n  Depends: <linux-initramfs-tool>\n    initramfs-tools\n |Depends: linux-image-6.12.9+deb13-cloud-amd64\n  Recommends: firmware-linux\n",
			"linux-image-6.12.9+deb13-cloud-amd64",
		},
		{"no package", "", ""},
		{"metapackage only", "linux-image-cloud-amd64\n  Depends: linux-image-cloud-amd64-signed\n", ""},
		{"recommends is not depends", "  Recommends: linux-image-6.1.0-1-cloud-amd64\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAptDepends(tt.out)
			if tt.want == "" {
				if err == nil || !strings.Contains(err.Error(), "linux-image-cloud-amd64") {
					t.Fatalf("parseAptDepends = %q, %v; want an error naming the metapackage", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseAptDepends = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestUnpackedKernel(t *testing.T) {
	k := unpackedKernel("/c/6.1.0-56-cloud-amd64", "6.1.0-56-cloud-amd64")
	if k.Vmlinuz != "/c/6.1.0-56-cloud-amd64/boot/vmlinuz-6.1.0-56-cloud-amd64" ||
		k.ModDir != "/c/6.1.0-56-cloud-amd64/lib/modules/6.1.0-56-cloud-amd64" {
		t.Fatalf("unpackedKernel = %+v", k)
	}
	if k.complete() {
		t.Fatal("complete() true for files that do not exist")
	}
}
