package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/memtrace/memtrace/internal/command/hugepages"
	"github.com/memtrace/memtrace/internal/command/verify"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/present/text"
)

func init() { register(verifyCommand) }

func verifyCommand() *command {
	return &command{
		name:    "verify",
		summary: "watch a database start and say whether its shared memory got huge pages",
		long: "Watch a database start and give a verdict: is its large shared memory on huge\n" +
			"pages? Every huge-page request (shmget SHM_HUGETLB, mmap MAP_HUGETLB) is shown\n" +
			"with its result, a failed request is paired with the base-page mapping that\n" +
			"replaced it (the silent fallback of PostgreSQL huge_pages=try, MySQL, MariaDB,\n" +
			"Oracle), the cause is explained where the host shows it, and the kernel's own\n" +
			"view (smaps, /proc/sysvipc/shm) confirms the result after startup.\n\n" +
			"Give the command to start after --: memtrace follows it and all its children\n" +
			"(in a cgroup of its own). Or wait for a process someone else starts with\n" +
			"--comm, --pid (and its children) or --cgroup (a service's cgroup).\n\n" +
			"The watch ends when the command and everything it started have exited, when\n" +
			"a large mapping was seen and nothing happened for --settle, or at --timeout.\n" +
			"With --follow, memtrace keeps watching that long after startup: a fault on a\n" +
			"huge-page mapping that gets no page (SIGBUS during warm-up) fails the verdict,\n" +
			"naming the mapping and the cause (pool empty, no reservation, hugetlb cgroup).\n" +
			"The database keeps running. Interrupted (Ctrl-C, SIGTERM, SIGHUP), memtrace\n" +
			"kills the command and everything it started, then reports.\n" +
			"The command's own output goes to standard error.\n\n" +
			"Exit status: 0 when the large shared memory is on huge pages, 1 when it fell\n" +
			"back, was mapped without asking, failed, a huge-page fault got no page, or\n" +
			"none was seen; 2 for usage errors.",
		usage: "verify [flags] -- COMMAND [ARG...] | verify --comm NAME|--pid PID|--cgroup PATH [flags]",
		examples: []string{
			"sudo memtrace verify -- runuser -u postgres -- pg_ctl -D /var/lib/postgresql/data -w start",
			"sudo memtrace verify --comm mysqld --timeout 5m      # then start MySQL elsewhere",
			"sudo memtrace verify --cgroup /system.slice/postgresql@15-main.service --json",
		},
		bind: func(fs *pflag.FlagSet) func([]string, io.Writer, io.Writer) error {
			// The command's own flags (-D, -w) are not memtrace's.
			fs.SetInterspersed(false)
			var o verify.Options
			var pid int
			var minSize, readyFile string
			var asJSON, quiet bool
			fs.StringVar(&o.Comm, "comm", "", "follow processes with this command name (exact, up to 15 characters)")
			fs.IntVar(&pid, "pid", 0, "follow this process and the children it starts")
			fs.StringVar(&o.Cgroup, "cgroup", "", "follow the processes of this cgroup (path, v2 or v1 memory)")
			fs.DurationVar(&o.Timeout, "timeout", 2*time.Minute, "give the verdict after this long at the latest (0: until Ctrl-C)")
			fs.DurationVar(&o.Settle, "settle", 3*time.Second, "after a large mapping, give the verdict once nothing happened for this long")
			fs.DurationVar(&o.Follow, "follow", 0, "after startup, keep following this long: a huge page missing at fault time (SIGBUS) fails the verdict")
			fs.StringVar(&minSize, "min-size", "64M", "ignore shared mappings smaller than this for the verdict")
			fs.BoolVar(&asJSON, "json", false, "write the result as JSON")
			fs.BoolVarP(&quiet, "quiet", "q", false, "do not report calls on standard error as they happen")
			fs.StringVar(&readyFile, "ready-file", "", "create this file once the probes are attached (before the command starts), and remove it at exit (it must not exist: never overwritten)")
			return func(args []string, stdout, stderr io.Writer) error {
				o.Command = args
				if fs.Changed("pid") {
					o.Pid = &pid
				}
				if err := verifyCheckFlags(&o, minSize); err != nil {
					return err
				}
				ready, err := newReadyFile(readyFile)
				if err != nil {
					return err
				}
				defer ready.remove()
				var readyErr error
				o.OnReady = func(hooks []event.HookStatus) {
					for _, h := range hooks {
						if h.Attached && !quiet {
							fmt.Fprintf(stderr, "memtrace: %s: %s\n", h.Signal, h.Hook)
						}
					}
					readyErr = ready.create()
				}
				if !quiet {
					o.OnCall = func(c verify.Call) { fmt.Fprintf(stderr, "memtrace: %s\n", verify.CallLine(c)) }
					o.Logf = func(format string, args ...any) {
						fmt.Fprintf(stderr, "memtrace: %s\n", text.Escape(fmt.Sprintf(format, args...)))
					}
				}
				o.Stdin = os.Stdin
				o.Start = verifyProbes
				// On any of them verify kills the command and all it started.
				ctx, stop := runContext()
				defer stop()
				res, err := verify.Run(ctx, o)
				if err != nil {
					return err
				}
				if readyErr != nil {
					res.Warnings = append(res.Warnings, readyErr.Error())
				}
				if asJSON {
					enc := json.NewEncoder(stdout)
					enc.SetIndent("", "  ")
					if err := enc.Encode(res); err != nil {
						return err
					}
				} else if err := verify.WriteText(stdout, res); err != nil {
					return err
				}
				if code := res.Verdict.ExitCode(); code != 0 {
					return &exitError{code: code, err: errors.New(text.Escape(string(res.Verdict) + ": " + res.Summary))}
				}
				return nil
			}
		},
	}
}

// verifyCheckFlags turns the flags into options and checks them before
// anything is attached or started: verify's own rules (Options.Validate),
// then whether its target exists (the rules every command shares).
func verifyCheckFlags(o *verify.Options, minSize string) error {
	if err := o.Validate(); err != nil {
		return usagef("%v", err)
	}
	minBytes, err := hugepages.ParseSize(minSize)
	if err != nil || minBytes == 0 {
		return usagef("--min-size %q: want a size such as 64M", minSize)
	}
	o.MinSize = minBytes
	switch {
	case len(o.Command) > 0:
		err = checkCommand(o.Command)
	case o.Pid != nil:
		err = checkPid(int64(*o.Pid))
	case o.Cgroup != "":
		_, err = checkCgroup(o.Cgroup)
	}
	if err != nil {
		return err
	}
	return beforeWork()
}
