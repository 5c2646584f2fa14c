package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/memtrace/memtrace/test/vm/internal/proto"
)

// kernelRules are the hook choices issue 7 asks of a kernel family, for
// memtrace's default configuration: on Debian 12's 6.1 and Debian 11's
// 5.10, fexit on the allocator (__alloc_pages on 6.1,
// __alloc_pages_nodemask on 5.10) counts allocation failures and a kprobe
// on warn_alloc marks the failures the kernel logs.
//
// Debian 12's arm64 6.1 has BPF trampolines but no ftrace direct calls
// (CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS is x86-only there), so fexit
// on a kernel function fails with ENOTSUPP: the allocation failures come
// from tp_btf, with the refusal reported; kprobes work.
//
// Debian 13's 6.12 has the allocator under 6.10's memory-profiling names
// (__alloc_pages_noprof): fexit on a _noprof kernel, which the 6.18 host
// refuses, runs there.
var kernelRules = []struct {
	release      *regexp.Regexp
	alloc        string // prefix of the alloc hook
	companion    string // attached companion hook, "" for none required
	fexitRefused bool   // the capture must say why fexit was not used
}{
	{regexp.MustCompile(`^6\.1\..*-arm64$`), "tp_btf/", "kprobe/warn_alloc", true},
	{regexp.MustCompile(`^6\.12\.`), "fexit/", "kprobe/warn_alloc", false},
	{regexp.MustCompile(`^6\.1\.`), "fexit/", "kprobe/warn_alloc", false},
	{regexp.MustCompile(`^5\.10\.`), "fexit/", "kprobe/warn_alloc", false},
}

// checkHooks compares the default variant's hooks with what the kernel
// should choose, and returns the unmet expectations. Beyond kernelRules,
// the rule on every kernel: allocation failures use fexit, or, where the
// kernel refuses fexit (the refusal is in the capture's rejected hooks),
// tp_btf.
func checkHooks(kernel string, sums []proto.Summary) []string {
	var def *proto.Summary
	for i := range sums {
		if sums[i].Variant == "default" {
			def = &sums[i]
		}
	}
	if def == nil {
		return []string{kernel + ": no result of the default variant"}
	}
	alloc := hookOf(*def, "alloc")
	var bad []string
	ruled := false
	for _, r := range kernelRules {
		if ruled || !r.release.MatchString(kernel) {
			continue // the first matching rule applies
		}
		ruled = true
		if r.fexitRefused && rejected(alloc, "fexit/") == "" {
			bad = append(bad, fmt.Sprintf("%s: fexit should be refused here and the capture say why, it does not (memtrace chose %s)", kernel, hookDesc(alloc)))
		}
		if !strings.HasPrefix(alloc.Hook, r.alloc) || !alloc.Attached {
			bad = append(bad, fmt.Sprintf("%s: allocation failures should use %s…, memtrace chose %s%s", kernel, r.alloc, hookDesc(alloc), rejected(alloc, r.alloc)))
		}
		if r.companion != "" && !slices.Contains(alloc.Companions, r.companion) {
			bad = append(bad, fmt.Sprintf("%s: %s should be attached beside %s, it is not%s", kernel, r.companion, alloc.Hook, rejected(alloc, r.companion)))
		}
	}
	if ruled || (strings.HasPrefix(alloc.Hook, "fexit/") && alloc.Attached) {
		return bad
	}
	if rejected(alloc, "fexit/") == "" {
		bad = append(bad, fmt.Sprintf("%s: allocation failures use %s, but no reason why not fexit is given", kernel, hookDesc(alloc)))
	} else if !strings.HasPrefix(alloc.Hook, "tp_btf/") || !alloc.Attached {
		bad = append(bad, fmt.Sprintf("%s: fexit is refused here, so allocation failures should use tp_btf/…, memtrace chose %s", kernel, hookDesc(alloc)))
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
