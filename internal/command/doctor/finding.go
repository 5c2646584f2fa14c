package doctor

import (
	"encoding/json"
	"fmt"
)

// Severity ranks a finding.
type Severity int

const (
	OK      Severity = iota // nothing to change
	Warn                    // worth a look: a risk, a waste, or a value that could not be read
	Problem                 // the host is failing, or will under load: change something
)

var severityNames = [...]string{"ok", "warn", "problem"}

func (s Severity) String() string {
	if s < OK || s > Problem {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// MarshalJSON writes "ok", "warn" or "problem".
func (s Severity) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Severity) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	for i, n := range severityNames {
		if n == v {
			*s = Severity(i)
			return nil
		}
	}
	return fmt.Errorf("unknown severity %q", v)
}

// ParseSeverity reads "ok", "warn" or "problem".
func ParseSeverity(s string) (Severity, error) {
	var v Severity
	err := v.UnmarshalJSON([]byte(`"` + s + `"`))
	return v, err
}

// Finding is one item of the checklist.
type Finding struct {
	// ID is stable for scripts: "alloc-failures", "watermarks", …
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	Severity Severity `json:"severity"`
	// Summary is the finding in one line.
	Summary string `json:"summary"`
	// Evidence is the values read, in reading order.
	Evidence []Evidence `json:"evidence,omitempty"`
	Tables   []Table    `json:"tables,omitempty"`
	// Why says in one or two sentences why it matters.
	Why string `json:"why,omitempty"`
	// Fix holds the exact lines to apply (sysctl, limits.conf, sysfs);
	// empty when nothing needs to change.
	Fix []string `json:"fix,omitempty"`
	// Notes explain the values: reasoning behind a suggested number,
	// trade-offs, caveats.
	Notes []string `json:"notes,omitempty"`
}

// Evidence is one value read, with where it came from in Label.
type Evidence struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// Table is tabular evidence (zones, failure groups, processes).
type Table struct {
	Title  string     `json:"title,omitempty"`
	Header []string   `json:"header"`
	Rows   [][]string `json:"rows"`
}

func (f *Finding) add(label, format string, args ...any) {
	f.Evidence = append(f.Evidence, Evidence{Label: label, Value: fmt.Sprintf(format, args...)})
}

func (f *Finding) note(format string, args ...any) {
	f.Notes = append(f.Notes, fmt.Sprintf(format, args...))
}

// raise sets the severity to s if that is worse.
func (f *Finding) raise(s Severity) {
	if s > f.Severity {
		f.Severity = s
	}
}

// Skip is a check, or part of one, that could not run.
type Skip struct {
	Check  string `json:"check"`
	Reason string `json:"reason"`
}
