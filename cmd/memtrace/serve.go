package main

import (
	"fmt"
	"io"
	"net"
	"time"

	"github.com/spf13/pflag"

	"github.com/memtrace/memtrace/internal/command/record"
	"github.com/memtrace/memtrace/internal/command/serve"
	"github.com/memtrace/memtrace/internal/event"
)

func init() { register(serveCommand) }

func serveCommand() *command {
	return &command{
		name:    "serve",
		summary: "keep the probes attached and export Prometheus metrics",
		long: "Keep the probes attached and export what they count at /metrics for Prometheus\n" +
			"(exact allocation-failure and extfrag counts, huge-page requests and fallbacks, the\n" +
			"host's huge-page pools, free blocks per order and sysctls, and memtrace's own\n" +
			"health), plus /healthz. Listens on loopback unless --listen says otherwise; no\n" +
			"endpoint changes anything. SIGTERM or Ctrl-C detaches every probe and exits.\n" +
			"Counts come from the exact in-kernel aggregates, so --sample-first is 1 unless set.",
		usage: "serve [--listen 127.0.0.1:9479] [--signals alloc,extfrag,hugetlb] [flags]",
		examples: []string{
			"sudo memtrace serve",
			"curl -s 127.0.0.1:9479/metrics | grep ^memtrace_",
			"sudo memtrace serve --listen 0.0.0.0:9479 --container-labels=false",
			"sudo memtrace serve --signals alloc,hugetlb --max-series 500",
		},
		bind: func(fs *pflag.FlagSet) func([]string, io.Writer, io.Writer) error {
			var tf traceFlags
			var listen string
			var commLabel, containerLabels bool
			var maxSeries int
			var recordDir string
			var ageOut, interval time.Duration
			fs.StringVar(&listen, "listen", serve.DefaultListen, "address to serve /metrics and /healthz on (host:port)")
			fs.BoolVar(&commLabel, "comm-label", true, "label counters with the process name (comm)")
			fs.BoolVar(&containerLabels, "container-labels", true, "label counters with the container id, pod UID and QoS class")
			fs.IntVar(&maxSeries, "max-series", 2000, "series per counter beyond which new comm/container values fold into \"other\" (0: no limit)")
			fs.DurationVar(&ageOut, "age-out", 10*time.Minute, "delete the in-kernel aggregates of processes idle this long (counters keep their counts; 0: never)")
			fs.DurationVar(&interval, "interval", 10*time.Second, "how often the in-kernel aggregates are read between scrapes")
			fs.StringVar(&recordDir, "record-dir", "", "also run the flight recorder (memtrace record, its defaults) and write incident files here; traces every signal unless --signals is given")
			tf.register(fs)
			return func(args []string, stdout, stderr io.Writer) error {
				if len(args) > 0 {
					return usagef("unexpected argument %q", args[0])
				}
				if err := checkListen(listen); err != nil {
					return err
				}
				if maxSeries < 0 {
					return usagef("--max-series must not be negative")
				}
				if ageOut < 0 {
					return usagef("--age-out must not be negative")
				}
				if interval < time.Second {
					return usagef("--interval must be at least 1s")
				}
				var rec *record.Options
				if recordDir != "" {
					o := record.DefaultOptions()
					o.Dir, o.Version = recordDir, version
					o.Logf = func(format string, args ...any) {
						fmt.Fprintf(stderr, "memtrace serve: record: "+format+"\n", args...)
					}
					rec = &o
					if !fs.Changed("signals") {
						tf.signals = record.Signals()
					}
				}
				cfg, err := tf.loaderConfig()
				if err != nil {
					return err
				}
				if rec != nil {
					recordLoaderConfig(&cfg, *rec)
					rec.Config = captureConfig(cfg, tf.cgroup)
				}
				// serve counts from the exact in-kernel aggregates; the event
				// stream only carries huge-page requests, which are never
				// sampled. Send as few other events as possible, unless the
				// recorder keeps them for its incident files.
				if !fs.Changed("sample-first") && rec == nil {
					cfg.SampleFirst = 1
				}
				ready, err := newReadyFile(tf.readyFile)
				if err != nil {
					return err
				}
				defer ready.remove()
				ctx, stop := runContext()
				defer stop()
				opts := serve.Options{
					Listen: listen, Start: startServe(cfg), SyncInterval: interval, Version: version,
					OnReady: func(addr net.Addr, s event.Source) {
						for _, h := range s.Hooks() {
							if h.Attached {
								fmt.Fprintf(stderr, "memtrace: %s: %s\n", h.Signal, h.Hook)
							} else {
								fmt.Fprintf(stderr, "memtrace: %s: no usable hook\n", h.Signal)
							}
						}
						fmt.Fprintf(stderr, "memtrace: serving http://%s/metrics\n", addr)
						if err := ready.create(); err != nil {
							fmt.Fprintf(stderr, "memtrace serve: %v\n", err)
						}
					},
				}
				opts.Metrics.CommLabel = commLabel
				opts.Metrics.ContainerLabels = containerLabels
				opts.Metrics.MaxSeries = maxSeries
				opts.Metrics.AgeOut = ageOut
				opts.Record = rec
				return serve.Run(ctx, opts)
			}
		},
	}
}
