package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/memtrace/memtrace/test/vm/internal/proto"
)

// kernelRules are the hook choices issue 7 asks of a kernel family, for
// memtrace's default configuration: on Debian 12's 6.1, fexit on the
// allocator counts allocation failures and a kprobe on warn_alloc marks
// the failures the kernel logs.
var kernelRules = []struct {
	release   *regexp.Regexp
	alloc     string // prefix of the alloc hook
	companion string // attached companion hook, "" for none required
}{
	{regexp.MustCompile(`^6\.1\.`), "fexit/", "kprobe/warn_alloc"},
}

// checkHooks compares the default variant's hooks with what the kernel
// should choose, and returns the unmet expectations. Beyond kernelRules,
// the rule on every kernel: where the fexit variant could attach fexit,
// the default must use it too; where it could not, tp_btf.
func checkHooks(kernel string, sums []proto.Summary) []string {
	var def, fexit *proto.Summary
	for i := range sums {
		switch sums[i].Variant {
		case "default":
			def = &sums[i]
		case "fexit":
			fexit = &sums[i]
		}
	}
	if def == nil {
		return []string{kernel + ": no result of the default variant"}
	}
	alloc := hookOf(*def, "alloc")
	var bad []string
	for _, r := range kernelRules {
		if !r.release.MatchString(kernel) {
			continue
		}
		if !strings.HasPrefix(alloc.Hook, r.alloc) || !alloc.Attached {
			bad = append(bad, fmt.Sprintf("%s: allocation failures should use %s…, memtrace chose %s", kernel, r.alloc, hookDesc(alloc)))
		}
		if r.companion != "" && !slices.Contains(alloc.Companions, r.companion) {
			bad = append(bad, fmt.Sprintf("%s: %s should be attached beside %s, it is not%s", kernel, r.companion, alloc.Hook, rejected(alloc, r.companion)))
		}
	}
	if fexit != nil {
		want := "tp_btf/"
		if fa := hookOf(*fexit, "alloc"); strings.HasPrefix(fa.Hook, "fexit/") && fa.Attached {
			want = "fexit/"
		}
		if !strings.HasPrefix(alloc.Hook, want) && !slices.ContainsFunc(bad, func(s string) bool { return strings.Contains(s, "should use") }) {
			bad = append(bad, fmt.Sprintf("%s: allocation failures should use %s… (what --alloc-hook fexit got here), memtrace chose %s", kernel, want, hookDesc(alloc)))
		}
	}
	return bad
}

func hookOf(s proto.Summary, signal string) proto.Hook {
	for _, h := range s.Hooks {
		if h.Signal == signal {
			return h
		}
	}
	return proto.Hook{Signal: signal, Hook: "(none)"}
}

func hookDesc(h proto.Hook) string {
	if !h.Attached {
		return h.Hook + " (not attached)"
	}
	return h.Hook
}

// rejected returns why hook was not used, if the capture said.
func rejected(h proto.Hook, hook string) string {
	for _, r := range h.Rejected {
		if strings.Contains(r, hook) {
			return " (" + r + ")"
		}
	}
	return ""
}
