// Package report draws capture and incident files as one self-contained
// HTML page: inline CSS and SVG computed here, no script or font fetched,
// so it opens offline and can be mailed or attached to a ticket. Names
// in the files are untrusted: html/template escapes them for HTML, after
// text.Escape made control and bidirectional characters visible.
package report

import (
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/memtrace/memtrace/internal/command/capture"
	"github.com/memtrace/memtrace/internal/command/record"
	"github.com/memtrace/memtrace/internal/event"
)

// Input is one file to draw.
type Input struct {
	Name     string // as given on the command line
	Doc      *capture.Document
	Incident *record.Incident // nil for a capture
}

// Load reads capture or incident files.
func Load(paths []string) ([]Input, error) {
	var out []Input
	for _, p := range paths {
		in, err := load(p)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, nil
}

func load(path string) (Input, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is said once
		}
		return Input{}, fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	doc, err := capture.Read(f)
	if err != nil {
		return Input{}, fmt.Errorf("reading %s: %w", path, err)
	}
	inc, err := record.ReadIncident(doc)
	if err != nil {
		return Input{}, fmt.Errorf("reading %s: %w", path, err)
	}
	return Input{Name: filepath.Base(path), Doc: doc, Incident: inc}, nil
}

// AllocFailures returns every input's failure aggregates, for one pprof
// profile of them all, and the window they span.
func AllocFailures(ins []Input) (aggs []event.AllocAggregate, start, end time.Time) {
	for _, in := range ins {
		aggs = append(aggs, in.Doc.AllocFailures...)
		if start.IsZero() || in.Doc.Start.Before(start) {
			start = in.Doc.Start
		}
		if in.Doc.End.After(end) {
			end = in.Doc.End
		}
	}
	return aggs, start, end
}

//go:embed page.html.tmpl
var pageTemplate string

// page is parsed on first use, not at init: every command of the binary
// ran the parse at start-up (0.6 ms, 2,159 allocations), and the tracing
// commands never render a report.
var page = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("page").Parse(pageTemplate))
})

// Write renders the inputs as one HTML page.
func Write(w io.Writer, ins []Input, version string) error {
	p := Page{Version: version, Generated: time.Now().UTC().Format(time.RFC3339)}
	for i, in := range ins {
		p.Sections = append(p.Sections, build(i, in))
	}
	if err := page().Execute(w, p); err != nil {
		return fmt.Errorf("rendering the report: %w", err)
	}
	return nil
}
