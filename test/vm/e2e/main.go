// Command e2e runs the memtrace binary end to end against real kernel
// events, the same way inside the test VM and on the host: it starts one
// `memtrace capture` per variant (default hooks, each allocation hook
// forced, classic tracepoints disabled) all at once, so every variant sees the same events;
// provokes allocation failures, a warn_alloc report, extfrag events and
// huge-page requests with test/provoke (whose private tracefs counters are
// the independent reference); stops the captures with SIGINT as Ctrl-C
// would; and checks what each capture counted.
//
//	e2e -memtrace bin/memtrace -provoke bin/provoke -out DIR
//
// It writes DIR/capture-<variant>.json and DIR/e2e-<variant>.json (a
// proto.Summary) and exits 1 when a check failed.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/memtrace/memtrace/test/vm/internal/proto"
)

// defaultVariants are name=flags: every capture runs at the same time,
// so each forced hook counts the very events the default one counts (on
// 6.1: fexit beside tp_btf and the classic tracepoint).
var defaultVariants = []string{
	"default=",
	"alloc-tp_btf=--alloc-hook tp_btf",
	"alloc-tracepoint=--alloc-hook tracepoint",
	"no-tracepoint=--disable-hooks tracepoint",
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ", ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	memtrace := flag.String("memtrace", "memtrace", "memtrace binary")
	provokeBin := flag.String("provoke", "provoke", "test/provoke binary")
	out := flag.String("out", "e2e-out", "directory for captures and summaries")
	timeout := flag.Duration("timeout", 2*time.Minute, "bound of each provoke run and of each capture's start and stop")
	var variants listFlag
	flag.Var(&variants, "variant", "name=memtrace capture flags (repeatable; default: "+strings.Join(defaultVariants, "; ")+")")
	flag.Parse()
	if len(variants) == 0 {
		variants = defaultVariants
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(2)
	}
	ok, err := run(*memtrace, *provokeBin, *out, variants, *timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

func run(memtrace, provokeBin, out string, variants []string, timeout time.Duration) (bool, error) {
	var caps []*tracer
	for _, v := range variants {
		name, flags, _ := strings.Cut(v, "=")
		c, err := startCapture(memtrace, out, name, strings.Fields(flags))
		if err != nil {
			stopAll(caps, timeout)
			return false, err
		}
		caps = append(caps, c)
	}
	for _, c := range caps {
		c.waitReady(timeout)
	}
	start := time.Now()
	runs := provokeAll(provokeBin, timeout)
	fmt.Printf("e2e: provoked everything in %.1fs\n", time.Since(start).Seconds())
	stopAll(caps, timeout)

	allOK := true
	for _, c := range caps {
		s := c.summarize(runs)
		printSummary(s)
		b, _ := json.MarshalIndent(s, "", "  ")
		if err := os.WriteFile(filepath.Join(out, "e2e-"+c.name+".json"), append(b, '\n'), 0o644); err != nil {
			return false, fmt.Errorf("writing the summary: %w", err)
		}
		allOK = allOK && s.Passed()
	}
	for _, r := range runs {
		if r.err != nil && !r.skipped {
			allOK = false
		}
	}
	return allOK, nil
}

func printSummary(s proto.Summary) {
	fmt.Printf("\n== e2e variant %s (%s) on %s\n", s.Variant, strings.Join(s.Flags, " "), s.Kernel)
	for _, h := range s.Hooks {
		state := "attached"
		if !h.Attached {
			state = "NOT ATTACHED"
		}
		fmt.Printf("  hook %-8s %s  %s", h.Signal, h.Hook, state)
		if len(h.Companions) > 0 {
			fmt.Printf("  + %s", strings.Join(h.Companions, ", "))
		}
		fmt.Println()
		for _, r := range h.Rejected {
			fmt.Printf("      not used: %s\n", r)
		}
	}
	for _, c := range s.Checks {
		verdict := "PASS"
		switch {
		case c.Skipped:
			verdict = "SKIP"
		case !c.OK:
			verdict = "FAIL"
		}
		fmt.Printf("  %s  %-28s %s\n", verdict, c.Name, c.Detail)
	}
}
