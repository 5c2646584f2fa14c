package capture

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteAtomicLeavesNoTemporary(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.json")
	doc := &Document{Schema: Schema, SchemaVersion: SchemaVersion}
	if err := Write(path, nil, doc); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "c.json" {
		t.Fatalf("directory holds %v, want only c.json", entries)
	}
	f, _ := os.Open(path)
	defer f.Close()
	if _, err := Read(f); err != nil {
		t.Fatal(err)
	}
}

// A capture to /dev/null (or a FIFO) must write into it, not rename a
// regular file over the device node.
func TestWriteToDeviceKeepsDevice(t *testing.T) {
	doc := &Document{Schema: Schema, SchemaVersion: SchemaVersion}
	if err := Write(os.DevNull, nil, doc); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeDevice == 0 {
		t.Fatalf("%s is no longer a device: %v", os.DevNull, fi.Mode())
	}
}

func TestWriteStdout(t *testing.T) {
	var buf bytes.Buffer
	doc := &Document{Schema: Schema, SchemaVersion: SchemaVersion}
	if err := Write("-", &buf, doc); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(&buf); err != nil {
		t.Fatal(err)
	}
}

func TestReadRejectsOtherSchemas(t *testing.T) {
	for _, in := range []string{`{"schema":"x","schema_version":1}`, `{"schema":"memtrace.capture","schema_version":99}`, `{`} {
		if _, err := Read(bytes.NewBufferString(in)); err == nil {
			t.Errorf("Read(%s) succeeded", in)
		}
	}
}

// Create fails at once for a path that cannot take the document, so the
// capture can refuse it before attaching a probe.
func TestCreateRefusesUnusablePaths(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{"", dir, filepath.Join(dir, "missing", "c.json")} {
		if out, err := Create(path, nil); err == nil {
			out.Abort()
			t.Errorf("Create(%q) succeeded", path)
		}
	}
}

// The temporary file exists from Create on, and Abort removes it.
func TestCreateAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	out, err := Create(filepath.Join(dir, "c.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("directory holds %v, want the temporary file", entries)
	}
	out.Abort()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("directory holds %v after Abort", entries)
	}
}
