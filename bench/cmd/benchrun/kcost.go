package main

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// progStat is one program's counters from the kernel's own accounting.
type progStat struct {
	name      string
	cnt, nsec uint64
}

// progStats reads run count and run time of every program pid holds.
func progStats(pid int) map[uint32]progStat {
	out := map[uint32]progStat{}
	for id := range fdinfoIDs(pid, "prog_id") {
		p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
		if err != nil {
			continue
		}
		info, err := p.Info()
		st, serr := p.Stats()
		p.Close()
		if err != nil || serr != nil {
			continue
		}
		out[id] = progStat{info.Name, st.RunCount, uint64(st.Runtime)}
	}
	return out
}

// kcostPhase measures in-kernel cost per hit: with BPF run-time stats on
// (BPF_ENABLE_STATS, the same switch as kernel.bpf_stats_enabled, held by
// a descriptor so the kernel turns it off when we exit however we exit),
// each tracer runs the page workload; the program with the most runs is
// the one on mm_page_alloc, and its run time over run count is ns/hit.
func (e *env) kcostPhase(ctx context.Context) error {
	sysctlBefore := readSysctl("kernel/bpf_stats_enabled")
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return fmt.Errorf("enabling BPF run-time stats: %w", err)
	}
	defer func() {
		stats.Close()
		if after := readSysctl("kernel/bpf_stats_enabled"); after != sysctlBefore {
			e.logf("warning: kernel.bpf_stats_enabled was %s before, %s after", sysctlBefore, after)
		}
	}()
	tracers := []*tracer{tFloor, tMemtrace, tBpftrace, tBcc}
	rng := rand.New(rand.NewSource(2))
	w := e.pagetouch()
	for round := 0; round < e.kcostRounds; round++ {
		for seq, k := range rng.Perm(len(tracers)) {
			t := tracers[k]
			r, err := e.startTracer(ctx, t)
			if err != nil {
				return err
			}
			time.Sleep(e.settle)
			before := progStats(r.pid())
			_, err = w.run(ctx)
			after := progStats(r.pid())
			if _, serr := e.stopTracer(r); err == nil {
				err = serr
			}
			if err != nil {
				return err
			}
			var hot progStat
			var totalNS uint64
			for id, a := range after {
				b := before[id]
				d := progStat{a.name, a.cnt - b.cnt, a.nsec - b.nsec}
				totalNS += d.nsec
				if d.cnt > hot.cnt {
					hot = d
				}
				if d.cnt > 0 {
					e.res.add("kcost", "pagetouch", t.name, round, seq, "prog_ns_per_run:"+d.name, float64(d.nsec)/float64(d.cnt), "ns")
				}
			}
			if hot.cnt == 0 {
				return fmt.Errorf("%s: no program ran during the workload", t.name)
			}
			e.res.add("kcost", "pagetouch", t.name, round, seq, "hot_prog:"+hot.name, 1, "")
			e.res.add("kcost", "pagetouch", t.name, round, seq, "hits", float64(hot.cnt), "runs")
			e.res.add("kcost", "pagetouch", t.name, round, seq, "ns_per_hit", float64(hot.nsec)/float64(hot.cnt), "ns")
			e.res.add("kcost", "pagetouch", t.name, round, seq, "all_progs_ns", float64(totalNS), "ns")
		}
		e.logf("kcost round %d/%d", round+1, e.kcostRounds)
	}
	return nil
}

func readSysctl(name string) string {
	b, err := os.ReadFile("/proc/sys/" + name)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}
