package loader

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/memtrace/memtrace/internal/event"
)

// injectCandidate is the allocation-failure program loaded as a raw
// tracepoint (same arguments as tp_btf, but BPF_PROG_TEST_RUN can run it)
// and attached nowhere.
var injectCandidate = candidate{
	name:     "test-run/alloc_fail_btf",
	programs: []string{allocProgAllocFailBtf},
	prepare: func(spec *ebpf.CollectionSpec, _ *btf.Spec) (string, error) {
		p := spec.Programs[allocProgAllocFailBtf]
		p.Type = ebpf.RawTracepoint
		p.AttachType = ebpf.AttachNone
		p.AttachTo = ""
		return "test-run/alloc_fail_btf", nil
	},
	attach: func(*ebpf.Collection) ([]link.Link, error) { return nil, nil },
}

// InjectAllocFailures runs the allocation-failure program n times through
// BPF_PROG_TEST_RUN, as if mm_page_alloc had fired with no page, feeding
// the session's own maps. It exists for burst tests and benchmarks: real
// failures cannot be provoked at millions per second. The program shares
// the session's aggregation map, stack map and ring buffer. Events are
// attributed to the calling thread, in process context.
func (s *Session) InjectAllocFailures(n int, order uint32, gfp uint64, migratetype int32) error {
	inject, done, err := s.allocInjector()
	if err != nil {
		return err
	}
	defer done()
	return inject(n, order, gfp, migratetype)
}

// allocInjector loads the injection program once; every failure it
// injects has the same kernel stack (a new load is a new program address).
func (s *Session) allocInjector() (inject func(n int, order uint32, gfp uint64, migratetype int32) error, done func(), err error) {
	a := s.families[event.SignalAlloc]
	if a == nil {
		return nil, nil, errors.New("allocation failures are not attached")
	}
	if s.kernel == nil {
		s.btfCache = btf.NewCache()
		if s.kernel, err = s.btfCache.Kernel(); err != nil {
			return nil, nil, fmt.Errorf("%w: %v", errNoKernelBTF, err)
		}
	}
	base, err := loadAllocSpec()
	if err != nil {
		return nil, nil, err
	}
	if err := writeConfig(base, s.config()); err != nil {
		return nil, nil, err
	}
	coll, _, _, err := s.loadCandidate(base, injectCandidate, a.coll.Maps)
	if err != nil {
		return nil, nil, err
	}
	// Raw tracepoint test runs take no repeat count: one syscall per event.
	prog := coll.Programs[allocProgAllocFailBtf]
	inject = func(n int, order uint32, gfp uint64, migratetype int32) error {
		// trace_mm_page_alloc(page, order, gfp_flags, migratetype), page NULL.
		opts := &ebpf.RunOptions{Context: []uint64{0, uint64(order), gfp, uint64(uint32(migratetype))}}
		for i := 0; i < n; i++ {
			if _, err := prog.Run(opts); err != nil {
				return fmt.Errorf("running allocation-failure program (run %d of %d): %w", i+1, n, err)
			}
		}
		return nil
	}
	return inject, func() { coll.Close() }, nil
}
