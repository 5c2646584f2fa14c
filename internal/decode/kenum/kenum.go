// Package kenum names the values of a kernel enum as the running kernel
// defines them, from its BTF: compaction outcomes (enum compact_result),
// compaction priorities (enum compact_priority), reclaim throttling
// reasons (enum vmscan_throttle_state). Their values and members change
// between kernels, so none is written down here; the session core reads
// the members from the running kernel's BTF and hands them over.
package kenum

import (
	"fmt"
	"strconv"
	"strings"
)

// Names maps the values of one kernel enum to short names: the member
// name without its prefix, in lower case ("COMPACT_DEFERRED" with prefix
// "COMPACT_" is "deferred").
type Names struct {
	byValue map[int64]string
	source  string
}

// Member is one member of a kernel enum, its value sign-extended where the
// enum is signed. The probe layer reads them from kernel BTF.
type Member struct {
	Name  string
	Value int64
}

// FromMembers names enum name's members that start with prefix (others
// are aliases or counts, such as MIN_COMPACT_PRIORITY or
// NR_VMSCAN_THROTTLE). When several members share a value the first one
// wins, as in the kernel's own printing. err is why the members could not
// be read: the table is then empty and Source says why, and values are
// shown as numbers.
func FromMembers(name, prefix string, members []Member, err error) *Names {
	if err != nil {
		return &Names{source: "unavailable: " + err.Error()}
	}
	n := &Names{byValue: map[int64]string{}, source: "kernel BTF"}
	for _, m := range members {
		short, ok := strings.CutPrefix(m.Name, prefix)
		if !ok || short == "" {
			continue
		}
		if _, dup := n.byValue[m.Value]; !dup {
			n.byValue[m.Value] = strings.ToLower(short)
		}
	}
	if len(n.byValue) == 0 {
		return &Names{source: fmt.Sprintf("unavailable: enum %s has no member named %s*", name, prefix)}
	}
	return n
}

// Of builds a table from explicit names (tests, other sources).
func Of(source string, byValue map[int64]string) *Names {
	m := make(map[int64]string, len(byValue))
	for k, v := range byValue {
		m[k] = v
	}
	return &Names{byValue: m, source: source}
}

// Name returns the name of v, or v as a decimal number when the table
// does not know it (or is nil).
func (n *Names) Name(v int64) string {
	if n != nil {
		if s, ok := n.byValue[v]; ok {
			return s
		}
	}
	return strconv.FormatInt(v, 10)
}

// Value returns the value of a name, for callers that test for one
// outcome ("deferred") without knowing the kernel's numbering.
func (n *Names) Value(name string) (int64, bool) {
	if n == nil {
		return 0, false
	}
	for v, s := range n.byValue {
		if s == name {
			return v, true
		}
	}
	return 0, false
}

// Source says where the names came from.
func (n *Names) Source() string {
	if n == nil {
		return "unavailable"
	}
	return n.source
}
