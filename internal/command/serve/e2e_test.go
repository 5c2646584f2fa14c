package serve

import (
	"context"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/present/metrics"
	"github.com/memtrace/memtrace/internal/probe/loader"
	"github.com/memtrace/memtrace/internal/testing/privtest"
	"github.com/memtrace/memtrace/internal/testing/provoke"
)

// probes starts real probes for the tests, as cmd/memtrace does.
func probes(cfg loader.Config) func(event.Naming) (Session, error) {
	return func(n event.Naming) (Session, error) {
		s, err := loader.Start(cfg, n)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}

// startServe runs serve on a loopback port of its own until the test ends.
func startServe(t *testing.T) string {
	t.Helper()
	cfg := loader.DefaultConfig()
	cfg.SampleFirst = 1
	return startServeWith(t, cfg)
}

// startServeWith is startServe with the probes of cfg.
func startServeWith(t *testing.T, cfg loader.Config) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Options{
			Listen: "127.0.0.1:0", Start: probes(cfg), SyncInterval: time.Second, Version: "test",
			Metrics: metrics.Options{CommLabel: true, ContainerLabels: true, MaxSeries: 2000, AgeOut: 10 * time.Minute},
			OnReady: func(addr net.Addr, s event.Source) {
				privtest.RequireAttached(t, s.Hooks(), event.SignalAlloc, event.SignalHugetlb)
				ready <- addr
			},
		})
	}()
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-errc:
		cancel()
		t.Fatalf("serve did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serve did not attach within 30s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop within 30s")
		}
	})
	return addr.String()
}

// TestPrometheusScrapesProvokedEvents is the fleet set-up in small: serve
// attached to the real kernel, a real Prometheus scraping it every second,
// real allocation failures and huge-page requests from named processes.
// The counters Prometheus stores must grow by exactly what the kernel's
// own tracepoints counted, with the right labels.
func TestPrometheusScrapesProvokedEvents(t *testing.T) {
	privtest.RequireRoot(t)
	privtest.RequireBTFKernel(t)
	// Cleanups run last-in first-out: Prometheus stops before serve.
	target := startServe(t)
	prom := startPrometheus(t, target)
	prom.waitFor(t, `up{job="memtrace"}`, 1)

	const (
		allocComm  = "mt-prom-alloc"
		failComm   = "mt-prom-hugeno"
		hugeOKComm = "mt-prom-hugeok"
	)
	// Nothing from these names before: the increase is the whole value.
	for _, c := range []string{allocComm, failComm, hugeOKComm} {
		if got := prom.query(t, `{__name__=~"memtrace_.+_total", comm="`+c+`"}`); len(got) != 0 {
			t.Fatalf("series for %s before provoking: %+v", c, got)
		}
	}

	alloc, err := provoke.AllocFailures(5, provoke.WithComm(allocComm))
	if err != nil {
		t.Fatal(err)
	}
	fail, ok := hugeRequests(t, failComm, hugeOKComm)

	series := prom.waitFor(t, `memtrace_page_alloc_failures_total{comm="`+allocComm+`"}`, float64(alloc.Events))
	// The provoking methods allocate in process context with a sleeping
	// mask: GFP_KERNEL_ACCOUNT (pipe buffers), or GFP_USER|__GFP_ACCOUNT
	// (BPF map memory), whichever the host's memory made the helper use.
	wantClass := []string{"kernel", "user"}
	for _, s := range series {
		order, _ := strconv.Atoi(s.Labels["order"])
		if s.Labels["context"] != "process" || !slices.Contains(wantClass, s.Labels["gfp_class"]) || !slices.Contains(alloc.Orders, order) || s.Labels["job"] != "memtrace" {
			t.Errorf("allocation failure series %v: want context process, gfp_class in %v, order in %v", s.Labels, wantClass, alloc.Orders)
		}
		if s.Labels["container"] != "" {
			t.Errorf("provoking child is in a plain memory cgroup, not a container: %v", s.Labels)
		}
	}
	t.Logf("allocation failures: %d provoked (tracefs), orders %v, flags %v; Prometheus: %+v", alloc.Events, alloc.Orders, alloc.GFPFlags, series)

	pageSize := strconv.FormatUint(hugePageSize(t), 10)
	got := prom.waitFor(t, `memtrace_hugetlb_requests_total{comm="`+failComm+`"}`, float64(fail.Failed))
	if l := got[0].Labels; len(got) != 1 || l["call"] != "mmap" || l["result"] != "ENOMEM" || l["page_size"] != pageSize {
		t.Errorf("failed request series %+v: want call mmap, result ENOMEM, page_size %s", got, pageSize)
	}
	prom.waitFor(t, `memtrace_hugetlb_fallbacks_total{comm="`+failComm+`"}`, 1)
	got = prom.waitFor(t, `memtrace_hugetlb_requests_total{comm="`+hugeOKComm+`"}`, float64(ok.Attempts))
	if l := got[0].Labels; len(got) != 1 || l["call"] != "mmap" || l["result"] != "ok" || l["page_size"] != pageSize {
		t.Errorf("successful request series %+v: want call mmap, result ok, page_size %s", got, pageSize)
	}
	if got := prom.query(t, `memtrace_hugetlb_fallbacks_total{comm="`+hugeOKComm+`"}`); len(got) != 0 {
		t.Errorf("a successful request counted as a fallback: %+v", got)
	}

	// A few more scrapes must not count anything twice.
	time.Sleep(3 * time.Second)
	prom.waitFor(t, `sum(memtrace_page_alloc_failures_total{comm="`+allocComm+`"})`, float64(alloc.Events))
	prom.waitFor(t, `sum(memtrace_hugetlb_requests_total{comm=~"`+failComm+`|`+hugeOKComm+`"})`, float64(fail.Failed+ok.Attempts))
	for _, q := range []string{`memtrace_events_lost_total`, `memtrace_map_full_total`} {
		for _, s := range prom.query(t, q) {
			if s.Value != 0 {
				t.Errorf("%v = %v: events were lost, counts may be short", s.Labels, s.Value)
			}
		}
	}
	if got := prom.query(t, `process_resident_memory_bytes{job="memtrace"}`); len(got) != 1 || got[0].Value <= 0 {
		t.Errorf("process RSS not exported: %+v", got)
	}
}

