package metrics

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/memtrace/memtrace/internal/aggregate/tracker"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/present/text"
	"github.com/memtrace/memtrace/internal/present/view"
)

// Source is what the exporter reads of an event.Source (a loader
// session, or a fake in tests): every family's aggregates, through its
// view (internal/present/view).
type Source interface {
	Aggregates(sig event.Signal) (any, error)
	Stats() (map[event.Signal]event.Stats, error)
	Hooks() []event.HookStatus
	DecodeErrors() uint64
	ForgetPids(pids []uint32) error
}

// Options configure an Exporter. Zero functions leave their labels at
// "unknown" (GFP class, migratetypes) or empty (container).
type Options struct {
	// CommLabel and ContainerLabels add the high-cardinality labels: comm,
	// and container, pod_uid, qos_class.
	CommLabel, ContainerLabels bool
	// MaxSeries bounds each counter family; 0 means no bound.
	MaxSeries int
	// AgeOut is how long a process may stay idle before its in-kernel
	// aggregates are deleted (its counts stay in the Go totals); 0 keeps
	// them until exit of the exporter.
	AgeOut time.Duration

	GFPClass    func(flags uint64) string
	Migratetype func(mt int32) string
	Container   func(cgroupID, memcgID uint64) event.Container

	Now func() time.Time // for tests
}

// Exporter is a promtext.Collector over a Source. Each Collect syncs
// first, so a scrape sees every event counted until then.
type Exporter struct {
	src  Source
	opts Options

	alloc, thp, extfrag, hugeReq, hugeFallback *family

	mu sync.Mutex // serialises syncs
	// pids turns the cumulative aggregates into growth per sync and says
	// which processes went idle.
	pids        *tracker.Tracker[uint32]
	allocCounts *tracker.Table[allocKey, tracker.Count, uint32]
	fragCounts  *tracker.Table[fragKey, tracker.Pair, uint32]
	// counted are the counters of the families whose views have one.
	counted   []*countFamily
	rate      map[event.Signal]rateWindow
	readErrs  map[string]float64
	forgotten float64
}

type allocKey struct {
	pid   uint32
	ctx   event.Context
	order uint32
	gfp   event.Hex
	stack int32
}

type fragKey struct {
	pid                     uint32
	allocOrder, fallbackOrd int32
	allocMT, fallbackMT     int32
}

func (k allocKey) owner() uint32 { return k.pid }
func (k fragKey) owner() uint32  { return k.pid }

type rateWindow struct {
	seen uint64
	at   time.Time
	rate float64
	ok   bool
}

const namespace = "memtrace"

// New returns an exporter; register it, and its HostCollector, with a
// promtext.Registry.
func New(src Source, opts Options) *Exporter {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	var high []string
	if opts.CommLabel {
		high = append(high, "comm")
	}
	if opts.ContainerLabels {
		high = append(high, "container", "pod_uid", "qos_class")
	}
	e := &Exporter{
		src: src, opts: opts,
		// No key bound: the tracker holds what the kernel maps hold,
		// which their max_entries bound.
		pids: tracker.New[uint32](opts.AgeOut, 0),
		rate: map[event.Signal]rateWindow{}, readErrs: map[string]float64{},
	}
	e.allocCounts = tracker.NewTable[tracker.Count](e.pids, allocKey.owner)
	e.fragCounts = tracker.NewTable[tracker.Pair](e.pids, fragKey.owner)
	e.alloc = newFamily("page_alloc_failures", namespace+"_page_alloc_failures_total",
		"Page allocations that returned no page (mm_page_alloc with page == NULL), counted exactly in the kernel, THP fallbacks left out (memtrace_thp_fallbacks_total). gfp_class: atomic (cannot sleep, may use reserves), nowait, kernel, user, other; context: process, softirq, hardirq, nmi.",
		[]string{"order", "gfp_class", "context"}, high, opts.MaxSeries)
	e.thp = newFamily("thp_fallbacks", namespace+"_thp_fallbacks_total",
		"Transparent-huge-page faults whose huge page could not be had (a THP GFP mask at the PMD order): expected and frequent, the fault falls back to small pages. Not in memtrace_page_alloc_failures_total.",
		nil, high, opts.MaxSeries)
	e.extfrag = newFamily("extfrag_events", namespace+"_extfrag_events_total",
		"Allocator fallbacks to another migratetype (mm_page_alloc_extfrag); fragmenting=\"true\" when the fallback was smaller than a pageblock and so split one.",
		[]string{"fragmenting", "alloc_migratetype", "fallback_migratetype"}, nil, opts.MaxSeries)
	e.hugeReq = newFamily("hugetlb_requests", namespace+"_hugetlb_requests_total",
		"Huge-page requests: shmget with SHM_HUGETLB and mmap with MAP_HUGETLB; result is \"ok\" or the errno name; page_size in bytes.",
		[]string{"call", "result", "page_size"}, high, opts.MaxSeries)
	e.hugeFallback = newFamily("hugetlb_fallbacks", namespace+"_hugetlb_fallbacks_total",
		"Shared mappings made without huge pages by a process whose previous huge-page request failed: a silent fallback to 4 KiB pages.",
		nil, high, opts.MaxSeries)
	e.counted = newCounted(e.pids, high, opts.MaxSeries)
	return e
}

func (e *Exporter) families() []*family {
	out := []*family{e.alloc, e.thp, e.extfrag, e.hugeReq, e.hugeFallback}
	for _, c := range e.counted {
		out = append(out, c.family)
		if c.hist != nil {
			out = append(out, c.hist)
		}
	}
	return out
}

