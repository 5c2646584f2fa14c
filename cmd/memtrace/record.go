package main

import (
	"fmt"
	"io"
	"math"
	"time"

	"github.com/spf13/pflag"

	"github.com/memtrace/memtrace/internal/command/hugepages"
	"github.com/memtrace/memtrace/internal/command/record"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/probe/loader"
)

func init() { register(recordCommand) }

func recordCommand() *command {
	return &command{
		name:    "record",
		summary: "keep the probes attached and write an incident file on each trigger",
		long: "A flight recorder: keep the probes attached and, in bounded memory, the last minutes\n" +
			"of system state (sampled every second, faster during an incident) and of events.\n" +
			"On a trigger (the first allocation failure after a quiet period, a failure burst,\n" +
			"a long reclaim or compaction stall, memory pressure, a failed or fallen-back\n" +
			"huge-page request) write one incident file to --dir in the capture schema: what\n" +
			"came before at once, then the same file complete after --after. Files are written\n" +
			"whole or not at all, the directory is bounded by --max-size (oldest removed\n" +
			"first), and incidents by --cooldown and --rate-limit. `memtrace report` draws them.\n" +
			"Set a trigger to 0 (or --huge=false) to turn it off.",
		usage: "record --dir DIR [--before 2m] [--after 30s] [trigger flags] [flags]",
		examples: []string{
			"sudo memtrace record --dir /var/lib/memtrace",
			"sudo memtrace record --dir /var/lib/memtrace --burst 20/1s --stall 50ms --psi 10",
			"memtrace report /var/lib/memtrace/incident-*.json -o report.html",
		},
		bind: func(fs *pflag.FlagSet) func([]string, io.Writer, io.Writer) error {
			var tf traceFlags
			rf := bindRecordFlags(fs)
			tf.register(fs)
			// Every family: the stall families feed the stall trigger.
			tf.signals = record.Signals()
			fs.Lookup("signals").DefValue = signalsValue{&tf.signals}.String()
			return func(args []string, stdout, stderr io.Writer) error {
				if len(args) > 0 {
					return usagef("unexpected argument %q", args[0])
				}
				opts, err := rf.options()
				if err != nil {
					return err
				}
				cfg, err := tf.loaderConfig()
				if err != nil {
					return err
				}
				recordLoaderConfig(&cfg, opts)
				opts.Config = captureConfig(cfg, tf.cgroup)
				opts.Version = version
				opts.Logf = func(format string, args ...any) {
					fmt.Fprintf(stderr, "memtrace record: "+format+"\n", args...)
				}
				ready, err := newReadyFile(tf.readyFile)
				if err != nil {
					return err
				}
				defer ready.remove()
				ctx, stop := runContext()
				defer stop()
				return record.Run(ctx, opts, startProbes(cfg), func(s event.Source) {
					for _, h := range s.Hooks() {
						if h.Attached {
							fmt.Fprintf(stderr, "memtrace: %s: %s\n", h.Signal, h.Hook)
						} else {
							fmt.Fprintf(stderr, "memtrace: %s: no usable hook\n", h.Signal)
						}
					}
					fmt.Fprintf(stderr, "memtrace: recording to %s\n", opts.Dir)
					if err := ready.create(); err != nil {
						fmt.Fprintf(stderr, "memtrace record: %v\n", err)
					}
				})
			}
		},
	}
}

// recordFlags are record's own flags.
type recordFlags struct {
	dir, maxSize, burst, rateLimit string
	before, after, sample          time.Duration
	cooldown, quiet, stall, ageOut time.Duration
	psi                            float64
	huge                           bool
	maxEvents                      int
}

