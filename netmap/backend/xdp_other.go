//go:build !linux

package backend

import (
	"fmt"

	"github.com/ptbhyve/ptbhyve/netmap"
)

func openXDP(n netmap.Name, _ Options) (netmap.Port, error) {
	return nil, fmt.Errorf("%s: AF_XDP exists only on Linux; on FreeBSD use netmap: or vale ports", n)
}
