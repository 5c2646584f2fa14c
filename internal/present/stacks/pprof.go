package stacks

import (
	"compress/gzip"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/memtrace/memtrace/internal/event"
)

// WriteProfile writes the failures of aggs as a pprof profile (gzipped
// protobuf, profile.proto): one sample per aggregate row (process × order
// × GFP flags × context × stack) whose value is its exact count, the
// frames as locations (innermost first, as pprof wants) in one mapping
// for the kernel, and the row's process, order, GFP flags, context and THP
// fallback as labels. start and end are the capture's window.
//
// The encoder is memtrace's own, about a page of protobuf: the pprof
// library would link and initialise its parsers (150 KB and 1,100
// allocations at start) in every memtrace command for this one writer.
func WriteProfile(w io.Writer, aggs []event.AllocAggregate, start, end time.Time) error {
	gz := gzip.NewWriter(w)
	if _, err := gz.Write(encodeProfile(aggs, start, end)); err != nil {
		return fmt.Errorf("writing the profile: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("writing the profile: %w", err)
	}
	return nil
}

// Field numbers of profile.proto's messages.
const (
	profSampleType, profSample, profMapping, profLocation, profFunction, profStringTable       = 1, 2, 3, 4, 5, 6
	profTimeNanos, profDurationNanos, profPeriodType, profPeriod, profComment, profDefaultType = 9, 10, 11, 12, 13, 14
)

func encodeProfile(aggs []event.AllocAggregate, start, end time.Time) []byte {
	var p, m pb
	strs := map[string]int64{"": 0}
	table := []string{""}
	// profile.proto's strings are proto3 strings, which decoders built on
	// protobuf's Go library refuse unless UTF-8; process names need not be.
	str := func(s string) int64 {
		s = strings.ToValidUTF8(s, "\uFFFD")
		if i, ok := strs[s]; ok {
			return i
		}
		strs[s] = int64(len(table))
		table = append(table, s)
		return strs[s]
	}
	valueType := pb{}
	valueType.int(1, str("failures"))
	valueType.int(2, str("count"))
	p.message(profSampleType, valueType)

	funcs := map[string]uint64{}
	locs := map[string]uint64{}
	var functions, locations pb
	location := func(frame string) uint64 {
		if id, ok := locs[frame]; ok {
			return id
		}
		name := Function(frame)
		fid, ok := funcs[name]
		if !ok {
			fid = uint64(len(funcs) + 1)
			funcs[name] = fid
			m = pb{}
			m.uint(1, fid)
			m.int(2, str(name)) // name
			m.int(3, str(name)) // system_name
			functions.message(profFunction, m)
		}
		id := uint64(len(locs) + 1)
		locs[frame] = id
		var line pb
		line.uint(1, fid)
		m = pb{}
		m.uint(1, id)
		m.uint(2, 1) // the kernel's mapping
		m.message(4, line)
		locations.message(profLocation, m)
		return id
	}
	for _, a := range aggs {
		if a.Count == 0 {
			continue
		}
		stack := a.Stack
		if len(stack) == 0 {
			stack = []string{NoStack}
		}
		ids := make([]uint64, len(stack))
		for i, f := range stack {
			ids[i] = location(f)
		}
		m = pb{}
		m.packed(1, ids)
		m.packed(2, []uint64{min(a.Count, 1<<62)})
		// A label's value is a string-table index (field 2) or a
		// number (field 3).
		label := func(key string, field int, v int64) {
			var l pb
			l.int(1, str(key))
			l.int(field, v)
			m.message(3, l)
		}
		text := func(key, v string) { label(key, 2, str(v)) }
		num := func(key string, v int64) { label(key, 3, v) }
		text("comm", a.Comm)
		text("gfp", a.GFP)
		text("context", a.Context.String())
		if a.THPFallback {
			text("thp_fallback", "true")
		}
		num("pid", int64(a.Pid))
		num("order", int64(a.Order))
		p.message(profSample, m)
	}
	m = pb{}
	m.uint(1, 1)
	m.int(5, str("[kernel.kallsyms]"))
	m.uint(7, 1) // has_functions
	p.message(profMapping, m)
	p = append(p, locations...)
	p = append(p, functions...)

	p.int(profTimeNanos, start.UnixNano())
	if !start.IsZero() && end.After(start) {
		p.int(profDurationNanos, end.Sub(start).Nanoseconds())
	}
	p.message(profPeriodType, valueType)
	p.int(profPeriod, 1)
	p.int(profComment, str("memtrace: page allocation failures by kernel stack (exact in-kernel counts)"))
	p.int(profDefaultType, str("failures"))
	for _, s := range table {
		p.bytes(profStringTable, s)
	}
	return p
}

// pb is a protobuf message being encoded: only the wire types
// profile.proto uses (varint and length-delimited).
type pb []byte

func (b *pb) varint(v uint64) {
	for v >= 0x80 {
		*b = append(*b, byte(v)|0x80)
		v >>= 7
	}
	*b = append(*b, byte(v))
}

func (b *pb) uint(field int, v uint64) {
	b.varint(uint64(field) << 3)
	b.varint(v)
}

// int writes an int64 field (two's complement as a varint, not zigzag).
func (b *pb) int(field int, v int64) { b.uint(field, uint64(v)) }

func (b *pb) bytes(field int, s string) {
	b.varint(uint64(field)<<3 | 2)
	b.varint(uint64(len(s)))
	*b = append(*b, s...)
}

func (b *pb) message(field int, m pb) { b.bytes(field, string(m)) }

func (b *pb) packed(field int, vs []uint64) {
	var p pb
	for _, v := range vs {
		p.varint(v)
	}
	b.bytes(field, string(p))
}
