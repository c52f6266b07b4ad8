package vm

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// writeModulesDep does depmod's main job for a kernel that was unpacked,
// not installed: Debian's linux-image packages do not ship modules.dep
// (their postinst runs depmod), and kmod is not on every host. It reads
// each .ko's .modinfo "depends=" list and writes modDir/modules.dep in
// depmod's format, each line listing the full transitive closure with the
// module to load last first, as modprobe expects.
func writeModulesDep(modDir string) error {
	g := depGraph{}
	err := filepath.WalkDir(modDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".ko") {
			return err
		}
		name, deps, err := readModinfo(path)
		if err != nil {
			return err
		}
		g[name] = &depNode{path: path, deps: deps}
		return nil
	})
	if err != nil {
		return fmt.Errorf("vm: index modules in %s: %w", modDir, err)
	}
	tmp := filepath.Join(modDir, "modules.dep.tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("vm: %w", err)
	}
	defer os.Remove(tmp)
	w := bufio.NewWriter(f)
	if err := g.writeDep(w, modDir); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("vm: write %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("vm: write %s: %w", tmp, err)
	}
	return os.Rename(tmp, filepath.Join(modDir, "modules.dep"))
}

// writeDep writes g as modules.dep, paths relative to modDir, sorted.
func (g depGraph) writeDep(w io.Writer, modDir string) error {
	rel := func(p string) string {
		if r, err := filepath.Rel(modDir, p); err == nil {
			return r
		}
		return p
	}
	names := make([]string, 0, len(g))
	for n := range g {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		order, err := g.loadOrder([]string{n})
		if err != nil {
			return fmt.Errorf("vm: modules in %s: %w", modDir, err)
		}
		line := rel(g[n].path) + ":"
		for i := len(order) - 2; i >= 0; i-- { // order ends with n itself
			line += " " + rel(order[i])
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return fmt.Errorf("vm: write modules.dep: %w", err)
		}
	}
	return nil
}

// readModinfo returns a module's name and direct dependencies from the
// NUL-separated "key=value" strings of its .modinfo ELF section.
func readModinfo(path string) (name string, deps []string, err error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return "", nil, fmt.Errorf("read %s: no .modinfo section", path)
	}
	data, err := sec.Data()
	if err != nil {
		return "", nil, fmt.Errorf("read %s .modinfo: %w", path, err)
	}
	name = ModuleName(path)
	for _, kv := range bytes.Split(data, []byte{0}) {
		k, v, _ := strings.Cut(string(kv), "=")
		switch k {
		case "name":
			name = ModuleName(v)
		case "depends":
			for _, d := range strings.Split(v, ",") {
				if d != "" {
					deps = append(deps, ModuleName(d))
				}
			}
		}
	}
	return name, deps, nil
}
