package main

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// watchAgeOut is memtrace watch's default --age-out: a process's rows stay
// this long after its last failure, so the tables are full from then on.
const watchAgeOut = 10 * time.Minute

// slope fits y = a + b·x by least squares and returns b with a t-based 95%
// interval. Samples 10 s apart are autocorrelated (the Go heap's sawtooth
// spans several), so the interval is narrower than an honest one: it says
// how well a line fits, not how sure the trend is.
func slope(xs, ys []float64) interval {
	n := len(xs)
	if n < 3 {
		return interval{n: n}
	}
	mx, _ := meanSD(xs)
	my, _ := meanSD(ys)
	var sxx, sxy float64
	for i := range xs {
		sxx += (xs[i] - mx) * (xs[i] - mx)
		sxy += (xs[i] - mx) * (ys[i] - my)
	}
	if sxx == 0 {
		return interval{n: n}
	}
	b := sxy / sxx
	var sse float64
	for i := range xs {
		r := ys[i] - (my + b*(xs[i]-mx))
		sse += r * r
	}
	se := math.Sqrt(sse / float64(n-2) / sxx)
	h := tQuantile975(n-2) * se
	return interval{est: b, lo: b - h, hi: b + h, n: n}
}

// longprocsTable renders the longprocs phase: memtrace's memory and CPU
// while thousands of distinct processes fail, and its counts against
// tracefs's.
func (e *env) longprocsTable(b *strings.Builder) {
	const ph, wl, cfg = "longprocs", "failing-processes", "memtrace"
	v := func(metric string) map[int]float64 { return e.res.values(ph, wl, cfg, metric) }
	el, rss, anon, file := v("elapsed_s"), v("rss_kib"), v("rss_anon_kib"), v("rss_file_kib")
	rounds := sortedRounds(rss, el, anon, file)
	if len(rounds) < 3 {
		return
	}
	last := rounds[len(rounds)-1]
	total := el[last]
	// Steady from one age-out (plus a minute) after the start: processes
	// then leave the tables as fast as they come. A shorter run has no
	// steady part; its second half is fitted instead.
	steadyFrom := watchAgeOut.Seconds() + 60
	if steadyFrom > total/2 {
		steadyFrom = total / 2
	}
	at := func(sec float64) int { // the first sample at or after sec
		for _, r := range rounds {
			if el[r] >= sec {
				return r
			}
		}
		return last
	}
	var xs, ys, ya []float64
	maxRSS, maxAt, maxAnon := 0.0, 0.0, 0.0
	for _, r := range rounds {
		if rss[r] > maxRSS {
			maxRSS, maxAt = rss[r], el[r]
		}
		if el[r] >= steadyFrom {
			xs, ys, ya = append(xs, el[r]/3600), append(ys, rss[r]/1024), append(ya, anon[r]/1024)
			maxAnon = math.Max(maxAnon, anon[r])
		}
	}
	one := func(metric string) float64 { return v(metric)[0] }
	started := one("processes_started")
	fmt.Fprintf(b, "## Failing processes (longprocs)\n\n")
	fmt.Fprintf(b, "%.0f s of `memtrace watch --json` (output read through a pipe: %d summary lines, %.1f MB, at most %.0f rows in one) while %.0f processes (%.2f/s) each made real allocations fail; %.0f could not be provoked.\n\n",
		total, int(one("summary_lines")), one("output_bytes")/1e6, one("max_rows"), started, started/total, one("processes_not_provoked"))
	fmt.Fprintf(b, "Failures counted by tracefs (per child thread) %.0f, by memtrace %.0f; pids %.0f and %.0f; pids whose counts differ: %.0f.\n\n",
		one("failures_tracefs"), one("failures_memtrace"), one("pids_tracefs"), one("pids_memtrace"), one("pids_mismatched"))
	rows := v("rows")
	b.WriteString("| at | elapsed (s) | VmRSS (MiB) | RssAnon (MiB) | RssFile (MiB) | rows in watch's summary |\n|---|---|---|---|---|---|\n")
	type point struct {
		name string
		r    int
	}
	points := []point{{"ready", rounds[0]}, {"steady from", at(steadyFrom)}, {"end", last}}
	if total >= 300 {
		points = append(points, point{"5 min", at(300)})
	}
	slices.SortStableFunc(points, func(x, y point) int { return cmp.Compare(el[x.r], el[y.r]) })
	for _, p := range points {
		fmt.Fprintf(b, "| %s | %.0f | %.1f | %.1f | %.1f | %.0f |\n", p.name, el[p.r], rss[p.r]/1024, anon[p.r]/1024, file[p.r]/1024, rows[p.r])
	}
	fmt.Fprintf(b, "\nMax VmRSS %.1f MiB at %.0f s; max RssAnon from %.0f s %.1f MiB.", maxRSS/1024, maxAt, steadyFrom, maxAnon/1024)
	if s, a := slope(xs, ys), slope(xs, ya); s.n >= 3 {
		fmt.Fprintf(b, " Slopes from %.0f s to the end (%d samples; least squares, the interval ignores autocorrelation): VmRSS %+.2f MiB/h [%+.2f, %+.2f], RssAnon %+.2f MiB/h [%+.2f, %+.2f].",
			steadyFrom, s.n, s.est, s.lo, s.hi, a.est, a.lo, a.hi)
	}
	b.WriteString("\n\n")
	e.longprocsBlocks(b, rounds, el, rss, anon, rows)
	cpu, cpuIv := v("cpu_cores"), v("cpu_cores_interval")
	maxIv := 0.0
	for _, c := range cpuIv {
		maxIv = math.Max(maxIv, c)
	}
	var steadyCPU float64
	if r0 := at(steadyFrom); el[last] > el[r0] {
		// cumulative averages at two points give the average between them
		steadyCPU = (cpu[last]*el[last] - cpu[r0]*el[r0]) / (el[last] - el[r0])
	}
	fmt.Fprintf(b, "CPU %.4f cores on average, %.4f from %.0f s, at most %.4f over a sample interval.\n\n", cpu[last], steadyCPU, steadyFrom, maxIv)
}

// longprocsBlocks renders medians per 10-minute block: the Go heap's
// sawtooth spans minutes, so a block's median says more about a trend
// than a line fitted through every sample.
func (e *env) longprocsBlocks(b *strings.Builder, rounds []int, el, rss, anon, rows map[int]float64) {
	const block = 600.0
	if el[rounds[len(rounds)-1]] < 2*block {
		return
	}
	b.WriteString("| minutes | VmRSS median (min–max), MiB | RssAnon median (min–max), MiB | rows, median |\n|---|---|---|---|\n")
	for lo := 0.0; ; lo += block {
		var vs, as, rs []float64
		for _, r := range rounds {
			if el[r] >= lo && el[r] < lo+block {
				vs, as, rs = append(vs, rss[r]/1024), append(as, anon[r]/1024), append(rs, rows[r])
			}
		}
		if len(vs) < 3 {
			break
		}
		fmt.Fprintf(b, "| %.0f–%.0f | %.1f (%.1f–%.1f) | %.1f (%.1f–%.1f) | %.0f |\n", lo/60, (lo+block)/60,
			median(vs), slices.Min(vs), slices.Max(vs), median(as), slices.Min(as), slices.Max(as), median(rs))
	}
	b.WriteString("\n")
}
