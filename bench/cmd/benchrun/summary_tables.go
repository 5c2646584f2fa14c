package main

import (
	"fmt"
	"math"
	"strings"
)

// The sections of the summary after the overhead tables, one experiment
// each: kernel cost per hit, start-up and memory, bursts, the long run.
// Each writes its table and returns its verdicts.

func (e *env) kcostTable(b *strings.Builder) []string {
	fl := e.res.values("kcost", "pagetouch", "floor", "ns_per_hit")
	if len(fl) == 0 {
		return nil
	}
	b.WriteString("## In-kernel cost per mm_page_alloc hit (BPF run-time stats)\n\n| configuration | program | ns per hit | above floor (ns) | hits per run |\n|---|---|---|---|---|\n")
	var targets []string
	for _, t := range []*tracer{tFloor, tMemtrace, tBpftrace, tBcc} {
		v := e.res.values("kcost", "pagetouch", t.name, "ns_per_hit")
		if len(v) == 0 {
			continue
		}
		hits := e.res.values("kcost", "pagetouch", t.name, "hits")
		rounds := sortedRounds(v)
		above := ""
		if t != tFloor {
			rr := sortedRounds(v, fl)
			d := make([]float64, len(rr))
			for i, r := range rr {
				d[i] = v[r] - fl[r]
			}
			iv := tInterval(d)
			above = iv.fmtNum("", 1)
			if t == tMemtrace {
				targets = append(targets, verdictLE(fmt.Sprintf("memtrace within 5 ns of an empty program per hit: %s ns", iv.fmtNum("", 1)), iv, 5))
			}
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %.3g |\n", t.name, e.hotProg(t.name), tInterval(valuesOf(v, rounds)).fmtNum("", 1), above, median(valuesOf(hits, sortedRounds(hits))))
	}
	b.WriteString("\n")
	return targets
}

func (e *env) hotProg(cfg string) string {
	for _, x := range e.res.rows {
		if x.phase == "kcost" && x.config == cfg && strings.HasPrefix(x.metric, "hot_prog:") {
			return strings.TrimPrefix(x.metric, "hot_prog:")
		}
	}
	return "?"
}

func (e *env) startupTable(b *strings.Builder) []string {
	if len(e.res.values("startup", "-", "memtrace", "ready_ms")) == 0 {
		return nil
	}
	b.WriteString("## Start-up to ready and memory\n\n| tool | ready (ms), median | ready (ms), mean [95%] | VmHWM at ready (MiB) | peak RSS (MiB), median |\n|---|---|---|---|---|\n")
	var targets []string
	for _, t := range []*tracer{tFloor, tMemtrace, tBaseline, tBpftrace, tBcc, tBpftrace1, tBcc1} {
		ready := e.res.values("startup", "-", t.name, "ready_ms")
		if len(ready) == 0 {
			continue // a configuration this run did not start
		}
		hwm := e.res.values("startup", "-", t.name, "hwm_ready_kib")
		rss := e.res.values("startup", "-", t.name, "maxrss_kib")
		rv := valuesOf(ready, sortedRounds(ready))
		fmt.Fprintf(b, "| %s | %.0f | %s | %.1f | %.1f |\n", t.name, median(rv), tInterval(rv).fmtNum("", 0),
			median(valuesOf(hwm, sortedRounds(hwm)))/1024, median(valuesOf(rss, sortedRounds(rss)))/1024)
		if t == tMemtrace {
			rm := median(valuesOf(rss, sortedRounds(rss))) / 1024
			targets = append(targets,
				verdictLE(fmt.Sprintf("start-up to ready under 50 ms: mean %s ms, median %.0f ms", tInterval(rv).fmtNum("", 0), median(rv)), tInterval(rv), 50),
				verdict(fmt.Sprintf("peak RSS under 25 MB: median %.1f MiB (%.1f MB)", rm, rm*1.048576), rm*1.048576 < 25, rm*1.048576 < 25))
		}
	}
	b.WriteString("\n")
	e.baselineRatios(b)
	return targets
}

// baselineRatios compares memtrace with the baseline build (-baseline)
// round by round: both ran in every round, in rotated order.
func (e *env) baselineRatios(b *strings.Builder) {
	if len(e.res.values("startup", "-", tBaseline.name, "ready_ms")) == 0 {
		return
	}
	b.WriteString("memtrace over memtrace-baseline, per-round ratios (geometric mean [95%], median):\n\n")
	for _, m := range []struct{ metric, label string }{
		{"ready_ms", "ready"}, {"hwm_ready_kib", "VmHWM at ready"}, {"maxrss_kib", "peak RSS"},
	} {
		cur := e.res.values("startup", "-", tMemtrace.name, m.metric)
		base := e.res.values("startup", "-", tBaseline.name, m.metric)
		var ratios []float64
		for _, r := range sortedRounds(cur, base) {
			if base[r] > 0 && cur[r] > 0 {
				ratios = append(ratios, cur[r]/base[r])
			}
		}
		fmt.Fprintf(b, "- %s: %s, median %.3f× (%d rounds)\n", m.label, ratioInterval(ratios).fmtRatio(), median(ratios), len(ratios))
	}
	b.WriteString("\n")
}

func (e *env) burstTable(b *strings.Builder) []string {
	var targets []string
	first := true
	for _, v := range []string{"sampled", "unsampled"} {
		cfg := "memtrace-" + v
		get := func(m string) float64 {
			return e.res.values("burst", "inject", cfg, m)[map[string]int{"sampled": 0, "unsampled": 1}[v]]
		}
		if len(e.res.values("burst", "inject", cfg, "injected")) == 0 {
			continue
		}
		if first {
			b.WriteString("## Bursts of injected allocation failures\n\n| memtrace | injected | rate (/s) | counted | exact | sampled | lost | events delivered | Go CPU during / after (cores) |\n|---|---|---|---|---|---|---|---|---|\n")
			first = false
		}
		inj, cnt := get("injected"), get("counted")
		fmt.Fprintf(b, "| %s | %.0f | %.3g | %.0f | %v | %.0f | %.0f | %.0f | %.2f / %.2f |\n", v, inj, get("rate"), cnt, inj == cnt,
			get("sampled"), get("lost"), get("delivered"), get("go_cpu_burst"), get("go_cpu_drain"))
		targets = append(targets,
			verdict(fmt.Sprintf("burst (%s): counted exactly (%.0f of %.0f injected), Go side under one core (%.2f)", v, cnt, inj, get("go_cpu_burst")),
				inj == cnt && get("go_cpu_burst") < 1, true),
			verdict(fmt.Sprintf("burst (%s): at 10^6 failures/s: reached %.3g/s (%.0f ns per failure in the kernel)", v, get("rate"), get("kernel_ns_per_failure")),
				get("rate") >= 1e6, true))
	}
	if !first {
		b.WriteString("\n")
		st := e.res.values("burst", "calibration", "-", "ns_per_stackid")
		lp := e.res.values("burst", "calibration", "-", "ns_per_loop_iteration")
		if v, ok := st[0]; ok {
			fmt.Fprintf(b, "Calibration in the kernel: one bpf_get_stackid %.0f ns, one bpf_loop iteration %.1f ns.\n\n", v, lp[0])
		}
	}
	return targets
}

func (e *env) longrunTable(b *strings.Builder) []string {
	var cfg string
	for _, x := range e.res.rows {
		if x.phase == "longrun" {
			cfg = x.config
			break
		}
	}
	rss := e.res.values("longrun", "pagetouch+inject", cfg, "rss_kib")
	el := e.res.values("longrun", "pagetouch+inject", cfg, "elapsed_s")
	cpu := e.res.values("longrun", "pagetouch+inject", cfg, "cpu_cores")
	if len(rss) < 3 {
		return nil
	}
	rounds := sortedRounds(rss)
	last := rounds[len(rounds)-1]
	// The tables fill in the first tenth of the run; growth is measured
	// from there to the end.
	ref := rounds[0]
	for _, r := range rounds {
		if el[r] >= el[last]/10 {
			ref = r
			break
		}
	}
	maxRSS := 0.0
	for _, r := range rounds {
		maxRSS = math.Max(maxRSS, rss[r])
	}
	b.WriteString("## Long run\n\n")
	fmt.Fprintf(b, "%.0f s under load. RSS at ready %.1f MiB, at %.0f s %.1f MiB, at the end %.1f MiB, max %.1f MiB; CPU %.3f cores on average.",
		el[last], rss[rounds[0]]/1024, el[ref], rss[ref]/1024, rss[last]/1024, maxRSS/1024, cpu[last])
	inj := e.res.values("longrun", "pagetouch+inject", cfg, "injected")[0]
	if c, ok := e.res.values("longrun", "pagetouch+inject", cfg, "counted")[0]; ok {
		fmt.Fprintf(b, " Injected %.0f failures, counted %.0f.", inj, c)
	}
	b.WriteString("\n\n")
	growth := (rss[last] - rss[ref]) / 1024
	return []string{verdict(fmt.Sprintf("no growth over the long run once tables are full: %+.1f MiB from %.0f s to %.0f s", growth, el[ref], el[last]), growth <= 1, growth <= 1)}
}
