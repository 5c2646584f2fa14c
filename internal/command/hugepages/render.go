package hugepages

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/memtrace/memtrace/internal/present/text"
)

// WriteText writes the report as tables, as `memtrace hugepages` shows it.
// Everything that comes from the monitored host (process names, paths)
// goes through text.Escape.
func WriteText(w io.Writer, r *Report) error {
	def := r.DefaultPageSizeKB
	fmt.Fprintf(w, "Huge page pools (default page size %s, vm.nr_hugepages %d)\n", kib(def), r.NrHugepages)
	t := text.NewTable(w, "PAGE SIZE", "TOTAL", "FREE", "RSVD", "SURP", "IN USE", "IN USE OR PROMISED", "NEVER USED", "WASTED")
	for _, p := range r.Pools {
		t.Append([]string{kib(p.PageSizeKB), u(p.Total), u(p.Free), u(p.Reserved), u(p.Surplus),
			u(p.InUse()), u(p.InUseOrPromised()), u(p.NeverUsed()), size(p.NeverUsedBytes())})
	}
	if err := t.Render(); err != nil {
		return err
	}
	fmt.Fprintln(w, "  in use = Total - Free; in use or promised = Total - Free + Rsvd; never used = Free - Rsvd (lost to everything else)")

	fmt.Fprintf(w, "\nProcesses with huge pages or shared mappings of %s or more\n", size(r.MinSharedBytes))
	if len(r.Processes) == 0 {
		fmt.Fprintln(w, "  none")
	} else {
		t = text.NewTable(w, "PID", "COMM", "HUGETLB MAPPED", "FAULTED", "PAGE SIZES", "SHARED ON BASE PAGES", "SYSV SHMIDS", "VmPTE", "MEMLOCK")
		for _, p := range r.Processes {
			var faulted uint64
			var sizes []string
			for _, h := range p.Hugetlb {
				faulted += h.FaultedKB
				sizes = append(sizes, kib(h.PageSizeKB))
			}
			t.Append([]string{strconv.Itoa(p.Pid), text.Escape(p.Comm), kib(p.HugetlbMappedKB()), kib(faulted), dash(strings.Join(sizes, ",")),
				kib(p.LargeSharedBaseKB), dash(joinInts(p.SysV)), kib(p.VmPTEKB), memlock(p.MemlockBytes)})
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
		t = text.NewTable(w, "SHMID", "KEY", "SIZE", "HUGE PAGES", "NATTCH", "UID", "CREATOR", "ATTACHED BY")
		for _, s := range r.Segments {
			var by []string
			for _, a := range s.Attachers {
				by = append(by, fmt.Sprintf("%d %s", a.Pid, text.Escape(a.Comm)))
			}
			t.Append([]string{strconv.FormatInt(s.ShmID, 10), fmt.Sprintf("%#08x", uint32(s.Key)), size(s.Size),
				segmentPages(s), u(s.Nattch), strconv.FormatUint(uint64(s.UID), 10), strconv.Itoa(s.Cpid), dash(strings.Join(by, ", "))})
		}
		if err := t.Render(); err != nil {
			return err
		}
	}

	if err := writePlacement(w, r); err != nil {
		return err
	}

	z := r.Sizing
	fmt.Fprintf(w, "\nSizing for the current System V segments (%s pages, as hugepages_settings.sh)\n", kib(def))
	if z.Segments == 0 {
		fmt.Fprintln(w, "  no segment of a huge page or more: nothing to size")
	} else {
		fmt.Fprintf(w, "  %d segment(s), %s: %d pages needed; recommended vm.nr_hugepages = %d (now %d)\n",
			z.Segments, size(z.Bytes), z.NeededPages, z.NrHugepages, r.NrHugepages)
		fmt.Fprintf(w, "  memlock for the database user: %d kB (/etc/security/limits.conf: <user> soft memlock %d, hard memlock %d)\n", z.MemlockKB, z.MemlockKB, z.MemlockKB)
	}
	if p := r.Plan; p != nil {
		c := p.PageTables
		fmt.Fprintf(w, "\nPlan: %s of shared memory for %d processes\n", size(c.Bytes), c.Processes)
		fmt.Fprintf(w, "  vm.nr_hugepages = %d (%s pages: (shared memory + 20 KiB x processes) / page size); memlock %d kB\n",
			p.Sizing.NrHugepages, kib(def), p.Sizing.MemlockKB)
		fmt.Fprintf(w, "  page tables with %s pages: %s per process, %s for %d processes\n",
			kib(c.BasePageKB), size(c.BaseBytesPerProcess), size(c.BaseBytesTotal), c.Processes)
		fmt.Fprintf(w, "  page tables with %s pages: %s per process, at most %s for %d processes\n",
			kib(c.PageSizeKB), size(c.HugeBytesPerProcess), size(c.HugeBytesTotal), c.Processes)
	}

	pt := r.Tables
	fmt.Fprintln(w, "\nPage tables (8 bytes per page, per process that maps it)")
	fmt.Fprintf(w, "  PageTables on the host: %s; VmPTE of the processes above: %s\n", kib(pt.TotalKB), kib(pt.ListedKB))
	if len(pt.PerProcess) > 0 {
		fmt.Fprintf(w, "  their shared mappings (%s in all) would take %s of page tables on %s pages and %s on %s pages\n",
			size(pt.SharedBytes), size(pt.AsBasePages), kib(BasePageKB),
			size(pt.AsHugePages), kib(def))
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "\nwarning: %s\n", text.Escape(e))
	}
	return nil
}

func segmentPages(s SegmentUse) string {
	switch {
	case s.OnHugePages == nil && len(s.Attachers) == 0:
		return "unknown (not attached)"
	case s.OnHugePages == nil:
		return "unknown"
	case *s.OnHugePages:
		return "yes (" + kib(s.PageSizeKB) + ")"
	}
	return "no (" + kib(s.PageSizeKB) + ")"
}

func u(v uint64) string { return strconv.FormatUint(v, 10) }

// size writes a byte count, kib one in kB (page sizes, smaps and
// /proc/meminfo figures), in the style of every hugepages report.
func size(b uint64) string { return text.Bytes(b, text.TrimZero) }

func kib(v uint64) string { return size(v << 10) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func memlock(b uint64) string {
	if b == Unlimited {
		return "unlimited"
	}
	return size(b)
}

func joinInts(v []int64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatInt(x, 10)
	}
	return strings.Join(s, ",")
}
