//go:build linux

package testnet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ptbhyve/ptbhyve/internal/rtnl"
	"golang.org/x/sys/unix"
)

// Leftovers lists what processes that no longer exist left behind: entries
// "netns NAME" for /run/netns/ptb-*-PID and "link NAME" for interfaces
// ptb-*-PID in the caller's namespace, whose PID is dead. Tests assert it is
// empty; a non-empty result means a process was killed before its Close ran
// (or a PID namespace hid the owner). RemoveLeftovers clears them.
func Leftovers() ([]string, error) {
	return scan(pidDead)
}

// RemoveLeftovers deletes what Leftovers lists and returns what it removed.
func RemoveLeftovers() ([]string, error) {
	found, err := Leftovers()
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	var c *rtnl.Conn
	for _, f := range found {
		kind, name, _ := strings.Cut(f, " ")
		switch kind {
		case "netns":
			if err := removeMount(name, filepath.Join(netnsDir, name)); err != nil {
				errs = append(errs, err)
				continue
			}
		case "link":
			if c == nil {
				if c, err = rtnl.Dial(-1); err != nil {
					return removed, fmt.Errorf("testnet: remove leftover links: %w", err)
				}
				defer c.Close()
			}
			l, err := c.LinkByName(name)
			if err == nil {
				err = c.DeleteLink(l.Index)
			}
			if err != nil && !rtnl.IsNotExist(err) {
				errs = append(errs, fmt.Errorf("testnet: remove leftover: %w", err))
				continue
			}
		}
		removed = append(removed, f)
	}
	return removed, errors.Join(errs...)
}

// scan lists ptb-*-PID namespaces and links whose PID satisfies match.
func scan(match func(pid int) bool) ([]string, error) {
	var out []string
	ents, err := os.ReadDir(netnsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("testnet: list %s: %w", netnsDir, err)
	}
	for _, e := range ents {
		if pid, ok := owner(e.Name()); ok && match(pid) {
			out = append(out, "netns "+e.Name())
		}
	}
	c, err := rtnl.Dial(-1)
	if err != nil {
		return out, fmt.Errorf("testnet: list links: %w", err)
	}
	defer c.Close()
	links, err := c.Links()
	if err != nil {
		return out, fmt.Errorf("testnet: %w", err)
	}
	for _, l := range links {
		if pid, ok := owner(l.Name); ok && match(pid) {
			out = append(out, "link "+l.Name)
		}
	}
	return out, nil
}

// owner parses the PID out of a name "ptb-...-PID".
func owner(name string) (int, bool) {
	if !strings.HasPrefix(name, prefix) {
		return 0, false
	}
	i := strings.LastIndexByte(name, '-')
	if i < len(prefix) {
		return 0, false
	}
	pid, err := strconv.Atoi(name[i+1:])
	return pid, err == nil && pid > 0
}

// pidDead reports whether no process has this PID. EPERM means it exists
// but belongs to someone else.
func pidDead(pid int) bool {
	return errors.Is(unix.Kill(pid, 0), unix.ESRCH)
}
