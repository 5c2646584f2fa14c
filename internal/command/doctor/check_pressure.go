package doctor

import (
	"fmt"
	"strings"
	"time"
)

// pressureCounters are the /proc/vmstat counters shown, in order.
var pressureCounters = []struct{ name, what string }{
	{"allocstall", "direct reclaim stalls (allocstall_*)"},
	{"pgscan_direct", "pages scanned by direct reclaim"},
	{"pgscan_kswapd", "pages scanned by kswapd"},
	{"pageoutrun", "kswapd reclaim runs"},
	{"compact_stall", "direct compaction stalls"},
	{"compact_fail", "direct compactions that failed"},
	{"compact_success", "direct compactions that succeeded"},
	{"compact_daemon_wake", "kcompactd wake-ups"},
	{"oom_kill", "OOM kills"},
	{"drop_pagecache", "writes to drop_caches (page cache)"},
}

// Thresholds of the pressure check.
const (
	kswapdBusy        = 0.5  // of one CPU over the interval: the seed's "kswapd burns a core"
	kswapdBusyBoot    = 0.1  // of one CPU on average since boot
	compactFailShare  = 0.5  // of direct compactions
	compactMinStalls  = 100  // before the share since boot means anything
	allocstallPerHour = 60.0 // average since boot
)

func vmstatSum(m map[string]uint64, name string) (uint64, bool) {
	if name != "allocstall" {
		v, ok := m[name]
		return v, ok
	}
	var n uint64
	found := false
	for k, v := range m {
		if strings.HasPrefix(k, "allocstall_") || k == "allocstall" {
			n += v
			found = true
		}
	}
	return n, found
}

func checkPressure(in *Inputs) Finding {
	f := Finding{ID: "pressure", Title: "Reclaim and compaction pressure"}
	vm := in.Snap.Vmstat
	if len(vm) == 0 {
		f.Severity = Warn
		f.Summary = "could not read /proc/vmstat"
		return f
	}
	up := in.Uptime
	t := Table{Header: []string{"counter", "since boot", "average"}}
	if in.Later != nil {
		t.Header = append(t.Header, strings.TrimPrefix(intervalSpan(in), "the "))
	}
	delta := func(name string) (uint64, bool) {
		if in.Later == nil {
			return 0, false
		}
		a, ok1 := vmstatSum(vm, name)
		b, ok2 := vmstatSum(in.Later.Vmstat, name)
		if !ok1 || !ok2 || b < a {
			return 0, false
		}
		return b - a, true
	}
	for _, c := range pressureCounters {
		v, ok := vmstatSum(vm, c.name)
		if !ok {
			continue
		}
		row := []string{c.name + " (" + c.what + ")", u(v), rate(float64(v), up)}
		if in.Later != nil {
			d, _ := delta(c.name)
			row = append(row, rate(float64(d), in.Interval))
		}
		t.Rows = append(t.Rows, row)
	}
	f.Tables = append(f.Tables, t)
	if up > 0 {
		f.add("uptime", "%s", duration(up))
	}

	var problems []string
	flag := func(s Severity, msg string) {
		f.raise(s)
		problems = append(problems, msg)
	}

	// kswapd CPU: since boot, and over the interval.
	var kswapdCPU float64
	for _, k := range in.Procs.Kswapd {
		kswapdCPU += k.CPUSeconds
	}
	if len(in.Procs.Kswapd) > 0 && up > 0 {
		share := kswapdCPU / up.Seconds() / float64(len(in.Procs.Kswapd))
		f.add("kswapd CPU", "%s since boot (%d thread%s, %s of a CPU each on average)", duration(time.Duration(kswapdCPU*float64(time.Second))), len(in.Procs.Kswapd), plural(uint64(len(in.Procs.Kswapd))), pct(share, 1))
		if share > kswapdBusyBoot {
			flag(Warn, fmt.Sprintf("kswapd has used %s of a CPU on average since boot", pct(share, 1)))
		}
	}
	if in.Later != nil && in.Interval > 0 {
		for _, later := range in.KswapdLater {
			for _, k := range in.Procs.Kswapd {
				if k.PID == later.PID && later.CPUSeconds >= k.CPUSeconds {
					busy := (later.CPUSeconds - k.CPUSeconds) / in.Interval.Seconds()
					f.add(later.Comm+" CPU", "%s of a CPU over %s", pct(busy, 1), intervalSpan(in))
					if busy > kswapdBusy {
						flag(Problem, fmt.Sprintf("%s is busy %s of a CPU (the seed's incident: kswapd burning a core)", later.Comm, pct(busy, 1)))
					}
				}
			}
		}
		if d, _ := delta("oom_kill"); d > 0 {
			flag(Problem, fmt.Sprintf("%d OOM kills in %s", d, intervalSpan(in)))
		}
		if d, _ := delta("allocstall"); d > 0 {
			flag(Warn, fmt.Sprintf("tasks stalled in direct reclaim %d times in %s", d, intervalSpan(in)))
		}
		if s, _ := delta("compact_stall"); s > 0 {
			if fl, _ := delta("compact_fail"); float64(fl) > compactFailShare*float64(s) {
				flag(Warn, fmt.Sprintf("%d of %d direct compactions failed in %s", fl, s, intervalSpan(in)))
			}
		}
	} else if in.Interrupted {
		f.note("interrupted before the --interval %s began: no rates measured", duration(in.IntervalAsked))
	} else {
		f.note("run with --interval 10s to see rates now: totals since boot do not say when they happened")
	}
	if v, _ := vmstatSum(vm, "oom_kill"); v > 0 {
		flag(Warn, fmt.Sprintf("%d OOM kills since boot", v))
	}
	if s, _ := vmstatSum(vm, "compact_stall"); s >= compactMinStalls {
		if fl, _ := vmstatSum(vm, "compact_fail"); float64(fl) > compactFailShare*float64(s) {
			flag(Warn, fmt.Sprintf("%d of %d direct compactions since boot failed", fl, s))
		}
	}
	if v, _ := vmstatSum(vm, "allocstall"); up > 0 && float64(v)/up.Hours() > allocstallPerHour {
		flag(Warn, fmt.Sprintf("direct reclaim stalls average %s since boot", rate(float64(v), up)))
	}
	if v, _ := vmstatSum(vm, "drop_pagecache"); v > 0 {
		f.note("something wrote to /proc/sys/vm/drop_caches %s since boot: each write throws the page cache away, and every file read after it goes to disk", times(v))
	}
	if len(problems) == 0 {
		f.Summary = "no sign of reclaim or compaction trouble"
		if up > 0 && up < time.Hour {
			f.Summary += fmt.Sprintf(" (up only %s)", duration(up))
		}
		return f
	}
	f.Summary = strings.Join(problems, "; ")
	f.Why = "Direct reclaim and compaction run in the task that asked for memory, so each stall is latency for it; kswapd busy all the time means free memory keeps falling below the low watermark faster than it can be refilled."
	f.Fix = []string{"sysctl -w vm.watermark_scale_factor=200   # kswapd starts earlier, so fewer tasks reclaim themselves"}
	return f
}

// intervalSpan names the time the rates are over: the time measured
// between the two snapshots, which an interrupted run says is shorter
// than asked ("the last 10.1s", "2s (interrupted; --interval was 1h0m)").
func intervalSpan(in *Inputs) string {
	if in.Interrupted {
		return fmt.Sprintf("%s (interrupted; --interval was %s)", duration(in.Interval), duration(in.IntervalAsked))
	}
	return "the last " + duration(in.Interval)
}
