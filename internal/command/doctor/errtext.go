package doctor

import (
	"errors"
	"io/fs"
)

// truncate keeps a corrupt file's content readable in an error.
func truncate(s string) string {
	const max = 60
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// unwrapPath drops the path of an *fs.PathError when the message names
// the file already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
