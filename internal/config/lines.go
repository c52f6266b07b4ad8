package config

import (
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// keyLines returns the line on which each key of a TOML document is first
// written, indexed by toml.Key.String(); a dotted key or table header also
// counts as writing each of its prefixes. BurntSushi/toml records key
// positions but does not export them (MetaData has no accessor as of v1.6),
// so semantic errors find their lines here.
//
// It is a small scanner, not a parser: it runs only on documents the TOML
// parser accepted, so it does not diagnose anything, but it always
// terminates and never panics, whatever the input. It follows table headers,
// dotted keys, inline tables (which TOML 1.1 lets span lines) and skips
// strings, multi-line ones included, arrays and comments.
func keyLines(text string) map[string]int {
	s := &lineScanner{text: text, line: 1, lines: map[string]int{}}
	var table toml.Key
	for {
		s.skip(true)
		if s.i >= len(s.text) {
			return s.lines
		}
		if s.peek() == '[' { // [table] or [[array of tables]]
			s.adv(1)
			if s.peek() == '[' {
				s.adv(1)
			}
			table = s.key(nil, true)
			s.skipLine() // the closing brackets and a comment
			continue
		}
		s.keyValue(table, true)
	}
}

type lineScanner struct {
	text    string
	i       int // next byte
	counted int // text[:counted] has line-1 newlines
	line    int
	lines   map[string]int
}

func (s *lineScanner) peek() byte {
	if s.i >= len(s.text) {
		return 0
	}
	return s.text[s.i]
}

func (s *lineScanner) adv(n int) { s.i = min(s.i+n, len(s.text)) }

// skip skips blanks and, when newlines is set, also line ends and comments.
func (s *lineScanner) skip(newlines bool) {
	for s.i < len(s.text) {
		switch s.text[s.i] {
		case ' ', '\t':
		case '\n', '\r':
			if !newlines {
				return
			}
		case '#':
			if !newlines {
				return
			}
			s.skipLine()
			continue
		default:
			return
		}
		s.i++
	}
}

func (s *lineScanner) skipLine() {
	if n := strings.IndexByte(s.text[s.i:], '\n'); n >= 0 {
		s.i += n
	} else {
		s.i = len(s.text)
	}
}

// keyValue scans `key = value` relative to the table base; rec says whether
// to record the keys (not for inline tables inside arrays, whose keys have
// no path of their own).
func (s *lineScanner) keyValue(base toml.Key, rec bool) {
	k := s.key(base, rec)
	if k == nil {
		s.adv(1) // not a key: cannot happen in valid TOML, but move on
		return
	}
	s.skip(false)
	if s.peek() == '=' {
		s.adv(1)
	}
	s.value(k, rec)
}

// key scans a dotted key and returns it appended to base, or nil if there
// is no key here.
func (s *lineScanner) key(base toml.Key, rec bool) toml.Key {
	k := slices.Clip(base)
	for {
		s.skip(false)
		seg, ok := s.segment()
		if !ok {
			break
		}
		k = append(k, seg)
		if rec {
			s.record(k)
		}
		s.skip(false)
		if s.peek() != '.' {
			break
		}
		s.adv(1)
	}
	if len(k) == len(base) {
		return nil
	}
	return k
}

// segment scans one part of a dotted key: bare, "basic" or 'literal'.
func (s *lineScanner) segment() (string, bool) {
	start := s.i
	switch c := s.peek(); {
	case c == '"' || c == '\'':
		s.str()
		raw := s.text[start:s.i]
		if c == '"' {
			if u, err := strconv.Unquote(raw); err == nil {
				return u, true
			}
		}
		if len(raw) >= 2 {
			raw = raw[1 : len(raw)-1]
		}
		return raw, true
	case isBare(c):
		for s.i < len(s.text) && isBare(s.text[s.i]) {
			s.i++
		}
		return s.text[start:s.i], true
	}
	return "", false
}

func isBare(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

func (s *lineScanner) record(k toml.Key) {
	s.line += strings.Count(s.text[s.counted:s.i], "\n")
	s.counted = s.i
	if ks := k.String(); s.lines[ks] == 0 {
		s.lines[ks] = s.line
	}
}

// value skips a value; the keys of an inline table are recorded under k.
func (s *lineScanner) value(k toml.Key, rec bool) {
	s.skip(false)
	switch s.peek() {
	case '"', '\'':
		s.str()
	case '{':
		s.adv(1)
		for {
			s.skip(true)
			switch s.peek() {
			case 0:
				return
			case '}':
				s.adv(1)
				return
			case ',':
				s.adv(1)
			default:
				s.keyValue(k, rec)
			}
		}
	case '[':
		s.adv(1)
		for {
			s.skip(true)
			switch s.peek() {
			case 0:
				return
			case ']':
				s.adv(1)
				return
			case ',':
				s.adv(1)
			default:
				start := s.i
				s.value(nil, false)
				if s.i == start {
					s.adv(1)
				}
			}
		}
	default: // number, boolean or date-time, which may contain a space
		for s.i < len(s.text) && !strings.ContainsRune(",]}#\r\n", rune(s.text[s.i])) {
			s.i++
		}
	}
}

// str skips a string of any of the four kinds, starting at its quote.
func (s *lineScanner) str() {
	q := s.text[s.i]
	delim := strings.Repeat(string(q), 3)
	multi := strings.HasPrefix(s.text[s.i:], delim)
	if multi {
		s.adv(3)
	} else {
		s.adv(1)
	}
	for s.i < len(s.text) {
		c := s.text[s.i]
		switch {
		case c == '\\' && q == '"':
			s.adv(2)
		case !multi && (c == q || c == '\n'):
			s.adv(1)
			return
		case multi && strings.HasPrefix(s.text[s.i:], delim):
			// Up to two quotes may end the content just before the delimiter.
			n := 3
			for n < 5 && s.i+n < len(s.text) && s.text[s.i+n] == q {
				n++
			}
			s.adv(n)
			return
		default:
			s.adv(1)
		}
	}
}
