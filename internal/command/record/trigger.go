package record

import (
	"fmt"
	"time"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/sysstate"
)

// Trigger is why an incident was recorded.
type Trigger struct {
	Kind string    `json:"kind"`
	Time time.Time `json:"time"`
	// Reason is one line for a person; Value and Threshold the measured
	// quantity and the option it crossed (failures, ms, percent).
	Reason    string  `json:"reason"`
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	Unit      string  `json:"unit"`
	// Pid and Comm: the task of the triggering event, if one.
	Pid  uint32 `json:"pid,omitempty"`
	Comm string `json:"comm,omitempty"`
}

// failKey is an allocation failure's aggregation key: the exact count of
// one key rises by the difference of its events' counts, sampled or not.
type failKey struct {
	pid, order uint32
	gfp        event.Hex
	ctx        event.Context
	stack      int32
}

// maxFailKeys bounds the keys whose last count is remembered; past it they
// are forgotten, and each key's next event counts as one failure.
const maxFailKeys = 4096

// burstSlots divides the burst period into slots of failures counted.
const burstSlots = 20

// detector turns events and pressure readings into triggers. It is not
// safe for concurrent use.
type detector struct {
	t Triggers

	lastFailure time.Time
	counts      map[failKey]uint64

	slot      time.Duration
	slots     [burstSlots]uint64
	slotStart time.Time // start of slots[0]'s period
	inBurst   bool

	inPressure bool
}

func newDetector(t Triggers) *detector {
	d := &detector{t: t, counts: map[failKey]uint64{}}
	if !t.Burst.Off() {
		d.slot = max(t.Burst.Per/burstSlots, time.Millisecond)
	}
	return d
}

// failures returns how many failures an allocation-failure event stands
// for: the rise of its key's exact count since the key's last event.
func (d *detector) failures(ev *event.Event) uint64 {
	a := ev.AllocFailure
	k := failKey{ev.Pid, a.Order, a.GFPFlags, ev.Context, a.StackID}
	last, ok := d.counts[k]
	if len(d.counts) >= maxFailKeys && !ok {
		clear(d.counts)
	}
	d.counts[k] = a.Count
	switch {
	case !ok && a.Count > 0:
		return a.Count
	case ok && a.Count > last:
		return a.Count - last
	}
	return 1 // a count reset (the key was aged out) or none sent
}

// event returns the triggers an event sets off.
func (d *detector) event(ev *event.Event) []Trigger {
	var out []Trigger
	mk := func(kind, reason string, value, threshold float64, unit string) Trigger {
		return Trigger{Kind: kind, Time: ev.Time, Reason: reason, Value: value, Threshold: threshold, Unit: unit, Pid: ev.Pid, Comm: ev.Comm}
	}
	switch {
	case ev.AllocFailure != nil && !ev.AllocFailure.THPFallback:
		a := ev.AllocFailure
		n := d.failures(ev)
		if d.t.Quiet > 0 {
			quiet := ev.Time.Sub(d.lastFailure)
			if d.lastFailure.IsZero() || quiet >= d.t.Quiet {
				why := "the first since the recorder started"
				if !d.lastFailure.IsZero() {
					why = fmt.Sprintf("the first for %s", quiet.Round(time.Second))
				}
				out = append(out, mk(KindFirstFailure, fmt.Sprintf("order-%d %s allocation failure, %s", a.Order, gfpName(a.GFP, a.GFPFlags), why),
					quiet.Seconds(), d.t.Quiet.Seconds(), "s"))
			}
		}
		if ev.Time.After(d.lastFailure) {
			d.lastFailure = ev.Time
		}
		if d.slot > 0 {
			if total := d.addBurst(ev.Time, n); total >= d.t.Burst.N && !d.inBurst {
				d.inBurst = true
				out = append(out, mk(KindFailureBurst, fmt.Sprintf("%d allocation failures within %s (trigger: %s)", total, d.t.Burst.Per, d.t.Burst),
					float64(total), float64(d.t.Burst.N), "failures"))
			} else if total < d.t.Burst.N {
				d.inBurst = false
			}
		}
	case ev.Reclaim != nil && d.t.Stall > 0:
		r := ev.Reclaim
		switch r.Kind {
		case event.StallDirectReclaim, event.StallMemcgReclaim, event.StallNodeReclaim, event.StallThrottled:
		default:
			return nil // kswapd's work and wakeups stall no allocation
		}
		if dur := time.Duration(r.DurationNs); dur >= d.t.Stall {
			out = append(out, mk(KindReclaimStall, fmt.Sprintf("%s stall of %s (order %d, %s)", r.Kind, dur.Round(time.Microsecond), r.Order, gfpName(r.GFP, r.GFPFlags)),
				ms(dur), ms(d.t.Stall), "ms"))
		}
	case ev.Compaction != nil && d.t.Stall > 0:
		c := ev.Compaction
		if dur := time.Duration(c.DurationNs); dur >= d.t.Stall {
			out = append(out, mk(KindCompactionStall, fmt.Sprintf("direct compaction of %s (order %d, %s, %s)", dur.Round(time.Microsecond), c.Order, c.Priority, c.Outcome),
				ms(dur), ms(d.t.Stall), "ms"))
		}
	case ev.Hugetlb != nil && d.t.Huge:
		h := ev.Hugetlb
		switch {
		case h.HugeRequest && !h.OK:
			out = append(out, mk(KindHugeFailure, fmt.Sprintf("%s of %d bytes on huge pages failed (%s)", h.Call, h.Size, h.Errno), 1, 1, "requests"))
		case h.AfterHugeFailure && h.OK:
			out = append(out, mk(KindHugeFallback, fmt.Sprintf("%s of %d bytes without huge pages after a failed huge-page request", h.Call, h.Size), 1, 1, "requests"))
		}
	}
	return out
}

// addBurst counts n failures at t and returns the failures within the
// burst period before t.
func (d *detector) addBurst(t time.Time, n uint64) uint64 {
	if d.slotStart.IsZero() {
		d.slotStart = t.Truncate(d.slot)
	}
	// Move the window so that t falls in its last slot.
	if shift := int(t.Sub(d.slotStart)/d.slot) - (burstSlots - 1); shift > 0 {
		if shift >= burstSlots {
			d.slots = [burstSlots]uint64{}
		} else {
			copy(d.slots[:], d.slots[shift:])
			clear(d.slots[burstSlots-shift:])
		}
		d.slotStart = d.slotStart.Add(time.Duration(shift) * d.slot)
	}
	i := int(t.Sub(d.slotStart) / d.slot)
	if i >= 0 { // an event from before the window (per-CPU buffers reorder a little) counts in none
		d.slots[i] += n
	}
	var total uint64
	for _, c := range d.slots {
		total += c
	}
	return total
}

// pressure returns a trigger when memory pressure crosses the threshold;
// it fires again only after falling below it.
func (d *detector) pressure(p sysstate.Pressure, now time.Time) *Trigger {
	if d.t.PSI <= 0 {
		return nil
	}
	if p.SomeAvg10 < d.t.PSI {
		d.inPressure = false
		return nil
	}
	if d.inPressure {
		return nil
	}
	d.inPressure = true
	return &Trigger{Kind: KindPressure, Time: now, Value: p.SomeAvg10, Threshold: d.t.PSI, Unit: "%",
		Reason: fmt.Sprintf("memory pressure: some tasks stalled %.2f%% of the last 10 s (some avg10)", p.SomeAvg10)}
}

func gfpName(name string, flags event.Hex) string {
	if name != "" {
		return name
	}
	return flags.String()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
