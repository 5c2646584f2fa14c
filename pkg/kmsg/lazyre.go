package kmsg

import (
	"regexp"
	"sync"
)

// lazyRegexp compiles expr on first use. Compiled at package
// initialisation, the package's expressions cost 2–10 ms and ~0.9 MB on
// every start of every memtrace command, since the one binary links this
// package, though only the commands that parse a kernel log use them.
func lazyRegexp(expr string) func() *regexp.Regexp {
	re := sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
	lazyRegexps = append(lazyRegexps, re)
	return re
}

// lazyRegexps lists every expression, so a test can compile them all: a
// typo must fail the tests, not the first log that reaches it.
var lazyRegexps []func() *regexp.Regexp
