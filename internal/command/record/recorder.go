package record

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/memtrace/memtrace/internal/command/capture"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/sysstate"
	"github.com/memtrace/memtrace/internal/present/text"
)

// maxLater bounds the later triggers an incident lists.
const maxLater = 100

// Recorder holds the ring and writes incidents. HandleEvent may be called
// from another goroutine than Run.
type Recorder struct {
	opts     Options
	src      event.Source
	sys      *sysstate.Reader
	host     capture.Host
	hooks    []event.HookStatus
	decoding capture.Decoding
	warnings []string
	started  time.Time
	noPSI    bool // no /proc/pressure/memory: said once
	wake     chan struct{}
	// nudge asks for a sample now: failures and stalls are sampled around
	// as they come (at most every FastEvery), before any trigger.
	nudge chan struct{}

	mu        sync.Mutex
	det       *detector
	events    evRing
	states    []State
	cur       *incident
	fired     map[string]time.Time // when each kind last opened or extended an incident
	opened    []time.Time          // when incidents opened, within the rate limit's period
	held      map[string]uint64    // triggers held back since the last incident
	heldSaid  map[string]time.Time // when a held-back kind was last logged
	firstPart bool                 // cur's first part is still to be written
}

// New makes a recorder of src's events and the host's state; it creates
// opts.Dir and removes what interrupted writes left there.
func New(opts Options, src event.Source) (*Recorder, error) {
	if err := opts.Check(); err != nil {
		return nil, err
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.SysRoot == "" {
		opts.SysRoot = "/sys"
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	removed, err := prepareDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	if removed > 0 {
		opts.Logf("removed %d unfinished temporary file(s) from %s", removed, opts.Dir)
	}
	sys, err := sysstate.NewReader(opts.ProcRoot, opts.SysRoot)
	if err != nil {
		return nil, fmt.Errorf("reading system state: %w", err)
	}
	// Watermarks move only with their sysctls (re-read at once then),
	// hotplug and boosting: zoneinfo is most of a sample's cost.
	sys.WatermarkMaxAge = time.Minute
	d := src.Decoding()
	r := &Recorder{
		opts: opts, src: src, sys: sys, host: capture.ThisHost(), hooks: src.Hooks(),
		decoding: capture.Decoding{GFPSource: d.GFPSource, MigratetypeSource: d.MigratetypeSource, Symbols: d.Symbols, ContextSource: d.ContextSource},
		warnings: append([]string(nil), d.Warnings...),
		started:  time.Now(),
		wake:     make(chan struct{}, 1),
		nudge:    make(chan struct{}, 1),
		det:      newDetector(opts.Triggers),
		events:   newEvRing(opts.MaxEvents),
		fired:    map[string]time.Time{}, held: map[string]uint64{}, heldSaid: map[string]time.Time{},
	}
	for _, h := range r.hooks {
		if !h.Attached {
			r.warnings = append(r.warnings, fmt.Sprintf("signal %s has no usable hook on this kernel and is not recorded", h.Signal))
		}
	}
	return r, nil
}

// HandleEvent puts an event in the ring (and the incident being recorded)
// and fires the triggers it sets off.
func (r *Recorder) HandleEvent(ev event.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events.push(ev, ev.Time.Add(-r.opts.Before))
	if inc := r.cur; inc != nil {
		if len(inc.events) < r.opts.MaxEvents {
			inc.events = append(inc.events, ev)
		} else {
			inc.leftOut++
		}
	}
	for _, t := range r.det.event(&ev) {
		r.trigger(t)
	}
	if (ev.AllocFailure != nil && !ev.AllocFailure.THPFallback) || ev.Reclaim != nil || ev.Compaction != nil {
		select {
		case r.nudge <- struct{}{}:
		default:
		}
	}
}

// trigger opens an incident, extends the one recording, or holds the
// trigger back (cooldown, rate limit). r.mu is held.
func (r *Recorder) trigger(t Trigger) {
	if r.cur != nil {
		if len(r.cur.Later) < maxLater {
			r.cur.Later = append(r.cur.Later, t)
		}
		r.fired[t.Kind] = t.Time
		return
	}
	now := time.Now()
	why := ""
	if last, ok := r.fired[t.Kind]; ok && r.opts.Cooldown > 0 && t.Time.Sub(last) < r.opts.Cooldown {
		why = fmt.Sprintf("cooldown of %s after the %s trigger at %s", r.opts.Cooldown, t.Kind, last.UTC().Format(time.RFC3339))
	} else if rl := r.opts.RateLimit; !rl.Off() {
		kept := r.opened[:0]
		for _, o := range r.opened {
			if now.Sub(o) < rl.Per {
				kept = append(kept, o)
			}
		}
		r.opened = kept
		if uint64(len(r.opened)) >= rl.N {
			why = fmt.Sprintf("rate limit of %s incidents reached", rl)
		}
	}
	if why != "" {
		r.held[t.Kind]++
		// Said once per cooldown period and kind, not once per event.
		if said, ok := r.heldSaid[t.Kind]; !ok || now.Sub(said) >= max(r.opts.Cooldown, time.Minute) {
			r.heldSaid[t.Kind] = now
			r.opts.Logf("%s trigger held back (%s): %s", t.Kind, why, text.Escape(t.Reason))
		}
		return
	}
	r.fired[t.Kind] = t.Time
	r.opened = append(r.opened, now)
	start := t.Time.Add(-r.opts.Before)
	if start.Before(r.started) {
		start = r.started
	}
	inc := &incident{
		Incident: Incident{
			ID: t.Time.UTC().Format(timeLayout) + "-" + t.Kind, Trigger: t,
			WindowStart: start.UTC(), WindowEnd: t.Time.Add(r.opts.After).UTC(),
			Before: r.opts.Before.String(), After: r.opts.After.String(),
			CountsSince: r.started.UTC(), EventsDropped: r.events.droppedSince(start),
		},
		file:  fileName(t),
		until: now.Add(r.opts.After),
	}
	if len(r.held) > 0 {
		inc.Held, r.held = r.held, map[string]uint64{}
	}
	inc.events = r.events.since(start, r.opts.MaxEvents)
	for _, s := range r.states {
		if !s.Time.Before(start) {
			inc.States = append(inc.States, s)
		}
	}
	r.cur, r.firstPart = inc, true
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run samples the system state and writes incidents until ctx is done;
// an incident still recording then is written complete, with stop
// reason "signal".
func (r *Recorder) Run(ctx context.Context) error {
	r.sample(time.Now())
	last := time.Now()
	timer := time.NewTimer(r.opts.SampleEvery)
	defer timer.Stop()
	lastAge := time.Now()
	for {
		select {
		case <-r.nudge:
			// The timer keeps running: a steady trickle of failures must
			// not postpone the end of an incident.
			if time.Since(last) >= r.opts.FastEvery {
				r.sample(time.Now())
				last = time.Now()
			}
			continue
		case <-ctx.Done():
			r.mu.Lock()
			open := r.cur != nil
			r.mu.Unlock()
			if open {
				r.sample(time.Now())
				r.write("signal")
			}
			return nil
		case <-r.wake:
			// Within a second of the trigger: a sample of the moment,
			// then the first part on disk.
			r.sample(time.Now())
			r.write(StopRecording)
		case now := <-timer.C:
			r.sample(now)
			r.mu.Lock()
			done := r.cur != nil && !now.Before(r.cur.until)
			r.mu.Unlock()
			if done {
				r.write("duration")
			}
			if r.opts.AgeOut > 0 && now.Sub(lastAge) >= r.opts.AgeOut/2 {
				lastAge = now
				r.ageOut(now)
			}
		}
		last = time.Now()
		r.mu.Lock()
		every := r.opts.SampleEvery
		if r.cur != nil {
			every = r.opts.FastEvery
		}
		r.mu.Unlock()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(every)
	}
}
