package vm

import (
	"fmt"
	"io"
	"strings"
)

// File type bits of a cpio mode field (the same as stat's S_IF*).
const (
	cpioDir  = 0o040000
	cpioReg  = 0o100000
	cpioChar = 0o020000
)

// cpioWriter writes the SVR4 "newc" cpio format (magic 070701, no CRC),
// the only one the kernel's initramfs unpacker reads. It is written here
// rather than run through cpio(1) so that building a guest needs nothing
// but Go, and so that ownership (root) and times (zero) come out the same
// on every host, whoever runs the build.
//
// An entry is a 110-byte ASCII header (the magic and 13 fields of 8 hex
// digits), the NUL-terminated name padded so header+name is a multiple of
// 4 bytes, then the data padded to 4 bytes. The archive ends with an entry
// named TRAILER!!!. Names carry no leading slash, and the unpacker does
// not create parent directories, so a directory must come before what it
// holds.
type cpioWriter struct {
	w   io.Writer
	ino uint32
}

// Dir adds a directory.
func (c *cpioWriter) Dir(name string, perm uint32) error {
	return c.header(name, cpioDir|perm, 2, 0, 0, 0)
}

// CharDev adds a character device node, such as /dev/console (5, 1),
// which must exist before devtmpfs is mounted for the kernel to give
// /init its console on fds 0-2.
func (c *cpioWriter) CharDev(name string, perm, major, minor uint32) error {
	return c.header(name, cpioChar|perm, 1, 0, major, minor)
}

// File adds a regular file of size bytes read from r.
func (c *cpioWriter) File(name string, perm uint32, size int64, r io.Reader) error {
	if err := c.header(name, cpioReg|perm, 1, size, 0, 0); err != nil {
		return err
	}
	n, err := io.CopyN(c.w, r, size)
	if err != nil {
		return fmt.Errorf("cpio: %s: %d of %d bytes: %w", name, n, size, err)
	}
	return c.pad(size)
}

// Close writes the trailer; it does not close the underlying writer.
func (c *cpioWriter) Close() error {
	return c.header("TRAILER!!!", 0, 1, 0, 0, 0)
}

func (c *cpioWriter) header(name string, mode, nlink uint32, size int64, rmajor, rminor uint32) error {
	name = strings.TrimPrefix(name, "/")
	if name == "" || size < 0 || size > 0xffffffff {
		return fmt.Errorf("cpio: bad entry %q (size %d)", name, size)
	}
	c.ino++
	fields := []uint32{
		c.ino, mode, 0 /* uid */, 0 /* gid */, nlink, 0, /* mtime */
		uint32(size), 0, 0 /* dev major, minor */, rmajor, rminor,
		uint32(len(name) + 1), 0, /* check */
	}
	var b strings.Builder
	b.WriteString("070701")
	for _, f := range fields {
		fmt.Fprintf(&b, "%08X", f)
	}
	b.WriteString(name)
	b.WriteByte(0)
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
	if _, err := io.WriteString(c.w, b.String()); err != nil {
		return fmt.Errorf("cpio: %s: %w", name, err)
	}
	return nil
}

// pad writes the zeros that align data of size bytes to 4.
func (c *cpioWriter) pad(size int64) error {
	if n := (4 - size%4) % 4; n > 0 {
		if _, err := c.w.Write(make([]byte, n)); err != nil {
			return fmt.Errorf("cpio: pad: %w", err)
		}
	}
	return nil
}
