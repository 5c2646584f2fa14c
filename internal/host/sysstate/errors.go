package sysstate

import (
	"errors"
	"fmt"
	"io/fs"
)

// fileError names the file a value came from, so an operator who sees the
// error knows what to look at: "reading /proc/vmstat: line 3: ...". An
// *fs.PathError for the same file is unwrapped so the path is not said
// twice.
func fileError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == path && err == error(pe) {
		err = pe.Err
	}
	return fmt.Errorf("reading %s: %w", path, err)
}

// lineError is a parse error at a 1-based line of a file's content.
type lineError struct {
	line int
	msg  string
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

func errAtLine(line int, format string, args ...any) error {
	return &lineError{line: line, msg: fmt.Sprintf(format, args...)}
}
