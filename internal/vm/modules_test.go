package vm

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeModDir is a modules.dep as depmod writes it for the vfio set
// (transitive closure, load-last first), plus tun, a chain and a builtin.
const fakeModulesDep = `kernel/virt/lib/irqbypass.ko:
kernel/drivers/vfio/vfio.ko:
kernel/drivers/vfio/vfio_iommu_type1.ko: kernel/drivers/vfio/vfio.ko
kernel/drivers/vfio/vfio_virqfd.ko:
kernel/drivers/vfio/pci/vfio-pci-core.ko: kernel/drivers/vfio/vfio_virqfd.ko kernel/virt/lib/irqbypass.ko kernel/drivers/vfio/vfio.ko
kernel/drivers/vfio/pci/vfio-pci.ko: kernel/drivers/vfio/pci/vfio-pci-core.ko kernel/drivers/vfio/vfio_virqfd.ko kernel/virt/lib/irqbypass.ko kernel/drivers/vfio/vfio.ko
kernel/drivers/net/tun.ko:
kernel/a.ko: kernel/b.ko kernel/c.ko
kernel/b.ko: kernel/c.ko
kernel/c.ko:
kernel/bad.ko: kernel/gone.ko
`

func fakeKernel(t *testing.T) Kernel {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "modules.dep"), fakeModulesDep)
	writeFile(t, filepath.Join(dir, "modules.builtin"), "kernel/drivers/net/loop-back.ko\n")
	return Kernel{Release: "fake", ModDir: dir}
}

func TestModules(t *testing.T) {
	k := fakeKernel(t)
	tests := []struct {
		names []string
		want  []string // relative to ModDir
		err   string
	}{
		{
			names: []string{"vfio-pci"},
			want: []string{"kernel/drivers/vfio/vfio.ko", "kernel/virt/lib/irqbypass.ko", "kernel/drivers/vfio/vfio_virqfd.ko",
				"kernel/drivers/vfio/pci/vfio-pci-core.ko", "kernel/drivers/vfio/pci/vfio-pci.ko"},
		},
		{
			names: []string{"vfio_pci", "vfio-iommu-type1", "tun", "vfio"},
			want: []string{"kernel/drivers/vfio/vfio.ko", "kernel/virt/lib/irqbypass.ko", "kernel/drivers/vfio/vfio_virqfd.ko",
				"kernel/drivers/vfio/pci/vfio-pci-core.ko", "kernel/drivers/vfio/pci/vfio-pci.ko",
				"kernel/drivers/vfio/vfio_iommu_type1.ko", "kernel/drivers/net/tun.ko"},
		},
		{names: []string{"a"}, want: []string{"kernel/c.ko", "kernel/b.ko", "kernel/a.ko"}},
		{names: []string{"c", "a", "c"}, want: []string{"kernel/c.ko", "kernel/b.ko", "kernel/a.ko"}},
		{names: []string{"loop_back", "c"}, want: []string{"kernel/c.ko"}},
		{names: nil, want: nil},
		{names: []string{"tun", "nosuch"}, err: `unknown module "nosuch"`},
		{names: []string{"bad"}, err: "bad needs gone"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.names, ","), func(t *testing.T) {
			got, err := k.Modules(tt.names...)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Modules = %v, %v; want error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, w := range tt.want {
				want = append(want, filepath.Join(k.ModDir, w))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("Modules(%q) =\n%q\nwant\n%q", tt.names, got, want)
			}
		})
	}
}

func TestModulesCycle(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "modules.dep"), "x.ko: y.ko\ny.ko: x.ko\n")
	if _, err := (Kernel{ModDir: dir}).Modules("x"); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("Modules on a cycle = %v, want a cycle error", err)
	}
}

func TestModulesNoDep(t *testing.T) {
	_, err := (Kernel{ModDir: t.TempDir()}).Modules("x")
	if err == nil || !strings.Contains(err.Error(), "FetchKernel") {
		t.Fatalf("Modules without modules.dep = %v, want an error naming FetchKernel", err)
	}
}

func TestModuleName(t *testing.T) {
	for in, want := range map[string]string{
		"vfio-pci":                            "vfio_pci",
		"vfio_pci":                            "vfio_pci",
		"kernel/drivers/vfio/pci/vfio-pci.ko": "vfio_pci",
		"/lib/modules/vfio_iommu_type1.ko":    "vfio_iommu_type1",
		"kernel/drivers/net/tun.ko.xz":        "tun",
		"irqbypass":                           "irqbypass",
	} {
		if got := ModuleName(in); got != want {
			t.Errorf("ModuleName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestWriteDep checks that the modules.dep writeModulesDep emits from
// direct dependencies lists each closure, load-last first, and reads back
// to the same load order.
func TestWriteDep(t *testing.T) {
	dir := "/m"
	g := depGraph{
		"a":   {path: "/m/kernel/a.ko", deps: []string{"b"}},
		"b":   {path: "/m/kernel/b.ko", deps: []string{"c"}},
		"c":   {path: "/m/kernel/c.ko"},
		"d_e": {path: "/m/kernel/d-e.ko", deps: []string{"c", "a"}},
	}
	var buf bytes.Buffer
	if err := g.writeDep(&buf, dir); err != nil {
		t.Fatal(err)
	}
	want := "kernel/a.ko: kernel/b.ko kernel/c.ko\nkernel/b.ko: kernel/c.ko\nkernel/c.ko:\nkernel/d-e.ko: kernel/a.ko kernel/b.ko kernel/c.ko\n"
	if buf.String() != want {
		t.Fatalf("modules.dep =\n%s\nwant\n%s", buf.String(), want)
	}
	back, err := parseModulesDep(&buf, dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := back.loadOrder([]string{"d-e"})
	if err != nil {
		t.Fatal(err)
	}
	if w := []string{"/m/kernel/c.ko", "/m/kernel/b.ko", "/m/kernel/a.ko", "/m/kernel/d-e.ko"}; !slices.Equal(got, w) {
		t.Fatalf("load order %q, want %q", got, w)
	}
	g["a"].deps = append(g["a"].deps, "nosuch")
	if err := g.writeDep(&buf, dir); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("writeDep with a missing dependency = %v, want an error naming it", err)
	}
}

func TestWriteModulesDepNotELF(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "kernel", "x.ko"), "not an ELF file")
	if err := writeModulesDep(dir); err == nil || !strings.Contains(err.Error(), "x.ko") {
		t.Fatalf("writeModulesDep on a bad .ko = %v, want an error naming it", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "modules.dep")); !os.IsNotExist(err) {
		t.Fatalf("modules.dep written despite the error: %v", err)
	}
}
