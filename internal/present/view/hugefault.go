package view

import (
	"strconv"

	"github.com/memtrace/memtrace/internal/event"
)

// The hugefault family: faults on hugetlb mappings that got no page
// (SIGBUS), one event each, so they are counted from the events; every
// event, with its mapping and cause, is in the capture's "events".
func init() {
	Register(Family{
		Signal: event.SignalHugefault,
		Event: func(ev *event.Event) (Count, bool) {
			f := ev.HugeFault
			if f == nil {
				return Count{}, false
			}
			return Count{Task: ev.Task, Labels: []string{f.Cause, pageSizeLabel(f.Mapping.PageSize)}, N: 1}, true
		},
		Table:  "Huge-page fault failures (SIGBUS) by process",
		Metric: "hugetlb_fault_failures",
		Help:   "Faults on hugetlb mappings that got no huge page (the process gets SIGBUS), by cause and page size.",
		Dimensions: []Dimension{
			{Label: "cause", Header: "CAUSES"},
			{Label: "page_size", Header: "PAGE SIZES"},
		},
	})
}

// pageSizeLabel writes a huge page size in bytes, as the exporter's pool
// series label it (page_size="2097152"); "0" when unknown.
func pageSizeLabel(b uint64) string { return strconv.FormatUint(b, 10) }
