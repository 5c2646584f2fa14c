package capture

import "github.com/memtrace/memtrace/internal/event"

// ReadAggregates puts every family's aggregates from src in the document,
// as Run does, and returns warnings for what could not be read: for
// documents built elsewhere (the flight recorder's incident files).
func (d *Document) ReadAggregates(src event.Source) []string { return d.readAggregates(src) }
