package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// captureDoc is the part of memtrace's capture JSON the benchmarks read.
type captureDoc struct {
	Processes []struct {
		Pid           uint32 `json:"pid"`
		AllocFailures uint64 `json:"alloc_failures"`
	} `json:"processes"`
	AllocFailures []struct {
		Pid   uint32 `json:"pid"`
		Count uint64 `json:"count"`
	} `json:"alloc_failures"`
	Stats map[string]struct {
		Seen    uint64 `json:"seen"`
		Lost    uint64 `json:"lost"`
		Sampled uint64 `json:"sampled"`
		MapFull uint64 `json:"map_full"`
	} `json:"stats"`
	Events        []json.RawMessage `json:"events"`
	EventsLeftOut uint64            `json:"events_left_out"`
}

// capturer is memtrace capture writing its document to out: the burst
// and long-run phases need its exact counts at the end.
func capturer(out string, extra ...string) *tracer {
	return &tracer{name: "memtrace", goDump: true, args: func(e *env, ready string) []string {
		if e.signals != "" {
			extra = append([]string{"--signals", e.signals}, extra...)
		}
		return append([]string{e.bin("memtrace"), "capture", "--duration", "0", "-o", out, "--ready-file", ready}, extra...)
	}}
}

// burstPhase injects allocation failures into a running memtrace as fast
// as the injector goes (target: 10^6/s), once with memtrace's default
// sampling and once sending every event (the ring buffer must overflow),
// and checks the per-process count against the number injected.
func (e *env) burstPhase(ctx context.Context) error {
	variants := []struct {
		name  string
		extra []string
	}{
		{"sampled", nil},
		{"unsampled", []string{"--sample-first", "0"}},
	}
	for round, v := range variants {
		out := filepath.Join(e.work, "burst-"+v.name+".json")
		r, err := e.startTracer(ctx, capturer(out, v.extra...))
		if err != nil {
			return err
		}
		in, err := newInjector(r.pid())
		if err != nil {
			e.stopTracer(r)
			return err
		}
		pid := r.pid()
		// Run-time stats on the injector give the kernel's cost of one
		// failure; they wrap a whole bpf_loop of a batch, so they add
		// nothing per event.
		stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
		if err != nil {
			in.Close()
			e.stopTracer(r)
			return fmt.Errorf("enabling BPF run-time stats: %w", err)
		}
		cpu0, t0 := cpuTicks(pid), time.Now()
		d := time.Duration(e.burstSeconds * float64(time.Second))
		// GFP_ATOMIC|__GFP_NOWARN-like flags, order 3: a typical failing
		// network-receive allocation.
		n, el, err := in.run(e.burstThreads, e.burstBatch, d, 0, burstArgs{order: 3, gfp: 0xa20, spread: 1, migratetype: 1})
		var kernNS float64
		if st, serr := in.prog.Stats(); serr == nil && n > 0 {
			kernNS = float64(st.Runtime.Nanoseconds()) / float64(n)
		}
		stats.Close()
		in.Close()
		cpu1, t1 := cpuTicks(pid), time.Now()
		// Let the reader drain what is queued, then count its CPU too.
		time.Sleep(time.Second)
		cpu2, t2 := cpuTicks(pid), time.Now()
		_, serr := e.stopTracer(r)
		if err == nil {
			err = serr
		}
		if err != nil {
			return err
		}
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
		rec := func(metric string, val float64, unit string) {
			e.res.add("burst", "inject", "memtrace-"+v.name, round, 0, metric, val, unit)
		}
		rec("threads", float64(e.burstThreads), "")
		rec("kernel_ns_per_failure", kernNS, "ns")
		rec("injected", float64(n), "events")
		rec("rate", float64(n)/el.Seconds(), "events/s")
		rec("counted", float64(counted), "events")
		rec("seen", float64(st.Seen), "events")
		rec("sampled", float64(st.Sampled), "events")
		rec("lost", float64(st.Lost), "events")
		rec("map_full", float64(st.MapFull), "events")
		rec("delivered", float64(len(doc.Events))+float64(doc.EventsLeftOut), "events")
		rec("go_cpu_burst", float64(cpu1-cpu0)/clockTick/t1.Sub(t0).Seconds(), "cores")
		rec("go_cpu_drain", float64(cpu2-cpu1)/clockTick/t2.Sub(t1).Seconds(), "cores")
		e.logf("burst %s: %.0f ns per failure in the kernel; injected %d at %.2g/s, counted %d, lost %d, sampled %d", v.name, kernNS, n, float64(n)/el.Seconds(), counted, st.Lost, st.Sampled)
	}
	stackNS, loopNS, err := calibrate(100000)
	if err != nil {
		return err
	}
	e.res.add("burst", "calibration", "-", 0, 0, "ns_per_stackid", stackNS, "ns")
	e.res.add("burst", "calibration", "-", 0, 0, "ns_per_loop_iteration", loopNS, "ns")
	e.logf("calibration: bpf_get_stackid %.0f ns, bpf_loop iteration %.1f ns", stackNS, loopNS)
	return nil
}

func readCapture(path string) (*captureDoc, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading memtrace's capture: %w", err)
	}
	var doc captureDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("parsing memtrace's capture %s: %w", path, err)
	}
	return &doc, nil
}
