package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"

	"github.com/memtrace/memtrace/internal/command/capture"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/present/outfile"
)

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
			var output, pprofPath string
			var maxEvents int
			fs.DurationVarP(&duration, "duration", "d", 30*time.Second, "how long to capture (0: until Ctrl-C)")
			fs.StringVarP(&output, "output", "o", "-", "file to write, - for standard output")
			fs.IntVar(&maxEvents, "max-events", 100000, "events kept in the document; more are counted, not kept")
			fs.StringVar(&pprofPath, "pprof", "", "also write the failing kernel stacks as a pprof profile (gzipped protobuf)")
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
				if pprofPath != "" {
					if err := outfile.CheckDir(pprofPath); err != nil {
						return fmt.Errorf("--pprof: %w", err)
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
					Duration: duration, MaxEvents: maxEvents, Version: version,
					Config: captureConfig(cfg, tf.cgroup), Start: startProbes(cfg),
					OnReady: func(s event.Source) {
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
				if pprofPath != "" {
					if err := writeProfile(pprofPath, doc.AllocFailures, doc.Start, doc.End); err != nil {
						return err
					}
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
