package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/memtrace/memtrace/internal/command/hugepages"
	"github.com/memtrace/memtrace/internal/present/table"
	"github.com/memtrace/memtrace/internal/present/text"
)

func init() { register(hugepagesCommand) }

func hugepagesCommand() *command {
	return &command{
		name:    "hugepages",
		summary: "huge page pools, who uses them, SysV segments and pool sizing (no tracing)",
		long: "Show, without tracing, whether this host's shared memory is on huge pages:\n" +
			"every pool with the memory it wastes (never used = Free - Rsvd), the processes\n" +
			"that map huge pages or large shared memory (from smaps), the System V segments\n" +
			"and who attaches them, the vm.nr_hugepages and memlock limit the segments need,\n" +
			"and the page-table cost of the same memory on 4 KiB and on huge pages.\n" +
			"Without root only your own processes can be read.",
		usage: "hugepages [--plan SIZE --processes N] [--json]",
		examples: []string{
			"sudo memtrace hugepages",
			"memtrace hugepages --plan 64G --processes 1000",
			"sudo memtrace hugepages --json | jq '.sysv_segments[] | select(.on_huge_pages == false)'",
		},
		bind: func(fs *pflag.FlagSet) func([]string, io.Writer, io.Writer) error {
			var asJSON bool
			var plan, minSize string
			var processes int
			var procRoot, sysRoot string
			fs.BoolVar(&asJSON, "json", false, "write JSON instead of tables")
			fs.StringVar(&plan, "plan", "", "also size the pool for this much shared memory (64G, 512M) before the database runs")
			fs.IntVar(&processes, "processes", 100, "database processes for --plan (each adds 20 KiB to the pool, and page tables)")
			fs.StringVar(&minSize, "min-size", "64M", "list shared mappings of at least this size even on base pages")
			fs.StringVar(&procRoot, "proc-root", "/proc", "procfs mount (for tests)")
			fs.StringVar(&sysRoot, "sys-root", "/sys", "sysfs mount (for tests)")
			fs.MarkHidden("proc-root")
			fs.MarkHidden("sys-root")
			return func(args []string, stdout, stderr io.Writer) error {
				if len(args) > 0 {
					return usagef("unexpected argument %q", args[0])
				}
				opts := hugepages.Options{ProcRoot: procRoot, SysRoot: sysRoot}
				minBytes, err := hugepages.ParseSize(minSize)
				if err != nil {
					return usagef("--min-size: %v", err)
				}
				opts.MinSharedBytes = minBytes
				if plan != "" {
					if opts.PlanBytes, err = hugepages.ParseSize(plan); err != nil || opts.PlanBytes == 0 {
						return usagef("--plan %q: want a size such as 64G", plan)
					}
				}
				switch {
				case fs.Changed("processes") && plan == "":
					return usagef("--processes is for --plan: give --plan SIZE too")
				case processes < 0:
					return usagef("--processes must not be negative")
				case processes > pidMaxLimit:
					return usagef("--processes %d: Linux runs at most %d processes", processes, pidMaxLimit)
				}
				if err := hugepages.CheckPlan(opts.PlanBytes, processes); err != nil {
					return usagef("--plan %q --processes %d: %v", plan, processes, err)
				}
				opts.PlanProcesses = processes
				if err := beforeWork(); err != nil {
					return err
				}
				r, err := hugepages.Collect(opts)
				if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(r)
				}
				return renderHugepages(stdout, r)
			}
		},
	}
}

