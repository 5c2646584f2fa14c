package record

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/memtrace/memtrace/internal/command/capture"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/sysstate"
)

// Section is the capture document's key for an incident's own fields.
const Section = "incident"

// Stop reasons of an incident file: the first part, written at the
// trigger, says "recording"; the complete file says "duration", or
// "signal" when the recorder was stopped before the recording ended.
const StopRecording = "recording"

// State is one sample of the system state: the capture's snapshot, the
// memory pressure, and the probes' cumulative counters.
type State struct {
	sysstate.Snapshot
	Pressure *sysstate.Pressure           `json:"pressure,omitempty"`
	Stats    map[event.Signal]event.Stats `json:"stats,omitempty"`
}

// Incident is the "incident" section of an incident file.
type Incident struct {
	ID string `json:"id"`
	// Complete is false in the first part, written at the trigger.
	Complete bool    `json:"complete"`
	Trigger  Trigger `json:"trigger"`
	// Later are triggers that fired while the incident was recording.
	Later []Trigger `json:"later_triggers"`
	// Held counts, by kind, the triggers held back by the cooldown or
	// the rate limit since the previous incident.
	Held map[string]uint64 `json:"held_back,omitempty"`
	// WindowStart and WindowEnd bound the incident: from Before before
	// the trigger (or the recorder's start) to After after it.
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
	Before      string    `json:"before"`
	After       string    `json:"after"`
	// CountsSince is when the probes were attached: the aggregates' counts
	// are totals since then (the rows are those that counted within the
	// window).
	CountsSince time.Time `json:"counts_since"`
	// EventsDropped counts events of the window the ring could not hold
	// (it keeps the newest, up to max_events).
	EventsDropped uint64  `json:"events_dropped"`
	States        []State `json:"states"`
}

// incident is an incident being recorded.
type incident struct {
	Incident
	file     string
	until    time.Time
	events   []event.Event
	leftOut  uint64
	lastFull time.Time // of the last complete write
}

// document builds an incident's capture document from a copy of its
// section (States included) and events; it reads the in-kernel
// aggregates.
func (r *Recorder) document(sec Incident, events []event.Event, leftOut uint64, now time.Time, stop string) *capture.Document {
	states := sec.States
	doc := &capture.Document{
		Schema: capture.Schema, SchemaVersion: capture.SchemaVersion,
		Tool:       capture.Tool{Name: "memtrace", Version: r.opts.Version},
		Host:       r.host,
		Start:      sec.WindowStart,
		End:        now.UTC(),
		StopReason: stop,
		Config:     r.opts.Config,
		Hooks:      r.hooks,
		Decoding:   r.decoding,
		Events:     events, EventsLeftOut: leftOut,
		DecodeErrors: r.src.DecodeErrors(),
		Warnings:     append([]string(nil), r.warnings...),
	}
	doc.Config.Duration = sec.WindowEnd.Sub(sec.WindowStart).String()
	doc.Config.MaxEvents = r.opts.MaxEvents
	if len(states) > 0 {
		doc.Before, doc.After = states[0].Snapshot, states[len(states)-1].Snapshot
		doc.Stats = statsDelta(states[0].Stats, states[len(states)-1].Stats)
	}
	doc.Warnings = append(doc.Warnings, doc.ReadAggregates(since{r.src, sec.WindowStart})...)
	if doc.AllocFailures == nil {
		doc.AllocFailures = []event.AllocAggregate{}
	}
	if doc.Extfrag == nil {
		doc.Extfrag = []event.ExtfragAggregate{}
	}
	var unsampled []event.Event
	for _, ev := range events {
		if ev.Kind == event.KindHugetlb || ev.Kind == event.KindWarnAlloc {
			unsampled = append(unsampled, ev)
		}
	}
	doc.Processes = capture.Summarize(doc.AllocFailures, doc.Extfrag, unsampled)

	if sec.Later == nil {
		sec.Later = []Trigger{}
	}
	raw, err := json.Marshal(sec)
	if err != nil {
		doc.Warnings = append(doc.Warnings, fmt.Sprintf("encoding the incident section: %v", err))
		return doc
	}
	if doc.Sections == nil {
		doc.Sections = map[string]json.RawMessage{}
	}
	doc.Sections[Section] = raw
	return doc
}

// ReadIncident returns a document's incident section, nil for a capture
// that is not an incident.
func ReadIncident(doc *capture.Document) (*Incident, error) {
	raw, ok := doc.Sections[Section]
	if !ok {
		return nil, nil
	}
	var inc Incident
	if err := json.Unmarshal(raw, &inc); err != nil {
		return nil, fmt.Errorf("parsing the incident section: %w", err)
	}
	return &inc, nil
}

// statsDelta is what the probes counted between two readings.
func statsDelta(a, b map[event.Signal]event.Stats) map[event.Signal]event.Stats {
	out := map[event.Signal]event.Stats{}
	sub := func(x, y uint64) uint64 {
		if x >= y {
			return x - y
		}
		return x
	}
	for sig, s := range b {
		p := a[sig]
		out[sig] = event.Stats{Seen: sub(s.Seen, p.Seen), Lost: sub(s.Lost, p.Lost), Sampled: sub(s.Sampled, p.Sampled), MapFull: sub(s.MapFull, p.MapFull)}
	}
	return out
}

// since is a source whose aggregates are only the rows last seen at or
// after t: those that counted within an incident's window.
type since struct {
	event.Source
	t time.Time
}

func (s since) Aggregates(sig event.Signal) (any, error) {
	rows, err := s.Source.Aggregates(sig)
	if rows == nil {
		return rows, err
	}
	v := reflect.ValueOf(rows)
	if v.Kind() != reflect.Slice {
		return rows, err
	}
	out := reflect.MakeSlice(v.Type(), 0, v.Len())
	for i := range v.Len() {
		if seen, ok := lastSeen(v.Index(i)); !ok || !seen.Before(s.t) {
			out = reflect.Append(out, v.Index(i))
		}
	}
	return out.Interface(), err
}

// lastSeen reads an aggregate row's LastSeen field, which every family's
// rows have.
func lastSeen(row reflect.Value) (time.Time, bool) {
	if row.Kind() != reflect.Struct {
		return time.Time{}, false
	}
	f := row.FieldByName("LastSeen")
	if !f.IsValid() {
		return time.Time{}, false
	}
	t, ok := f.Interface().(time.Time)
	return t, ok
}

// eachRow calls f with the pid and last-seen time of every row of an
// aggregate slice.
func eachRow(rows any, f func(pid uint32, seen time.Time)) {
	v := reflect.ValueOf(rows)
	if v.Kind() != reflect.Slice {
		return
	}
	for i := range v.Len() {
		row := v.Index(i)
		seen, ok := lastSeen(row)
		pid := row.FieldByName("Pid")
		if !ok || !pid.IsValid() || pid.Kind() != reflect.Uint32 {
			continue
		}
		f(uint32(pid.Uint()), seen)
	}
}
