package view

import "github.com/memtrace/memtrace/internal/event"

// The extfrag family: exact counts of migratetype fallbacks under
// "extfrag". watch and the exporter draw its table and counter
// themselves (the fragmenting part is a second counter of each key).
func init() {
	Register(Family{
		Signal:  event.SignalExtfrag,
		Section: "extfrag",
		Rows: RowsOf(func(x event.ExtfragAggregate) Count {
			return Count{Task: x.Task, N: x.Count}
		}),
	})
}
