package loader_test

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/memtrace/memtrace/bench/bpfgen"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/probe/loader"
	"github.com/memtrace/memtrace/internal/testing/privtest"
	"github.com/memtrace/memtrace/internal/testing/provoke"
)

// BenchmarkAllocHookCost is the in-kernel cost per kmem:mm_page_alloc
// hit of memtrace's tp_btf program with atomic demand counted and without,
// beside an empty program on the same hook (the floor), from the kernel's
// own accounting (BPF_ENABLE_STATS). "demand" samples sources 1 in 64
// (doctor --measure's rate), "demand-unsampled" not at all. Two workloads: page faults (every
// allocation can sleep: the cost of the one flag test) and loopback
// traffic (order-3 page fragments without direct reclaim: the counting
// itself). ns/hit is reported per variant and workload:
//
//	go test -run '^$' -bench AllocHookCost -benchtime 20x ./internal/probe/loader/
func BenchmarkAllocHookCost(b *testing.B) {
	privtest.RequireRoot(b)
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Fatalf("enabling BPF run-time stats: %v", err)
	}
	defer stats.Close()
	workloads := []struct {
		name string
		run  func(b *testing.B)
	}{
		{"pagetouch", func(b *testing.B) { touchPages(b, 64<<20) }},
		{"loopback", func(b *testing.B) {
			if _, err := provoke.LoopbackTraffic(16<<20, "order > 64", func() {}, provoke.WithComm("mt-bench-lo")); err != nil {
				b.Fatal(err)
			}
		}},
	}
	for _, w := range workloads {
		for _, v := range []string{"empty", "no-demand", "demand-unsampled", "demand"} {
			b.Run(w.name+"/"+v, func(b *testing.B) {
				s, prog, closeAll := attachVariant(b, v)
				defer closeAll()
				before := progStats(b, prog)
				for b.Loop() {
					w.run(b)
				}
				after := progStats(b, prog)
				runs := after.RunCount - before.RunCount
				if runs == 0 {
					b.Fatal("the program never ran")
				}
				b.ReportMetric(float64(after.Runtime-before.Runtime)/float64(runs), "ns/hit")
				b.ReportMetric(float64(runs)/float64(b.N), "hits/op")
				if s != nil {
					if d, err := s.AtomicDemand(); err == nil {
						b.ReportMetric(float64(d.Total())/float64(b.N), "atomic-pages/op")
					}
				}
			})
		}
	}
}

// attachVariant attaches one program on tp_btf/mm_page_alloc and returns it.
func attachVariant(b *testing.B, v string) (*loader.Session, *ebpf.Program, func()) {
	if v == "empty" {
		var objs bpfgen.EmptyObjects
		if err := bpfgen.LoadEmptyObjects(&objs, nil); err != nil {
			b.Fatal(err)
		}
		l, err := link.AttachTracing(link.TracingOptions{Program: objs.EmptyPageAlloc})
		if err != nil {
			objs.Close()
			b.Fatal(err)
		}
		return nil, objs.EmptyPageAlloc, func() { l.Close(); objs.Close() }
	}
	cfg := loader.DefaultConfig()
	cfg.Signals = []event.Signal{event.SignalAlloc}
	cfg.AllocHook = "tp_btf"
	cfg.AtomicDemand = v != "no-demand"
	cfg.AtomicSampleEvery = 64
	if v == "demand-unsampled" {
		cfg.AtomicSampleEvery = 0
	}
	s, err := loader.Start(cfg, loader.Naming{})
	if err != nil {
		b.Fatal(err)
	}
	ids, err := s.ProgramIDs()
	if err != nil {
		b.Fatal(err)
	}
	for _, id := range ids {
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			b.Fatal(err)
		}
		if info, err := p.Info(); err == nil && info.Name == "alloc_fail_btf" {
			return s, p, func() { p.Close(); s.Close() }
		}
		p.Close()
	}
	s.Close()
	b.Fatal("no alloc_fail_btf program")
	return nil, nil, nil
}

func progStats(b *testing.B, p *ebpf.Program) *ebpf.ProgramStats {
	st, err := p.Stats()
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// touchPages faults in n bytes of anonymous memory, one page allocation
// per 4 KiB page (no THP), and unmaps it.
func touchPages(b *testing.B, n int) {
	m, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Munmap(m)
	if err := unix.Madvise(m, unix.MADV_NOHUGEPAGE); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i += 4096 {
		m[i] = 1
	}
}
