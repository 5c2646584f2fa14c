package main

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"

	"github.com/memtrace/memtrace/bench/bpfgen"
)

// injector runs memtrace's allocation-failure path (bench/bpf/bench_burst.c)
// against the maps of a running memtrace process: the events land in that
// process's aggregates and ring buffer exactly as real failures would.
type injector struct {
	coll *ebpf.Collection
	prog *ebpf.Program
}

// allocMaps are the maps of memtrace's allocation-failure family.
var allocMaps = []string{"alloc_events", "alloc_stats", "alloc_agg", "alloc_stacks"}

func newInjector(pid int) (*injector, error) {
	maps, err := allocFamilyMaps(pid)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, m := range maps {
			m.Close()
		}
	}()
	spec, err := bpfgen.BurstSpec()
	if err != nil {
		return nil, fmt.Errorf("loading burst object: %w", err)
	}
	for name := range spec.Programs {
		if name != "burst" {
			delete(spec.Programs, name)
		}
	}
	replace := map[string]*ebpf.Map{}
	for _, name := range allocMaps {
		m, ok := maps[name]
		if !ok {
			return nil, fmt.Errorf("memtrace (pid %d) has no map %s", pid, name)
		}
		replace[name] = m
	}
	if err := copyRodata(spec, maps[".rodata"]); err != nil {
		return nil, err
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: replace})
	if err != nil {
		return nil, fmt.Errorf("loading burst program with memtrace's maps: %w", err)
	}
	return &injector{coll: coll, prog: coll.Programs["burst"]}, nil
}

// allocFamilyMaps opens the maps used by memtrace's allocation-failure
// program in process pid, by name.
func allocFamilyMaps(pid int) (map[string]*ebpf.Map, error) {
	for id := range fdinfoIDs(pid, "prog_id") {
		p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
		if err != nil {
			continue
		}
		info, err := p.Info()
		p.Close()
		if err != nil || !strings.HasPrefix(info.Name, "alloc_fail") {
			continue
		}
		ids, ok := info.MapIDs()
		if !ok {
			return nil, errors.New("kernel does not report a program's maps")
		}
		out := map[string]*ebpf.Map{}
		for _, mid := range ids {
			m, err := ebpf.NewMapFromID(mid)
			if err != nil {
				continue
			}
			mi, err := m.Info()
			if err != nil {
				m.Close()
				continue
			}
			name := mi.Name
			if strings.HasSuffix(name, ".rodata") {
				name = ".rodata"
			}
			out[name] = m
		}
		return out, nil
	}
	return nil, fmt.Errorf("no allocation-failure program in process %d", pid)
}

// copyRodata gives the injector memtrace's own load-time constants
// (filters, sample_first, where preempt_count is), so it takes the same
// path. Both objects are built from bpf/alloc.c; the sizes must agree.
func copyRodata(spec *ebpf.CollectionSpec, m *ebpf.Map) error {
	if m == nil {
		return errors.New("memtrace's allocation program has no .rodata map")
	}
	val := make([]byte, m.ValueSize())
	if err := m.Lookup(uint32(0), val); err != nil {
		return fmt.Errorf("reading memtrace's .rodata: %w", err)
	}
	ms := spec.Maps[".rodata"]
	if ms == nil || ms.ValueSize != m.ValueSize() {
		return fmt.Errorf("memtrace's .rodata (%d bytes) does not match bench/bpf/bench_burst.c's: rebuild both (make generate, go generate ./bench/...)", m.ValueSize())
	}
	for _, v := range spec.Variables {
		if v.SectionName != ".rodata" {
			continue
		}
		end := v.Offset + v.Size()
		if int(end) > len(val) {
			return fmt.Errorf("variable %s beyond memtrace's .rodata", v.Name)
		}
		v.Value = append([]byte(nil), val[v.Offset:end]...)
	}
	return nil
}

func (in *injector) Close() {
	if in.coll != nil {
		in.coll.Close()
		in.coll = nil
	}
}

// burstArgs are the raw-tracepoint test-run arguments of bench_burst.c.
type burstArgs struct {
	order, gfp, spread uint64
	migratetype        int32
}

// run injects batches from threads OS threads for d, or until max events
// (0: no limit); it returns the events injected.
func (in *injector) run(threads, batch int, d time.Duration, max uint64, a burstArgs) (uint64, time.Duration, error) {
	var total atomic.Uint64
	var wg sync.WaitGroup
	errs := make(chan error, threads)
	start := time.Now()
	for t := 0; t < threads; t++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			ctx := []uint64{uint64(batch), a.order, a.gfp, uint64(uint32(a.migratetype)), a.spread}
			opts := &ebpf.RunOptions{Context: ctx}
			for time.Since(start) < d {
				if max > 0 && total.Load()+uint64(batch) > max {
					return
				}
				if _, err := in.prog.Run(opts); err != nil {
					errs <- fmt.Errorf("running burst program: %w", err)
					return
				}
				total.Add(uint64(batch))
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	close(errs)
	return total.Load(), el, <-errs
}

// calibrate times, in the kernel, one bpf_get_stackid (memtrace's stack
// walk per failure) and one empty bpf_loop iteration: best of five runs of
// n iterations each, in ns per iteration.
func calibrate(n int) (stackNS, loopNS float64, err error) {
	spec, err := bpfgen.BurstSpec()
	if err != nil {
		return 0, 0, fmt.Errorf("loading burst object: %w", err)
	}
	for name := range spec.Programs {
		if !strings.HasPrefix(name, "calib_") {
			delete(spec.Programs, name)
		}
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return 0, 0, fmt.Errorf("loading calibration programs: %w", err)
	}
	defer coll.Close()
	best := func(p *ebpf.Program) (float64, error) {
		min := time.Duration(1 << 62)
		opts := &ebpf.RunOptions{Context: []uint64{uint64(n)}}
		for i := 0; i < 5; i++ {
			t0 := time.Now()
			if _, err := p.Run(opts); err != nil {
				return 0, fmt.Errorf("running calibration program: %w", err)
			}
			if d := time.Since(t0); d < min {
				min = d
			}
		}
		return float64(min.Nanoseconds()) / float64(n), nil
	}
	if stackNS, err = best(coll.Programs["calib_stackid"]); err != nil {
		return 0, 0, err
	}
	loopNS, err = best(coll.Programs["calib_loop"])
	return stackNS, loopNS, err
}