// hugeRequests makes a mmap(MAP_HUGETLB) fail with an empty pool and fall
// back to normal pages (comm failComm), then one succeed from a pool of
// one page (comm okComm). Pools are restored before it returns.
func hugeRequests(t *testing.T, failComm, okComm string) (fail, ok provoke.Report) {
	t.Helper()
	restore, err := provoke.ReserveHugePages(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	fail, err = provoke.Huge(provoke.HugeRequest{Op: provoke.MmapFallback}, provoke.WithComm(failComm))
	if rerr := restore(); rerr != nil {
		t.Fatalf("restoring the huge page pool: %v", rerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if fail.Attempts != 1 || fail.Failed != 1 {
		t.Fatalf("wanted one failed huge-page request, got %d attempts, %d failed: %+v", fail.Attempts, fail.Failed, fail.Calls)
	}
	restore, err = provoke.ReserveHugePages(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	ok, err = provoke.Huge(provoke.HugeRequest{Op: provoke.Mmap}, provoke.WithComm(okComm))
	if rerr := restore(); rerr != nil {
		t.Fatalf("restoring the huge page pool: %v", rerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if ok.Attempts != 1 || ok.Failed != 0 {
		t.Fatalf("wanted one successful huge-page request, got %d attempts, %d failed", ok.Attempts, ok.Failed)
	}
	return fail, ok
}

// hugePageSize is the default huge page size in bytes, from meminfo.
func hugePageSize(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Hugepagesize:" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb * 1024
		}
	}
	t.Fatal("no Hugepagesize in /proc/meminfo")
	return 0
}