// highValues are the values of the high-cardinality labels for a task.
func (e *Exporter) highValues(t event.Task) []string {
	var out []string
	if e.opts.CommLabel {
		// Process names are untrusted: invalid UTF-8 would make the whole
		// family fail to collect, control characters are unreadable.
		out = append(out, text.Escape(t.Comm))
	}
	if e.opts.ContainerLabels {
		var info event.Container
		if e.opts.Container != nil {
			info = e.opts.Container(t.CgroupID, t.MemcgID)
		}
		out = append(out, info.ID, info.PodUID, info.QoS)
	}
	return out
}

// Sync adds the growth of the in-kernel aggregates to the counters and
// deletes the aggregates of processes idle longer than AgeOut.
func (e *Exporter) Sync() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.opts.Now()
	var errs []error
	for _, f := range view.Families() {
		if f.Rows == nil {
			continue
		}
		rows, err := e.src.Aggregates(f.Signal)
		if err == nil {
			err = e.syncRows(now, f, rows)
		}
		if err != nil {
			e.readErrs[string(f.Signal)]++
			errs = append(errs, err)
		}
	}
	if err := e.ageOut(now); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("syncing counters: %v", errs)
	}
	return nil
}

// syncRows adds the growth of one family's aggregates: the families
// counted by hand through their own code, the others through their view.
func (e *Exporter) syncRows(now time.Time, f view.Family, rows any) error {
	switch r := rows.(type) {
	case []event.AllocAggregate:
		e.syncAlloc(now, r)
	case []event.ExtfragAggregate:
		e.syncExtfrag(now, r)
	default:
		for _, c := range e.counted {
			if c.fam.Signal == f.Signal && c.counts != nil {
				return c.sync(now, rows, e.highValues)
			}
		}
	}
	return nil
}

func (e *Exporter) syncAlloc(now time.Time, aggs []event.AllocAggregate) {
	defer e.allocCounts.Sweep()
	for _, a := range aggs {
		k := allocKey{a.Pid, a.Context, a.Order, a.GFPFlags, a.StackID}
		d := uint64(e.allocCounts.Add(now, k, tracker.Count(a.Count)))
		if d == 0 {
			continue
		}
		if a.THPFallback {
			e.thp.add(e.highValues(a.Task), float64(d))
			continue
		}
		class := "unknown"
		if e.opts.GFPClass != nil {
			class = e.opts.GFPClass(uint64(a.GFPFlags))
		}
		low := []string{strconv.FormatUint(uint64(a.Order), 10), class, a.Context.String()}
		e.alloc.add(append(low, e.highValues(a.Task)...), float64(d))
	}
}

func (e *Exporter) syncExtfrag(now time.Time, aggs []event.ExtfragAggregate) {
	defer e.fragCounts.Sweep()
	for _, x := range aggs {
		k := fragKey{x.Pid, x.AllocOrder, x.FallbackOrder, x.AllocMigratetype, x.FallbackMigratetype}
		g := e.fragCounts.Add(now, k, tracker.Pair{A: x.Count, B: x.Fragmenting})
		d, df := g.A, g.B
		if d == 0 {
			continue
		}
		// The kernel adds to fragmenting after the count: a read in
		// between would make fragmenting outgrow the count next time.
		df = min(df, d)
		alloc, fallback := e.migratetype(x.AllocMigratetype), e.migratetype(x.FallbackMigratetype)
		e.extfrag.add([]string{"true", alloc, fallback}, float64(df))
		e.extfrag.add([]string{"false", alloc, fallback}, float64(d-df))
	}
}

// growth is how much a cumulative in-kernel count grew. A smaller count
// means the key was deleted (aged out) and counted again from zero.
func growth(prev, cur uint64) uint64 {
	g, _ := tracker.Count(cur).Since(tracker.Count(prev))
	return uint64(g)
}

func (e *Exporter) migratetype(mt int32) string {
	if e.opts.Migratetype != nil {
		if n := e.opts.Migratetype(mt); n != "" {
			return n
		}
	}
	return "unknown"
}

// ageOut deletes the in-kernel aggregates of processes idle for longer
// than AgeOut. Their counts are already in the totals; an increment
// landing between the read above and the delete would be lost, which a
// process idle for minutes makes unlikely. If deleting fails they are
// still held, and tried again at the next sync.
func (e *Exporter) ageOut(now time.Time) error {
	pids := e.pids.Expired(now)
	if len(pids) == 0 {
		return nil
	}
	if err := e.src.ForgetPids(pids); err != nil {
		return err
	}
	e.pids.Forget(pids)
	e.forgotten += float64(len(pids))
	return nil
}

// HandleEvent counts a huge-page event, or an event a view counts; it
// must have been decoded (page size, errno name). Other events are
// ignored: their counts come from the exact aggregates.
func (e *Exporter) HandleEvent(ev *event.Event) {
	for _, c := range e.counted {
		if c.counts == nil {
			if n, ok := c.fam.Event(ev); ok {
				c.count(n, n.Tally(), e.highValues)
			}
		}
	}
	h := ev.Hugetlb
	if h == nil {
		return
	}
	switch {
	case h.HugeRequest && h.Call != event.CallShmat:
		result := "ok"
		if !h.OK {
			result = h.Errno
			if result == "" {
				result = strconv.FormatInt(-h.Result, 10)
			}
		}
		size := "unknown"
		if h.HugePageSize != 0 {
			size = strconv.FormatUint(h.HugePageSize, 10)
		}
		low := []string{string(h.Call), result, size}
		e.hugeReq.add(append(low, e.highValues(ev.Task)...), 1)
	case h.AfterHugeFailure && h.OK:
		e.hugeFallback.add(e.highValues(ev.Task), 1)
	}
}