// renderHugepages writes the report as tables. Everything that comes from
// the monitored host (process names, paths) goes through text.Escape.
func renderHugepages(w io.Writer, r *hugepages.Report) error {
	def := r.DefaultPageSizeKB
	fmt.Fprintf(w, "Huge page pools (default page size %s, vm.nr_hugepages %d)\n", hugepages.FormatPageSize(def), r.NrHugepages)
	t := table.New(w, 0, "PAGE SIZE", "TOTAL", "FREE", "RSVD", "SURP", "IN USE", "IN USE OR PROMISED", "NEVER USED", "WASTED")
	for _, p := range r.Pools {
		t.Append([]string{hugepages.FormatPageSize(p.PageSizeKB), hpU(p.Total), hpU(p.Free), hpU(p.Reserved), hpU(p.Surplus),
			hpU(p.InUse()), hpU(p.InUseOrPromised()), hpU(p.NeverUsed()), hugepages.FormatBytes(p.NeverUsedBytes())})
	}
	if err := t.Render(); err != nil {
		return err
	}
	fmt.Fprintln(w, "  in use = Total - Free; in use or promised = Total - Free + Rsvd; never used = Free - Rsvd (lost to everything else)")

	fmt.Fprintf(w, "\nProcesses with huge pages or shared mappings of %s or more\n", hugepages.FormatBytes(r.MinSharedBytes))
	if len(r.Processes) == 0 {
		fmt.Fprintln(w, "  none")
	} else {
		t = table.New(w, 0, "PID", "COMM", "HUGETLB MAPPED", "FAULTED", "PAGE SIZES", "SHARED ON BASE PAGES", "SYSV SHMIDS", "VmPTE", "MEMLOCK")
		for _, p := range r.Processes {
			var faulted uint64
			var sizes []string
			for _, h := range p.Hugetlb {
				faulted += h.FaultedKB
				sizes = append(sizes, hugepages.FormatPageSize(h.PageSizeKB))
			}
			t.Append([]string{strconv.Itoa(p.Pid), text.Escape(p.Comm), hpKB(p.HugetlbMappedKB()), hpKB(faulted), hpDash(strings.Join(sizes, ",")),
				hpKB(p.LargeSharedBaseKB), hpDash(hpJoinInts(p.SysV)), hpKB(p.VmPTEKB), hpMemlock(p.MemlockBytes)})
		}
		if err := t.Render(); err != nil {
			return err
		}
	}
	if r.Unreadable > 0 {
		hint := "run as root to see every process"
		if os.Geteuid() == 0 {
			hint = "another PID namespace's or a security module's refusal"
		}
		fmt.Fprintf(w, "  %d process(es) could not be read (%s)\n", r.Unreadable, hint)
	}

	fmt.Fprintln(w, "\nSystem V shared memory segments")
	if len(r.Segments) == 0 {
		fmt.Fprintln(w, "  none")
	} else {
		t = table.New(w, 0, "SHMID", "KEY", "SIZE", "HUGE PAGES", "NATTCH", "UID", "CREATOR", "ATTACHED BY")
		for _, s := range r.Segments {
			var by []string
			for _, a := range s.Attachers {
				by = append(by, fmt.Sprintf("%d %s", a.Pid, text.Escape(a.Comm)))
			}
			t.Append([]string{strconv.FormatInt(s.ShmID, 10), fmt.Sprintf("%#08x", uint32(s.Key)), hugepages.FormatBytes(s.Size),
				hpSegmentPages(s), hpU(s.Nattch), strconv.FormatUint(uint64(s.UID), 10), strconv.Itoa(s.Cpid), hpDash(strings.Join(by, ", "))})
		}
		if err := t.Render(); err != nil {
			return err
		}
	}

	z := r.Sizing
	fmt.Fprintf(w, "\nSizing for the current System V segments (%s pages, as hugepages_settings.sh)\n", hugepages.FormatPageSize(def))
	if z.Segments == 0 {
		fmt.Fprintln(w, "  no segment of a huge page or more: nothing to size")
	} else {
		fmt.Fprintf(w, "  %d segment(s), %s: %d pages needed; recommended vm.nr_hugepages = %d (now %d)\n",
			z.Segments, hugepages.FormatBytes(z.Bytes), z.NeededPages, z.NrHugepages, r.NrHugepages)
		fmt.Fprintf(w, "  memlock for the database user: %d kB (/etc/security/limits.conf: <user> soft memlock %d, hard memlock %d)\n", z.MemlockKB, z.MemlockKB, z.MemlockKB)
	}
	if p := r.Plan; p != nil {
		c := p.PageTables
		fmt.Fprintf(w, "\nPlan: %s of shared memory for %d processes\n", hugepages.FormatBytes(c.Bytes), c.Processes)
		fmt.Fprintf(w, "  vm.nr_hugepages = %d (%s pages: (shared memory + 20 KiB x processes) / page size); memlock %d kB\n",
			p.Sizing.NrHugepages, hugepages.FormatPageSize(def), p.Sizing.MemlockKB)
		fmt.Fprintf(w, "  page tables with %s pages: %s per process, %s for %d processes\n",
			hugepages.FormatPageSize(c.BasePageKB), hugepages.FormatBytes(c.BaseBytesPerProcess), hugepages.FormatBytes(c.BaseBytesTotal), c.Processes)
		fmt.Fprintf(w, "  page tables with %s pages: %s per process, at most %s for %d processes\n",
			hugepages.FormatPageSize(c.PageSizeKB), hugepages.FormatBytes(c.HugeBytesPerProcess), hugepages.FormatBytes(c.HugeBytesTotal), c.Processes)
	}

	pt := r.Tables
	fmt.Fprintln(w, "\nPage tables (8 bytes per page, per process that maps it)")
	fmt.Fprintf(w, "  PageTables on the host: %s; VmPTE of the processes above: %s\n", hpKB(pt.TotalKB), hpKB(pt.ListedKB))
	if len(pt.PerProcess) > 0 {
		fmt.Fprintf(w, "  their shared mappings (%s in all) would take %s of page tables on %s pages and %s on %s pages\n",
			hugepages.FormatBytes(pt.SharedBytes), hugepages.FormatBytes(pt.AsBasePages), hugepages.FormatPageSize(hugepages.BasePageKB),
			hugepages.FormatBytes(pt.AsHugePages), hugepages.FormatPageSize(def))
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "\nwarning: %s\n", text.Escape(e))
	}
	return nil
}

func hpSegmentPages(s hugepages.SegmentUse) string {
	switch {
	case s.OnHugePages == nil && len(s.Attachers) == 0:
		return "unknown (not attached)"
	case s.OnHugePages == nil:
		return "unknown"
	case *s.OnHugePages:
		return "yes (" + hugepages.FormatPageSize(s.PageSizeKB) + ")"
	}
	return "no (" + hugepages.FormatPageSize(s.PageSizeKB) + ")"
}

func hpU(v uint64) string { return strconv.FormatUint(v, 10) }

func hpKB(v uint64) string { return hugepages.FormatBytes(v << 10) }

func hpDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func hpMemlock(b uint64) string {
	if b == hugepages.Unlimited {
		return "unlimited"
	}
	return hugepages.FormatBytes(b)
}

func hpJoinInts(v []int64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatInt(x, 10)
	}
	return strings.Join(s, ",")
}
