// Package migratetype names the kernel's page migrate types, the
// "migratetype=" of the mm_page_alloc tracepoint and the columns of
// /proc/pagetypeinfo. Their order and presence depend on version and
// config (MIGRATE_CMA needs CONFIG_CMA, MIGRATE_ISOLATE needs
// CONFIG_MEMORY_ISOLATION, 4.4 swapped Movable and Reclaimable), so the
// names come from the kernel's enum migratetype when its BTF is there.
// The probe layer reads the enum; this package only names its members.
package migratetype

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// EnumName is the name of the kernel's enum of migrate types in BTF.
const EnumName = "migratetype"

// EnumMember is one member of enum migratetype as kernel BTF records it.
type EnumMember struct {
	Name  string
	Value uint64
}

// Names maps migrate type values to the names the kernel prints in
// /proc/pagetypeinfo ("Unmovable", "HighAtomic", ...).
type Names struct {
	names  []string // index = value; "" for holes
	source string
}

// kernelNames are the kernel's spellings (mm/page_alloc.c
// migratetype_names) for each enum member.
var kernelNames = map[string]string{
	"MIGRATE_UNMOVABLE":   "Unmovable",
	"MIGRATE_MOVABLE":     "Movable",
	"MIGRATE_RECLAIMABLE": "Reclaimable",
	"MIGRATE_HIGHATOMIC":  "HighAtomic",
	"MIGRATE_RESERVE":     "Reserve",
	"MIGRATE_CMA":         "CMA",
	"MIGRATE_ISOLATE":     "Isolate",
}

// FromEnum names migrate types from the members of the kernel's enum
// migratetype, falling back to Default when there are none (no kernel
// BTF, or no such enum in it); Source then says why.
func FromEnum(members []EnumMember) *Names {
	t, err := fromEnum(members)
	if err != nil {
		d := Default()
		d.source += ": " + err.Error()
		return d
	}
	return t
}

func fromEnum(members []EnumMember) (*Names, error) {
	if members == nil {
		return nil, errors.New("reading migrate types: no enum migratetype in kernel BTF")
	}
	limit := uint64(1 << 16) // a sane bound if MIGRATE_TYPES is missing
	for _, v := range members {
		if v.Name == "MIGRATE_TYPES" {
			limit = v.Value
		}
	}
	t := &Names{source: "kernel BTF"}
	for _, v := range members {
		// MIGRATE_PCPTYPES aliases the first non-pcp type and
		// MIGRATE_TYPES counts them: neither is a type of its own.
		if v.Name == "MIGRATE_PCPTYPES" || v.Name == "MIGRATE_TYPES" || v.Value >= limit {
			continue
		}
		for uint64(len(t.names)) <= v.Value {
			t.names = append(t.names, "")
		}
		if t.names[v.Value] == "" {
			t.names[v.Value] = displayName(v.Name)
		}
	}
	if len(t.names) == 0 {
		return nil, errors.New("reading migrate types from kernel BTF: enum migratetype is empty")
	}
	return t, nil
}

// displayName turns MIGRATE_FOO_BAR into the kernel's name, or "FooBar"
// for a member this package does not know yet.
func displayName(enum string) string {
	if n, ok := kernelNames[enum]; ok {
		return n
	}
	var b strings.Builder
	for _, part := range strings.Split(strings.TrimPrefix(enum, "MIGRATE_"), "_") {
		if part == "" {
			continue
		}
		b.WriteString(part[:1])
		b.WriteString(strings.ToLower(part[1:]))
	}
	return b.String()
}

// Default is the layout of a 4.4 or later kernel built with CONFIG_CMA and
// CONFIG_MEMORY_ISOLATION, as distribution kernels are.
func Default() *Names {
	return &Names{
		names:  []string{"Unmovable", "Movable", "Reclaimable", "HighAtomic", "CMA", "Isolate"},
		source: "default (4.4+ with CMA)",
	}
}

// ForRelease returns the usual layout for a kernel release ("3.10.0-1160.el7"):
// before 4.4 Reclaimable came before Movable and a Reserve type took the
// place of HighAtomic; CMA exists since 3.5 (assumed configured).
func ForRelease(release string) (*Names, error) {
	major, minor, err := majorMinor(release)
	if err != nil {
		return nil, err
	}
	switch {
	case major > 4 || (major == 4 && minor >= 4):
		t := Default()
		t.source = "layout for " + release
		return t, nil
	case major == 3 && minor >= 5 || major == 4:
		return &Names{names: []string{"Unmovable", "Reclaimable", "Movable", "Reserve", "CMA", "Isolate"},
			source: "layout for " + release}, nil
	default:
		return &Names{names: []string{"Unmovable", "Reclaimable", "Movable", "Reserve", "Isolate"},
			source: "layout for " + release}, nil
	}
}

func majorMinor(release string) (int, int, error) {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return 0, 0, fmt.Errorf("parsing kernel release %q: want major.minor", release)
	}
	minor := parts[1]
	if i := strings.IndexFunc(minor, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minor = minor[:i]
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(minor)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("parsing kernel release %q: %w", release, err)
	}
	return ma, mi, nil
}

// Load returns the names of the enum's members when there are any, else
// the layout for release, else Default. It never fails: an approximate
// name is better than none in a report, and Source says which was used.
func Load(members []EnumMember, release string) *Names {
	if t, err := fromEnum(members); err == nil {
		return t
	}
	if t, err := ForRelease(release); err == nil {
		return t
	}
	return Default()
}

// Name returns the name of migrate type mt, or "unknown(N)".
func (t *Names) Name(mt int) string {
	if mt >= 0 && mt < len(t.names) && t.names[mt] != "" {
		return t.names[mt]
	}
	return fmt.Sprintf("unknown(%d)", mt)
}

// Value returns the number of a migrate type given its name ("Movable")
// or enum member ("MIGRATE_MOVABLE"), case-insensitively.
func (t *Names) Value(name string) (int, bool) {
	if n, ok := kernelNames[strings.ToUpper(name)]; ok {
		name = n
	}
	for i, n := range t.names {
		if n != "" && strings.EqualFold(n, name) {
			return i, true
		}
	}
	return 0, false
}

// Len is the number of migrate types (MIGRATE_TYPES).
func (t *Names) Len() int { return len(t.names) }

// Source tells where the names came from.
func (t *Names) Source() string { return t.source }
