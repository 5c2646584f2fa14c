package doctor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// THP is the transparent huge page configuration.
type THP struct {
	Present bool   `json:"present"` // the kernel has THP
	Enabled string `json:"enabled,omitempty"`
	Defrag  string `json:"defrag,omitempty"`
	// KhugepagedDefrag is khugepaged/defrag: "1" when khugepaged may
	// compact to collapse pages.
	KhugepagedDefrag string `json:"khugepaged_defrag,omitempty"`
}

const thpDir = "kernel/mm/transparent_hugepage"

// readTHP reads the THP settings; a kernel without THP has no directory,
// which is not an error.
func readTHP(sysRoot string) (THP, error) {
	dir := filepath.Join(sysRoot, thpDir)
	var errs []error
	read := func(name string) (string, bool) {
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			if !os.IsNotExist(err) {
				errs = append(errs, fmt.Errorf("reading %s: %w", path, unwrapPath(err)))
			}
			return "", false
		}
		return string(b), true
	}
	choice := func(name string, dst *string) {
		if s, ok := read(name); ok {
			v, err := parseChoice(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("reading %s: %w", filepath.Join(dir, name), err))
				return
			}
			*dst = v
		}
	}
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return THP{}, nil
	}
	t := THP{Present: true}
	choice("enabled", &t.Enabled)
	choice("defrag", &t.Defrag)
	if s, ok := read("khugepaged/defrag"); ok {
		t.KhugepagedDefrag = strings.TrimSpace(s)
	}
	return t, errors.Join(errs...)
}

// parseChoice returns the bracketed word of "always [madvise] never".
func parseChoice(s string) (string, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexByte(s, '[')
	j := strings.IndexByte(s, ']')
	if i < 0 || j < i+2 || strings.Count(s, "[") != 1 || strings.Count(s, "]") != 1 {
		return "", fmt.Errorf("want one [choice], got %q", truncate(s))
	}
	return s[i+1 : j], nil
}
