// Package burst groups allocation failures into bursts: the failures
// that share one reading of the zones (event.ZoneState). The session
// reads /proc/zoneinfo and /proc/buddyinfo at the first failure after a
// quiet interval and judges the failures that follow within it against
// the same reading, so a burst is one reading, and its first failure is
// the one that triggered it.
package burst

import (
	"slices"
	"time"

	"github.com/memtrace/memtrace/internal/event"
)

// Burst is one reading of the zones and the failures judged against it.
type Burst struct {
	// ReadAt is when the zones were read; ReadAfterNs how long after the
	// burst's first failure (negative when that failure was not seen:
	// sampled out, or before the start).
	ReadAt      time.Time `json:"read_at"`
	ReadAfterNs int64     `json:"read_after_ns"`
	// First is the failure that triggered the reading, or the first seen.
	First    time.Time     `json:"first_failure"`
	Pid      uint32        `json:"pid"`
	Comm     string        `json:"comm"`
	Context  event.Context `json:"context"`
	Order    uint32        `json:"order"`
	GFP      string        `json:"gfp"`
	GFPFlags event.Hex     `json:"gfp_flags"`
	// Failures counts the failure events judged against this reading.
	// Events are sampled (the aggregates count every failure): it is a
	// lower bound.
	Failures uint64 `json:"failures"`
	// THPFallbacks: how many of them were THP fallbacks.
	THPFallbacks uint64 `json:"thp_fallbacks"`
	// Verdict, Summary and Zones are the first failure's judgement.
	Verdict event.ZoneVerdict     `json:"verdict"`
	Summary string                `json:"summary"`
	Zones   []event.ZoneAtFailure `json:"zones"`
}

// Bursts keeps the most recent bursts, at most Max (0: all).
type Bursts struct {
	Max  int
	list []Burst
	// Total counts every burst seen, the dropped ones too.
	Total uint64
}

// Add adds a failure; other events, and failures without a zone state,
// are ignored. It reports whether ev began a new burst.
func (b *Bursts) Add(ev *event.Event) bool {
	a := ev.AllocFailure
	if a == nil || a.ZoneState == nil {
		return false
	}
	st := a.ZoneState
	// Events reach user space nearly in order: the burst is one of the
	// last few.
	for i := len(b.list) - 1; i >= 0 && i >= len(b.list)-4; i-- {
		if x := &b.list[i]; x.ReadAt.Equal(st.ReadAt) {
			x.Failures++
			if a.THPFallback {
				x.THPFallbacks++
			}
			if st.ReadAfterNs >= 0 && x.ReadAfterNs < 0 {
				x.set(ev) // the failure that triggered it came late
			}
			return false
		}
	}
	x := Burst{ReadAt: st.ReadAt, Failures: 1}
	if a.THPFallback {
		x.THPFallbacks = 1
	}
	x.set(ev)
	b.list = append(b.list, x)
	b.Total++
	if b.Max > 0 && len(b.list) > b.Max {
		b.list = slices.Delete(b.list, 0, len(b.list)-b.Max)
	}
	return true
}

func (x *Burst) set(ev *event.Event) {
	a, st := ev.AllocFailure, ev.AllocFailure.ZoneState
	x.ReadAfterNs, x.First = st.ReadAfterNs, ev.Time
	x.Pid, x.Comm, x.Context = ev.Pid, ev.Comm, ev.Context
	x.Order, x.GFP, x.GFPFlags = a.Order, a.GFP, a.GFPFlags
	x.Verdict, x.Summary, x.Zones = st.Verdict, st.Summary, st.Zones
}

// List returns the bursts kept, oldest first (never nil).
func (b *Bursts) List() []Burst {
	return append([]Burst{}, b.list...)
}
