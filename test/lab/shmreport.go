package main

import (
	"fmt"
	"strings"
)

// scenario2 writes the two database starts: verify's verdicts, memtrace
// hugepages's view and the page tables against the seed's arithmetic.
func (r *report) scenario2(b *strings.Builder) {
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	o := r.o
	seed := uint64(o.workers) * (o.shmMB << 20) / 4096 * 8
	w("### Scenario 2 on %s (%d MiB guest)\n\n", r.kernel, r.memTotal>>10)
	w("A database-like start, run by `memtrace verify -- shm-db ...` (%.0fs for both starts): shm-db asks shmget for a %d MiB segment with SHM_HUGETLB, falls back to 4 KiB pages when that fails (as Oracle with use_large_pages=TRUE or PostgreSQL with huge_pages=try do), and starts %d workers that attach it and write to every 4 KiB of it. Each worker reads its own VmPTE before attaching and after touching; `memtrace hugepages` reads the host while they hold the segment. First with vm.nr_hugepages a quarter of the segment, then with the vm.nr_hugepages memtrace hugepages recommended in the first start.\n\n",
		r.shmTook.Seconds(), o.shmMB, o.workers)
	w("The seed's arithmetic for this size and N: %d MiB / 4 KiB × 8 bytes × %d processes = %s of page-table entries on 4 KiB pages; on 2 MiB pages %d MiB / 2 MiB × 8 bytes × %d = %d bytes.\n\n",
		o.shmMB, o.workers, kibs(seed>>10), o.shmMB, o.workers, o.shmMB/2*8*uint64(o.workers))
	w("| start | vm.nr_hugepages | verify's verdict | segment (memtrace hugepages) | workers' VmPTE (memtrace hugepages) | their VmPTE before attaching | grown | seed's arithmetic (memtrace hugepages's, for their shared mappings) | grown − arithmetic |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range r.shm {
		arith := s.arithBase
		if s.db.Huge {
			arith = s.arithHuge
		}
		grown := int64(s.measuredKB) - int64(s.baselineKB)
		w("| %s | %d | %s | %s | %s | %s | %s | %s | %+d KiB (%s) |\n", s.name, s.pool, s.verify.Verdict, s.segmentGot,
			kibs(s.measuredKB), kibs(s.baselineKB), kibs(uint64(max(grown, 0))), bytesKiB(arith), grown-int64(arith>>10), pct(grown<<10, arith))
	}
	if len(r.shm) == 2 {
		saved := int64(r.shm[0].measuredKB) - int64(r.shm[1].measuredKB)
		w("\nSaved by huge pages: %d KiB of page tables measured (VmPTE summed over the workers, short pool minus sized pool), against %s by the arithmetic. Tolerance of the check: the growth on 4 KiB pages within ±%.0f%% of the arithmetic (the arithmetic counts the last level only: one page-middle directory per process, a page of entries more when the segment is not 2 MiB aligned), at most %d KiB per worker on 2 MiB pages, and at least %.0f%% of the arithmetic's saving measured.\n\n",
			saved, bytesKiB(seed-r.shm[1].arithHuge), 100*pageTableTolerance, hugeSlackKB, 100*(1-pageTableTolerance))
	}
	for _, s := range r.shm {
		w("#### %s: `memtrace verify`\n\n", s.name)
		w("Verdict **%s**: %s\n\n```\n", s.verify.Verdict, s.verify.Summary)
		for _, c := range s.verify.Calls {
			res := "ok"
			if !c.OK {
				res = c.Errno
			}
			w("%s pid %d %s size %s flags %s: %s\n", escape(c.Comm), c.Pid, c.Call, bytesKiB(c.Size), c.FlagNames, res)
			if c.Cause != nil {
				w("    cause (%s): %s\n", c.Cause.Kind, c.Cause.Text)
				if c.Cause.Advice != "" {
					w("    advice: %s\n", c.Cause.Advice)
				}
			}
		}
		for _, f := range s.verify.Fallbacks {
			w("fallback: %s\n", f.Summary)
		}
		for _, f := range s.verify.Findings {
			w("- %s\n", f)
		}
		w("```\n\n")
		w("#### %s: `memtrace hugepages` (trimmed)\n\n```\n%s```\n\n", s.name, trimHugepages(s.hpText))
		var per []string
		for _, wk := range s.db.Workers {
			per = append(per, fmt.Sprintf("%d: %d→%d KiB", wk.Pid, wk.BaselineKB, wk.TouchedKB))
		}
		w("The workers' own reading of VmPTE (before attaching → after touching): %s.\n\n", strings.Join(per, ", "))
	}
}

// trimHugepages keeps the pools, the processes, the segments, the sizing
// and the page tables: the parts scenario 2 is about.
func trimHugepages(s string) string {
	var out []string
	keep := true
	for _, line := range strings.Split(s, "\n") {
		if line != "" && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "PAGE") && !strings.HasPrefix(line, "PID") && !strings.HasPrefix(line, "SHMID") {
			l := strings.ToLower(line)
			keep = strings.Contains(l, "pool") || strings.Contains(l, "processes") || strings.Contains(l, "segment") ||
				strings.Contains(l, "sizing") || strings.Contains(l, "page tables")
		}
		if keep {
			out = append(out, line)
		}
	}
	return strings.TrimRight(strings.Join(out, "\n"), "\n") + "\n"
}

func kibs(kb uint64) string {
	if kb >= 10<<10 {
		return fmt.Sprintf("%d KiB (%.2f MiB)", kb, float64(kb)/1024)
	}
	return fmt.Sprintf("%d KiB", kb)
}

func bytesKiB(b uint64) string {
	if b < 1<<10 {
		return fmt.Sprintf("%d B", b)
	}
	return kibs(b >> 10)
}

func pct(a int64, b uint64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%+.1f%%", 100*(float64(a)-float64(b))/float64(b))
}
