package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/memtrace/memtrace/test/vm/internal/proto"
)

// report prints what the runs showed, a section per kernel and then the
// hooks every kernel chose, and returns whether all is well.
func report(w io.Writer, runs []*runResult, h *hostResult, o options) bool {
	var failed []string
	for _, r := range runs {
		if !reportRun(w, r, o) {
			failed = append(failed, r.kernel)
		}
	}
	fmt.Fprintln(w, "\n== hooks chosen by memtrace (e2e, every variant attached at once)")
	var unmet []string
	for _, r := range runs {
		var sums []proto.Summary
		if r.stream != nil {
			sums = summaries(r.stream.Files)
		}
		printHooks(w, r.kernel+" (vm)", sums)
		if len(sums) > 0 {
			unmet = append(unmet, checkHooks(r.kernel, sums)...)
		}
	}
	if h != nil {
		printHooks(w, h.kernel+" (host)", h.summaries)
		if h.exit != 0 {
			fmt.Fprintf(w, "  host e2e FAILED: exit %d %v\n", h.exit, h.err)
			failed = append(failed, h.kernel+" (host)")
		}
		if len(h.summaries) > 0 {
			unmet = append(unmet, checkHooks(h.kernel, h.summaries)...)
		}
	}
	if len(unmet) > 0 {
		fmt.Fprintln(w, "\n== hook choices that do not match issue 7 (loader)")
		for _, u := range unmet {
			fmt.Fprintf(w, "  FAIL %s\n", u)
		}
		failed = append(failed, "hook choices")
	}
	if len(failed) > 0 {
		fmt.Fprintf(w, "\n== FAIL: %s\n", strings.Join(failed, ", "))
		return false
	}
	fmt.Fprintln(w, "\n== PASS")
	return true
}

// reportRun prints one kernel's boot and steps and returns whether they
// all succeeded.
func reportRun(w io.Writer, r *runResult, o options) bool {
	ok := true
	s := r.stream
	if s == nil {
		s = &proto.Stream{}
	}
	from := r.pkg
	if r.entry.suite != "" {
		from += " from " + r.entry.suite
	}
	how := []string{from}
	if r.accel != "" {
		how = append(how, r.accel)
	}
	fmt.Fprintf(w, "\n== memtrace on %s (%s, cgroup %s)\n", r.kernel, strings.Join(how, ", "), r.cgroup)
	if !s.InfoAt.IsZero() {
		fmt.Fprintf(w, "  booted in %.1fs", s.InfoAt.Sub(r.started).Seconds())
		if n := len(s.Results); n > 0 {
			fmt.Fprintf(w, ", first result after %.1fs, all results after %.1fs",
				s.Results[0].At.Sub(r.started).Seconds(), s.Results[n-1].At.Sub(r.started).Seconds())
		}
		fmt.Fprintf(w, " (qemu ran %.1fs)\n", r.took.Seconds())
		fmt.Fprintf(w, "  guest: %s\n", infoLine(s.Info))
	}
	if r.bootErr != nil {
		fmt.Fprintf(w, "  FAILED: %v\n", r.bootErr)
		ok = false
	}
	if r.out != "" {
		fmt.Fprintf(w, "  logs: %s\n", r.out)
	}
	fmt.Fprintf(w, "  %-16s %5s %5s %5s %5s %8s\n", "step", "exit", "pass", "fail", "skip", "seconds")
	for _, res := range s.Results {
		c := countTests(res.Output)
		fmt.Fprintf(w, "  %-16s %5d %5d %5d %5d %8.1f\n", res.Name, res.Exit, c.pass, c.fail, c.skip, res.Seconds)
		for _, f := range c.failed {
			fmt.Fprintf(w, "      FAIL %s\n", f)
		}
		for _, sk := range c.skipped {
			fmt.Fprintf(w, "      skip %s\n", sk)
		}
		if res.Exit != 0 {
			ok = false
		}
	}
	return ok
}

func printHooks(w io.Writer, label string, sums []proto.Summary) {
	if len(sums) == 0 {
		fmt.Fprintf(w, "  %s: no e2e results\n", label)
		return
	}
	fmt.Fprintf(w, "  %s\n", label)
	for _, s := range sums {
		var parts []string
		for _, h := range s.Hooks {
			d := h.Signal + " " + hookDesc(h)
			if len(h.Companions) > 0 {
				d += " + " + strings.Join(h.Companions, ",")
			}
			parts = append(parts, d)
		}
		pass, fail, skip := checkCounts(s)
		fmt.Fprintf(w, "    %-16s %s  [checks: %d pass, %d fail, %d skip]\n", s.Variant, strings.Join(parts, " · "), pass, fail, skip)
		for _, c := range s.Checks {
			if !c.OK && !c.Skipped {
				fmt.Fprintf(w, "        FAIL %s: %s\n", c.Name, c.Detail)
			}
		}
	}
}

func checkCounts(s proto.Summary) (pass, fail, skip int) {
	for _, c := range s.Checks {
		switch {
		case c.Skipped:
			skip++
		case c.OK:
			pass++
		default:
			fail++
		}
	}
	return
}

func infoLine(info map[string]string) string {
	var parts []string
	for _, k := range []string{"kernel", "cgroup", "mem_mib", "lockdown", "uptime_at_init"} {
		if v, ok := info[k]; ok {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, " ")
}
