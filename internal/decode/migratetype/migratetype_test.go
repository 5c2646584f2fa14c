package migratetype

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/memtrace/memtrace/internal/host/rawbtf"
)

func TestFromEnum(t *testing.T) {
	tests := []struct {
		name   string
		values []EnumMember
		want   []string
	}{
		{
			name: "6.18 without CMA",
			values: []EnumMember{
				{Name: "MIGRATE_UNMOVABLE", Value: 0}, {Name: "MIGRATE_MOVABLE", Value: 1},
				{Name: "MIGRATE_RECLAIMABLE", Value: 2}, {Name: "MIGRATE_PCPTYPES", Value: 3},
				{Name: "MIGRATE_HIGHATOMIC", Value: 3}, {Name: "MIGRATE_ISOLATE", Value: 4},
				{Name: "MIGRATE_TYPES", Value: 5},
			},
			want: []string{"Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate"},
		},
		{
			name: "with CMA",
			values: []EnumMember{
				{Name: "MIGRATE_UNMOVABLE", Value: 0}, {Name: "MIGRATE_MOVABLE", Value: 1},
				{Name: "MIGRATE_RECLAIMABLE", Value: 2}, {Name: "MIGRATE_PCPTYPES", Value: 3},
				{Name: "MIGRATE_HIGHATOMIC", Value: 3}, {Name: "MIGRATE_CMA", Value: 4},
				{Name: "MIGRATE_ISOLATE", Value: 5}, {Name: "MIGRATE_TYPES", Value: 6},
			},
			want: []string{"Unmovable", "Movable", "Reclaimable", "HighAtomic", "CMA", "Isolate"},
		},
		{
			name: "unknown member",
			values: []EnumMember{
				{Name: "MIGRATE_UNMOVABLE", Value: 0}, {Name: "MIGRATE_FUTURE_THING", Value: 1},
				{Name: "MIGRATE_TYPES", Value: 2},
			},
			want: []string{"Unmovable", "FutureThing"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb := FromEnum(tc.values)
			if tb.Len() != len(tc.want) {
				t.Errorf("Len() = %d, want %d", tb.Len(), len(tc.want))
			}
			for i, want := range tc.want {
				if got := tb.Name(i); got != want {
					t.Errorf("Name(%d) = %q, want %q", i, got, want)
				}
			}
			if got := tb.Name(len(tc.want)); got != "unknown("+strconv.Itoa(len(tc.want))+")" {
				t.Errorf("Name past the end = %q", got)
			}
			if tb.Source() != "kernel BTF" {
				t.Errorf("Source() = %q", tb.Source())
			}
		})
	}
}

func TestFromEnumFallback(t *testing.T) {
	for name, members := range map[string][]EnumMember{
		"no enum":       nil,
		"empty":         {},
		"only counters": {{Name: "MIGRATE_PCPTYPES", Value: 0}, {Name: "MIGRATE_TYPES", Value: 0}},
	} {
		tb := FromEnum(members)
		if !strings.HasPrefix(tb.Source(), Default().Source()+": ") {
			t.Errorf("%s: Source() = %q, want the default and a reason", name, tb.Source())
		}
		if tb.Name(1) != "Movable" {
			t.Errorf("%s: Name(1) = %q, want the default's Movable", name, tb.Name(1))
		}
	}
}

func TestDefaultAndForRelease(t *testing.T) {
	tests := []struct {
		release string
		movable int
		names   string
	}{
		{"6.8.0-45-generic", 1, "Unmovable Movable Reclaimable HighAtomic CMA Isolate"},
		{"4.4.0-210-generic", 1, "Unmovable Movable Reclaimable HighAtomic CMA Isolate"},
		{"4.1.12", 2, "Unmovable Reclaimable Movable Reserve CMA Isolate"},
		{"3.10.0-1160.el7.x86_64", 2, "Unmovable Reclaimable Movable Reserve CMA Isolate"},
		{"2.6.32-754.el6.x86_64", 2, "Unmovable Reclaimable Movable Reserve Isolate"},
	}
	for _, tc := range tests {
		tb, err := ForRelease(tc.release)
		if err != nil {
			t.Fatalf("ForRelease(%q): %v", tc.release, err)
		}
		var names []string
		for i := 0; i < tb.Len(); i++ {
			names = append(names, tb.Name(i))
		}
		if got := strings.Join(names, " "); got != tc.names {
			t.Errorf("ForRelease(%q) names = %q, want %q", tc.release, got, tc.names)
		}
		if v, ok := tb.Value("MIGRATE_MOVABLE"); !ok || v != tc.movable {
			t.Errorf("ForRelease(%q).Value(MIGRATE_MOVABLE) = %d, %v", tc.release, v, ok)
		}
		if v, ok := tb.Value("movable"); !ok || v != tc.movable {
			t.Errorf("ForRelease(%q).Value(movable) = %d, %v", tc.release, v, ok)
		}
	}
	if _, err := ForRelease("linux"); err == nil {
		t.Error("ForRelease(linux) succeeded")
	}
	d := Default()
	if d.Name(-1) != "unknown(-1)" || d.Name(3) != "HighAtomic" {
		t.Errorf("Default names: %q %q", d.Name(-1), d.Name(3))
	}
	if _, ok := d.Value("Reserve"); ok {
		t.Error("Default has Reserve")
	}
	if got := Load(nil, "").Source(); got != d.Source() {
		t.Errorf("Load(nil, \"\").Source() = %q", got)
	}
	if got := Load(nil, "3.10.0").Source(); got != "layout for 3.10.0" {
		t.Errorf("Load(nil, 3.10.0).Source() = %q", got)
	}
}

// TestRunningKernel checks the BTF names against /proc/pagetypeinfo, which
// prints one "type <Name>" row per migrate type in value order.
func TestRunningKernel(t *testing.T) {
	raw, err := rawbtf.Open(rawbtf.KernelPath)
	if err != nil {
		t.Skipf("no kernel BTF: %v", err)
	}
	defer raw.Close()
	rawMembers, err := raw.EnumMembers(raw.EnumNamed(EnumName))
	if err != nil {
		t.Fatal(err)
	}
	var members []EnumMember
	for _, m := range rawMembers {
		members = append(members, EnumMember(m))
	}
	tb, err := fromEnum(members)
	if err != nil {
		t.Fatal(err)
	}
	seen, err := pagetypeinfoTypes("/proc/pagetypeinfo")
	if err != nil {
		t.Skipf("/proc/pagetypeinfo not readable (needs root): %v", err)
	}
	if len(seen) == 0 {
		t.Skip("no per-type rows in /proc/pagetypeinfo")
	}
	for i, name := range seen {
		if got := tb.Name(i); got != name {
			t.Errorf("Name(%d) = %q, /proc/pagetypeinfo says %q", i, got, name)
		}
	}
}

// pagetypeinfoTypes returns the type names of the first zone's
// "Node 0, zone DMA, type Unmovable ..." rows.
func pagetypeinfoTypes(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var seen []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "Node" {
			continue
		}
		for i := 0; i+1 < len(fields); i++ {
			if fields[i] != "type" {
				continue
			}
			if len(seen) > 0 && fields[i+1] == seen[0] {
				return seen, nil // the next zone starts over
			}
			seen = append(seen, fields[i+1])
		}
	}
	return seen, sc.Err()
}
