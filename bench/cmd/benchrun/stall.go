package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/memtrace/memtrace/internal/testing/provoke"
)

// The stall phase (issue 13): what memtrace's reclaim and compaction
// programs cost on a reclaim-heavy workload, beside empty programs on the
// same 18 tracepoints (bin/floor --stall-hooks) and nothing at all.

var (
	tStallFloor = &tracer{name: "floor-stall", goDump: true, args: func(e *env, ready string) []string {
		return []string{e.bin("floor"), "--stall-hooks", "--ready-file", ready}
	}}
	// memtrace with the stall families only, as `watch` runs them, so
	// the allocation hook's cost (the overhead phase) is not in it.
	tMemtraceStall = &tracer{name: "memtrace-stall", goDump: true, args: func(e *env, ready string) []string {
		return []string{e.bin("memtrace"), "watch", "--json", "--signals", "reclaim,compaction", "--ready-file", ready}
	}}
	// The same with stacks of stalls over a threshold: every stall's
	// begin walks its kernel stack, kept until its end.
	tMemtraceStallStacks = &tracer{name: "memtrace-stall-stacks", goDump: true, args: func(e *env, ready string) []string {
		return []string{e.bin("memtrace"), "watch", "--json", "--signals", "reclaim,compaction", "--stall-threshold", "10ms", "--stacks", "--ready-file", ready}
	}}
	stallTracers = []*tracer{tNone, tStallFloor, tMemtraceStall, tMemtraceStallStacks}
)

const (
	stallLimit    = 16 << 20  // the memory cgroup's limit
	stallFileSize = 256 << 20 // the file read through it, cold, each run
)

// memcgStream is the workload: dd reading a cold 256 MiB file inside a
// memory cgroup limited to 16 MiB, so nearly every page cache charge
// reclaims the cgroup first (tens of thousands of failed charges per run,
// thousands of mm_vmscan_memcg_reclaim_begin/_end pairs).
type memcgStream struct {
	file, dir, procs string
}

func (e *env) newMemcgStream() (*memcgStream, error) {
	m := &memcgStream{}
	name := fmt.Sprintf("memtrace-bench-stall-%d", os.Getpid())
	limitFile := "memory.max"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		m.dir = filepath.Join("/sys/fs/cgroup", name)
	} else {
		m.dir, limitFile = filepath.Join("/sys/fs/cgroup/memory", name), "memory.limit_in_bytes"
	}
	if err := os.Mkdir(m.dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating memory cgroup: %w", err)
	}
	m.procs = filepath.Join(m.dir, "cgroup.procs")
	e.onCleanup(m.remove)
	if err := os.WriteFile(filepath.Join(m.dir, limitFile), []byte(fmt.Sprint(stallLimit)), 0o644); err != nil {
		return nil, fmt.Errorf("limiting memory cgroup: %w", err)
	}
	dir := e.work
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil || st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC {
		dir = "/var/tmp"
		if unix.Statfs(dir, &st) != nil || st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC {
			return nil, errors.New("no disk file system for the file to read (its page cache must be reclaimable)")
		}
	}
	f, err := os.CreateTemp(dir, "memtrace-bench-stall-*.dat")
	if err != nil {
		return nil, fmt.Errorf("creating the file to read: %w", err)
	}
	m.file = f.Name()
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	for n := 0; n < stallFileSize && err == nil; n += len(buf) {
		_, err = f.Write(buf)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("writing the file to read: %w", err)
	}
	return m, m.drop()
}

