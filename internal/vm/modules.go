package vm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ModuleName normalises a module name or .ko path the way modprobe does:
// the file name without directory and ".ko" suffix, with '-' read as '_'
// ("kernel/drivers/vfio/pci/vfio-pci.ko" and "vfio_pci" are both vfio_pci).
func ModuleName(s string) string {
	s = filepath.Base(s)
	if i := strings.Index(s, ".ko"); i >= 0 {
		s = s[:i]
	}
	return strings.ReplaceAll(s, "-", "_")
}

// Modules returns the .ko files for the named modules and everything they
// depend on, dependencies first, each once: the order in which /init must
// load them (Image.Modules). Names are matched as modprobe matches them
// (ModuleName). A module built into the kernel (modules.builtin) needs no
// file and is left out.
func (k Kernel) Modules(names ...string) ([]string, error) {
	f, err := os.Open(filepath.Join(k.ModDir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("vm: kernel %s: %w (FetchKernel writes modules.dep)", k.Release, err)
	}
	defer f.Close()
	g, err := parseModulesDep(f, k.ModDir)
	if err != nil {
		return nil, err
	}
	builtin, err := readBuiltin(filepath.Join(k.ModDir, "modules.builtin"))
	if err != nil {
		return nil, err
	}
	var want []string
	for _, n := range names {
		if !builtin[ModuleName(n)] {
			want = append(want, n)
		}
	}
	order, err := g.loadOrder(want)
	if err != nil {
		return nil, fmt.Errorf("vm: kernel %s (%s): %w", k.Release, k.ModDir, err)
	}
	return order, nil
}

// depGraph maps a module name (ModuleName) to its file and dependencies.
type depGraph map[string]*depNode

type depNode struct {
	path string
	deps []string // module names
}

// parseModulesDep reads depmod's modules.dep: "path: dep-path dep-path...",
// paths relative to modDir unless absolute.
func parseModulesDep(r io.Reader, modDir string) (depGraph, error) {
	g := depGraph{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		path, deps, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("vm: modules.dep line %d: no ':' in %q", n, line)
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(modDir, path)
		}
		node := &depNode{path: path}
		for _, d := range strings.Fields(deps) {
			node.deps = append(node.deps, ModuleName(d))
		}
		g[ModuleName(path)] = node
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("vm: read modules.dep: %w", err)
	}
	return g, nil
}

// loadOrder returns the files of names and their dependencies in a valid
// load order: a depth-first post-order, so each module comes after all it
// needs. Dependencies are visited last-listed first, as modprobe loads them.
func (g depGraph) loadOrder(names []string) ([]string, error) {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var order []string
	var visit func(name, from string) error
	visit = func(name, from string) error {
		switch state[name] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("module dependency cycle through %s", name)
		}
		node, ok := g[name]
		if !ok {
			if from != "" {
				return fmt.Errorf("module %s needs %s, which is not in modules.dep", from, name)
			}
			return fmt.Errorf("unknown module %q: no such .ko in modules.dep", name)
		}
		state[name] = visiting
		for i := len(node.deps) - 1; i >= 0; i-- {
			if err := visit(node.deps[i], name); err != nil {
				return err
			}
		}
		state[name] = done
		order = append(order, node.path)
		return nil
	}
	for _, n := range names {
		if err := visit(ModuleName(n), ""); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// readBuiltin reads modules.builtin (one path per line) into a set of
// module names; a missing file means none are known to be built in.
func readBuiltin(path string) (map[string]bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	set := map[string]bool{}
	for _, line := range strings.Fields(string(b)) {
		set[ModuleName(line)] = true
	}
	return set, nil
}
