package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/memtrace/memtrace/internal/command/hugepages"
	"github.com/memtrace/memtrace/internal/command/verify"
	"github.com/memtrace/memtrace/internal/decode/cgroup"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/present/table"
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
			"The database keeps running. Interrupted (Ctrl-C, SIGTERM, SIGHUP), memtrace\n" +
			"kills the command and everything it started, then reports.\n" +
			"The command's own output goes to standard error.\n\n" +
			"Exit status: 0 when the large shared memory is on huge pages, 1 when it fell\n" +
			"back, was mapped without asking, failed, or none was seen; 2 for usage errors.",
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
			var minSize, readyFile string
			var asJSON, quiet bool
			fs.StringVar(&o.Comm, "comm", "", "follow processes with this command name (exact, up to 15 characters)")
			fs.IntVar(&o.Pid, "pid", 0, "follow this process and the children it starts")
			fs.StringVar(&o.Cgroup, "cgroup", "", "follow the processes of this cgroup (path, v2 or v1 memory)")
			fs.DurationVar(&o.Timeout, "timeout", 2*time.Minute, "give the verdict after this long at the latest (0: until Ctrl-C)")
			fs.DurationVar(&o.Settle, "settle", 3*time.Second, "after a large mapping, give the verdict once nothing happened for this long")
			fs.StringVar(&minSize, "min-size", "64M", "ignore shared mappings smaller than this for the verdict")
			fs.BoolVar(&asJSON, "json", false, "write the result as JSON")
			fs.BoolVarP(&quiet, "quiet", "q", false, "do not report calls on standard error as they happen")
			fs.StringVar(&readyFile, "ready-file", "", "create this file once the probes are attached (before the command starts), and remove it at exit (it must not exist: never overwritten)")
			return func(args []string, stdout, stderr io.Writer) error {
				o.Command = args
				if err := verifyCheckFlags(fs, &o, minSize); err != nil {
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
					o.OnCall = func(c verify.Call) { fmt.Fprintf(stderr, "memtrace: %s\n", verifyCallLine(c)) }
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
				} else if err := renderVerify(stdout, res); err != nil {
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

// verifyCheckFlags checks verify's flags and what they name (the process,
// the cgroup, the command) before anything is attached or started.
func verifyCheckFlags(fs *pflag.FlagSet, o *verify.Options, minSize string) error {
	n := 0
	for _, set := range []bool{len(o.Command) > 0, o.Pid != 0 || fs.Changed("pid"), o.Comm != "", o.Cgroup != ""} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return usagef("give a command after --, or one of --comm, --pid, --cgroup")
	case n > 1:
		return usagef("give only one of a command, --comm, --pid and --cgroup")
	case o.Timeout < 0 || o.Settle < 0:
		return usagef("--timeout and --settle must not be negative")
	}
	minBytes, err := hugepages.ParseSize(minSize)
	if err != nil || minBytes == 0 {
		return usagef("--min-size %q: want a size such as 64M", minSize)
	}
	o.MinSize = minBytes
	switch {
	case len(o.Command) > 0:
		err = checkCommand(o.Command)
	case fs.Changed("pid"):
		err = checkPid(int64(o.Pid))
	case o.Comm != "":
		err = checkComm(o.Comm)
	case o.Cgroup != "":
		if _, cerr := cgroup.ID(o.Cgroup); cerr != nil {
			err = usagef("--cgroup: %v", cerr)
		}
	}
	if err != nil {
		return err
	}
	return beforeWork()
}

// callLine is one call as reported live: "postgres[123] mmap 144 MiB
// MAP_SHARED|MAP_ANONYMOUS|MAP_HUGETLB (2 MiB pages) = ENOMEM".
func verifyCallLine(c verify.Call) string {
	return text.Escape(fmt.Sprintf("%s[%d] %s %s %s (%s pages) = %s", c.Comm, c.Pid, c.Call, verifyCallSize(c), c.FlagNames,
		hugepages.FormatBytes(c.PageSize), verifyCallResult(c)))
}

func verifyCallSize(c verify.Call) string {
	if c.Call == event.CallShmat && c.Size == 0 {
		return "?"
	}
	return hugepages.FormatBytes(c.Size)
}

func verifyCallResult(c verify.Call) string {
	switch {
	case !c.OK:
		return c.Errno
	case c.Address != nil:
		return c.Address.String()
	case c.ShmID != nil:
		return "shmid " + strconv.FormatInt(*c.ShmID, 10)
	}
	return strconv.FormatInt(c.Result, 10)
}

// verdictWords are the verdicts as the last line says them.
var verifyVerdictWords = map[verify.Verdict]string{
	verify.OnHugePages:       "ON HUGE PAGES",
	verify.FellBack:          "FELL BACK",
	verify.HugeRequestFailed: "HUGE PAGES FAILED",
	verify.NotRequested:      "NOT REQUESTED",
	verify.NothingSeen:       "NOTHING SEEN",
}

func renderVerify(w io.Writer, r *verify.Result) error {
	fmt.Fprintf(w, "Followed %s\n  by %s; stopped: %s after %s\n", text.Escape(r.Target), text.Escape(r.Follow),
		r.StopReason, r.End.Sub(r.Start).Round(time.Millisecond))
	if c := r.Command; c != nil {
		if c.Exited {
			fmt.Fprintf(w, "  the command (pid %d) exited with status %d\n", c.Pid, c.ExitCode)
		} else {
			fmt.Fprintf(w, "  the command (pid %d) is still running\n", c.Pid)
		}
	}

	fmt.Fprintf(w, "\nHuge-page requests and shared mappings (large: %s or more)\n", hugepages.FormatBytes(r.MinSize))
	if len(r.Calls) == 0 {
		fmt.Fprintln(w, "  none")
	} else {
		t := table.New(w, 0, "#", "TIME", "PID", "COMM", "CALL", "SIZE", "PAGES", "FLAGS", "RESULT", "")
		for _, c := range r.Calls {
			var notes []string
			if !c.Large && c.Call != event.CallShmat {
				notes = append(notes, "small")
			}
			if c.AfterHugeFailure {
				notes = append(notes, "after a failed huge request")
			}
			note := strings.Join(notes, ", ")
			t.Append([]string{strconv.Itoa(c.Seq), c.Time.Local().Format("15:04:05.000"), strconv.FormatUint(uint64(c.Pid), 10),
				text.Escape(c.Comm), string(c.Call), verifyCallSize(c), hugepages.FormatBytes(c.PageSize), c.FlagNames, verifyCallResult(c), note})
		}
		if err := t.Render(); err != nil {
			return err
		}
	}

	var failures []verify.Call
	for _, c := range r.Calls {
		if c.Cause != nil {
			failures = append(failures, c)
		}
	}
	if len(r.Fallbacks) > 0 || len(failures) > 0 {
		fmt.Fprintln(w, "\nFallbacks and failures")
		for _, f := range r.Fallbacks {
			fmt.Fprintf(w, "  %s[%d]: %s\n", text.Escape(f.Comm), f.Pid, text.Escape(f.Summary))
		}
		for _, c := range failures {
			fmt.Fprintf(w, "  #%d %s %s %s: %s\n", c.Seq, c.Call, hugepages.FormatBytes(c.Size), c.Errno, text.Escape(c.Cause.Text))
			if c.Cause.Advice != "" {
				fmt.Fprintf(w, "      fix: %s\n", text.Escape(c.Cause.Advice))
			}
		}
	}

	fmt.Fprintln(w, "\nThe kernel's view after startup (smaps, /proc/sysvipc/shm)")
	if len(r.Confirmations) == 0 {
		fmt.Fprintln(w, "  nothing to confirm")
	} else {
		t := table.New(w, 0, "#", "PID", "WHAT", "PAGE SIZE", "SIZE", "HUGE PAGES TOUCHED", "NOTE")
		for _, c := range r.Confirmations {
			page, size, touched := "-", "-", "-"
			if c.Found {
				page, size = verifyPageSize(c), hpKB(c.SizeKB)
				if c.Hugetlb {
					touched = hpKB(c.FaultedKB)
				}
			}
			note := c.Note
			if len(c.Attachers) > 0 {
				note = strconv.Itoa(len(c.Attachers)) + " attached " + note
			}
			t.Append([]string{strconv.Itoa(c.Seq), strconv.FormatUint(uint64(c.Pid), 10), c.What, page, size, touched, text.Escape(note)})
		}
		if err := t.Render(); err != nil {
			return err
		}
	}

	if len(r.Findings) > 0 {
		fmt.Fprintln(w, "\nFindings")
		for _, f := range r.Findings {
			fmt.Fprintf(w, "  %s\n", text.Escape(f))
		}
	}
	for _, wr := range r.Warnings {
		fmt.Fprintf(w, "\nwarning: %s\n", text.Escape(wr))
	}
	fmt.Fprintf(w, "\nVerdict: %s: %s\n", verifyVerdictWords[r.Verdict], text.Escape(r.Summary))
	return nil
}

func verifyPageSize(c verify.Confirmation) string {
	if c.KernelPageSizeKB == 0 {
		return "?"
	}
	s := hugepages.FormatPageSize(c.KernelPageSizeKB)
	if c.Hugetlb {
		s += " (hugetlb)"
	}
	return s
}
