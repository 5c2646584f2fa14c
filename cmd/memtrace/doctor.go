package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/memtrace/memtrace/internal/command/doctor"
	"github.com/memtrace/memtrace/internal/command/hugepages"
	"github.com/memtrace/memtrace/pkg/gfp"
)

func init() { register(doctorCommand) }

func doctorCommand() *command {
	return &command{
		name:    "doctor",
		summary: "check memory settings and the kernel log's allocation failures",
		long: "Check this host's memory settings against the seeds' checklist and the kernel\n" +
			"log's history of allocation failures, in about a second and without tracing:\n" +
			"past page allocation failures and vmalloc errors (grouped, mode decoded, call\n" +
			"path named), watermarks and min_free_kbytes, zone_reclaim_mode and NUMA, huge\n" +
			"page pools against SysV segments and large shared memory users with their\n" +
			"memlock limits, transparent huge pages, page tables, and reclaim/compaction\n" +
			"pressure. Each finding has a severity (ok, warn, problem), the values read,\n" +
			"why it matters and the exact line to change.\n\n" +
			"The kernel log is read from /dev/kmsg without consuming or clearing it (then\n" +
			"from dmesg); --kmsg-file reads a copy instead (dmesg, journalctl -k,\n" +
			"/var/log/messages), with modes decoded for the kernel the log names or\n" +
			"--kernel. Without root the log is usually closed (kernel.dmesg_restrict): the\n" +
			"report says what it skipped.\n\n" +
			"Memory stays bounded whatever the log holds: failures are grouped as they are\n" +
			"read, the 256 most frequent groups keep their details and the rest are only\n" +
			"counted. A regular file is read up to the size it had when opened; a pipe,\n" +
			"FIFO or device (which may never end) up to --kmsg-max, 256 MiB unless set,\n" +
			"and the report says when it stopped there. Ctrl-C stops reading, or an\n" +
			"--interval, early: the report covers what was read and measured, and says so.\n\n" +
			"Exit status: 0 when no finding is a problem (warnings included), 1 when at\n" +
			"least one is (or as --fail-on says), 2 for a usage error.",
		usage: "doctor [--json] [--since 24h] [--kmsg-file FILE [--kernel RELEASE] [--kmsg-max 1G]] [--interval 10s] [--measure 60s]",
		examples: []string{
			"memtrace doctor",
			"memtrace doctor --since 24h --interval 10s",
			"sudo memtrace doctor --measure 60s   # size vm.min_free_kbytes from the measured atomic demand",
			"memtrace doctor --kmsg-file messages-db1.txt --kernel 2.6.32-358.el6.x86_64",
			"journalctl -k -b -1 | memtrace doctor --kmsg-file - --kmsg-max 1G",
			"memtrace doctor --json | jq '.failures[] | {comm, count, mode_decoded, path}'",
		},
		bind: func(fs *pflag.FlagSet) func([]string, io.Writer, io.Writer) error {
			var (
				asJSON                   bool
				since, interval, measure time.Duration
				kmsgFile, kernel         string
				kmsgMax                  = "256MiB"
				top                      int
				failOn                   = "problem"
				procRoot                 = "/proc"
				sysRoot                  = "/sys"
			)
			fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
			fs.DurationVar(&since, "since", 0, "only failures logged this long ago or later (0: the whole log)")
			fs.StringVar(&kmsgFile, "kmsg-file", "", "read this copy of a kernel log instead of /dev/kmsg (- for standard input)")
			fs.StringVar(&kmsgMax, "kmsg-max", kmsgMax, "read at most this much of a --kmsg-file that is a pipe, FIFO or device (0: no limit; a regular file is read whole)")
			fs.StringVar(&kernel, "kernel", "", "decode GFP modes for this kernel release (default: the release the log names, else this kernel)")
			fs.DurationVar(&interval, "interval", 0, "measure reclaim/compaction rates and free-memory bursts over this long (0: counters since boot only)")
			fs.DurationVar(&measure, "measure", 0, "trace atomic demand and node reclaim stalls this long (root): recommend vm.min_free_kbytes from the demand's peak, weigh vm.zone_reclaim_mode by the stalls (0: no tracing)")
			fs.IntVar(&top, "top", 5, "processes listed by page table size")
			fs.Var(choiceValue{&failOn, []string{"problem", "warn", "never"}}, "fail-on", "exit 1 when a finding is at least this severe: problem, warn, never")
			fs.StringVar(&procRoot, "proc-root", procRoot, "procfs mount point (for a copied tree)")
			fs.StringVar(&sysRoot, "sys-root", sysRoot, "sysfs mount point (for a copied tree)")
			_ = fs.MarkHidden("proc-root")
			_ = fs.MarkHidden("sys-root")
			return func(args []string, stdout, stderr io.Writer) error {
				if len(args) > 0 {
					return usagef("unexpected argument %q", args[0])
				}
				if since < 0 || interval < 0 || measure < 0 {
					return usagef("--since, --interval and --measure must not be negative")
				}
				if top < 0 {
					return usagef("--top must not be negative")
				}
				if kernel != "" {
					if _, err := gfp.ForRelease(kernel); err != nil {
						return usagef("--kernel: %v", err)
					}
				}
				maxBytes, err := parseKmsgMax(kmsgMax)
				if err != nil {
					return usagef("--kmsg-max: %v", err)
				}
				if err := beforeWork(); err != nil {
					return err
				}
				ctx, stop := runContext()
				defer stop()
				start := time.Now()
				in := doctor.Gather(ctx, doctor.Options{
					ProcRoot: procRoot, SysRoot: sysRoot, LogFile: kmsgFile, Stdin: os.Stdin, Interval: interval,
					Since: since, LogMaxBytes: maxBytes,
				})
				if kmsgFile != "" && in.LogErr != nil {
					return fmt.Errorf("--kmsg-file: %w", in.LogErr)
				}
				if measure > 0 {
					// After the rest: the snapshot is of the host before
					// tracing, and a signal during the measurement still
					// ends with a report of what was measured.
					m, err := doctor.Measure(ctx, measureProbes, measure, 0, procRoot)
					if err != nil {
						return fmt.Errorf("--measure: %w", err)
					}
					in.Measured = m
				}
				rep := doctor.Check(in, doctor.Config{Kernel: kernel, Top: top})
				rep.Elapsed = time.Since(start)
				if asJSON {
					err = doctor.WriteJSON(stdout, rep)
				} else {
					err = doctor.WriteText(stdout, rep)
				}
				if err != nil {
					return fmt.Errorf("writing the report: %w", err)
				}
				return doctorExit(rep, failOn)
			}
		},
	}
}

// parseKmsgMax reads --kmsg-max: a size ("256MiB", "1G"), 0 for no
// bound (kmsg.FileOptions.MaxBytes takes a negative value for that).
func parseKmsgMax(s string) (int64, error) {
	n, err := hugepages.ParseSize(s)
	if err != nil {
		return 0, err
	}
	switch {
	case n == 0:
		return -1, nil
	case n > math.MaxInt64:
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(n), nil
}

// doctorExit turns the worst finding into the exit status --fail-on asks
// for: nil (0) or exit 1 with nothing more printed (the report says why).
func doctorExit(rep *doctor.Report, failOn string) error {
	if failOn == "never" {
		return nil
	}
	limit, err := doctor.ParseSeverity(failOn)
	if err != nil {
		return err
	}
	if rep.Worst() >= limit {
		return &exitError{code: exitFail, err: errors.New("")}
	}
	return nil
}
