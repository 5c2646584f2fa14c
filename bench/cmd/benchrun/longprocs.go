package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/memtrace/memtrace/internal/testing/provoke"
)

// procsComm names the worker thread of every failing process of the
// longprocs phase: the failures are told apart from other work's by it,
// in memtrace's output as in the tracefs filter.
const procsComm = "mt-longprocs"

// procsTally is what memtrace's `watch --json` said about the phase's
// processes, read from its stdout as it runs.
type procsTally struct {
	lines, summaries int
	bytes            int64
	// recent sums each summary row's failures in its interval, by pid: a
	// pid reused by a later process (pid_max is 32768 here) adds up, as
	// it does on the tracefs side.
	recent map[uint32]uint64
	// rows is the most rows of one summary line (alloc_failures).
	rows     int
	badLines int
}

// summaryLine is the part of a watch NDJSON summary line read here.
type summaryLine struct {
	Kind          string `json:"kind"`
	AllocFailures []struct {
		Pid    uint32 `json:"pid"`
		Comm   string `json:"comm"`
		Recent uint64 `json:"recent"`
	} `json:"alloc_failures"`
}

// lastRows is the number of rows of the latest summary line, sampled with
// the RSS: the tables' size over the run.
var lastRows atomic.Int64

// readWatch reads memtrace's NDJSON until EOF (memtrace exited).
func readWatch(f *os.File, done chan<- *procsTally) {
	t := &procsTally{recent: map[uint32]uint64{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		t.lines++
		t.bytes += int64(len(sc.Bytes())) + 1
		var s summaryLine
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.badLines++
			continue
		}
		if s.Kind != "summary" {
			continue
		}
		t.summaries++
		t.rows = max(t.rows, len(s.AllocFailures))
		lastRows.Store(int64(len(s.AllocFailures)))
		for _, a := range s.AllocFailures {
			if a.Comm == procsComm && a.Recent > 0 {
				t.recent[a.Pid] += a.Recent
			}
		}
	}
	f.Close()
	done <- t
}

