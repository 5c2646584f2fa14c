package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"

	"github.com/memtrace/memtrace/pkg/capture"
	"github.com/memtrace/memtrace/pkg/cgroup"
	"github.com/memtrace/memtrace/pkg/event"
	"github.com/memtrace/memtrace/pkg/loader"
)

// traceFlags are the probe and filter flags shared by tracing commands.
type traceFlags struct {
	signals     []event.Signal
	allocHook   string
	pid         uint32
	comm        string
	cgroup      string
	sampleFirst uint32
	readyFile   string
	disable     string
}

func (f *traceFlags) register(fs *pflag.FlagSet) {
	f.signals = event.AllSignals
	f.allocHook = "auto"
	f.sampleFirst = 64
	fs.Var(signalsValue{&f.signals}, "signals", "signals to trace: alloc, extfrag, hugetlb (comma-separated)")
	fs.Var(choiceValue{&f.allocHook, []string{"auto", "tp_btf", "tracepoint", "fexit"}}, "alloc-hook", "hook for allocation failures: auto (fexit where permitted, else tp_btf, else tracepoint), or only fexit, tp_btf or tracepoint")
	fs.Uint32Var(&f.pid, "pid", 0, "only this process (tgid)")
	fs.StringVar(&f.comm, "comm", "", "only tasks with this command name (exact, up to 15 characters)")
	fs.StringVar(&f.cgroup, "cgroup", "", "only tasks in this cgroup (path, v1 memory or v2)")
	fs.Uint32Var(&f.sampleFirst, "sample-first", 64, "events sent per (process, order, flags, stack) before sampling; 0 sends all (counts are always exact)")
	fs.StringVar(&f.readyFile, "ready-file", "", "create this file once every probe is attached, and remove it at exit (it must not exist: never overwritten)")
	fs.StringVar(&f.disable, "disable-hooks", "", "hook types not to use, to force a fallback: tp_btf, tracepoint, fexit (comma-separated)")
}

// loaderConfig validates the flags and turns them into a loader.Config.
func (f *traceFlags) loaderConfig() (loader.Config, error) {
	cfg := loader.DefaultConfig()
	cfg.Signals = f.signals
	cfg.AllocHook = f.allocHook
	cfg.Pid = f.pid
	if len(f.comm) > 15 {
		return cfg, usagef("--comm %q is longer than the kernel's 15-character command names", f.comm)
	}
	cfg.Comm = f.comm
	cfg.SampleFirst = f.sampleFirst
	disabled, err := loader.ParseHookTypes(f.disable)
	if err != nil {
		return cfg, usagef("--disable-hooks: %v", err)
	}
	cfg.DisableHooks = disabled
	if f.cgroup != "" {
		id, err := cgroup.ID(f.cgroup)
		if err != nil {
			return cfg, usagef("--cgroup: %v", err)
		}
		cfg.CgroupID = id
	}
	return cfg, nil
}

func init() { register(captureCommand) }

func captureCommand() *command {
	return &command{
		name:    "capture",
		summary: "capture events for a while into one JSON document",
		long: "Capture allocation failures, fragmentation events and huge-page requests for a\n" +
			"fixed time (or until Ctrl-C) into one JSON document with the system state\n" +
			"before and after. An interrupted capture still writes a complete document.",
		usage: "capture [--duration 30s] [-o FILE|-] [flags]",
		examples: []string{
			"sudo memtrace capture --duration 30s -o capture.json",
			"sudo memtrace capture --comm postgres --signals hugetlb -o - | jq .events",
			"sudo memtrace capture --cgroup /system.slice/mysql.service --duration 5m -o mysql.json",
		},
		bind: func(fs *pflag.FlagSet) func([]string, io.Writer, io.Writer) error {
			var tf traceFlags
			var duration time.Duration
			var output string
			var maxEvents int
			fs.DurationVarP(&duration, "duration", "d", 30*time.Second, "how long to capture (0: until Ctrl-C)")
			fs.StringVarP(&output, "output", "o", "-", "file to write, - for standard output")
			fs.IntVar(&maxEvents, "max-events", 100000, "events kept in the document; more are counted, not kept")
			tf.register(fs)
			return func(args []string, stdout, stderr io.Writer) error {
				if len(args) > 0 {
					return usagef("unexpected argument %q", args[0])
				}
				if duration < 0 {
					return usagef("--duration must not be negative")
				}
				if maxEvents < 0 {
					return usagef("--max-events must not be negative")
				}
				if output == "" {
					return usagef("--output must name a file, or - for standard output")
				}
				cfg, err := tf.loaderConfig()
				if err != nil {
					return err
				}
				// Everything that could refuse the document is checked
				// before a probe is attached, not after the capture.
				ready, err := newReadyFile(tf.readyFile)
				if err != nil {
					return err
				}
				defer ready.remove()
				if output == "-" {
					if err := checkStdoutOpen(stdout); err != nil {
						return err
					}
				}
				out, err := capture.Create(output, stdout)
				if err != nil {
					return fmt.Errorf("--output: %w", err)
				}
				defer out.Abort()
				ctx, stop := runContext()
				defer stop()
				var readyErr error
				doc, err := capture.Run(ctx, capture.Options{
					Duration: duration, MaxEvents: maxEvents, Loader: cfg,
					CgroupPath: tf.cgroup, Version: version,
					OnReady: func(s *loader.Session) {
						for _, h := range s.Hooks() {
							if h.Attached {
								fmt.Fprintf(stderr, "memtrace: %s: %s\n", h.Signal, h.Hook)
							} else {
								fmt.Fprintf(stderr, "memtrace: %s: no usable hook (see \"hooks\" in the output)\n", h.Signal)
							}
						}
						readyErr = ready.create()
					},
				})
				if err != nil {
					return err
				}
				if readyErr != nil {
					doc.Warnings = append(doc.Warnings, readyErr.Error())
				}
				if err := out.Commit(doc); err != nil {
					return err
				}
				if output != "-" {
					fmt.Fprintf(stderr, "memtrace: wrote %s: %d events (%d left out), %d failure keys, lost %d\n",
						output, len(doc.Events), doc.EventsLeftOut, len(doc.AllocFailures), totalLost(doc))
				}
				return nil
			}
		},
	}
}

func totalLost(doc *capture.Document) uint64 {
	var n uint64
	for _, s := range doc.Stats {
		n += s.Lost
	}
	return n
}
