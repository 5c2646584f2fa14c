package cpio

import (
	"bytes"
	"strconv"
	"testing"
)

type entry struct {
	name string
	mode uint64
	data string
}

// parse reads a newc archive back, checking the 4-byte alignment the
// kernel requires.
func parse(t *testing.T, b []byte) []entry {
	t.Helper()
	var out []entry
	off := 0
	field := func(i int) uint64 {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+6+8*i+8]), 16, 64)
		if err != nil {
			t.Fatalf("bad header field at %d: %v", off, err)
		}
		return v
	}
	for {
		if off%4 != 0 || string(b[off:off+6]) != "070701" {
			t.Fatalf("no newc header at offset %d", off)
		}
		mode, size, namesize := field(1), field(6), field(11)
		name := string(b[off+110 : off+110+int(namesize)-1])
		data := off + 110 + int(namesize)
		data += (4 - data%4) % 4
		if name == "TRAILER!!!" {
			return out
		}
		out = append(out, entry{name, mode, string(b[data : data+int(size)])})
		off = data + int(size)
		off += (4 - off%4) % 4
	}
}

func TestArchive(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.File("/vm/bin/x", 0o755, []byte("hello")))
	must(w.Symlink("bin/sh", "busybox"))
	must(w.Dir("vm")) // already there: not written twice
	must(w.File("a", 0o644, nil))
	must(w.Close())
	got := parse(t, buf.Bytes())
	want := []entry{
		{"vm", 0o040755, ""},
		{"vm/bin", 0o040755, ""},
		{"vm/bin/x", 0o100755, "hello"},
		{"bin", 0o040755, ""},
		{"bin/sh", 0o120777, "busybox"},
		{"a", 0o100644, ""},
	}
	if len(got) != len(want) {
		t.Fatalf("entries %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
