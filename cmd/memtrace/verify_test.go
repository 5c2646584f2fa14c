package main

import (
	"strings"
	"testing"
)

func TestVerifyUsage(t *testing.T) {
	for _, args := range [][]string{
		{"verify"},
		{"verify", "--comm", "postgres", "--pid", "1"},
		{"verify", "--comm", "postgres", "--", "true"},
		{"verify", "--comm", "a-name-longer-than-15"},
		{"verify", "--pid", "-4"},
		{"verify", "--comm", "x", "--min-size", "huge"},
		{"verify", "--comm", "x", "--min-size", "0"},
		{"verify", "--comm", "x", "--timeout", "-1s"},
		{"verify", "--nosuchflag"},
	} {
		code, _, errs := hpRun(args...)
		if code != exitUsage || !strings.Contains(errs, "Usage:") {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, errs)
		}
	}
}
