package report

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/memtrace/memtrace/internal/command/capture"
	"github.com/memtrace/memtrace/internal/event"
)

// render loads the file at path back (as memtrace report does) and
// renders it.
func render(t *testing.T, paths ...string) (string, []Input) {
	t.Helper()
	ins, err := Load(paths)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Write(&b, ins, "test"); err != nil {
		t.Fatal(err)
	}
	return b.String(), ins
}

// counts reads what the page must show from the JSON file itself, not
// from the loaded document.
type counts struct {
	failureMarks, thpMarks, frames int
	failures                       uint64
}

func countsOf(t *testing.T, path string) counts {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Events []struct {
			Kind         string `json:"kind"`
			AllocFailure *struct {
				THPFallback bool `json:"thp_fallback"`
			} `json:"alloc_failure"`
		} `json:"events"`
		AllocFailures []event.AllocAggregate `json:"alloc_failures"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var c counts
	for _, ev := range doc.Events {
		if ev.Kind == "alloc_failure" {
			if ev.AllocFailure.THPFallback {
				c.thpMarks++
			} else {
				c.failureMarks++
			}
		}
	}
	var plain, thp []event.AllocAggregate
	for _, a := range doc.AllocFailures {
		if a.THPFallback {
			thp = append(thp, a)
		} else {
			plain = append(plain, a)
			c.failures += a.Count
		}
	}
	c.frames = trieNodes(plain) + trieNodes(thp)
	return c
}

var (
	failureMark = regexp.MustCompile(`<rect class="mark failure"`)
	thpMark     = regexp.MustCompile(`<rect class="mark thp"`)
	frame       = regexp.MustCompile(`<g class="frame" data-count="(\d+)"`)
)

// checkPage checks a page (as written, or as a browser's DOM) against the
// file's counts, and that the hostile name is text.
func checkPage(t *testing.T, page string, c counts) {
	t.Helper()
	if n := len(failureMark.FindAllString(page, -1)); n != c.failureMarks {
		t.Errorf("%d failure marks, the file has %d failure events", n, c.failureMarks)
	}
	if n := len(thpMark.FindAllString(page, -1)); n != c.thpMarks {
		t.Errorf("%d THP marks, the file has %d THP fallback events", n, c.thpMarks)
	}
	frames := frame.FindAllStringSubmatch(page, -1)
	if len(frames) != c.frames {
		t.Errorf("%d flame-graph frames, the file's stacks have %d distinct frames (with the roots)", len(frames), c.frames)
	}
	if len(frames) > 0 && frames[0][1] != strconv.FormatUint(c.failures, 10) {
		t.Errorf("flame graph root counts %s failures, the file %d", frames[0][1], c.failures)
	}
	if strings.Contains(page, "<img") || strings.Contains(page, `id="pwned"`) || strings.Contains(page, "<title>pwned") {
		t.Error("the hostile process name became markup")
	}
	if !strings.Contains(page, "&lt;script&gt;document.title=") {
		t.Error("the hostile process name is not shown as text")
	}
}

// TestReportMatchesFile: the page holds one mark per failure event and
// one frame per distinct stack frame of the file, and names as text.
func TestReportMatchesFile(t *testing.T) {
	path := writeDoc(t, incidentDoc())
	page, _ := render(t, path)
	checkPage(t, page, countsOf(t, path))
	for _, want := range []string{"Why this was recorded", "failure_burst", "trigger", "Free blocks per order", "some avg10", "shmget", "tp_btf/mm_page_alloc"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page does not show %q", want)
		}
	}
}

// TestReportSelfContained: nothing is fetched: no script, no URL.
func TestReportSelfContained(t *testing.T) {
	page, _ := render(t, writeDoc(t, incidentDoc()))
	for _, bad := range []string{"<script", "<link", "<iframe", "<object", "<img", "http://", "https://", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q", bad)
		}
	}
	if m := regexp.MustCompile(`<[a-z]+[^>]*\s(src|href)=`).FindString(page); m != "" {
		t.Errorf("an element loads something: %s", m)
	}
}

// TestReportCaptureAndSeveralFiles: a plain capture (before and after
// only) and an incident, in one page, each its own section.
func TestReportCaptureAndSeveralFiles(t *testing.T) {
	plain := incidentDoc()
	delete(plain.Sections, "incident")
	page, ins := render(t, writeDoc(t, plain), writeDoc(t, incidentDoc()))
	if len(ins) != 2 || ins[0].Incident != nil || ins[1].Incident == nil {
		t.Fatalf("inputs %+v", ins)
	}
	if strings.Count(page, `<section class="input"`) != 2 || !strings.Contains(page, `data-kind="capture"`) {
		t.Error("want two sections, one a capture")
	}
}

// TestReportEmptyCapture: a capture of nothing still renders.
func TestReportEmptyCapture(t *testing.T) {
	doc := &capture.Document{Schema: capture.Schema, SchemaVersion: capture.SchemaVersion, Events: []event.Event{}}
	page, _ := render(t, writeDoc(t, doc))
	if !strings.Contains(page, "no allocation failures") {
		t.Error("an empty capture does not say it has no failures")
	}
}

// TestLoadRejects: what is not a capture is an error naming the file.
func TestLoadRejects(t *testing.T) {
	dir := t.TempDir()
	bad := dir + "/bad.json"
	os.WriteFile(bad, []byte(`{"schema":"other"}`), 0o644)
	for _, p := range []string{bad, dir + "/missing.json"} {
		if _, err := Load([]string{p}); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want an error naming it", p, err)
		}
	}
}
