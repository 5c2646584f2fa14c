package doctor

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestEscapedNames: a process named with an escape sequence reaches the
// text report escaped, the JSON report as a JSON string.
func TestEscapedNames(t *testing.T) {
	_, r := run(t, "testdata/db", "", Config{Top: 20})
	var text, js bytes.Buffer
	if err := WriteText(&text, r); err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsRune(text.Bytes(), 0x1b) || !strings.Contains(text.String(), `evil\x1b[31mred`) {
		t.Error("escape character reached the text report unescaped")
	}
	if err := WriteJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON does not read back: %v", err)
	}
}
