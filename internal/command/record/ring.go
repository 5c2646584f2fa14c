package record

import (
	"time"

	"github.com/memtrace/memtrace/internal/event"
)

// evRing holds the newest events, at most its capacity, whatever the
// event rate: memory is bounded by the count, time by the readers.
type evRing struct {
	buf  []event.Event
	head int // index of the oldest
	n    int
	// dropped remembers when events still inside some window were
	// overwritten: the time of the newest one overwritten and how many.
	droppedAt time.Time
	dropped   uint64
}

func newEvRing(capacity int) evRing { return evRing{buf: make([]event.Event, capacity)} }

// push adds ev, overwriting the oldest when full; an overwritten event
// younger than horizon (the start of the window an incident opened now
// would have) is counted as dropped.
func (r *evRing) push(ev event.Event, horizon time.Time) {
	if r.n < len(r.buf) {
		r.buf[(r.head+r.n)%len(r.buf)] = ev
		r.n++
		return
	}
	old := &r.buf[r.head]
	if !old.Time.Before(horizon) {
		if old.Time.After(r.droppedAt) {
			r.droppedAt = old.Time
		}
		r.dropped++
	}
	*old = ev
	r.head = (r.head + 1) % len(r.buf)
}

// droppedSince returns how many events were overwritten while younger
// than a window starting at start (0 when none was overwritten after it).
func (r *evRing) droppedSince(start time.Time) uint64 {
	if r.droppedAt.Before(start) {
		return 0
	}
	return r.dropped
}

// since copies the events at or after start, oldest first, at most max
// (the newest).
func (r *evRing) since(start time.Time, max int) []event.Event {
	out := make([]event.Event, 0, min(r.n, max))
	for i := range r.n {
		ev := r.buf[(r.head+i)%len(r.buf)]
		if !ev.Time.Before(start) {
			out = append(out, ev)
		}
	}
	if len(out) > max {
		out = out[len(out)-max:]
	}
	return out
}
