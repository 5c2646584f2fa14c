package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// summary renders the run as Markdown: every table with 95% intervals and
// the targets of issue 6, met or missed, computed from this run only.
func (e *env) summary() string {
	var b strings.Builder
	var u unix.Utsname
	unix.Uname(&u)
	host, _ := os.Hostname()
	start := time.Now()
	for _, x := range e.res.rows {
		if x.phase == "meta" && x.metric == "run_start_unix" {
			start = time.Unix(int64(x.value), 0)
		}
	}
	fmt.Fprintf(&b, "# Benchmark run %s\n\n", start.UTC().Format("2006-01-02 15:04 UTC"))
	mode := "full"
	if e.quick {
		mode = "QUICK (smoke test, not a result)"
	}
	fmt.Fprintf(&b, "Host %s, kernel %s, %d CPUs (%s), %s; mode %s; %s ran as `%s`.\n\n",
		host, unix.ByteSliceToString(u.Release[:]), runtime.NumCPU(), cpuModel(), memTotal(), mode, e.version, e.memtraceMode())
	var loads, progs []float64
	for _, x := range e.res.rows {
		switch {
		case x.phase == "machine" && x.metric == "loadavg1":
			loads = append(loads, x.value)
		case x.phase == "machine" && x.metric == "foreign_bpf_progs":
			progs = append(progs, x.value)
		}
	}
	if len(loads) > 0 {
		sort.Float64s(loads)
		sort.Float64s(progs)
		fmt.Fprintf(&b, "Machine load between phases (1-min load average): %.2f to %.2f; BPF programs loaded by others: %.0f to %.0f.\n\n",
			loads[0], loads[len(loads)-1], progs[0], progs[len(progs)-1])
	}
	if len(e.forcedStops) > 0 {
		var fs []string
		for name, n := range e.forcedStops {
			fs = append(fs, fmt.Sprintf("%s %d×", name, n))
		}
		sort.Strings(fs)
		fmt.Fprintf(&b, "Tracers that did not stop on the first SIGINT: %s.\n\n", strings.Join(fs, ", "))
	}
	fmt.Fprintf(&b, "Intervals are 95%%: ratios t-based on per-round log ratios (geometric mean), differences t-based on per-round differences, ratios of excesses by percentile bootstrap over rounds.\n\n")
	var targets []string
	for _, w := range []string{"pagetouch", "pgbench"} {
		targets = append(targets, e.overheadTable(&b, w)...)
	}
	targets = append(targets, e.kcostTable(&b)...)
	e.stallTable(&b)
	targets = append(targets, e.startupTable(&b)...)
	targets = append(targets, e.burstTable(&b)...)
	targets = append(targets, e.longrunTable(&b)...)
	e.longprocsTable(&b)
	if len(targets) > 0 {
		b.WriteString("## Targets (issue 6)\n\n")
		for _, t := range targets {
			fmt.Fprintf(&b, "- %s\n", t)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func (e *env) memtraceMode() string {
	if e.mode != "" {
		return e.mode
	}
	sig := ""
	if e.signals != "" {
		sig = " --signals " + e.signals
	}
	if e.watch {
		mode := "memtrace watch --json" + sig + " >/dev/null"
		if e.phases["longprocs"] {
			mode += " (longprocs: into a pipe benchrun reads)"
		}
		return mode
	}
	return "memtrace capture --duration 0 -o /dev/null" + sig
}

func (iv interval) fmtRatio() string {
	if math.IsNaN(iv.lo) {
		return fmt.Sprintf("%.3f× (n=%d)", iv.est, iv.n)
	}
	return fmt.Sprintf("%.3f× [%.3f, %.3f]", iv.est, iv.lo, iv.hi)
}

func (iv interval) fmtNum(unit string, prec int) string {
	if math.IsNaN(iv.lo) {
		return fmt.Sprintf("%.*f%s (n=%d)", prec, iv.est, unit, iv.n)
	}
	return fmt.Sprintf("%.*f%s [%.*f, %.*f]", prec, iv.est, unit, prec, iv.lo, prec, iv.hi)
}

// paired returns, for rounds where both ran, the slowdown of cfg against
// none (>1 is slower) and the round numbers.
func (e *env) slowdowns(w, cfg, metric string, higherIsBetter bool) map[int]float64 {
	base := e.res.values("overhead", w, "none", metric)
	vals := e.res.values("overhead", w, cfg, metric)
	out := map[int]float64{}
	for r, v := range vals {
		b, ok := base[r]
		if !ok || v <= 0 || b <= 0 {
			continue
		}
		if higherIsBetter {
			out[r] = b / v
		} else {
			out[r] = v / b
		}
	}
	return out
}

func sortedRounds(ms ...map[int]float64) []int {
	var rounds []int
	for r := range ms[0] {
		ok := true
		for _, m := range ms[1:] {
			if _, has := m[r]; !has {
				ok = false
			}
		}
		if ok {
			rounds = append(rounds, r)
		}
	}
	sort.Ints(rounds)
	return rounds
}

func valuesOf(m map[int]float64, rounds []int) []float64 {
	out := make([]float64, len(rounds))
	for i, r := range rounds {
		out[i] = m[r]
	}
	return out
}

func geomean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += math.Log(x)
	}
	return math.Exp(s / float64(len(xs)))
}

func (e *env) overheadTable(b *strings.Builder, w string) []string {
	metric, higher, what := "elapsed_s", false, "elapsed s"
	if w == "pgbench" {
		metric, higher, what = "tps", true, "tps"
	}
	if len(e.res.values("overhead", w, "none", metric)) == 0 {
		return nil
	}
	fmt.Fprintf(b, "## Slowdown: %s\n\n", w)
	fmt.Fprintf(b, "| configuration | median %s | slowdown vs none (geometric mean [95%%]) | median of per-round ratios | above floor (pp) |\n|---|---|---|---|---|\n", what)
	fl := e.slowdowns(w, "floor", metric, higher)
	for _, t := range allTracers {
		vals := e.res.values("overhead", w, t.name, metric)
		med := median(valuesOf(vals, sortedRounds(vals)))
		if t == tNone {
			fmt.Fprintf(b, "| none | %.4g | 1 | 1 | |\n", med)
			continue
		}
		sd := e.slowdowns(w, t.name, metric, higher)
		rounds := sortedRounds(sd)
		above := ""
		if t != tFloor {
			rr := sortedRounds(sd, fl)
			d := make([]float64, len(rr))
			for i, r := range rr {
				d[i] = 100 * (sd[r] - fl[r])
			}
			above = tInterval(d).fmtNum("", 1)
		}
		fmt.Fprintf(b, "| %s | %.4g | %s | %.3f× | %s |\n", t.name, med, ratioInterval(valuesOf(sd, rounds)).fmtRatio(), median(valuesOf(sd, rounds)), above)
	}
	b.WriteString("\n")
	mt, bt := e.slowdowns(w, "memtrace", metric, higher), e.slowdowns(w, "bpftrace", metric, higher)
	rr := sortedRounds(mt, fl, bt)
	if len(rr) < 2 {
		return nil
	}
	d := make([]float64, len(rr))
	for i, r := range rr {
		d[i] = 100 * (mt[r] - fl[r])
	}
	above := tInterval(d)
	share := bootstrap(len(rr), func(idx []int) float64 {
		m, bb := make([]float64, len(idx)), make([]float64, len(idx))
		for i, j := range idx {
			m[i], bb[i] = mt[rr[j]], bt[rr[j]]
		}
		return (geomean(m) - 1) / (geomean(bb) - 1)
	})
	fmt.Fprintf(b, "memtrace's excess slowdown as a share of bpftrace's: %s (bootstrap).\n\n", share.fmtNum("", 2))
	return []string{
		verdictLE(fmt.Sprintf("%s: memtrace ≤ 1 pp above the floor: %s pp", w, above.fmtNum("", 1)), above, 1),
		verdictLE(fmt.Sprintf("%s: memtrace's excess ≤ 1/3 of bpftrace's: %s", w, share.fmtNum("", 2)), share, 1.0/3),
	}
}

// verdict is for targets without an interval: met or missed.
func verdict(s string, met, _ bool) string {
	if met {
		return "**met** — " + s
	}
	return "**missed** — " + s
}

// verdictLE judges "at most target" by the whole 95% interval: met when
// it lies below, missed when above, otherwise not resolved by this run
// (the side the estimate falls on is said, but it proves nothing).
func verdictLE(s string, iv interval, target float64) string {
	switch {
	case iv.hi <= target:
		return "**met** — " + s
	case iv.lo > target:
		return "**missed** — " + s
	case iv.est <= target:
		return "**not resolved** (estimate meets it, interval spans it) — " + s
	}
	return "**not resolved** (estimate misses it, interval spans it) — " + s
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return "? memory"
	}
	return fmt.Sprintf("%.0f GiB memory", float64(si.Totalram)*float64(si.Unit)/(1<<30))
}
