package capture

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/memtrace/memtrace/internal/aggregate/burst"
	"github.com/memtrace/memtrace/internal/aggregate/demand"
	"github.com/memtrace/memtrace/internal/decode/container"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/sysstate"
)

// Options configure one capture.
type Options struct {
	// Duration of the window; 0 captures until ctx is done.
	Duration time.Duration
	// MaxEvents bounds the events kept in the document; later ones are
	// counted in EventsLeftOut (aggregates still count them).
	MaxEvents int
	// Config records how the capture was asked for (signals, hook,
	// filters); Run fills in Duration and MaxEvents.
	Config Config
	// Start starts the probes (cmd/memtrace passes loader.Start with the
	// flags' configuration). Run calls it once the "before" snapshot is
	// taken, asking for symbolized stacks and container names.
	Start   func(event.Naming) (event.Source, error)
	Version string
	// OnReady runs once every probe is attached (e.g. --ready-file).
	OnReady func(event.Source)
	// ProcRoot and SysRoot locate /proc and /sys for the state snapshots.
	ProcRoot, SysRoot string
}

// Run takes one capture: a snapshot of the system state, the probes for
// the window, a second snapshot, and everything named for this kernel.
// Cancelling ctx ends the window early (Ctrl-C): the document is complete
// up to that point, with StopReason "signal".
func Run(ctx context.Context, opts Options) (*Document, error) {
	if opts.Start == nil {
		return nil, errors.New("capture: no start function for the probes")
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.SysRoot == "" {
		opts.SysRoot = "/sys"
	}
	doc := &Document{
		Schema: Schema, SchemaVersion: SchemaVersion,
		Tool:   Tool{Name: "memtrace", Version: opts.Version},
		Host:   ThisHost(),
		Config: opts.Config,
		Events: []event.Event{},
	}
	doc.Config.Duration, doc.Config.MaxEvents = opts.Duration.String(), opts.MaxEvents

	doc.Before = sysstate.Take(opts.ProcRoot, opts.SysRoot)

	sess, err := opts.Start(event.Naming{Stacks: true, Symbols: true, Tasks: container.TaskNamer()})
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	doc.Hooks = sess.Hooks()
	for _, h := range doc.Hooks {
		if !h.Attached {
			doc.Warnings = append(doc.Warnings, fmt.Sprintf("signal %s has no usable hook on this kernel and is not captured", h.Signal))
		}
	}
	doc.Start = time.Now().UTC()
	// Atomic demand is read every 100 ms from the start of the window
	// (a burst lasts about that long), before anything may wait.
	meter := demand.StartLive(sess, 100*time.Millisecond, 0)
	defer meter.Stop()
	if opts.OnReady != nil {
		opts.OnReady(sess)
	}
	d := sess.Decoding()
	doc.Decoding = Decoding{GFPSource: d.GFPSource, MigratetypeSource: d.MigratetypeSource, Symbols: d.Symbols, ContextSource: d.ContextSource}
	doc.Warnings = append(doc.Warnings, d.Warnings...)

	// Huge-page and warn_alloc events are kept for the process summary
	// even past --max-events: they are rare and never sampled. Failure
	// bursts are kept past it too, bounded.
	var unsampled []event.Event
	bursts := burst.Bursts{Max: maxBursts}
	keep := func(ev event.Event) {
		bursts.Add(&ev)
		if ev.Kind == event.KindHugetlb || ev.Kind == event.KindWarnAlloc {
			unsampled = append(unsampled, ev)
		}
		if opts.MaxEvents > 0 && len(doc.Events) >= opts.MaxEvents {
			doc.EventsLeftOut++
			return
		}
		doc.Events = append(doc.Events, ev)
	}

	var timer <-chan time.Time
	if opts.Duration > 0 {
		t := time.NewTimer(opts.Duration)
		defer t.Stop()
		timer = t.C
	}
	doc.StopReason = collect(ctx, sess, timer, keep)

	// Stop the probes, then read what is still in the ring buffers.
	meter.Stop()
	doc.AtomicDemand = atomicDemand(sess, meter)
	if err := sess.Stop(); err != nil {
		doc.Warnings = append(doc.Warnings, fmt.Sprintf("detaching probes: %v", err))
	}
	for ev := range sess.Events() {
		keep(ev)
	}
	doc.End = time.Now().UTC()

	doc.Warnings = append(doc.Warnings, doc.readAggregates(sess)...)
	if doc.Stats, err = sess.Stats(); err != nil {
		doc.Warnings = append(doc.Warnings, err.Error())
	}
	doc.DecodeErrors = sess.DecodeErrors()

	// Without a view (a build that lost one), the fields of version 1
	// are still empty lists, never null.
	if doc.AllocFailures == nil {
		doc.AllocFailures = []event.AllocAggregate{}
	}
	if doc.Extfrag == nil {
		doc.Extfrag = []event.ExtfragAggregate{}
	}
	doc.Processes = Summarize(doc.AllocFailures, doc.Extfrag, unsampled)
	doc.ZoneStates = bursts.List()
	if bursts.Total > uint64(len(doc.ZoneStates)) {
		doc.Warnings = append(doc.Warnings, fmt.Sprintf("%d failure bursts: zone_states keeps the last %d", bursts.Total, len(doc.ZoneStates)))
	}

	if err := sess.Close(); err != nil {
		doc.Warnings = append(doc.Warnings, fmt.Sprintf("closing probes: %v", err))
	}
	doc.After = sysstate.Take(opts.ProcRoot, opts.SysRoot)
	return doc, nil
}

// maxBursts bounds zone_states: a burst is at most one per 100 ms.
const maxBursts = 1000

// atomicDemand is what the meter measured, with the sampled sources.
func atomicDemand(src event.Source, meter *demand.Live) *AtomicDemand {
	r, ok := meter.Read()
	if !ok {
		return nil
	}
	d := &AtomicDemand{Summary: r.Summary, Sources: []event.AtomicSource{}}
	if r.Err != nil {
		d.Error = r.Err.Error()
	}
	if ds, ok := src.(event.DemandSource); ok {
		sources, err := ds.AtomicSources()
		if err != nil && d.Error == "" {
			d.Error = err.Error()
		}
		if len(sources) > 20 {
			sources = sources[:20]
		}
		d.Sources = append(d.Sources, sources...)
	}
	return d
}

// collect receives events until the window ends and says why it ended.
func collect(ctx context.Context, sess event.Source, timer <-chan time.Time, keep func(event.Event)) string {
	for {
		select {
		case ev, ok := <-sess.Events():
			if !ok {
				return "error"
			}
			keep(ev)
		case <-timer:
			return "duration"
		case <-ctx.Done():
			return "signal"
		}
	}
}
