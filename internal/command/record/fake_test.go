package record

import (
	"sync"

	"github.com/memtrace/memtrace/internal/event"
)

// fakeSource stands for a probe session: aggregates set by the test,
// events pushed by it.
type fakeSource struct {
	mu     sync.Mutex
	allocs []event.AllocAggregate
	stats  map[event.Signal]event.Stats
	events chan event.Event
	forgot []uint32
}

func newFakeSource() *fakeSource {
	return &fakeSource{events: make(chan event.Event, 16), stats: map[event.Signal]event.Stats{event.SignalAlloc: {}}}
}

func (f *fakeSource) Hooks() []event.HookStatus {
	return []event.HookStatus{{Signal: event.SignalAlloc, Hook: "fake/alloc", Attached: true}}
}
func (f *fakeSource) Decoding() event.Decoding   { return event.Decoding{GFPSource: "fake"} }
func (f *fakeSource) Events() <-chan event.Event { return f.events }
func (f *fakeSource) DecodeErrors() uint64       { return 0 }
func (f *fakeSource) Stop() error                { return nil }
func (f *fakeSource) Close() error               { return nil }
func (f *fakeSource) ForgetPids(pids []uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgot = append(f.forgot, pids...)
	return nil
}

func (f *fakeSource) Aggregates(sig event.Signal) (any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if sig != event.SignalAlloc {
		return nil, nil
	}
	return append([]event.AllocAggregate(nil), f.allocs...), nil
}

func (f *fakeSource) Stats() (map[event.Signal]event.Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[event.Signal]event.Stats{}
	for k, v := range f.stats {
		out[k] = v
	}
	return out, nil
}
