package demand

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/memtrace/memtrace/internal/event"
)

// fakeDemand counts what its reader saw; Source's other methods are
// never called by Live.
type fakeDemand struct {
	event.Source
	mu      sync.Mutex
	pages   uint64
	counted error
}

func (f *fakeDemand) AtomicDemandCounted() error { return f.counted }
func (f *fakeDemand) AtomicDemand() (event.AtomicDemand, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return event.AtomicDemand{HighPages: f.pages}, nil
}
func (f *fakeDemand) AtomicSources() ([]event.AtomicSource, error) { return nil, nil }

// TestLiveReadsAtStop: what was allocated before Stop is in the totals,
// even less than an interval before it.
func TestLiveReadsAtStop(t *testing.T) {
	f := &fakeDemand{}
	l := StartLive(f, time.Hour, 0)
	if l == nil {
		t.Fatal("no meter for a session that counts")
	}
	for { // until the first reading, made at once
		l.mu.Lock()
		have := l.m.have
		l.mu.Unlock()
		if have {
			break
		}
		time.Sleep(time.Millisecond)
	}
	f.mu.Lock()
	f.pages = 42
	f.mu.Unlock()
	l.Stop()
	if r, ok := l.Read(); !ok || r.Summary.Total.HighPages != 42 || r.Err != nil {
		t.Errorf("after Stop: %+v, %v", r.Summary.Total, ok)
	}
	if StartLive(&fakeDemand{counted: errors.New("not asked for")}, 0, 0) != nil {
		t.Error("a meter for a session that counts nothing")
	}
	var none *Live
	if _, ok := none.Read(); ok {
		t.Error("a nil meter read something")
	}
	none.Stop()
}
