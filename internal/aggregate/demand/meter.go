// Package demand turns the atomic demand counted in the kernel (cumulative
// pages, read at a fine interval) into what sizes vm.min_free_kbytes: the
// largest burst per interval and per second.
package demand

import (
	"context"
	"time"

	"github.com/memtrace/memtrace/internal/event"
)

// Peak is the largest demand seen in one window.
type Peak struct {
	// Pages is the demand of the window scaled to the nominal window
	// (100 ms, 1 s): a reading late by a scheduling delay counts a longer
	// window, which is scaled down, never up.
	Pages uint64 `json:"pages"`
	// RawPages were counted in Window, the window's measured length.
	RawPages uint64        `json:"raw_pages"`
	Window   time.Duration `json:"window_ns"`
	At       time.Time     `json:"at"` // the window's end
}

// Peaks are the peaks of each kind of atomic demand and of their sum, each
// on its own (their windows may differ).
type Peaks struct {
	High  Peak `json:"high"`  // __GFP_HIGH: may use the reserve under min
	Other Peak `json:"other"` // without it: stops at min
	Total Peak `json:"total"`
}

// Summary is what a Meter measured.
type Summary struct {
	Interval time.Duration `json:"interval_ns"`
	// Readings is how many intervals were measured, over Measured.
	Readings int                `json:"readings"`
	Measured time.Duration      `json:"measured_ns"`
	Total    event.AtomicDemand `json:"total"`
	// PerInterval and PerSecond are the peaks per Interval and per
	// second (a sliding window of whole intervals).
	PerInterval Peaks `json:"per_interval"`
	PerSecond   Peaks `json:"per_second"`
}

// Meter keeps the peaks of cumulative readings. The zero value is not
// usable: use NewMeter. It is not safe for concurrent use.
type Meter struct {
	interval time.Duration
	have     bool
	last     reading
	first    time.Time
	// recent are the intervals of the last second, oldest first.
	recent []reading // delta and end time
	sum    Summary
	latest Latest
	// Keep is how long Recent looks back (0: Recent is empty); history
	// holds the peaks of each reading over it, oldest first.
	Keep    time.Duration
	history []recent
}

type recent struct {
	at               time.Time
	interval, second Peaks
}

// Latest is the demand of the last interval and of the last second (both
// scaled to their nominal window, like a Peak), for a live view.
type Latest struct {
	Interval Peak `json:"interval"`
	Second   Peak `json:"second"`
}

type reading struct {
	at     time.Time
	d      event.AtomicDemand
	window time.Duration
}

// NewMeter measures peaks per interval (100 ms when 0).
func NewMeter(interval time.Duration) *Meter {
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	return &Meter{interval: interval, sum: Summary{Interval: interval}}
}

// Add takes a cumulative reading made at t. A reading lower than the last
// (the counters were reset) starts over from it.
func (m *Meter) Add(t time.Time, total event.AtomicDemand) {
	if !m.have || total.HighPages < m.last.d.HighPages || total.OtherPages < m.last.d.OtherPages || !t.After(m.last.at) {
		if !m.have {
			m.first = t
		}
		m.have, m.last = true, reading{at: t, d: total}
		return
	}
	delta := reading{at: t, d: total.Sub(m.last.d), window: t.Sub(m.last.at)}
	m.last = reading{at: t, d: total}
	m.sum.Readings++
	m.sum.Measured = t.Sub(m.first)
	m.sum.Total.HighPages += delta.d.HighPages
	m.sum.Total.OtherPages += delta.d.OtherPages
	m.sum.PerInterval.keep(delta, m.interval)
	m.latest.Interval = Peak{}
	m.latest.Interval.keep(delta.d.Total(), delta, m.interval)

	// The last second: drop the oldest intervals while the rest still
	// cover it (to half an interval), then scale a window a little over a
	// second down to one.
	m.recent = append(m.recent, delta)
	almost := time.Second - m.interval/2
	window := reading{at: t}
	for _, r := range m.recent {
		window.window += r.window
	}
	for len(m.recent) > 1 && window.window-m.recent[0].window >= almost {
		window.window -= m.recent[0].window
		m.recent = m.recent[1:]
	}
	for _, r := range m.recent {
		window.d.HighPages += r.d.HighPages
		window.d.OtherPages += r.d.OtherPages
	}
	var h recent
	h.at = t
	h.interval.keep(delta, m.interval)
	if window.window >= almost {
		m.sum.PerSecond.keep(window, time.Second)
		m.latest.Second = Peak{}
		m.latest.Second.keep(window.d.Total(), window, time.Second)
		h.second.keep(window, time.Second)
	}
	if m.Keep > 0 {
		m.history = append(m.history, h)
		i := 0
		for i < len(m.history) && t.Sub(m.history[i].at) > m.Keep {
			i++
		}
		m.history = m.history[i:]
	}
}

// Recent returns the peaks per interval and per second of the readings
// made within Keep of the last one: a peak that ages out, for a gauge.
func (m *Meter) Recent() (interval, second Peaks) {
	for _, h := range m.history {
		interval.High.max(h.interval.High)
		interval.Other.max(h.interval.Other)
		interval.Total.max(h.interval.Total)
		second.High.max(h.second.High)
		second.Other.max(h.second.Other)
		second.Total.max(h.second.Total)
	}
	return interval, second
}

func (p *Peak) max(q Peak) {
	if !q.At.IsZero() && (q.Pages > p.Pages || p.At.IsZero()) {
		*p = q
	}
}

// Latest returns the demand of the last interval and second.
func (m *Meter) Latest() Latest { return m.latest }

func (p *Peaks) keep(r reading, nominal time.Duration) {
	p.High.keep(r.d.HighPages, r, nominal)
	p.Other.keep(r.d.OtherPages, r, nominal)
	p.Total.keep(r.d.Total(), r, nominal)
}

func (p *Peak) keep(pages uint64, r reading, nominal time.Duration) {
	scaled := pages
	if r.window > nominal {
		scaled = uint64(float64(pages) * float64(nominal) / float64(r.window))
	}
	if scaled > p.Pages || p.At.IsZero() {
		*p = Peak{Pages: scaled, RawPages: pages, Window: r.window, At: r.at}
	}
}

// Summary returns the peaks so far.
func (m *Meter) Summary() Summary { return m.sum }

// Run reads every interval until ctx ends and feeds the meter; read
// errors stop it. It returns the summary.
func Run(ctx context.Context, m *Meter, read func() (event.AtomicDemand, error)) (Summary, error) {
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		d, err := read()
		if err != nil {
			return m.Summary(), err
		}
		m.Add(time.Now(), d)
		select {
		case <-ctx.Done():
			return m.Summary(), nil
		case <-t.C:
		}
	}
}
