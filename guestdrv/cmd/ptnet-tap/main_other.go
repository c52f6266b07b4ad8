//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "ptnet-tap: Linux guests only (it needs Linux's TAP driver)")
	os.Exit(1)
}
