package verify

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/hugetlbcg"
	"github.com/memtrace/memtrace/internal/present/text"
)

// CallLine is one call as verify reports it live, escaped:
// "postgres[123] mmap 144 MiB MAP_SHARED|MAP_ANONYMOUS|MAP_HUGETLB
// (2 MiB pages) = ENOMEM".
func CallLine(c Call) string {
	return text.Escape(fmt.Sprintf("%s[%d] %s %s %s (%s pages) = %s", c.Comm, c.Pid, c.Call, callSize(c), c.FlagNames,
		size(c.PageSize), callResult(c)))
}

func callSize(c Call) string {
	if c.Call == event.CallShmat && c.Size == 0 {
		return "?"
	}
	return size(c.Size)
}

func callResult(c Call) string {
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
var verdictWords = map[Verdict]string{
	OnHugePages:       "ON HUGE PAGES",
	FellBack:          "FELL BACK",
	HugeRequestFailed: "HUGE PAGES FAILED",
	NotRequested:      "NOT REQUESTED",
	NothingSeen:       "NOTHING SEEN",
	HugePageFault:     "HUGE PAGE FAULT FAILED",
}

// WriteText writes the result as `memtrace verify` shows it: what was
// followed, the calls, the fallbacks and failures with their causes, the
// kernel's view, and the verdict last. Everything that comes from the
// followed processes (names, causes quoting them) goes through text.Escape.
func WriteText(w io.Writer, r *Result) error {
	fmt.Fprintf(w, "Followed %s\n  by %s; stopped: %s after %s\n", text.Escape(r.Target), text.Escape(r.Follow),
		r.StopReason, r.End.Sub(r.Start).Round(time.Millisecond))
	if c := r.Command; c != nil {
		if c.Exited {
			fmt.Fprintf(w, "  the command (pid %d) exited with status %d\n", c.Pid, c.ExitCode)
		} else {
			fmt.Fprintf(w, "  the command (pid %d) is still running\n", c.Pid)
		}
	}

	fmt.Fprintf(w, "\nHuge-page requests and shared mappings (large: %s or more)\n", size(r.MinSize))
	if len(r.Calls) == 0 {
		fmt.Fprintln(w, "  none")
	} else {
		t := text.NewTable(w, "#", "TIME", "PID", "COMM", "CALL", "SIZE", "PAGES", "FLAGS", "RESULT", "")
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
				text.Escape(c.Comm), string(c.Call), callSize(c), size(c.PageSize), c.FlagNames, callResult(c), note})
		}
		if err := t.Render(); err != nil {
			return err
		}
	}

	var failures []Call
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
			fmt.Fprintf(w, "  #%d %s %s %s: %s\n", c.Seq, c.Call, size(c.Size), c.Errno, text.Escape(c.Cause.Text))
			if c.Cause.Advice != "" {
				fmt.Fprintf(w, "      fix: %s\n", text.Escape(c.Cause.Advice))
			}
		}
	}

	if len(r.Faults) > 0 {
		fmt.Fprintln(w, "\nHuge-page faults that got no page")
		for _, f := range r.Faults {
			fmt.Fprintf(w, "  %s %s\n", f.Time.Local().Format("15:04:05.000"), text.Escape(FaultLine(f)))
		}
	}
	writeLimits(w, r.HugetlbLimits)

	fmt.Fprintln(w, "\nThe kernel's view after startup (smaps, /proc/sysvipc/shm)")
	if len(r.Confirmations) == 0 {
		fmt.Fprintln(w, "  nothing to confirm")
	} else {
		t := text.NewTable(w, "#", "PID", "WHAT", "PAGE SIZE", "SIZE", "HUGE PAGES TOUCHED", "NOTE")
		for _, c := range r.Confirmations {
			page, mapped, touched := "-", "-", "-"
			if c.Found {
				page, mapped = pageSize(c), kib(c.SizeKB)
				if c.Hugetlb {
					touched = kib(c.FaultedKB)
				}
			}
			note := c.Note
			if len(c.Attachers) > 0 {
				note = strconv.Itoa(len(c.Attachers)) + " attached " + note
			}
			t.Append([]string{strconv.Itoa(c.Seq), strconv.FormatUint(uint64(c.Pid), 10), c.What, page, mapped, touched, text.Escape(note)})
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
	fmt.Fprintf(w, "\nVerdict: %s: %s\n", verdictWords[r.Verdict], text.Escape(r.Summary))
	return nil
}

// writeLimits lists the hugetlb cgroup limits over the followed
// processes, the ones that limit anything.
func writeLimits(w io.Writer, ls []hugetlbcg.Limits) {
	var lines []string
	for _, l := range ls {
		if l.Limit == nil && l.RsvdLimit == nil {
			continue
		}
		line := fmt.Sprintf("  %s %s pages: faulted %s of %s (%s)", l.Path, size(l.PageSize), size(l.Usage), limitText(l.Limit), l.LimitFile)
		if l.RsvdUsage != nil {
			line += fmt.Sprintf(", reserved %s of %s (%s)", size(*l.RsvdUsage), limitText(l.RsvdLimit), l.RsvdLimitFile)
		}
		if l.Failures != nil && *l.Failures > 0 {
			line += fmt.Sprintf(", %d refused", *l.Failures)
		}
		lines = append(lines, line)
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w, "\nHugetlb cgroup limits over the followed processes")
	for _, l := range lines {
		fmt.Fprintln(w, text.Escape(l))
	}
}

func limitText(l *uint64) string {
	if l == nil {
		return "no limit"
	}
	return size(*l)
}

func pageSize(c Confirmation) string {
	if c.KernelPageSizeKB == 0 {
		return "?"
	}
	s := kib(c.KernelPageSizeKB)
	if c.Hugetlb {
		s += " (hugetlb)"
	}
	return s
}

// size writes a byte count, kib one in kB, in the style of the hugepages
// report that verify's causes and confirmations quote.
func size(b uint64) string { return text.Bytes(b, text.TrimZero) }

func kib(v uint64) string { return size(v << 10) }
