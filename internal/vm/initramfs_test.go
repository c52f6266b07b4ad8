package vm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path, data string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestImageBuild(t *testing.T) {
	dir := t.TempDir()
	im := Image{
		Init: writeFile(t, filepath.Join(dir, "init"), "INIT"),
		Files: map[string]string{
			"/bin/hello":    writeFile(t, filepath.Join(dir, "hello"), "HELLO!"),
			"/opt/x/y/tool": writeFile(t, filepath.Join(dir, "tool"), "T"),
		},
		Modules: []string{
			writeFile(t, filepath.Join(dir, "m", "kernel", "virt", "irqbypass.ko"), "IRQ"),
			writeFile(t, filepath.Join(dir, "m", "kernel", "vfio", "vfio-pci.ko"), "VFIOPCI"),
		},
	}
	out := filepath.Join(dir, "initrd.gz")
	if err := im.Build(out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	entries := gunzipCPIO(t, b)
	byName := map[string]cpioEntry{}
	seen := map[string]bool{}
	for _, e := range entries {
		if _, dup := byName[e.name]; dup {
			t.Errorf("%s appears twice", e.name)
		}
		if parent := filepath.Dir(e.name); parent != "." && !seen[parent] {
			t.Errorf("%s comes before its directory %s", e.name, parent)
		}
		seen[e.name] = true
		byName[e.name] = e
	}
	for _, d := range []string{"dev", "proc", "sys", "tmp", "bin", "lib", "lib/modules", "run", "etc", "opt", "opt/x", "opt/x/y"} {
		if e, ok := byName[d]; !ok || e.mode != cpioDir|0o755 {
			t.Errorf("directory %s: %+v (present %v)", d, e, ok)
		}
	}
	if e := byName["dev/console"]; e.mode != cpioChar|0o600 || e.rmajor != 5 || e.rminor != 1 {
		t.Errorf("dev/console = %+v", e)
	}
	files := []struct {
		name string
		mode uint32
		data string
	}{
		{"init", 0o755, "INIT"},
		{"bin/hello", 0o755, "HELLO!"},
		{"opt/x/y/tool", 0o755, "T"},
		{"lib/modules/irqbypass.ko", 0o755, "IRQ"},
		{"lib/modules/vfio-pci.ko", 0o755, "VFIOPCI"},
		{"etc/modules", 0o644, "/lib/modules/irqbypass.ko\n/lib/modules/vfio-pci.ko\n"},
	}
	for _, f := range files {
		e, ok := byName[f.name]
		if !ok {
			t.Errorf("%s missing", f.name)
			continue
		}
		if e.mode != cpioReg|f.mode || string(e.data) != f.data {
			t.Errorf("%s: mode %o data %q, want %o %q", f.name, e.mode, e.data, cpioReg|f.mode, f.data)
		}
	}
	if _, err := os.Stat(out + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
}

func TestImageBuildErrors(t *testing.T) {
	dir := t.TempDir()
	f := writeFile(t, filepath.Join(dir, "f"), "x")
	tests := []struct {
		name string
		im   Image
		want string
	}{
		{"no init", Image{}, "Init is empty"},
		{"relative", Image{Init: f, Files: map[string]string{"bin/x": f}}, "absolute"},
		{"unclean", Image{Init: f, Files: map[string]string{"/bin/../x": f}}, "absolute and clean"},
		{"init twice", Image{Init: f, Files: map[string]string{"/init": f}}, "twice"},
		{"module twice", Image{Init: f, Modules: []string{"/a/m.ko", "/b/m.ko"}}, "twice"},
		{"file on dir", Image{Init: f, Files: map[string]string{"/bin": f}}, "reserved"},
		{"missing host file", Image{Init: filepath.Join(dir, "nope")}, "no such file"},
		{"host dir", Image{Init: dir}, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.im.Build(filepath.Join(dir, "out.gz"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Build = %v, want error containing %q", err, tt.want)
			}
		})
	}
}
