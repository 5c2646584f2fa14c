package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os/exec"
	"time"
)

// workload is something whose speed the tracers may change.
type workload struct {
	name, metric, unit string
	// higherIsBetter: throughput (pgbench tps); otherwise elapsed time.
	higherIsBetter bool
	run            func(ctx context.Context) (float64, error)
}

// overheadPhase: the page-allocation workload under every configuration.
func (e *env) overheadPhase(ctx context.Context) error {
	return e.interleave(ctx, e.pagetouch(), e.overheadRuns)
}

// pagetouch maps 256 MiB, touches every page, unmaps, e.touchIters times.
func (e *env) pagetouch() workload {
	return workload{name: "pagetouch", metric: "elapsed_s", unit: "s", run: func(ctx context.Context) (float64, error) {
		out, err := exec.CommandContext(ctx, e.bin("pagetouch"), "-iters", fmt.Sprint(e.touchIters)).Output()
		if err != nil {
			return 0, fmt.Errorf("running pagetouch: %w", err)
		}
		var r struct{ NS int64 }
		if err := json.Unmarshal(out, &r); err != nil {
			return 0, fmt.Errorf("reading pagetouch output %q: %w", out, err)
		}
		return float64(r.NS) / 1e9, nil
	}}
}

// interleave runs w under every configuration once per round, in an order
// shuffled per round (fixed seed), so drift and order effects spread over
// all configurations instead of biasing one. Each tracer is started and
// attached before the run and stopped after it; only the run is timed.
func (e *env) interleave(ctx context.Context, w workload, rounds int) error {
	rng := rand.New(rand.NewSource(int64(len(w.name))))
	for round := 0; round < rounds; round++ {
		order := rng.Perm(len(allTracers))
		for seq, k := range order {
			t := allTracers[k]
			r, err := e.startTracer(ctx, t)
			if err != nil {
				return err
			}
			time.Sleep(e.settle)
			v, err := w.run(ctx)
			if _, serr := e.stopTracer(r); err == nil {
				err = serr
			}
			if err != nil {
				return err
			}
			e.res.add("overhead", w.name, t.name, round, seq, w.metric, v, w.unit)
		}
		e.logf("%s round %d/%d", w.name, round+1, rounds)
	}
	return nil
}