// drop evicts the file from the page cache: each run reads it cold.
func (m *memcgStream) drop() error {
	f, err := os.Open(m.file)
	if err != nil {
		return fmt.Errorf("dropping the file's pages: %w", err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("dropping the file's pages: %w", err)
	}
	return nil
}

func (m *memcgStream) remove() {
	if m.file != "" {
		m.drop()
		os.Remove(m.file)
	}
	os.Remove(m.dir)
}

func (m *memcgStream) workload() workload {
	return workload{name: "memcg-stream", metric: "elapsed_s", unit: "s", run: func(ctx context.Context) (float64, error) {
		if err := m.drop(); err != nil {
			return 0, err
		}
		script := fmt.Sprintf("echo $$ > %s && exec dd if=%s of=/dev/null bs=1M status=none", m.procs, m.file)
		cmd := exec.CommandContext(ctx, "sh", "-c", script)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		took := time.Since(start)
		if err != nil {
			return 0, fmt.Errorf("reading through the memory cgroup: %w: %s", err, strings.TrimSpace(string(out)))
		}
		return took.Seconds(), nil
	}}
}

// poolCompactionWant is how many direct compactions a run of the
// pool-compaction workload makes at least.
const poolCompactionWant = 3

// stallLoad is a workload of the stall phase with what the phase needs
// of its runs beyond their figure.
type stallLoad struct {
	workload
	// compactions, when set, is how many direct compactions the last run
	// made: the denominator of the cost per compaction.
	compactions func() uint64
	// mayFail: a run that fails is left out, up to a third of the runs;
	// skips counts them.
	mayFail bool
	skips   int
}

// poolCompaction is the compaction workload: a child process grows the
// huge page pool past the free blocks of its order (provoke.Compaction,
// the tests' trigger), so each page it adds is made by direct compaction
// in its context. It needs a host whose free memory can be taken into
// the pool for the seconds of a run; elsewhere the phase measures the
// memcg stream alone. A run may make too few compactions or find the
// free memory too large to take (the machine's own use changes what is
// free between runs): such runs are left out.
func poolCompaction() *stallLoad {
	var last uint64 // tracefs's count of try_to_compact_pages for the child
	return &stallLoad{
		workload: workload{name: "pool-compaction", metric: "elapsed_s", unit: "s", run: func(ctx context.Context) (float64, error) {
			start := time.Now()
			rep, err := provoke.Compaction(poolCompactionWant, provoke.WithComm("mt-bench-comp"))
			if err != nil {
				return 0, err
			}
			last = rep.Events
			return time.Since(start).Seconds(), nil
		}},
		compactions: func() uint64 { return last },
		mayFail:     true,
	}
}

// stallPhase runs each workload under the three configurations, rounds
// interleaved in a shuffled order (slowdown, BPF statistics off), then
// the two tracers again with BPF run-time statistics on: the stall
// programs' run time over their run count is the cost per event.
func (e *env) stallPhase(ctx context.Context) error {
	m, err := e.newMemcgStream()
	if err != nil {
		return err
	}
	if err := e.stallWorkload(ctx, &stallLoad{workload: m.workload()}); err != nil {
		return err
	}
	// Tried once first: where the pool cannot take the free memory, the
	// phase ends with the memcg stream's figures.
	pool := poolCompaction()
	if _, err := pool.run(ctx); err != nil {
		e.logf("stall: no pool-compaction workload here: %v", err)
		return nil
	}
	return e.stallWorkload(ctx, pool)
}

func (e *env) stallWorkload(ctx context.Context, w *stallLoad) error {
	rng := rand.New(rand.NewSource(13))
	for round := 0; round < e.stallRounds; round++ {
		for seq, k := range rng.Perm(len(stallTracers)) {
			t := stallTracers[k]
			v, _, err := e.stallRun(ctx, t, w.workload, false)
			if skip, err := e.stallSkip(w, t, err); skip {
				continue
			} else if err != nil {
				return err
			}
			e.res.add("stall", w.name, t.name, round, seq, w.metric, v, w.unit)
		}
		e.logf("stall %s round %d/%d", w.name, round+1, e.stallRounds)
	}
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return fmt.Errorf("enabling BPF run-time stats: %w", err)
	}
	defer stats.Close()
	for round := 0; round < e.stallCostRounds; round++ {
		for seq, k := range rng.Perm(len(stallTracers) - 1) {
			t := stallTracers[1+k]
			_, progs, err := e.stallRun(ctx, t, w.workload, true)
			if skip, err := e.stallSkip(w, t, err); skip {
				continue
			} else if err != nil {
				return err
			}
			var runs, ns uint64
			for _, d := range progs {
				runs += d.cnt
				ns += d.nsec
				if d.cnt > 0 {
					e.res.add("stallcost", w.name, t.name, round, seq, "prog_ns_per_run:"+d.name, float64(d.nsec)/float64(d.cnt), "ns")
				}
			}
			if runs == 0 {
				return fmt.Errorf("%s: no stall program ran during the workload", t.name)
			}
			e.res.add("stallcost", w.name, t.name, round, seq, "runs", float64(runs), "runs")
			e.res.add("stallcost", w.name, t.name, round, seq, "ns_per_run", float64(ns)/float64(runs), "ns")
			e.res.add("stallcost", w.name, t.name, round, seq, "all_progs_ns", float64(ns), "ns")
			if w.compactions != nil && w.compactions() > 0 {
				e.res.add("stallcost", w.name, t.name, round, seq, "ns_per_compaction", float64(ns)/float64(w.compactions()), "ns")
			}
		}
		e.logf("stall %s cost round %d/%d", w.name, round+1, e.stallCostRounds)
	}
	return nil
}

// stallSkip leaves out a failed run of a workload that may fail, up to
// a third of its runs.
func (e *env) stallSkip(w *stallLoad, t *tracer, err error) (bool, error) {
	if err == nil || !w.mayFail {
		return false, err
	}
	w.skips++
	if w.skips*3 > e.stallRounds*len(stallTracers) {
		return false, fmt.Errorf("%s: %d %s runs failed, the last: %w", t.name, w.skips, w.name, err)
	}
	e.logf("stall: %s: %s run left out: %v", t.name, w.name, err)
	return true, nil
}

