package view

import "github.com/memtrace/memtrace/internal/event"

// The alloc family: exact counts of allocation failures under
// "alloc_failures". watch and the exporter draw its table and counter
// themselves (columns ORDERS, CONTEXT, NO-SLEEP, GFP; labels order,
// gfp_class, context).
func init() {
	Register(Family{
		Signal:  event.SignalAlloc,
		Section: "alloc_failures",
		Rows: RowsOf(func(a event.AllocAggregate) Count {
			return Count{Task: a.Task, N: a.Count}
		}),
	})
}
