// Package record is memtrace's flight recorder: it keeps the probes
// attached, holds the last minutes of system state and events in bounded
// memory, and on a trigger (the first allocation failure after a quiet
// period, a failure burst, a long reclaim or compaction stall, memory
// pressure, a failed or fallen-back huge-page request) writes one
// incident file in the capture schema: the ring from before the trigger
// at once, then the same file complete once the recording after it ends.
package record

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/memtrace/memtrace/internal/command/capture"
	"github.com/memtrace/memtrace/internal/event"
)

// Options configure a recorder.
type Options struct {
	// Dir receives the incident files; it is created if missing.
	Dir string
	// Before is how much history the ring keeps, and so how far back an
	// incident file reaches; After how long it keeps recording after the
	// trigger.
	Before, After time.Duration
	// SampleEvery is the interval of the system state samples; FastEvery
	// the interval while an incident is recording.
	SampleEvery, FastEvery time.Duration
	// MaxEvents bounds the events held in the ring and written in one
	// incident; beyond it events are counted (events_dropped,
	// events_left_out), whatever the event rate.
	MaxEvents int
	// MaxSize bounds the bytes of incident files in Dir: the oldest are
	// removed first (the one being written never is). 0: no bound.
	MaxSize int64
	// RateLimit bounds how many incidents are opened per period.
	RateLimit Rate
	// Cooldown is how long after an incident opened (or was extended) by
	// a kind of trigger that kind cannot open another.
	Cooldown time.Duration
	Triggers Triggers

	// AgeOut deletes the in-kernel aggregates of processes idle this
	// long (0: never). Set it when the recorder owns the session; under
	// serve the exporter ages them.
	AgeOut time.Duration

	// Config records how the probes were asked for, in each file.
	Config  capture.Config
	Version string
	// Logf receives one line per incident written and per trigger held
	// back (names escaped); nil discards them.
	Logf func(format string, args ...any)
	// ProcRoot and SysRoot locate /proc and /sys.
	ProcRoot, SysRoot string
}

// Triggers say what opens an incident; the zero value of each disables it.
type Triggers struct {
	// Quiet: the first allocation failure (THP fallbacks excluded) after
	// this long without one; the recorder's start counts as quiet.
	Quiet time.Duration
	// Burst: at least N failures (THP fallbacks excluded) within Per.
	Burst Rate
	// Stall: a direct reclaim, memcg or node reclaim, throttling sleep or
	// direct compaction at least this long.
	Stall time.Duration
	// PSI: memory pressure "some avg10" (/proc/pressure/memory) at least
	// this many percent.
	PSI float64
	// Huge: a huge-page request that failed, or a mapping without huge
	// pages after one (the silent fallback).
	Huge bool
}

// Trigger kinds, as written in an incident's "trigger".
const (
	KindFirstFailure    = "first_failure"
	KindFailureBurst    = "failure_burst"
	KindReclaimStall    = "reclaim_stall"
	KindCompactionStall = "compaction_stall"
	KindPressure        = "memory_pressure"
	KindHugeFailure     = "huge_page_failure"
	KindHugeFallback    = "huge_page_fallback"
)

// DefaultOptions are the recorder's defaults (memtrace record's flags).
func DefaultOptions() Options {
	return Options{
		Before: 2 * time.Minute, After: 30 * time.Second,
		SampleEvery: time.Second, FastEvery: 200 * time.Millisecond,
		MaxEvents: 5000, MaxSize: 256 << 20,
		RateLimit: Rate{N: 6, Per: time.Hour},
		Cooldown:  10 * time.Minute,
		Triggers: Triggers{
			Quiet: 10 * time.Minute,
			Burst: Rate{N: 100, Per: 10 * time.Second},
			Stall: 100 * time.Millisecond,
			PSI:   20,
			Huge:  true,
		},
		AgeOut:   10 * time.Minute,
		ProcRoot: "/proc", SysRoot: "/sys",
	}
}

// Signals are the families the triggers read: all of them, the stall
// families included (the stall trigger reads them).
func Signals() []event.Signal { return event.AllSignals }

// Check reports the first option that cannot work.
func (o Options) Check() error {
	switch {
	case o.Dir == "":
		return errors.New("no incident directory")
	case o.Before < time.Second:
		return fmt.Errorf("before %v: want at least 1s", o.Before)
	case o.After < 0:
		return fmt.Errorf("after %v: must not be negative", o.After)
	case o.SampleEvery < 10*time.Millisecond || o.FastEvery < 10*time.Millisecond:
		return errors.New("state sampling interval: want at least 10ms")
	case o.MaxEvents < 1:
		return fmt.Errorf("max events %d: want at least 1", o.MaxEvents)
	case o.MaxSize < 0:
		return fmt.Errorf("max size %d: must not be negative", o.MaxSize)
	case o.Cooldown < 0:
		return fmt.Errorf("cooldown %v: must not be negative", o.Cooldown)
	case o.Triggers.Quiet < 0 || o.Triggers.Stall < 0:
		return errors.New("trigger durations must not be negative")
	case o.Triggers.PSI < 0 || o.Triggers.PSI > 100:
		return fmt.Errorf("pressure trigger %g%%: want 0 to 100", o.Triggers.PSI)
	case o.RateLimit.N == 0 && o.RateLimit.Per != 0:
		return errors.New("rate limit: no incident allowed")
	}
	return nil
}

// Rate is N events per period; the zero value is no rate (off).
type Rate struct {
	N   uint64
	Per time.Duration
}

func (r Rate) String() string {
	if r.N == 0 {
		return "0"
	}
	return strconv.FormatUint(r.N, 10) + "/" + shortDuration(r.Per)
}

// shortDuration writes 1h for 1h0m0s and 10m for 10m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Off reports whether the rate is disabled.
func (r Rate) Off() bool { return r.N == 0 }

// PerSecond is the rate in events per second.
func (r Rate) PerSecond() float64 { return float64(r.N) / r.Per.Seconds() }

// ParseRate parses "N/DURATION" ("100/10s", "6/1h"), or "0" or "off" for
// none. The period is at least 10ms and at most a day.
func ParseRate(s string) (Rate, error) {
	if s == "0" || s == "off" {
		return Rate{}, nil
	}
	n, per, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q: want N/DURATION (100/10s) or off", s)
	}
	v, err := strconv.ParseUint(n, 10, 64)
	if err != nil || v == 0 {
		return Rate{}, fmt.Errorf("rate %q: %q is not a positive count", s, n)
	}
	d, err := time.ParseDuration(per)
	if err != nil {
		return Rate{}, fmt.Errorf("rate %q: %v", s, err)
	}
	if d < 10*time.Millisecond || d > 24*time.Hour {
		return Rate{}, fmt.Errorf("rate %q: period %v, want 10ms to 24h", s, d)
	}
	return Rate{N: v, Per: d}, nil
}
