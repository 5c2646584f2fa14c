package demand

import (
	"context"
	"sync"
	"time"

	"github.com/memtrace/memtrace/internal/event"
)

// Live measures in the background, for the live outputs (watch, serve,
// capture): a Meter read every interval, safe to look at from any
// goroutine.
type Live struct {
	mu     sync.Mutex
	m      *Meter
	err    error
	cancel context.CancelFunc
	done   chan struct{}
}

// Reading is what a Live meter has measured so far.
type Reading struct {
	Summary Summary
	Latest  Latest
	// RecentInterval and RecentSecond are the peaks within the meter's
	// Keep (see Meter.Recent).
	RecentInterval, RecentSecond Peaks
	// Err is the read error that stopped the meter, if any.
	Err error
}

// StartLive reads src every interval (100 ms when 0), keeping recent
// peaks for keep, until Stop. It returns nil when src counts no atomic
// demand (the alloc signal not attached, or not asked for).
func StartLive(src event.Source, interval, keep time.Duration) *Live {
	d, ok := src.(event.DemandSource)
	if !ok || d.AtomicDemandCounted() != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Live{m: NewMeter(interval), cancel: cancel, done: make(chan struct{})}
	l.m.Keep = keep
	go func() {
		defer close(l.done)
		t := time.NewTicker(l.m.interval)
		defer t.Stop()
		for {
			v, err := d.AtomicDemand()
			l.mu.Lock()
			if err != nil {
				l.err = err
			} else {
				l.m.Add(time.Now(), v)
			}
			l.mu.Unlock()
			if err != nil || ctx.Err() != nil {
				return // the last reading was made after Stop: totals cover the whole run
			}
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
	}()
	return l
}

// Read returns what was measured so far; a nil Live reads nothing.
func (l *Live) Read() (Reading, bool) {
	if l == nil {
		return Reading{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r := Reading{Summary: l.m.Summary(), Latest: l.m.Latest(), Err: l.err}
	r.RecentInterval, r.RecentSecond = l.m.Recent()
	return r, true
}

// Stop makes a last reading, ends the measurement and waits for the
// reader to return; call it before the session is closed.
func (l *Live) Stop() {
	if l == nil {
		return
	}
	l.cancel()
	<-l.done
}
