// Package cpio writes the "newc" cpio archives the kernel unpacks as an
// initramfs. It is written here rather than shelling out to cpio(1)
// because that tool is not installed on a fresh machine, and an archive
// built from a list of entries is the same on every run.
package cpio

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// Writer writes entries in order; Close writes the trailer.
type Writer struct {
	w    io.Writer
	n    int64
	ino  uint32
	dirs map[string]bool
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, ino: 1, dirs: map[string]bool{".": true, "": true}}
}

// header writes one newc header and the name, padded to 4 bytes.
func (cw *Writer) header(name string, mode uint32, size int, target string) error {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if len(target) > 0 {
		size = len(target)
	}
	cw.ino++
	h := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		cw.ino, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, len(name)+1, 0)
	if err := cw.write([]byte(h + name + "\x00")); err != nil {
		return err
	}
	return cw.pad()
}

func (cw *Writer) write(b []byte) error {
	n, err := cw.w.Write(b)
	cw.n += int64(n)
	if err != nil {
		return fmt.Errorf("writing cpio archive: %w", err)
	}
	return nil
}

func (cw *Writer) pad() error {
	if r := cw.n % 4; r != 0 {
		return cw.write(make([]byte, 4-r))
	}
	return nil
}

// parents creates the missing parent directories of name, since the
// kernel does not create them itself.
func (cw *Writer) parents(name string) error {
	dir := path.Dir(strings.TrimPrefix(path.Clean("/"+name), "/"))
	if cw.dirs[dir] {
		return nil
	}
	return cw.Dir(dir)
}

// Dir adds a directory (and its parents) with mode 0755.
func (cw *Writer) Dir(name string) error {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if cw.dirs[name] {
		return nil
	}
	if err := cw.parents(name); err != nil {
		return err
	}
	cw.dirs[name] = true
	return cw.header(name, 0o040755, 0, "")
}

// File adds a regular file with the given permission bits.
func (cw *Writer) File(name string, perm fs.FileMode, data []byte) error {
	if err := cw.parents(name); err != nil {
		return err
	}
	if err := cw.header(name, 0o100000|uint32(perm.Perm()), len(data), ""); err != nil {
		return err
	}
	if err := cw.write(data); err != nil {
		return err
	}
	return cw.pad()
}

// CopyFile adds the file at src as name, keeping its permission bits.
func (cw *Writer) CopyFile(name, src string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("adding %s to the initramfs: %w", src, err)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("adding %s to the initramfs: %w", src, err)
	}
	return cw.File(name, fi.Mode(), data)
}

// Symlink adds name pointing to target.
func (cw *Writer) Symlink(name, target string) error {
	if err := cw.parents(name); err != nil {
		return err
	}
	if err := cw.header(name, 0o120777, 0, target); err != nil {
		return err
	}
	if err := cw.write([]byte(target)); err != nil {
		return err
	}
	return cw.pad()
}

// Close writes the trailer entry; it does not close the underlying writer.
func (cw *Writer) Close() error {
	return cw.header("TRAILER!!!", 0, 0, "")
}
