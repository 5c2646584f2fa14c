package demand

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/event"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// feed adds cumulative readings every step, from per-interval demand.
func feed(m *Meter, step time.Duration, deltas ...event.AtomicDemand) {
	var total event.AtomicDemand
	m.Add(t0, total)
	for i, d := range deltas {
		total.HighPages += d.HighPages
		total.OtherPages += d.OtherPages
		m.Add(t0.Add(time.Duration(i+1)*step), total)
	}
}

func TestMeterPeaks(t *testing.T) {
	m := NewMeter(100 * time.Millisecond)
	d := make([]event.AtomicDemand, 30)
	d[3] = event.AtomicDemand{HighPages: 500, OtherPages: 10}
	d[4] = event.AtomicDemand{HighPages: 100, OtherPages: 700}
	d[20] = event.AtomicDemand{HighPages: 300}
	feed(m, 100*time.Millisecond, d...)
	s := m.Summary()
	if s.Readings != 30 || s.Measured != 3*time.Second || s.Total != (event.AtomicDemand{HighPages: 900, OtherPages: 710}) {
		t.Errorf("summary %+v", s)
	}
	if p := s.PerInterval; p.High.Pages != 500 || p.Other.Pages != 700 || p.Total.Pages != 800 ||
		!p.High.At.Equal(t0.Add(400*time.Millisecond)) || p.High.Window != 100*time.Millisecond {
		t.Errorf("per interval %+v", p)
	}
	// The two bursts 1.6 s apart never share a second.
	if p := s.PerSecond; p.High.Pages != 600 || p.Other.Pages != 710 || p.Total.Pages != 1310 {
		t.Errorf("per second %+v", p)
	}
}

// TestMeterLateReading: a reading 300 ms late counts a 400 ms window,
// scaled down to 100 ms; the raw count is kept beside it.
func TestMeterLateReading(t *testing.T) {
	m := NewMeter(100 * time.Millisecond)
	m.Add(t0, event.AtomicDemand{})
	m.Add(t0.Add(400*time.Millisecond), event.AtomicDemand{HighPages: 800})
	p := m.Summary().PerInterval.High
	if p.Pages != 200 || p.RawPages != 800 || p.Window != 400*time.Millisecond {
		t.Errorf("%+v", p)
	}
	if s := m.Summary().PerSecond; !s.High.At.IsZero() {
		t.Errorf("less than a second measured, yet a per-second peak: %+v", s)
	}
}

// TestMeterJitter: readings consistently a little late still make whole
// seconds.
func TestMeterJitter(t *testing.T) {
	m := NewMeter(100 * time.Millisecond)
	d := make([]event.AtomicDemand, 25)
	for i := range d {
		d[i].OtherPages = 10
	}
	feed(m, 101*time.Millisecond, d...)
	p := m.Summary().PerSecond.Other
	if p.Window != 1010*time.Millisecond || p.RawPages != 100 || p.Pages != 99 {
		t.Errorf("%+v", p)
	}
}

func TestMeterReset(t *testing.T) {
	m := NewMeter(0)
	m.Add(t0, event.AtomicDemand{HighPages: 1000})
	m.Add(t0.Add(100*time.Millisecond), event.AtomicDemand{HighPages: 5}) // counters restarted
	m.Add(t0.Add(200*time.Millisecond), event.AtomicDemand{HighPages: 50})
	if s := m.Summary(); s.Readings != 1 || s.PerInterval.High.Pages != 45 {
		t.Errorf("%+v", s)
	}
}

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	n := uint64(0)
	s, err := Run(ctx, NewMeter(time.Millisecond), func() (event.AtomicDemand, error) {
		n++
		if n == 5 {
			cancel()
		}
		return event.AtomicDemand{OtherPages: n * 10}, nil
	})
	if err != nil || s.Readings < 4 || s.Total.OtherPages != (uint64(s.Readings))*10 {
		t.Errorf("%+v, %v", s, err)
	}
	boom := errors.New("boom")
	if _, err := Run(context.Background(), NewMeter(time.Millisecond), func() (event.AtomicDemand, error) { return event.AtomicDemand{}, boom }); !errors.Is(err, boom) {
		t.Errorf("error %v", err)
	}
}

// TestMeterLatestAndRecent: the live view's last interval and second, and
// a peak that ages out of Keep.
func TestMeterLatestAndRecent(t *testing.T) {
	m := NewMeter(100 * time.Millisecond)
	m.Keep = time.Second
	d := make([]event.AtomicDemand, 30)
	d[3] = event.AtomicDemand{HighPages: 500}
	d[25] = event.AtomicDemand{OtherPages: 40}
	d[29] = event.AtomicDemand{HighPages: 7}
	feed(m, 100*time.Millisecond, d...)
	l := m.Latest()
	if l.Interval.Pages != 7 || l.Second.Pages != 47 || !l.Interval.At.Equal(t0.Add(3*time.Second)) {
		t.Errorf("latest %+v", l)
	}
	// The 500-page burst is 2.6 s old: out of the last second.
	iv, sec := m.Recent()
	if iv.High.Pages != 7 || iv.Other.Pages != 40 || iv.Total.Pages != 40 || sec.Total.Pages != 47 {
		t.Errorf("recent %+v, %+v", iv, sec)
	}
	if m.Summary().PerInterval.High.Pages != 500 {
		t.Errorf("the peak since start is lost: %+v", m.Summary().PerInterval)
	}
}
