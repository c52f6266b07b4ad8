package pktgen

import (
	"fmt"
	"io"
)

// Printer returns a report callback that writes pkt-gen's per-second line
// to w, prefixed with the run's elapsed time.
func Printer(w io.Writer, prefix string) func(Report) {
	return func(r Report) {
		fmt.Fprintf(w, "%s%7.3f s  %s\n", prefix, r.Elapsed.Seconds(), r)
	}
}
