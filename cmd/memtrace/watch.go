package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/memtrace/memtrace/internal/command/watch"
	"github.com/memtrace/memtrace/internal/event"
)

func init() { register(watchCommand) }

func watchCommand() *command {
	return &command{
		name:    "watch",
		summary: "live view of allocation failures, stalls, fragmentation and huge-page requests",
		long: "Show, refreshed every interval like top, allocation failures and fragmentation\n" +
			"by process (exact in-kernel counts), huge-page requests with failures and silent\n" +
			"fallbacks marked, reclaim and compaction stalls by process (count, time, p50/p99,\n" +
			"outcome; --signals without reclaim,compaction leaves them out), the zones\n" +
			"as read at each failure burst, THP fallbacks apart from the failures that matter,\n" +
			"the atomic demand vm.min_free_kbytes must cover, the memory state of the host and\n" +
			"the health of the probes. --stall-threshold lists each stall at least that long.\n" +
			"'q' or Ctrl-C quits and prints a summary. When standard output is not a terminal,\n" +
			"one plain snapshot is printed per interval; --json streams NDJSON (one event per\n" +
			"line, and a summary line per interval). A reader that stops reading (| head)\n" +
			"ends it like Ctrl-C, with exit status 141; an output that fails, with its error.",
		usage: "watch [--interval 1s] [--pid N] [--comm NAME] [--cgroup PATH] [--stacks] [--stall-threshold 10ms] [--json]",
		examples: []string{
			"sudo memtrace watch",
			"sudo memtrace watch --comm postgres --stacks",
			"sudo memtrace watch --interval 5s | tee watch.log",
			"sudo memtrace watch --stall-threshold 10ms --stacks",
			"sudo memtrace watch --json | jq -c 'select(.kind == \"alloc_failure\")'",
		},
		bind: func(fs *pflag.FlagSet) func([]string, io.Writer, io.Writer) error {
			var tf traceFlags
			var interval, ageOut time.Duration
			var stacks bool
			var nStacks int
			var asJSON bool
			var stallThreshold time.Duration
			fs.DurationVarP(&interval, "interval", "i", time.Second, "refresh interval")
			tf.register(fs)
			fs.BoolVar(&stacks, "stacks", false, "show the most frequent failing kernel stacks, symbolized (of allocation failures, each process, order, flags and context counted under the stack of its first failure), and with --stall-threshold where the newest long stalls began (a stack walk per stall, microseconds)")
			fs.DurationVar(&stallThreshold, "stall-threshold", 0, "list every reclaim or compaction stall at least this long, as it happens (with --json, only those stall events are streamed); 0: none")
			fs.IntVar(&nStacks, "top-stacks", 3, "how many stacks --stacks shows (1 to 100)")
			fs.BoolVar(&asJSON, "json", false, "stream NDJSON: every event, and a summary line per interval")
			fs.DurationVar(&ageOut, "age-out", 10*time.Minute, "drop processes idle this long from the tables (0: never)")
			return func(args []string, stdout, stderr io.Writer) error {
				if len(args) > 0 {
					return usagef("unexpected argument %q", args[0])
				}
				if interval < 100*time.Millisecond {
					return usagef("--interval must be at least 100ms")
				}
				if nStacks < 1 || nStacks > 100 {
					return usagef("--top-stacks must be from 1 to 100")
				}
				if ageOut < 0 {
					return usagef("--age-out must not be negative")
				}
				if stallThreshold < 0 {
					return usagef("--stall-threshold must not be negative")
				}
				if ageOut == 0 {
					ageOut = math.MaxInt64 // never, as in serve: rows are dropped once idle longer
				}
				cfg, err := tf.loaderConfig()
				if err != nil {
					return err
				}
				cfg.StallThreshold = stallThreshold
				cfg.StallStacks = stacks
				out, ok := stdout.(*os.File)
				if !ok {
					return fmt.Errorf("watch needs a file or terminal as standard output")
				}
				if err := checkStdoutOpen(out); err != nil {
					return err
				}
				ready, err := newReadyFile(tf.readyFile)
				if err != nil {
					return err
				}
				defer ready.remove()
				ctx, stop := runContext()
				defer stop()
				opts := watch.Options{
					Interval: interval, Start: startProbes(cfg), JSON: asJSON, Out: out, In: os.Stdin, AgeOut: ageOut,
					StallThreshold: stallThreshold,
					OnReady: func(event.Source) {
						if err := ready.create(); err != nil {
							fmt.Fprintf(stderr, "memtrace watch: %v\n", err)
						}
					},
				}
				if stacks {
					opts.Stacks = nStacks
				}
				return watch.Run(ctx, opts)
			}
		},
	}
}
