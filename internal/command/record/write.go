package record

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/sysstate"
	"github.com/memtrace/memtrace/internal/present/text"
)

// sample reads the system state, keeps it in the ring (and the incident
// recording), and fires the pressure trigger.
func (r *Recorder) sample(now time.Time) {
	s := State{Snapshot: r.sys.Take()}
	if p, err := sysstate.ReadPressure(r.opts.ProcRoot); err == nil {
		s.Pressure = &p
	} else if !r.noPSI {
		r.noPSI = true
		if errors.Is(err, os.ErrNotExist) {
			r.opts.Logf("no memory pressure on this kernel (PSI off or missing): the pressure trigger cannot fire")
		} else {
			r.opts.Logf("%v: the pressure trigger cannot fire", err)
		}
	}
	if st, err := r.src.Stats(); err == nil {
		s.Stats = st
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	horizon := now.Add(-r.opts.Before)
	drop := 0
	for drop < len(r.states) && r.states[drop].Time.Before(horizon) {
		drop++
	}
	// At most one sample per FastEvery of Before, whatever happens.
	if limit := int(r.opts.Before/r.opts.FastEvery) + 1; len(r.states)-drop >= limit {
		drop = len(r.states) - limit + 1
	}
	r.states = append(r.states[:0], r.states[drop:]...)
	r.states = append(r.states, s)
	if r.cur != nil {
		r.cur.States = append(r.cur.States, s)
	}
	if s.Pressure != nil {
		if t := r.det.pressure(*s.Pressure, now); t != nil {
			r.trigger(*t)
		}
	}
}

// write writes the incident recording: stop is StopRecording for the
// first part, else the file is complete and the incident closed.
func (r *Recorder) write(stop string) {
	r.mu.Lock()
	inc := r.cur
	if inc == nil || (stop == StopRecording && !r.firstPart) {
		r.mu.Unlock()
		return
	}
	r.firstPart = false
	complete := stop != StopRecording
	inc.Complete = complete
	// What HandleEvent may still change is copied under the lock.
	sec := inc.Incident
	sec.Later = append([]Trigger(nil), inc.Later...)
	sec.States = append([]State(nil), inc.States...)
	events := append([]event.Event(nil), inc.events...)
	leftOut := inc.leftOut
	if complete {
		r.cur = nil
	}
	r.mu.Unlock()

	now := time.Now()
	doc := r.document(sec, events, leftOut, now, stop)
	size, err := writeFile(r.opts.Dir, inc.file, doc)
	if err != nil {
		r.opts.Logf("writing incident %s: %v", sec.ID, err)
		return
	}
	what := "first part of"
	if complete {
		what = "complete"
	}
	r.opts.Logf("wrote %s incident %s/%s (%s: %s): %d events, %d states, %s",
		what, r.opts.Dir, inc.file, sec.Trigger.Kind, text.Escape(sec.Trigger.Reason), len(events), len(sec.States), text.Bytes(uint64(size), 1))
	removed, err := bound(r.opts.Dir, r.opts.MaxSize, inc.file)
	if err != nil {
		r.opts.Logf("bounding %s: %v", r.opts.Dir, err)
	}
	for _, name := range removed {
		r.opts.Logf("removed %s (--max-size %s)", name, text.Bytes(uint64(r.opts.MaxSize), 0))
	}
}

// ageOut deletes the in-kernel aggregates of processes idle for
// opts.AgeOut, so the kernel's maps never fill on a long run.
func (r *Recorder) ageOut(now time.Time) {
	idle := map[uint32]bool{}
	busy := map[uint32]bool{}
	for _, sig := range Signals() {
		rows, err := r.src.Aggregates(sig)
		if err != nil || rows == nil {
			continue
		}
		eachRow(rows, func(pid uint32, seen time.Time) {
			if now.Sub(seen) >= r.opts.AgeOut {
				idle[pid] = true
			} else {
				busy[pid] = true
			}
		})
	}
	var pids []uint32
	for pid := range idle {
		if !busy[pid] {
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		return
	}
	if err := r.src.ForgetPids(pids); err != nil {
		r.opts.Logf("%v", fmt.Errorf("ageing in-kernel aggregates: %w", err))
	}
}
