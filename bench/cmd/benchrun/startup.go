package main

import (
	"context"
	"time"
)

// startupPhase starts each tracer in turn (interleaved, rotated per round)
// and records the time from exec to probes attached, VmHWM at that moment,
// and the peak RSS of its whole life (wait4's ru_maxrss).
func (e *env) startupPhase(ctx context.Context) error {
	tracers := []*tracer{tFloor, tMemtrace}
	if e.baseline != "" {
		tracers = append(tracers, tBaseline)
	}
	if e.startupPeers {
		tracers = append(tracers, tBpftrace, tBcc, tBpftrace1, tBcc1)
	}
	for round := 0; round < e.startupReps; round++ {
		for i := range tracers {
			t := tracers[(i+round)%len(tracers)]
			r, err := e.startTracer(ctx, t)
			if err != nil {
				return err
			}
			// Let it reach steady state before reading its peak.
			time.Sleep(300 * time.Millisecond)
			hwm := statusKB(r.pid(), "VmHWM")
			maxRSS, err := e.stopTracer(r)
			if err != nil {
				return err
			}
			e.res.add("startup", "-", t.name, round, i, "ready_ms", float64(r.ready.Microseconds())/1000, "ms")
			e.res.add("startup", "-", t.name, round, i, "hwm_ready_kib", float64(r.hwmReady), "KiB")
			e.res.add("startup", "-", t.name, round, i, "hwm_steady_kib", float64(hwm), "KiB")
			e.res.add("startup", "-", t.name, round, i, "maxrss_kib", float64(maxRSS), "KiB")
		}
		e.logf("startup round %d/%d", round+1, e.startupReps)
	}
	return nil
}

// stopTracer stops a tracer started by startTracer.
func (e *env) stopTracer(r *running) (int64, error) {
	if r.cmd == nil {
		return 0, nil
	}
	delete(e.live, r.pid())
	r.justStopped = false
	rss, err := r.stop()
	if r.forced != "" && r.justStopped {
		e.forcedStops[r.t.name]++
		e.res.add("meta", "-", r.t.name, 0, 0, "forced_stop", 1, "")
		e.logf("warning: stopping %s %s", r.t.name, r.forced)
	}
	return rss, err
}
