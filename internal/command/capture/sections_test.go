package capture

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/memtrace/memtrace/internal/event"
)

// TestSectionsAfterTheFields: a family added since version 1 writes its
// section after the document's own fields, which keep their encoding, and
// a reader gets it back; the families of version 1 keep their fields.
func TestSectionsAfterTheFields(t *testing.T) {
	doc := sampleDocument()
	var plain bytes.Buffer
	if err := Write("-", &plain, doc); err != nil {
		t.Fatal(err)
	}
	if err := doc.setSection("stalls", []struct {
		Pid   uint32 `json:"pid"`
		Count uint64 `json:"count"`
	}{{7, 3}}); err != nil {
		t.Fatal(err)
	}
	if err := doc.setSection("alloc_failures", []event.AllocAggregate{{Count: 5}}); err != nil || len(doc.AllocFailures) != 1 {
		t.Errorf("alloc rows not in their field: %v", err)
	}
	if err := doc.setSection("processes", []int{1}); err == nil {
		t.Error("a section may replace a field")
	}
	doc.AllocFailures = sampleDocument().AllocFailures
	var buf bytes.Buffer
	if err := Write("-", &buf, doc); err != nil {
		t.Fatal(err)
	}
	head := strings.TrimSuffix(strings.TrimSpace(plain.String()), "}")
	if !strings.HasPrefix(buf.String(), strings.TrimRight(head, "\n ")) {
		t.Error("a section changed the encoding of the fields before it")
	}
	if !strings.HasSuffix(strings.TrimSpace(buf.String()), "\"stalls\": [\n    {\n      \"pid\": 7,\n      \"count\": 3\n    }\n  ]\n}") {
		t.Errorf("section not last:\n%s", buf.String()[max(0, buf.Len()-200):])
	}
	back, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]int
	if err := json.Unmarshal(back.Sections["stalls"], &rows); err != nil || len(rows) != 1 || rows[0]["count"] != 3 {
		t.Errorf("read back %v: %v", rows, err)
	}
	// The sample's own sections (reclaim, compaction) and stalls.
	if len(back.Sections) != 3 || len(back.AllocFailures) != len(doc.AllocFailures) {
		t.Errorf("read back sections %v, %d alloc rows", back.Sections, len(back.AllocFailures))
	}
}