func bindRecordFlags(fs *pflag.FlagSet) *recordFlags {
	d := record.DefaultOptions()
	f := &recordFlags{}
	fs.StringVar(&f.dir, "dir", "", "directory of the incident files (created if missing; required)")
	fs.DurationVar(&f.before, "before", d.Before, "history kept in memory, written before the trigger")
	fs.DurationVar(&f.after, "after", d.After, "how long to keep recording after the trigger")
	fs.DurationVar(&f.sample, "sample-interval", d.SampleEvery, "system state sampling interval (every "+d.FastEvery.String()+" while an incident records)")
	fs.IntVar(&f.maxEvents, "max-events", d.MaxEvents, "events held in memory and written per incident; more are counted")
	fs.StringVar(&f.maxSize, "max-size", "256M", "bytes of incident files kept in --dir, oldest removed first (0: no bound)")
	fs.DurationVar(&f.cooldown, "cooldown", d.Cooldown, "after an incident, how long its kind of trigger cannot open another")
	fs.StringVar(&f.rateLimit, "rate-limit", d.RateLimit.String(), "at most this many incidents per period (N/DURATION, or off)")
	fs.DurationVar(&f.quiet, "quiet", d.Triggers.Quiet, "trigger: the first allocation failure after this long without one (THP fallbacks excluded)")
	fs.StringVar(&f.burst, "burst", d.Triggers.Burst.String(), "trigger: at least N allocation failures within DURATION (N/DURATION, or off)")
	fs.DurationVar(&f.stall, "stall", d.Triggers.Stall, "trigger: a reclaim or direct compaction stall at least this long")
	fs.Float64Var(&f.psi, "psi", d.Triggers.PSI, "trigger: memory pressure some avg10 (/proc/pressure/memory) at least this many percent")
	fs.BoolVar(&f.huge, "huge", d.Triggers.Huge, "trigger: a huge-page request that failed, or a mapping without huge pages after one")
	fs.DurationVar(&f.ageOut, "age-out", d.AgeOut, "delete the in-kernel aggregates of processes idle this long (0: never)")
	return f
}

// options checks the flags; every mistake is a usage error.
func (f *recordFlags) options() (record.Options, error) {
	o := record.DefaultOptions()
	if f.dir == "" {
		return o, usagef("--dir is required: the directory of the incident files")
	}
	o.Dir, o.Before, o.After, o.SampleEvery = f.dir, f.before, f.after, f.sample
	o.MaxEvents, o.Cooldown, o.AgeOut = f.maxEvents, f.cooldown, f.ageOut
	o.Triggers.Quiet, o.Triggers.Stall, o.Triggers.PSI, o.Triggers.Huge = f.quiet, f.stall, f.psi, f.huge
	var err error
	size, err := hugepages.ParseSize(f.maxSize)
	if err != nil || size > math.MaxInt64 {
		return o, usagef("--max-size %q: want a size such as 256M, or 0", f.maxSize)
	}
	o.MaxSize = int64(size)
	if o.RateLimit, err = record.ParseRate(f.rateLimit); err != nil {
		return o, usagef("--rate-limit: %v", err)
	}
	if o.Triggers.Burst, err = record.ParseRate(f.burst); err != nil {
		return o, usagef("--burst: %v", err)
	}
	checks := []struct {
		bad  bool
		what string
	}{
		{f.before < time.Second, "--before must be at least 1s"},
		{f.before > 24*time.Hour, "--before must be at most 24h"},
		{f.after < 0 || f.after > 24*time.Hour, "--after must be 0 to 24h"},
		{f.sample < 10*time.Millisecond || f.sample > time.Hour, "--sample-interval must be 10ms to 1h"},
		{f.maxEvents < 1 || f.maxEvents > 10_000_000, "--max-events must be 1 to 10000000"},
		{f.cooldown < 0, "--cooldown must not be negative"},
		{f.quiet < 0, "--quiet must not be negative"},
		{f.stall < 0, "--stall must not be negative"},
		{f.ageOut < 0, "--age-out must not be negative"},
		{math.IsNaN(f.psi) || f.psi < 0 || f.psi > 100, "--psi must be 0 to 100"},
	}
	for _, c := range checks {
		if c.bad {
			return o, usagef("%s", c.what)
		}
	}
	o.FastEvery = min(o.FastEvery, o.SampleEvery)
	if err := o.Check(); err != nil {
		return o, usagef("%v", err)
	}
	return o, nil
}

// recordLoaderConfig asks the probes for what the triggers read: every
// stall at least as long as the stall trigger is sent as an event.
func recordLoaderConfig(cfg *loader.Config, o record.Options) {
	if o.Triggers.Stall > 0 {
		cfg.StallThreshold = o.Triggers.Stall
	}
}
