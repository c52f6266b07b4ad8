//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "demo: Linux only (QEMU, network namespaces, AF_XDP)")
	os.Exit(1)
}
