//go:build !linux

package bench

import "errors"

func runXDPSender() error { return errors.New("the xdp benchmark runs on Linux only") }

func xdpRun(Options) (RunResult, error) {
	return RunResult{}, errors.New("bench: the xdp backend (AF_XDP) exists on Linux only")
}
