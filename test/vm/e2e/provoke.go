package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// report is the part of provoke's JSON report (provoke.Report) the checks
// use.
type report struct {
	Pid      int
	Comm     string
	Attempts int
	Failed   int
	Events   uint64
	Trigger  string // warnalloc: "oversize", "fdtable" or "xattr"
	Calls    []struct {
		Name  string
		Errno int
	}
}

// provoked is one provoke run.
type provoked struct {
	name    string
	args    []string
	rep     report
	err     error
	skipped bool // the method cannot work here (cgroup v2 for warn_alloc)
}

// provokeRuns are made in this order, one at a time. The huge-page pool
// is set for each request and restored after, so the outcome is known.
var provokeRuns = []struct {
	name string
	args []string
}{
	{"alloc", []string{"allocfail", "-n", "5", "-comm", "mte-alloc"}},
	{"warn", []string{"warnalloc", "-comm", "mte-warn"}},
	{"extfrag", []string{"extfrag", "-min", "3", "-comm", "mte-frag"}},
	{"fallback", []string{"huge", "-op", "fallback", "-reserve", "0", "-comm", "mte-fallback"}},
	{"shmget-fail", []string{"huge", "-op", "shmget", "-reserve", "0", "-comm", "mte-shmfail"}},
	{"shmget-ok", []string{"huge", "-op", "shmget", "-reserve", "1", "-comm", "mte-shmok"}},
	{"mmap-ok", []string{"huge", "-op", "mmap", "-reserve", "1", "-comm", "mte-mmapok"}},
}

func provokeAll(bin string, timeout time.Duration) map[string]*provoked {
	runs := map[string]*provoked{}
	for _, r := range provokeRuns {
		p := &provoked{name: r.name, args: slices.Concat(r.args, []string{"-timeout", timeout.String()})}
		runs[r.name] = p
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), timeout+30*time.Second)
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, p.args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		if jerr := json.Unmarshal(stdout.Bytes(), &p.rep); jerr != nil && err == nil {
			err = fmt.Errorf("decoding the report: %w", jerr)
		}
		if err != nil {
			p.err = fmt.Errorf("provoke %s: %v: %s", strings.Join(p.args, " "), err, strings.TrimSpace(stderr.String()))
			// provoke says so (errors.ErrUnsupported) when its method
			// cannot work here, e.g. it needs the cgroup v1 memory
			// controller; that is the machine, not memtrace.
			p.skipped = strings.Contains(stderr.String(), errors.ErrUnsupported.Error())
		}
		verdict := "ok"
		if p.err != nil {
			verdict = p.err.Error()
		}
		fmt.Printf("e2e: provoke %-11s pid %-6d events %-3d failed %d/%d  %.1fs  %s\n",
			r.name, p.rep.Pid, p.rep.Events, p.rep.Failed, p.rep.Attempts, time.Since(start).Seconds(), verdict)
	}
	return runs
}
