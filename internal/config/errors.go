package config

import (
	"bytes"
	"cmp"
	"errors"
	"slices"
	"strconv"

	"github.com/BurntSushi/toml"
)

// Error is one problem in a configuration file. Its text has the shape
// compilers use, FILE:LINE: KEY: MSG, so editors can jump to it, for example
//
//	/etc/ptbhyve.toml:12: vm.vm0.slots: 1000 is not a power of two; use 1024
//
// Key is the dotted TOML key (quoted where TOML needs it, as [toml.Key.String]
// does) and is empty for syntax errors; Line is 0 when it is unknown.
type Error struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	s := e.File
	if e.Line > 0 {
		s += ":" + strconv.Itoa(e.Line)
	}
	if e.Key != "" {
		s += ": " + e.Key
	}
	return s + ": " + e.Msg
}

// syntaxError converts an error of the TOML decoder, which carries the
// position of the problem, into an *Error.
func syntaxError(file string, data []byte, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		line, p := pe.Position.Line, pe.Position
		// The decoder puts an unexpected line end ("[vm.vm0" without "]")
		// on the next line; the mistake is on the line it ends.
		if p.Len == 1 && 0 <= p.Start && p.Start < len(data) && data[p.Start] == '\n' {
			line = 1 + bytes.Count(data[:p.Start], []byte("\n"))
		}
		return errors.Join(&Error{File: file, Line: line, Msg: pe.Message})
	}
	return errors.Join(&Error{File: file, Msg: err.Error()})
}

// join returns all problems at once, in the order of the file, so that an
// operator fixes a configuration in one edit rather than one run per mistake.
// errors.As and the Unwrap() []error method give the individual *Error values.
func join(errs []*Error) error {
	slices.SortStableFunc(errs, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Key, b.Key))
	})
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
}
