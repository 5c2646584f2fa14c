package stacks

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/google/pprof/profile"

	"github.com/memtrace/memtrace/internal/event"
)

// Profile returns the failures of aggs as a pprof profile: one sample per
// aggregate row (process × order × GFP flags × context × stack), whose
// value is its exact count, with the frames as locations (innermost
// first, as pprof wants) and the row's process, order, GFP flags,
// context and THP fallback as labels. start and end are the capture's
// window.
func Profile(aggs []event.AllocAggregate, start, end time.Time) *profile.Profile {
	p := &profile.Profile{
		SampleType:        []*profile.ValueType{{Type: "failures", Unit: "count"}},
		DefaultSampleType: "failures",
		PeriodType:        &profile.ValueType{Type: "failures", Unit: "count"},
		Period:            1,
		TimeNanos:         start.UnixNano(),
		Comments:          []string{"memtrace: page allocation failures by kernel stack (exact in-kernel counts)"},
	}
	if !start.IsZero() && end.After(start) {
		p.DurationNanos = end.Sub(start).Nanoseconds()
	}
	// One mapping for the kernel, whose symbols the frames already are.
	kernel := &profile.Mapping{ID: 1, File: "[kernel.kallsyms]", HasFunctions: true}
	p.Mapping = []*profile.Mapping{kernel}
	funcs := map[string]*profile.Function{}
	locs := map[string]*profile.Location{}
	location := func(frame string) *profile.Location {
		if l := locs[frame]; l != nil {
			return l
		}
		name := Function(frame)
		fn := funcs[name]
		if fn == nil {
			fn = &profile.Function{ID: uint64(len(p.Function) + 1), Name: name, SystemName: name}
			funcs[name] = fn
			p.Function = append(p.Function, fn)
		}
		l := &profile.Location{ID: uint64(len(p.Location) + 1), Mapping: kernel, Line: []profile.Line{{Function: fn}}}
		locs[frame] = l
		p.Location = append(p.Location, l)
		return l
	}
	for _, a := range aggs {
		if a.Count == 0 {
			continue
		}
		s := &profile.Sample{
			Value: []int64{int64(min(a.Count, 1<<62))},
			Label: map[string][]string{
				"comm":    {a.Comm},
				"gfp":     {a.GFP},
				"context": {a.Context.String()},
			},
			NumLabel: map[string][]int64{"pid": {int64(a.Pid)}, "order": {int64(a.Order)}},
		}
		if a.THPFallback {
			s.Label["thp_fallback"] = []string{strconv.FormatBool(true)}
		}
		stack := a.Stack
		if len(stack) == 0 {
			stack = []string{NoStack}
		}
		for _, f := range stack {
			s.Location = append(s.Location, location(f))
		}
		p.Sample = append(p.Sample, s)
	}
	return p
}

// WriteProfile writes the profile of aggs, gzipped protobuf as pprof
// reads it.
func WriteProfile(w io.Writer, aggs []event.AllocAggregate, start, end time.Time) error {
	p := Profile(aggs, start, end)
	if err := p.CheckValid(); err != nil {
		return fmt.Errorf("building the profile: %w", err)
	}
	if err := p.Write(w); err != nil {
		return fmt.Errorf("writing the profile: %w", err)
	}
	return nil
}
