package capture

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Write stores the document at path atomically: it is written to a
// temporary file in the same directory, synced and renamed, so a reader
// (or an interrupted capture) never sees half a document. "-" writes to w.
//
// A path that exists and is not a regular file (/dev/null, a FIFO, a
// terminal) is written in place: renaming over it would replace the device.
func Write(path string, w io.Writer, doc *Document) error {
	if path == "-" {
		return encode(w, doc)
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("opening %s: %w", path, err)
		}
		if err := encode(f, doc); err != nil {
			f.Close()
			return fmt.Errorf("writing %s: %w", path, err)
		}
		return f.Close()
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("creating temporary file next to %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := encode(tmp, doc); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("syncing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp.Name(), err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("setting mode of %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("renaming %s to %s: %w", tmp.Name(), path, err)
	}
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
