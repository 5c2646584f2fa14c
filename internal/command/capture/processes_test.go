package capture

import (
	"testing"

	"github.com/memtrace/memtrace/internal/event"
)

// THP fallbacks stay in alloc_failures (its meaning in version 1) and are
// counted apart beside it.
func TestProcessesCountTHPFallbacksApart(t *testing.T) {
	java := event.Task{Pid: 30, Comm: "java"}
	got := Summarize([]event.AllocAggregate{
		{Task: java, Order: 9, Count: 40, THPFallback: true},
		{Task: java, Order: 0, Count: 2, Atomic: true},
	}, nil, nil)
	if len(got) != 1 || got[0].AllocFailures != 42 || got[0].THPFallbacks != 40 || got[0].AtomicFailures != 2 {
		t.Errorf("processes %+v", got)
	}
}
