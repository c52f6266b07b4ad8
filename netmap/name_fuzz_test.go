package netmap

import (
	"errors"
	"reflect"
	"testing"
)

// FuzzParseName checks that ParseName never panics, that its errors are
// well-formed NameErrors, and that every name it accepts survives a round
// trip through String with a kernel name that fits nr_name.
func FuzzParseName(f *testing.F) {
	for _, tc := range pnValidNames {
		f.Add(tc.in)
	}
	for _, tc := range pnInvalidNames {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseName(s)
		if err != nil {
			var ne *NameError
			if !errors.As(err, &ne) {
				t.Fatalf("ParseName(%q): error %T is not a *NameError", s, err)
			}
			if ne.Name != s || ne.Offset < -1 || ne.Offset > len(s) || ne.Msg == "" {
				t.Fatalf("ParseName(%q): malformed error %+v", s, *ne)
			}
			return
		}
		if n.Mode == RegDefault {
			t.Fatalf("ParseName(%q) left Mode at RegDefault", s)
		}
		if k := n.KernelName(); len(k) > ReqIfNameSize-1 {
			t.Fatalf("ParseName(%q): KernelName %q is %d bytes", s, k, len(k))
		}
		text := n.String()
		back, err := ParseName(text)
		if err != nil {
			t.Fatalf("ParseName(%q) ok, but its String %q does not parse: %v", s, text, err)
		}
		if !reflect.DeepEqual(back, n) {
			t.Fatalf("ParseName(%q) = %s\nString %q parses to %s", s, pnDump(n), text, pnDump(back))
		}
		if again := back.String(); again != text {
			t.Fatalf("String not canonical for %q: %q then %q", s, text, again)
		}
	})
}
