package capture

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Write stores the document at path atomically (see Create); "-" writes
// to w.
func Write(path string, w io.Writer, doc *Document) error {
	out, err := Create(path, w)
	if err != nil {
		return err
	}
	defer out.Abort()
	return out.Commit(doc)
}

// Output is where a capture's document goes. It is prepared before the
// capture starts, so a path that cannot take the document (a missing or
// read-only directory, a directory itself) fails at once, not after a
// capture whose data would then be lost.
type Output struct {
	path string
	w    io.Writer // "-": standard output
	tmp  *os.File  // a regular file: written here, renamed over path
}

// Create prepares path for Commit. A regular file (or a new one) is
// written atomically: to a temporary file in the same directory, created
// now, then synced and renamed, so a reader (or an interrupted capture)
// never sees half a document. A path that exists and is not a regular
// file (/dev/null, a FIFO, a terminal) is written in place at Commit:
// renaming over it would replace the device. "-" writes to w.
func Create(path string, w io.Writer) (*Output, error) {
	switch path {
	case "":
		return nil, errors.New("no output file named")
	case "-":
		return &Output{path: path, w: w}, nil
	}
	if fi, err := os.Stat(path); err == nil {
		if fi.IsDir() {
			return nil, fmt.Errorf("%s is a directory", path)
		}
		if !fi.Mode().IsRegular() {
			// Not opened yet: opening a FIFO waits for its reader.
			if err := unix.Faccessat(unix.AT_FDCWD, path, unix.W_OK, unix.AT_EACCESS); err != nil {
				return nil, fmt.Errorf("opening %s: %w", path, err)
			}
			return &Output{path: path}, nil
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("creating a temporary file next to %s: %w", path, err)
	}
	return &Output{path: path, tmp: tmp}, nil
}

// Abort removes the temporary file of a document that was not committed;
// after Commit it does nothing.
func (o *Output) Abort() {
	if o == nil || o.tmp == nil {
		return
	}
	o.tmp.Close()
	os.Remove(o.tmp.Name())
	o.tmp = nil
}

// Commit writes the document where Create said.
func (o *Output) Commit(doc *Document) error {
	switch {
	case o.path == "-":
		return encode(o.w, doc)
	case o.tmp == nil:
		f, err := os.OpenFile(o.path, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("opening %s: %w", o.path, err)
		}
		if err := encode(f, doc); err != nil {
			f.Close()
			return fmt.Errorf("writing %s: %w", o.path, err)
		}
		return f.Close()
	}
	tmp := o.tmp
	defer o.Abort() // removes the temporary file unless renamed
	if err := encode(tmp, doc); err != nil {
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("setting mode of %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), o.path); err != nil {
		return fmt.Errorf("renaming %s to %s: %w", tmp.Name(), o.path, err)
	}
	o.tmp = nil
	return nil
}

func encode(w io.Writer, doc *Document) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// Read parses a capture document and checks its schema.
func Read(r io.Reader) (*Document, error) {
	var doc Document
	dec := json.NewDecoder(r)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("parsing capture: %w", err)
	}
	if doc.Schema != Schema {
		return nil, fmt.Errorf("not a memtrace capture (schema %q)", doc.Schema)
	}
	if doc.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("capture schema version %d is not supported (want %d)", doc.SchemaVersion, SchemaVersion)
	}
	return &doc, nil
}
