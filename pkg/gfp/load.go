package gfp

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// FormatPath is the tracepoint format file, relative to the tracefs mount,
// whose print fmt names the GFP flags.
const FormatPath = "events/kmem/mm_page_alloc/format"

// Load returns the best table available for the running kernel, trying in
// turn:
//
//  1. the mm_page_alloc format file under tracefsDir (exactly what the
//     kernel prints; enum names left in it by 6.10-6.13 are resolved with
//     enum, and bits of enum that its table does not name are named
//     from enum, see withEnumBits),
//  2. enum, the members of the kernel's ___GFP_*_BIT enum (FromEnum),
//  3. the built-in table for release.
//
// Empty tracefsDir, nil enum or empty release skip that step. The error
// lists why each step failed.
func Load(tracefsDir string, enum []EnumMember, release string) (*Table, error) {
	var errs []error
	bits, env, _ := enumBits(enum)
	if tracefsDir != "" {
		path := filepath.Join(tracefsDir, FormatPath)
		data, err := os.ReadFile(path)
		if err == nil {
			source := "tracefs format"
			if usesIdentifiers(string(data)) && env != nil {
				source = "tracefs format with kernel BTF enums"
			}
			t, err := fromFormat(string(data), env, source)
			if err == nil {
				return t.withEnumBits(bits), nil
			}
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
		} else {
			errs = append(errs, fmt.Errorf("reading tracepoint format: %w", err))
		}
	}
	if enum != nil {
		var rel kver
		if release != "" {
			rel, _ = parseRelease(release)
		}
		t, err := fromEnum(enum, rel)
		if err == nil {
			return t, nil
		}
		errs = append(errs, err)
	}
	if release != "" {
		t, err := ForRelease(release)
		if err == nil {
			return t, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, errors.New("loading GFP names: no tracefs, kernel BTF or release given")
	}
	return nil, fmt.Errorf("loading GFP names: %w", errors.Join(errs...))
}

// usesIdentifiers reports whether the print fmt still contains
// ___GFP_*_BIT names, as on 6.10-6.13 before the TRACE_DEFINE_ENUM fix.
func usesIdentifiers(format string) bool {
	toks, err := tokenize(format)
	if err != nil {
		return false
	}
	for _, t := range toks {
		if t.kind == tokIdent && len(t.text) > 7 && t.text[:7] == "___GFP_" {
			return true
		}
	}
	return false
}
