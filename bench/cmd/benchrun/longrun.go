package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// longrunPhase leaves memtrace running under steady load and samples its
// RSS. The load is the page workload without pause (real mm_page_alloc
// hits, all filtered in the kernel) plus injected failures at about 10^3/s
// over 512 keys (8 orders × 64 GFP values, one process): the tables reach
// their size within a second, events flow until each key has sent its 64
// (about half a minute), counts keep changing every tick after that.
// Growth after the tables are full is what the target forbids. (With
// thousands of keys in one process memtrace watch falls behind: see
// docs/benchmarks.md.)
func (e *env) longrunPhase(ctx context.Context) error {
	var t *tracer
	out := filepath.Join(e.work, "long.json")
	if e.watch {
		t = tMemtrace
	} else {
		// capture keeps events in memory: bound them so the document is not
		// what grows.
		t = capturer(out, "--max-events", "1000")
	}
	r, err := e.startTracer(ctx, t)
	if err != nil {
		return err
	}
	defer e.stopTracer(r)
	pid := r.pid()
	in, err := newInjector(pid)
	if err != nil {
		return err
	}
	defer in.Close()
	load := exec.CommandContext(ctx, e.bin("pagetouch"), "-iters", "0", "-for", e.longRun.String())
	if err := load.Start(); err != nil {
		return fmt.Errorf("starting pagetouch: %w", err)
	}
	defer func() {
		if load.ProcessState == nil {
			load.Process.Kill()
			load.Wait()
		}
	}()
	const orders, gfps = 8, 64
	start := time.Now()
	cpu0 := cpuTicks(pid)
	sample := 0
	record := func() {
		el := time.Since(start).Seconds()
		e.res.add("longrun", "pagetouch+inject", t.name, sample, 0, "rss_kib", float64(statusKB(pid, "VmRSS")), "KiB")
		e.res.add("longrun", "pagetouch+inject", t.name, sample, 0, "elapsed_s", el, "s")
		e.res.add("longrun", "pagetouch+inject", t.name, sample, 0, "cpu_cores", float64(cpuTicks(pid)-cpu0)/clockTick/el, "cores")
		sample++
	}
	record()
	tick := time.NewTicker(time.Second / time.Duration(e.longInjectHz))
	defer tick.Stop()
	nextSample := start.Add(e.longSampleSec)
	var injected uint64
	for k := 0; time.Since(start) < e.longRun; k++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		n, _, err := in.run(1, e.longBatch, time.Hour, uint64(e.longBatch),
			burstArgs{order: uint64(k % orders), gfp: 0x1000, spread: gfps, migratetype: 0})
		if err != nil {
			return err
		}
		injected += n
		if time.Now().After(nextSample) {
			record()
			nextSample = nextSample.Add(e.longSampleSec)
		}
	}
	record()
	e.res.add("longrun", "pagetouch+inject", t.name, 0, 0, "injected", float64(injected), "events")
	in.Close()
	load.Wait()
	if _, err := e.stopTracer(r); err != nil {
		return err
	}
	if r.forced != "" {
		e.res.add("longrun", "pagetouch+inject", t.name, 0, 0, "stop_forced", 1, "")
	}
	if !e.watch {
		doc, err := readCapture(out)
		if err != nil {
			return err
		}
		var counted uint64
		for _, a := range doc.AllocFailures {
			if int(a.Pid) == os.Getpid() {
				counted += a.Count
			}
		}
		st := doc.Stats["alloc"]
		e.res.add("longrun", "pagetouch+inject", t.name, 0, 0, "counted", float64(counted), "events")
		e.res.add("longrun", "pagetouch+inject", t.name, 0, 0, "lost", float64(st.Lost), "events")
		e.res.add("longrun", "pagetouch+inject", t.name, 0, 0, "map_full", float64(st.MapFull), "events")
	}
	e.logf("long run: %d samples, injected %d", sample, injected)
	return nil
}
