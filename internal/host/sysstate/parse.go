package sysstate

import (
	"bytes"
	"fmt"
	"strconv"
)

// parseSingleUint parses a file that holds one decimal number and a
// newline, the shape of every sysfs hugepages attribute.
func parseSingleUint(data []byte) (uint64, error) {
	s := bytes.TrimSpace(data)
	if len(s) == 0 {
		return 0, fmt.Errorf("empty file, want one number")
	}
	v, err := strconv.ParseUint(string(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("want one number, got %q: %w", truncate(s), err)
	}
	return v, nil
}

// truncate keeps error messages readable when a corrupt file holds a very
// long line.
func truncate(b []byte) string {
	const max = 80
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}

// nextLine splits data at the first newline; it does not allocate, which
// matters for a file read every second.
func nextLine(data []byte) (line, rest []byte) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return data[:i], data[i+1:]
	}
	return data, nil
}
