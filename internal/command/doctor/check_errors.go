package doctor

import (
	"strings"
)

// readErrorFindings turns each file that could not be read into a finding
// naming it, so a malformed or unreadable file is visible rather than a
// silently missing value.
func readErrorFindings(errs []string) []Finding {
	var out []Finding
	for _, e := range errs {
		path := errorPath(e)
		f := Finding{
			ID: "read-error", Title: "could not read " + path, Severity: Warn,
			Summary: "could not read " + path,
			Why:     "The checks that use it are partial or skipped, and a file the kernel wrote that does not parse may mean this tool does not know this kernel's format.",
		}
		f.add("error", "%s", e)
		if strings.Contains(e, "permission denied") {
			f.Fix = []string{"run as root"}
		}
		out = append(out, f)
	}
	return out
}

// errorPath extracts PATH from "reading PATH: why".
func errorPath(e string) string {
	s, ok := strings.CutPrefix(e, "reading ")
	if !ok {
		if i := strings.Index(e, " /"); i >= 0 {
			s = e[i+1:]
		} else {
			return "a file"
		}
	}
	if i := strings.Index(s, ": "); i > 0 {
		s = s[:i]
	}
	return s
}
