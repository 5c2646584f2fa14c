// Package kenum names the values of a kernel enum as the running kernel
// defines them, from its BTF: compaction outcomes (enum compact_result),
// compaction priorities (enum compact_priority), reclaim throttling
// reasons (enum vmscan_throttle_state). Their values and members change
// between kernels, so none is written down here.
package kenum

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// Names maps the values of one kernel enum to short names: the member
// name without its prefix, in lower case ("COMPACT_DEFERRED" with prefix
// "COMPACT_" is "deferred").
type Names struct {
	byValue map[int64]string
	source  string
}

// FromBTF reads enum name from kernel BTF and keeps the members that
// start with prefix (others are aliases or counts, such as
// MIN_COMPACT_PRIORITY or NR_VMSCAN_THROTTLE). When several members share
// a value the first one wins, as in the kernel's own printing. Without
// BTF or the enum, the table is empty and Source says why: values are
// then shown as numbers.
func FromBTF(spec *btf.Spec, name, prefix string) *Names {
	n, err := fromBTF(spec, name, prefix)
	if err != nil {
		return &Names{source: "unavailable: " + err.Error()}
	}
	return n
}

func fromBTF(spec *btf.Spec, name, prefix string) (*Names, error) {
	if spec == nil {
		return nil, errors.New("no kernel BTF")
	}
	var e *btf.Enum
	if err := spec.TypeByName(name, &e); err != nil {
		return nil, fmt.Errorf("reading enum %s from kernel BTF: %w", name, err)
	}
	n := &Names{byValue: map[int64]string{}, source: "kernel BTF"}
	for _, v := range e.Values {
		short, ok := strings.CutPrefix(v.Name, prefix)
		if !ok || short == "" {
			continue
		}
		val := int64(v.Value)
		if e.Signed {
			val = int64(int32(v.Value))
		}
		if _, dup := n.byValue[val]; !dup {
			n.byValue[val] = strings.ToLower(short)
		}
	}
	if len(n.byValue) == 0 {
		return nil, fmt.Errorf("enum %s has no member named %s*", name, prefix)
	}
	return n, nil
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