// longprocsPhase runs `memtrace watch --json` (every default family, its
// output read through a pipe) for procsRun while distinct short-lived
// processes, procsRate a second, each make real allocations fail: every
// one is a new provoke child whose worker thread fills a memory cgroup
// with pipe buffers until a charge fails (provoke.AllocFailures). Each
// failure is counted independently in a tracefs instance filtered by the
// child's thread id; memtrace's counts by pid must equal them. memtrace's
// RSS and CPU are sampled every longSampleSec. What the target forbids is
// growth once processes age out of the tables (watch --age-out, 10 min by
// default) as fast as new ones arrive.
func (e *env) longprocsPhase(ctx context.Context) error {
	const ph, wl = "longprocs", "failing-processes"
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("creating memtrace's output pipe: %w", err)
	}
	// Read from the start: a pipe left unread would block memtrace.
	tallied := make(chan *procsTally, 1)
	go readWatch(pr, tallied)
	e.tracerStdout = pw
	r, err := e.startTracer(ctx, tMemtrace)
	e.tracerStdout = nil
	pw.Close() // memtrace holds its own copy: EOF comes when it exits
	if err != nil {
		return err
	}
	defer e.stopTracer(r)
	pid := r.pid()
	cfg := tMemtrace.name
	start := time.Now()
	cpu0, lastCPU, lastT := cpuTicks(pid), cpuTicks(pid), start
	sample := 0
	var started, failed int
	var events uint64
	want := map[uint32]uint64{}
	procsOf := map[uint32]int{} // children per pid: pid_max is 32768 here
	record := func() {
		now, cpu := time.Now(), cpuTicks(pid)
		el := now.Sub(start).Seconds()
		add := func(metric string, v float64, unit string) { e.res.add(ph, wl, cfg, sample, 0, metric, v, unit) }
		add("elapsed_s", el, "s")
		add("rss_kib", float64(statusKB(pid, "VmRSS")), "KiB")
		add("rss_anon_kib", float64(statusKB(pid, "RssAnon")), "KiB")
		add("rss_file_kib", float64(statusKB(pid, "RssFile")), "KiB")
		add("hwm_kib", float64(statusKB(pid, "VmHWM")), "KiB")
		if el > 0 {
			add("cpu_cores", float64(cpu-cpu0)/clockTick/el, "cores")
		}
		if d := now.Sub(lastT).Seconds(); d > 0 && sample > 0 {
			add("cpu_cores_interval", float64(cpu-lastCPU)/clockTick/d, "cores")
		}
		add("processes", float64(started), "processes")
		add("rows", float64(lastRows.Load()), "rows")
		lastCPU, lastT = cpu, now
		if sample%30 == 0 {
			e.logf("longprocs: %4.0f s, %d processes (%d failed to provoke), VmRSS %d KiB, %.4f cores", el, started, failed, statusKB(pid, "VmRSS"), float64(cpu-cpu0)/clockTick/max(el, 1))
		}
		sample++
	}
	record()
	tick := time.NewTicker(time.Duration(float64(time.Second) / e.procsRate))
	defer tick.Stop()
	nextSample := start.Add(e.longSampleSec)
	for time.Since(start) < e.procsRun {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		started++
		rep, err := provoke.AllocFailures(1, provoke.WithComm(procsComm), provoke.WithTimeout(20*time.Second))
		if err != nil {
			// A busy machine can time a child out; count it, and stop
			// only when provoking fails outright.
			failed++
			if failed > 20 && failed*10 > started {
				return fmt.Errorf("provoking failures: %d of %d processes failed, last: %w", failed, started, err)
			}
		}
		if rep.Pid > 0 {
			want[uint32(rep.Pid)] += rep.Events
			procsOf[uint32(rep.Pid)]++
			events += rep.Events
		}
		if time.Now().After(nextSample) {
			record()
			nextSample = nextSample.Add(e.longSampleSec)
		}
	}
	record()
	if _, err := e.stopTracer(r); err != nil {
		return err
	}
	t := <-tallied
	var counted uint64
	mismatched := 0
	// A differing pid is logged with both counts and how many processes
	// had it: a pid reused within watch's age-out merges two processes'
	// counts in one in-kernel key (pid, order, flags, context).
	for p, n := range want {
		if t.recent[p] != n {
			mismatched++
			e.logf("longprocs: pid %d: tracefs %d (%d processes), memtrace %d", p, n, procsOf[p], t.recent[p])
		}
	}
	for p, n := range t.recent {
		counted += n
		if _, ok := want[p]; !ok {
			mismatched++ // counted by memtrace, never started here
			e.logf("longprocs: pid %d: memtrace %d under %s, never started here", p, n, procsComm)
		}
	}
	add := func(metric string, v float64, unit string) { e.res.add(ph, wl, cfg, 0, 0, metric, v, unit) }
	add("processes_started", float64(started), "processes")
	add("processes_not_provoked", float64(failed), "processes")
	add("pids_tracefs", float64(len(want)), "pids")
	add("pids_memtrace", float64(len(t.recent)), "pids")
	add("failures_tracefs", float64(events), "events")
	add("failures_memtrace", float64(counted), "events")
	add("pids_mismatched", float64(mismatched), "pids")
	add("summary_lines", float64(t.summaries), "lines")
	add("max_rows", float64(t.rows), "rows")
	add("output_bytes", float64(t.bytes), "bytes")
	add("bad_lines", float64(t.badLines), "lines")
	if r.forced != "" {
		add("stop_forced", 1, "")
	}
	e.logf("longprocs: %d processes (%d not provoked), failures tracefs %d, memtrace %d, pids %d/%d, mismatched %d",
		started, failed, events, counted, len(want), len(t.recent), mismatched)
	return nil
}
