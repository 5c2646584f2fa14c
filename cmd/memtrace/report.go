package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"

	"github.com/memtrace/memtrace/internal/command/report"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/present/outfile"
	"github.com/memtrace/memtrace/internal/present/stacks"
)

func init() { register(reportCommand) }

func reportCommand() *command {
	return &command{
		name:    "report",
		summary: "draw capture or incident files as one self-contained HTML page",
		long: "Draw capture and incident files (memtrace capture, memtrace record) as one HTML\n" +
			"file that opens offline: why an incident was recorded, a timeline of failures and\n" +
			"stalls per process, free memory and watermarks, free blocks per order, memory\n" +
			"pressure, huge-page requests, the failing kernel stacks as a flame graph, and the\n" +
			"hooks used and events lost. --pprof also writes the failing stacks as a pprof\n" +
			"profile (go tool pprof, Pyroscope, Parca, Grafana).",
		usage: "report FILE... -o report.html [--pprof FILE]",
		examples: []string{
			"memtrace report /var/lib/memtrace/incident-*.json -o report.html",
			"memtrace report capture.json -o report.html --pprof failures.pb.gz",
			"go tool pprof -top failures.pb.gz",
		},
		bind: func(fs *pflag.FlagSet) func([]string, io.Writer, io.Writer) error {
			var output, pprofPath string
			fs.StringVarP(&output, "output", "o", "", "HTML file to write (required)")
			fs.StringVar(&pprofPath, "pprof", "", "also write the failing stacks as a pprof profile (gzipped protobuf)")
			return func(args []string, stdout, stderr io.Writer) error {
				if len(args) == 0 {
					return usagef("no capture or incident file given")
				}
				if output == "" && pprofPath == "" {
					return usagef("-o FILE is required (or --pprof FILE)")
				}
				for _, p := range []string{output, pprofPath} {
					if p == "" {
						continue
					}
					if err := outfile.CheckDir(p); err != nil {
						return err
					}
				}
				if err := beforeWork(); err != nil {
					return err
				}
				ins, err := report.Load(args)
				if err != nil {
					return err
				}
				if output != "" {
					if err := outfile.Write(output, func(w io.Writer) error { return report.Write(w, ins, version) }); err != nil {
						return err
					}
					fmt.Fprintf(stderr, "memtrace: wrote %s from %d file(s)\n", output, len(ins))
				}
				if pprofPath != "" {
					aggs, start, end := report.AllocFailures(ins)
					if err := writeProfile(pprofPath, aggs, start, end); err != nil {
						return err
					}
					fmt.Fprintf(stderr, "memtrace: wrote %s\n", pprofPath)
				}
				return nil
			}
		},
	}
}

// writeProfile writes failing stacks as a pprof profile, whole or not at
// all.
func writeProfile(path string, aggs []event.AllocAggregate, start, end time.Time) error {
	return outfile.Write(path, func(w io.Writer) error { return stacks.WriteProfile(w, aggs, start, end) })
}
