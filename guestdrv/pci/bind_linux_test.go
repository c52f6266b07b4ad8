package pci

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeKernel plays the kernel's part of a bind: once addr is written to
// drivers_probe with vfio-pci as the override, it binds the function to
// vfio-pci and creates the group's device node. It stops with the test.
func fakeKernel(t *testing.T, p paths, addr, group string) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	t.Cleanup(func() { close(done); <-stopped })
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			probe, _ := os.ReadFile(filepath.Join(p.pci, "drivers_probe"))
			override, _ := os.ReadFile(filepath.Join(p.device(addr), "driver_override"))
			if string(probe) != addr || string(override) != "vfio-pci" {
				continue
			}
			link := filepath.Join(p.device(addr), "driver")
			os.Remove(link)
			os.Symlink(filepath.Join("..", "..", "..", "bus", "pci", "drivers", "vfio-pci"), link)
			os.WriteFile(filepath.Join(p.vfio, group), nil, 0o600)
			return
		}
	}()
}

func TestBindVFIO(t *testing.T) {
	tests := []struct {
		name       string
		driver     string // bound before
		kernel     bool   // whether vfio-pci is there to take the device
		node       bool   // whether /dev/vfio/GROUP exists before
		wantWrites bool   // driver_override and drivers_probe written
		wantErr    string
	}{
		{name: "from another driver", driver: "uio_pci_generic", kernel: true, wantWrites: true},
		{name: "from no driver", kernel: true, wantWrites: true},
		{name: "already vfio-pci", driver: "vfio-pci", node: true},
		{name: "vfio-pci not loaded", driver: "uio_pci_generic", wantWrites: true, wantErr: "modprobe vfio-pci"},
		{name: "no device node", driver: "vfio-pci", wantErr: "devtmpfs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := fakeTree(t, fakeFn{addr: addr, vendor: "0x1af4\n", device: "0x1110\n", driver: tt.driver, group: "5"})
			p.settle = 300 * time.Millisecond
			if tt.node {
				writeFile(t, filepath.Join(p.vfio, "5"), "")
			}
			if tt.kernel {
				fakeKernel(t, p, addr, "5")
			}
			group, err := p.iommuGroup(addr)
			if err != nil || group != "5" {
				t.Fatalf("iommuGroup = %q, %v; want 5", group, err)
			}
			err = p.bindVFIO(addr, group)
			if tt.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("bindVFIO: %v; want an error containing %q", err, tt.wantErr)
			}

			override := readFile(t, filepath.Join(p.device(addr), "driver_override"))
			probe := readFile(t, filepath.Join(p.pci, "drivers_probe"))
			if wrote := override == "vfio-pci" && probe == addr; wrote != tt.wantWrites {
				t.Errorf("driver_override %q, drivers_probe %q; want written: %v", override, probe, tt.wantWrites)
			}
			if tt.driver != "" && tt.driver != "vfio-pci" {
				if got := readFile(t, filepath.Join(p.pci, "drivers", tt.driver, "unbind")); got != addr {
					t.Errorf("%s/unbind = %q, want %q", tt.driver, got, addr)
				}
			}
		})
	}
}

// OpenVFIO fails early, and says how to fix it, when the guest cannot do
// VFIO; it takes the device from its driver only once VFIO is there.
func TestOpenVFIOPreconditions(t *testing.T) {
	tests := []struct {
		name    string
		vectors int
		group   string
		setup   func(t *testing.T, p paths)
		want    []string
	}{
		{name: "no vectors", vectors: 0, group: "5", want: []string{"at least 1", "OpenSysfs"}},
		{name: "no IOMMU", vectors: 1, want: []string{"no IOMMU group", "intel_iommu=on", "-device intel-iommu"}},
		{name: "no vfio module", vectors: 1, group: "5", want: []string{"/dev/vfio/vfio", "modprobe vfio-pci"}},
		{
			name: "not a VFIO container", vectors: 1, group: "5",
			setup: func(t *testing.T, p paths) { writeFile(t, filepath.Join(p.vfio, "vfio"), "") },
			want:  []string{"vfio: get API version"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := fakeTree(t, fakeFn{addr: addr, vendor: "0x1af4\n", device: "0x1110\n", driver: "uio_pci_generic", group: tt.group})
			if tt.setup != nil {
				tt.setup(t, p)
			}
			m, err := p.openVFIO(addr, tt.vectors)
			if err == nil {
				m.Close()
				t.Fatal("openVFIO succeeded")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "pci "+addr+": ") {
				t.Errorf("error %q does not start with the device", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
			if got := readFile(t, filepath.Join(p.device(addr), "driver_override")); got != "(null)\n" {
				t.Errorf("driver_override = %q: the device was rebound before VFIO was known to work", got)
			}
		})
	}
}
