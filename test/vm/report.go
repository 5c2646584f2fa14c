package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/memtrace/memtrace/test/vm/internal/proto"
)

// report prints what the runs showed and returns whether all is well.
func report(w io.Writer, r *runResult, h *hostResult, o options) bool {
	ok := true
	s := r.stream
	if s == nil {
		s = &proto.Stream{}
	}
	fmt.Fprintf(w, "\n== memtrace on %s (%s, %s, cgroup %s)\n", r.kernel, r.pkg, r.accel, o.cgroup)
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
		fmt.Fprintf(w, "  VM FAILED: %v\n", r.bootErr)
		ok = false
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
	guestSums := summaries(s.Files)
	fmt.Fprintln(w, "\n== hooks chosen by memtrace (e2e, every variant attached at once)")
	printHooks(w, r.kernel+" (vm)", guestSums)
	var hostSums []proto.Summary
	if h != nil {
		hostSums = h.summaries
		printHooks(w, h.kernel+" (host)", hostSums)
		if h.exit != 0 {
			fmt.Fprintf(w, "  host e2e FAILED: exit %d %v\n", h.exit, h.err)
			ok = false
		}
	}
	var unmet []string
	if len(guestSums) > 0 {
		unmet = append(unmet, checkHooks(r.kernel, guestSums)...)
	}
	if len(hostSums) > 0 {
		unmet = append(unmet, checkHooks(h.kernel, hostSums)...)
	}
	if len(unmet) > 0 {
		fmt.Fprintln(w, "\n== hook choices that do not match issue 7 (loader)")
		for _, u := range unmet {
			fmt.Fprintf(w, "  FAIL %s\n", u)
		}
		ok = false
	}
	verdict := "PASS"
	if !ok {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "\n== %s\n", verdict)
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
