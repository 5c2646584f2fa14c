package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// failure is the part of a capture's alloc_failures group the lab reads.
type failure struct {
	Pid       int
	Comm      string
	Context   string
	Order     int
	GfpFlags  string `json:"gfp_flags"`
	Gfp       string
	Atomic    bool
	Stack     []string
	Count     uint64
	ZoneState *struct {
		Verdict string
		Summary string
	} `json:"zone_state"`
}

type captureSummary struct {
	Failures             []failure
	Total, Softirq       uint64
	ByContextOrder       map[string]uint64 // "softirq order 3"
	Extfrag, Fragmenting uint64
	Hooks                []string
}

func summarize(path string) (*captureSummary, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var doc struct {
		Hooks []struct {
			Signal, Hook string
			Attached     bool
		}
		AllocFailures []failure `json:"alloc_failures"`
		Extfrag       []struct {
			Count, Fragmenting uint64
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", path, err)
	}
	s := &captureSummary{Failures: doc.AllocFailures, ByContextOrder: map[string]uint64{}}
	for _, h := range doc.Hooks {
		s.Hooks = append(s.Hooks, fmt.Sprintf("%s: %s (attached %v)", h.Signal, h.Hook, h.Attached))
	}
	for _, f := range doc.AllocFailures {
		s.Total += f.Count
		if f.Context == "softirq" {
			s.Softirq += f.Count
		}
		s.ByContextOrder[fmt.Sprintf("%s order %d", f.Context, f.Order)] += f.Count
	}
	for _, e := range doc.Extfrag {
		s.Extfrag += e.Count
		s.Fragmenting += e.Fragmenting
	}
	slices.SortFunc(s.Failures, func(a, b failure) int { return int(b.Count) - int(a.Count) })
	return s, nil
}

type report struct {
	o                                options
	kernel                           string
	memTotal, takenKB, freeAfterFrag uint64
	fragTook                         time.Duration
	buddyBoot, buddyFrag, buddyEnd   string
	phases                           []*phase
	notes, problems                  []string
}

// check is the lab's test: memtrace must have seen at least what the
// independent counter saw in the same (narrower) window, in total and in
// softirq.
func (r *report) check() bool {
	for _, p := range r.phases {
		c, k := p.capture, p.counter
		if c.Total < k.Total {
			r.problems = append(r.problems, fmt.Sprintf("%s: memtrace saw %d failed allocations, the tracefs counter %d", p.name, c.Total, k.Total))
		}
		if k.Kept == k.Total && c.Softirq < k.Softirq {
			r.problems = append(r.problems, fmt.Sprintf("%s: memtrace saw %d in softirq, the tracefs counter %d", p.name, c.Softirq, k.Softirq))
		}
	}
	return len(r.problems) == 0
}

func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("### Scenario 1 on %s (%d MiB guest)\n\n", r.kernel, r.memTotal>>10)
	w("Fragmenting: took %d MiB in 16 MiB anonymous mappings (MADV_NOHUGEPAGE), touched every page, gave every other page back (MADV_DONTNEED) and locked the rest (mlock2 MLOCK_ONFAULT), with vm.compaction_proactiveness=0 and vm.compact_unevictable_allowed=0 (%.1fs). MemFree after: %d MiB.\n\n",
		r.takenKB>>10, r.fragTook.Seconds(), r.freeAfterFrag>>10)
	w("/proc/buddyinfo (free blocks per order 0..10) at boot, after fragmenting, at the end:\n\n```\n%s%s%s```\n\n", r.buddyBoot, r.buddyFrag, r.buddyEnd)
	w("Traffic: %s of bursts of %d TCP connections over loopback (each writes 2 KiB), held until the burst is complete, then closed.\n\n", r.o.traffic, r.o.conns)
	w("| run | min_free_kbytes | bursts | connections | failed allocations (memtrace) | in softirq (memtrace) | tracefs counter (all / kept / softirq of kept) | extfrag events (fragmenting) |\n|---|---|---|---|---|---|---|---|\n")
	for _, p := range r.phases {
		w("| %s | %s | %d | %d (%d dial errors) | %d | %d | %d / %d / %d | %d (%d) |\n", p.name, p.minFree, p.traffic.Bursts, p.traffic.Connected, p.traffic.DialErrors,
			p.capture.Total, p.capture.Softirq, p.counter.Total, p.counter.Kept, p.counter.Softirq, p.capture.Extfrag, p.capture.Fragmenting)
	}
	w("\n")
	for _, p := range r.phases {
		keys := make([]string, 0, len(p.capture.ByContextOrder))
		for k := range p.capture.ByContextOrder {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		w("Failures by context and order, %s (memtrace):", p.name)
		for _, k := range keys {
			w(" %s: %d;", k, p.capture.ByContextOrder[k])
		}
		w("\n\n")
	}
	p := r.phases[0]
	w("memtrace's hooks: %s.\n\n", strings.Join(p.capture.Hooks, "; "))
	w("The largest softirq failure groups in the first run's capture (`%s`):\n\n```\n", p.capFile)
	n := 0
	for _, f := range p.capture.Failures {
		if f.Context != "softirq" || n == 4 {
			continue
		}
		n++
		w("%d× order %d in %s, interrupted task %s (pid %d), gfp %s = %s, atomic %v\n", f.Count, f.Order, f.Context, escape(f.Comm), f.Pid, f.GfpFlags, f.Gfp, f.Atomic)
		if f.ZoneState != nil {
			w("  zone state: %s: %s\n", f.ZoneState.Verdict, f.ZoneState.Summary)
		}
		for _, fr := range f.Stack {
			w("    %s\n", fr)
		}
	}
	if n == 0 {
		w("(none)\n")
	}
	w("```\n\n")
	w("`memtrace doctor --measure 10s`, run during the first traffic (trimmed to the findings that matter here):\n\n```\n%s```\n\n", trimDoctor(p.doctor))
	for _, s := range r.notes {
		w("Note: %s\n\n", s)
	}
	if len(r.problems) == 0 {
		w("Check: memtrace saw at least every failure the tracefs counter saw in each run: **pass**.\n")
	} else {
		w("Check: **FAIL**: %s\n", strings.Join(r.problems, "; "))
	}
	return b.String()
}

// trimDoctor keeps the findings about failures, atomic demand, watermarks
// and fragmentation.
func trimDoctor(s string) string {
	var out []string
	keep := false
	for _, line := range strings.Split(s, "\n") {
		if line != "" && !strings.HasPrefix(line, " ") {
			l := strings.ToLower(line)
			keep = strings.Contains(l, "atomic") || strings.Contains(l, "min_free") || strings.Contains(l, "failure") ||
				strings.Contains(l, "watermark") || strings.Contains(l, "fragment") || strings.Contains(l, "compaction")
		}
		if keep {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return s
	}
	return strings.Join(out, "\n") + "\n"
}

// escape makes a task name safe to print: names are untrusted.
func escape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			fmt.Fprintf(&b, "\\u%04x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
