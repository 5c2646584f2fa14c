package metrics

import (
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/memtrace/memtrace/internal/present/promtext"

	"github.com/memtrace/memtrace/internal/host/sysstate"
)

// HostCollector reports the host's memory state at scrape time: huge-page
// pools, free blocks per order and the sysctls of the seed incidents. It
// reads procfs and sysfs only.
type HostCollector struct {
	take func() sysstate.Snapshot

	mu      sync.Mutex
	lastErr string // logged once, not at every scrape
}

// NewHostCollector reads snapshots with take, e.g. (*sysstate.Reader).Take.
func NewHostCollector(take func() sysstate.Snapshot) *HostCollector {
	return &HostCollector{take: take}
}

var (
	poolDesc = promtext.NewDesc(namespace+"_hugepage_pool_pages",
		"Huge-page pool per page size (bytes): state total (nr_hugepages, surplus included), free (reserved included), reserved (promised to a mapping, not yet faulted in), surplus.",
		[]string{"page_size", "state"}, nil)
	neverUsedDesc = promtext.NewDesc(namespace+"_hugepage_pool_never_used_bytes",
		"Huge-page memory neither in use nor reserved (free - reserved): lost to everything else until the pool shrinks.",
		[]string{"page_size"}, nil)
	buddyDesc = promtext.NewDesc(namespace+"_buddy_free_blocks",
		"Free blocks of 2^order pages per zone (/proc/buddyinfo): few blocks above order 0 is fragmentation.",
		[]string{"node", "zone", "order"}, nil)
	minFreeDesc = promtext.NewDesc(namespace+"_vm_min_free_bytes",
		"vm.min_free_kbytes in bytes: the reserve below which only atomic allocations may dip.", nil, nil)
	reclaimDesc = promtext.NewDesc(namespace+"_vm_zone_reclaim_mode",
		"vm.zone_reclaim_mode bits: 1 reclaim in the local zone, 2 write dirty pages, 4 swap.", nil, nil)
	zoneFreeDesc = promtext.NewDesc(namespace+"_zone_free_bytes",
		"Free memory per zone (/proc/buddyinfo; pages on per-CPU lists are not in it).",
		[]string{"node", "zone"}, nil)
	zoneMarkDesc = promtext.NewDesc(namespace+"_zone_watermark_bytes",
		"Watermarks per zone (/proc/zoneinfo, boost included): below low kswapd is woken, below min only __GFP_HIGH and atomic requests may allocate (to 1/2 and 3/8 of min); high is where kswapd stops.",
		[]string{"node", "zone", "watermark"}, nil)
	hostErrDesc = promtext.NewDesc(namespace+"_host_state_read_errors",
		"Parts of the host's memory state that could not be read at this scrape.", nil, nil)
)

// Collect implements promtext.Collector. A part that could not be read
// is left out (and counted), not reported as zero.
func (c *HostCollector) Collect(ch chan<- promtext.Metric) {
	s := c.take()
	if msg := strings.Join(s.Errors, "; "); msg != "" {
		c.mu.Lock()
		if msg != c.lastErr {
			slog.Warn("memtrace: reading host memory state", "errors", msg)
		}
		c.lastErr = msg
		c.mu.Unlock()
	}
	ch <- promtext.MustNewConstMetric(hostErrDesc, promtext.GaugeValue, float64(len(s.Errors)))
	for _, p := range s.HugePools {
		size := strconv.FormatUint(p.PageSizeKB*1024, 10)
		for _, st := range []struct {
			name string
			v    uint64
		}{{"total", p.Total}, {"free", p.Free}, {"reserved", p.Reserved}, {"surplus", p.Surplus}} {
			ch <- promtext.MustNewConstMetric(poolDesc, promtext.GaugeValue, float64(st.v), size, st.name)
		}
		ch <- promtext.MustNewConstMetric(neverUsedDesc, promtext.GaugeValue, float64(p.NeverUsedBytes()), size)
	}
	for _, z := range s.Buddy {
		node := strconv.Itoa(z.Node)
		for order, n := range z.FreeBlocks {
			ch <- promtext.MustNewConstMetric(buddyDesc, promtext.GaugeValue, float64(n), node, z.Zone, strconv.Itoa(order))
		}
		if len(z.FreeBlocks) > 0 {
			ch <- promtext.MustNewConstMetric(zoneFreeDesc, promtext.GaugeValue, pageBytes(z.FreePages), node, z.Zone)
		}
		if z.MinPages > 0 || z.LowPages > 0 || z.HighPages > 0 { // zoneinfo read
			for _, m := range []struct {
				name  string
				pages uint64
			}{{"min", z.MinPages}, {"low", z.LowPages}, {"high", z.HighPages}} {
				ch <- promtext.MustNewConstMetric(zoneMarkDesc, promtext.GaugeValue, pageBytes(m.pages), node, z.Zone, m.name)
			}
		}
	}
	if !sysctlFailed(s.Errors, "min_free_kbytes") {
		ch <- promtext.MustNewConstMetric(minFreeDesc, promtext.GaugeValue, float64(s.Sysctl.MinFreeKbytes)*1024)
	}
	if !sysctlFailed(s.Errors, "zone_reclaim_mode") {
		ch <- promtext.MustNewConstMetric(reclaimDesc, promtext.GaugeValue, float64(s.Sysctl.ZoneReclaimMode))
	}
}

// pageBytes is a number of base pages in bytes.
func pageBytes(pages uint64) float64 { return float64(pages) * float64(os.Getpagesize()) }

// sysctlFailed tells whether a sysctl is among the snapshot's errors
// (they name the file).
func sysctlFailed(errs []string, name string) bool {
	for _, e := range errs {
		if strings.Contains(e, name) {
			return true
		}
	}
	return false
}
