//go:build !linux

package ptnetmap

func pinThread(int) {}
