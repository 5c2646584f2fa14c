package capture

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/present/view"
)

// readAggregates puts every family's aggregates in the document, through
// its view: sorted, under the view's key.
func (d *Document) readAggregates(src event.Source) (warnings []string) {
	for _, f := range view.Families() {
		if f.Section == "" {
			continue
		}
		rows, err := src.Aggregates(f.Signal)
		if err != nil {
			warnings = append(warnings, err.Error())
		}
		sorted, err := f.Rows.Sorted(rows)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("%s: %v", f.Signal, err))
			continue
		}
		if err := d.setSection(f.Section, sorted); err != nil {
			warnings = append(warnings, err.Error())
		}
	}
	return warnings
}

// setSection stores one family's rows: in its field for the families of
// schema version 1, else in Sections.
func (d *Document) setSection(key string, rows any) error {
	switch r := rows.(type) {
	case []event.AllocAggregate:
		d.AllocFailures = r
	case []event.ExtfragAggregate:
		d.Extfrag = r
	default:
		if fieldKeys[key] {
			return fmt.Errorf("section %q: the document has a field of that name", key)
		}
		raw, err := json.Marshal(rows)
		if err != nil {
			return fmt.Errorf("encoding section %q: %w", key, err)
		}
		if d.Sections == nil {
			d.Sections = map[string]json.RawMessage{}
		}
		d.Sections[key] = raw
	}
	return nil
}

// fieldKeys are the keys of the document's own fields.
var fieldKeys = func() map[string]bool {
	keys := map[string]bool{}
	t := reflect.TypeFor[Document]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			keys[name] = true
		}
	}
	return keys
}()

// document is Document without its methods, for the default encoding.
type document Document

// MarshalJSON writes the document's fields, then its Sections in the
// order of the views (any others by key): without sections, exactly the
// encoding of version 1.
func (d *Document) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal((*document)(d))
	if err != nil || len(d.Sections) == 0 {
		return b, err
	}
	var keys []string
	for _, f := range view.Families() {
		if _, ok := d.Sections[f.Section]; ok && f.Section != "" {
			keys = append(keys, f.Section)
		}
	}
	var others []string
	for k := range d.Sections {
		if !slices.Contains(keys, k) {
			others = append(others, k)
		}
	}
	slices.Sort(others)
	var buf bytes.Buffer
	buf.Write(bytes.TrimSuffix(b, []byte("}")))
	for _, k := range append(keys, others...) {
		name, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		buf.WriteByte(',')
		buf.Write(name)
		buf.WriteByte(':')
		buf.Write(d.Sections[k])
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// UnmarshalJSON reads the document's fields, and the keys it has no
// field for into Sections (the sections of families this build may not
// know).
func (d *Document) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, (*document)(d)); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for k, v := range all {
		if fieldKeys[k] {
			continue
		}
		if d.Sections == nil {
			d.Sections = map[string]json.RawMessage{}
		}
		d.Sections[k] = v
	}
	return nil
}
