// Command hello is the guest program of package vm's boot tests.
//
// With no arguments it prints a greeting and exits with code 3, so a test
// can tell the command's code from /init's. "hello stat PATH..." prints
// "PATH: ok CONTENT" (CONTENT for small regular files) or "PATH: missing"
// for each path and exits 1 if any is missing. "hello sleep" prints
// "sleeping" and never exits, for timeout tests.
package main

import (
	"fmt"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Println("hello from the guest")
		os.Exit(3)
	}
	switch os.Args[1] {
	case "stat":
		code := 0
		for _, p := range os.Args[2:] {
			st, err := os.Stat(p)
			switch {
			case err != nil:
				fmt.Printf("%s: missing: %v\n", p, err)
				code = 1
			case st.Mode().IsRegular():
				b, _ := os.ReadFile(p)
				fmt.Printf("%s: ok %s\n", p, strings.TrimSpace(string(b)))
			default:
				fmt.Printf("%s: ok\n", p)
			}
		}
		os.Exit(code)
	case "sleep":
		fmt.Println("sleeping")
		for {
			time.Sleep(time.Hour)
		}
	}
	fmt.Fprintf(os.Stderr, "hello: unknown command %q\n", os.Args[1])
	os.Exit(2)
}