// stallRun starts t, runs w once, stops t; with progs, it returns the
// runs and run time of each of t's programs during w.
func (e *env) stallRun(ctx context.Context, t *tracer, w workload, progs bool) (float64, []progStat, error) {
	r, err := e.startTracer(ctx, t)
	if err != nil {
		return 0, nil, err
	}
	time.Sleep(e.settle)
	var before map[uint32]progStat
	if progs {
		before = progStats(r.pid())
	}
	v, err := w.run(ctx)
	var deltas []progStat
	if progs && err == nil {
		for id, a := range progStats(r.pid()) {
			b := before[id]
			deltas = append(deltas, progStat{a.name, a.cnt - b.cnt, a.nsec - b.nsec})
		}
	}
	if _, serr := e.stopTracer(r); err == nil {
		err = serr
	}
	return v, deltas, err
}

// stallTable writes the stall phase's two tables per workload: its
// slowdown and the stall programs' cost per run.
func (e *env) stallTable(b *strings.Builder) {
	heads := []struct{ w, head string }{
		{"memcg-stream", fmt.Sprintf("## Stall hooks on a reclaim-heavy workload (issue 13)\n\n"+
			"dd reading a cold %d MiB file in a memory cgroup limited to %d MiB", stallFileSize>>20, stallLimit>>20)},
		{"pool-compaction", fmt.Sprintf("## Stall hooks on direct compaction (issue 13)\n\n"+
			"a process growing the huge page pool by at least %d pages that direct compaction must make (provoke.Compaction)", poolCompactionWant)},
	}
	for _, h := range heads {
		e.stallWorkloadTable(b, h.w, h.head)
	}
}

func (e *env) stallWorkloadTable(b *strings.Builder, w, head string) {
	base := e.res.values("stall", w, "none", "elapsed_s")
	if len(base) == 0 {
		return
	}
	fmt.Fprintf(b, "%s, %d interleaved rounds.\n\n"+
		"| configuration | elapsed (s), median | slowdown vs none [95%%] | vs floor-stall [95%%] |\n|---|---|---|---|\n", head, len(base))
	floor := e.res.values("stall", w, tStallFloor.name, "elapsed_s")
	for _, t := range stallTracers {
		v := e.res.values("stall", w, t.name, "elapsed_s")
		if len(v) == 0 {
			continue
		}
		vsNone, vsFloor := "", ""
		if t != tNone {
			vsNone = ratioInterval(roundRatios(v, base)).fmtRatio()
		}
		if t != tNone && t != tStallFloor {
			vsFloor = ratioInterval(roundRatios(v, floor)).fmtRatio()
		}
		fmt.Fprintf(b, "| %s | %.3f | %s | %s |\n", t.name, median(valuesOf(v, sortedRounds(v))), vsNone, vsFloor)
	}
	fl := e.res.values("stallcost", w, tStallFloor.name, "ns_per_run")
	if len(fl) > 0 {
		b.WriteString("\n| configuration | program runs per workload run, median | ns per run, all stall programs [95%] | above floor (ns) [95%] | BPF time per workload run (ms), median | BPF time per direct compaction (µs), median |\n|---|---|---|---|---|---|\n")
		for _, t := range stallTracers[1:] {
			v := e.res.values("stallcost", w, t.name, "ns_per_run")
			if len(v) == 0 {
				continue
			}
			runs := e.res.values("stallcost", w, t.name, "runs")
			above := ""
			if t != tStallFloor {
				rr := sortedRounds(v, fl)
				d := make([]float64, len(rr))
				for i, r := range rr {
					d[i] = v[r] - fl[r]
				}
				above = tInterval(d).fmtNum("", 1)
			}
			all := e.res.values("stallcost", w, t.name, "all_progs_ns")
			perComp := "-"
			if pc := e.res.values("stallcost", w, t.name, "ns_per_compaction"); len(pc) > 0 {
				perComp = fmt.Sprintf("%.2f", median(valuesOf(pc, sortedRounds(pc)))/1e3)
			}
			fmt.Fprintf(b, "| %s | %.0f | %s | %s | %.2f | %s |\n", t.name, median(valuesOf(runs, sortedRounds(runs))), tInterval(valuesOf(v, sortedRounds(v))).fmtNum("", 1), above,
				median(valuesOf(all, sortedRounds(all)))/1e6, perComp)
		}
	}
	b.WriteString("\n")
}

// roundRatios is v over base, round by round, where both ran.
func roundRatios(v, base map[int]float64) []float64 {
	var out []float64
	for _, r := range sortedRounds(v, base) {
		if v[r] > 0 && base[r] > 0 {
			out = append(out, v[r]/base[r])
		}
	}
	return out
}
