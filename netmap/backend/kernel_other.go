//go:build !(linux || freebsd)

package backend

import (
	"fmt"

	"github.com/ptbhyve/ptbhyve/netmap"
)

func openKernel(n netmap.Name, _ Options) (netmap.Port, error) {
	return nil, fmt.Errorf("%s: kernel netmap exists only on FreeBSD and Linux", n)
}
