package vm

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
)

// cpioEntry is one parsed newc entry.
type cpioEntry struct {
	name         string
	mode         uint32
	nlink        uint32
	rmajor       uint32
	rminor       uint32
	data         []byte
	uid, gid, mt uint32
}

// readCPIO parses a newc archive independently of cpioWriter, checking
// the alignment rules the kernel's unpacker relies on.
func readCPIO(b []byte) ([]cpioEntry, error) {
	var out []cpioEntry
	off := 0
	for {
		if off%4 != 0 {
			return nil, fmt.Errorf("entry at %d not 4-aligned", off)
		}
		if len(b)-off < 110 {
			return nil, fmt.Errorf("truncated header at %d", off)
		}
		h := b[off : off+110]
		if string(h[:6]) != "070701" {
			return nil, fmt.Errorf("bad magic %q at %d", h[:6], off)
		}
		var f [13]uint32
		for i := range f {
			v, err := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				return nil, fmt.Errorf("field %d at %d: %v", i, off, err)
			}
			f[i] = uint32(v)
		}
		size, namesize := int(f[6]), int(f[11])
		nameStart := off + 110
		if nameStart+namesize > len(b) || namesize == 0 || b[nameStart+namesize-1] != 0 {
			return nil, fmt.Errorf("bad name at %d", off)
		}
		name := string(b[nameStart : nameStart+namesize-1])
		dataStart := (nameStart + namesize + 3) &^ 3
		if dataStart+size > len(b) {
			return nil, fmt.Errorf("%s: truncated data", name)
		}
		for _, z := range b[nameStart+namesize : dataStart] {
			if z != 0 {
				return nil, fmt.Errorf("%s: non-zero name padding", name)
			}
		}
		if name == "TRAILER!!!" {
			return out, nil
		}
		out = append(out, cpioEntry{
			name: name, mode: f[1], uid: f[2], gid: f[3], nlink: f[4], mt: f[5],
			rmajor: f[9], rminor: f[10], data: b[dataStart : dataStart+size],
		})
		off = (dataStart + size + 3) &^ 3
	}
}

func TestCPIORoundTrip(t *testing.T) {
	type file struct {
		name string
		perm uint32
		data string
	}
	files := []file{ // sizes 0..5 cover every padding case
		{"/a", 0o755, ""},
		{"/bb", 0o644, "x"},
		{"/ccc/d", 0o600, "xy"},
		{"/e", 0o755, "xyz"},
		{"/long/name/with/several/parts", 0o700, "abcd"},
		{"/f", 0o755, "abcde"},
	}
	var buf bytes.Buffer
	w := &cpioWriter{w: &buf}
	if err := w.Dir("/dev", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := w.CharDev("/dev/console", 0o600, 5, 1); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := w.File(f.name, f.perm, int64(len(f.data)), strings.NewReader(f.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := readCPIO(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2+len(files) {
		t.Fatalf("got %d entries, want %d", len(got), 2+len(files))
	}
	if e := got[0]; e.name != "dev" || e.mode != cpioDir|0o755 || e.nlink != 2 {
		t.Errorf("dir entry = %+v", e)
	}
	if e := got[1]; e.name != "dev/console" || e.mode != cpioChar|0o600 || e.rmajor != 5 || e.rminor != 1 || len(e.data) != 0 {
		t.Errorf("console entry = %+v", e)
	}
	for i, f := range files {
		e := got[2+i]
		if e.name != f.name[1:] || e.mode != cpioReg|f.perm || string(e.data) != f.data {
			t.Errorf("entry %d = %q mode %o data %q, want %q mode %o data %q",
				i, e.name, e.mode, e.data, f.name[1:], cpioReg|f.perm, f.data)
		}
	}
	for _, e := range got {
		if e.uid != 0 || e.gid != 0 || e.mt != 0 {
			t.Errorf("%s: uid %d gid %d mtime %d, want all 0", e.name, e.uid, e.gid, e.mt)
		}
	}
}

func TestCPIOShortFile(t *testing.T) {
	w := &cpioWriter{w: io.Discard}
	if err := w.File("/x", 0o644, 10, strings.NewReader("short")); err == nil {
		t.Fatal("File with fewer bytes than size: no error")
	}
}

// gunzipCPIO parses a Build output.
func gunzipCPIO(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := readCPIO(raw)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}
