//go:build !linux

package bench

func pin(int) {}
