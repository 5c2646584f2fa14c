package hugepages

import (
	"math"
	"strings"
	"testing"

	"github.com/memtrace/memtrace/internal/present/text"
)

// TestSeedPoolArithmetic pins the worked example of the seed's Oracle
// article, read from golden /proc and /sys files: Total 13007, Free 11813,
// Rsvd 3372 at 2048 kB. In use = Total - Free = 1194; in use or promised =
// Total - Free + Rsvd = 4566; never used = Free - Rsvd = 11813 - 3372 =
// 8441 pages = 16.5 GiB. The article, the seed digest and issue 4 all say
// 8841 pages "about 17 GiB": that is a slip in the article's subtraction,
// so the test keeps the article's inputs and the correct result.
func TestSeedPoolArithmetic(t *testing.T) {
	r, err := Collect(Options{ProcRoot: "testdata/oracle/proc", SysRoot: "testdata/oracle/sys"})
	if err != nil {
		t.Fatal(err)
	}
	if r.DefaultPageSizeKB != 2048 {
		t.Fatalf("default page size %d kB, want 2048", r.DefaultPageSizeKB)
	}
	var found bool
	for _, p := range r.Pools {
		if p.PageSizeKB != 2048 {
			continue
		}
		found = true
		if p.Total != 13007 || p.Free != 11813 || p.Reserved != 3372 {
			t.Fatalf("pool %+v, want the seed's 13007/11813/3372", p)
		}
		if got := p.InUse(); got != 1194 {
			t.Errorf("in use %d, want 1194", got)
		}
		if got := p.InUseOrPromised(); got != 4566 {
			t.Errorf("in use or promised %d, want 4566", got)
		}
		if got := p.NeverUsed(); got != 8441 { // not the article's 8841
			t.Errorf("never used %d, want 8441", got)
		}
		if got := text.Bytes(p.NeverUsedBytes(), text.TrimZero); got != "16.5 GiB" {
			t.Errorf("never used %s, want 16.5 GiB", got)
		}
	}
	if !found {
		t.Fatal("no 2048 kB pool")
	}
}

// TestSizeForSegments follows hugepages_settings.sh: NUM_PG starts at 1,
// each segment of at least one page adds size/page (rounded down) + 1.
func TestSizeForSegments(t *testing.T) {
	const mb = 1 << 20
	tests := []struct {
		name        string
		sizes       []uint64
		needed, rec uint64
		segments    int
	}{
		{"none", nil, 0, 0, 0},
		{"only small control segments", []uint64{56, 4096}, 0, 0, 0},
		// 8 MiB = 4 pages (exact: the script adds one more), 9,550,430,208
		// bytes = 4554 pages, 16 MiB = 8 pages, 1 GiB = 512 pages.
		{"oracle host", []uint64{8 * mb, 9550430208, 16 * mb, 56, 1 << 30}, 4 + 4554 + 8 + 512, 1 + 5 + 4555 + 9 + 513, 4},
		// Not a multiple: 3 MiB is 2 pages rounded up; the script's floor+1
		// gives the same 2.
		{"partial page", []uint64{3 * mb}, 2, 1 + 2, 1},
	}
	for _, tc := range tests {
		s := SizeForSegments(tc.sizes, 2048)
		if s.NeededPages != tc.needed || s.NrHugepages != tc.rec || s.Segments != tc.segments {
			t.Errorf("%s: needed %d, nr_hugepages %d, segments %d; want %d, %d, %d",
				tc.name, s.NeededPages, s.NrHugepages, s.Segments, tc.needed, tc.rec, tc.segments)
		}
		if s.MemlockKB != s.NrHugepages*2048 {
			t.Errorf("%s: memlock %d kB, want the pool's %d kB", tc.name, s.MemlockKB, s.NrHugepages*2048)
		}
	}
}

// TestSizeForPlan is the seed's pre-installation estimate:
// (SGA + 20 KiB × processes) / page size.
func TestSizeForPlan(t *testing.T) {
	s := SizeForPlan(64<<30, 1000, 2048)
	// 64 GiB = 32768 pages; 1000 × 20 KiB = 20,480,000 bytes = 9.77 pages.
	if s.NeededPages != 32778 || s.NrHugepages != 32778 || s.MemlockKB != 32778*2048 {
		t.Errorf("plan 64G/1000: %+v", s)
	}
	if s := SizeForPlan(1<<30, 0, 1048576); s.NrHugepages != 1 {
		t.Errorf("plan 1G on 1 GiB pages: %d pages, want 1", s.NrHugepages)
	}
	if s := SizeForPlan(1<<30, 0, 0); s.NrHugepages != 0 {
		t.Errorf("no page size: %d pages, want 0", s.NrHugepages)
	}
}

// TestCostOfPageTables pins the seed's numbers: a 100 GiB SGA in 1000
// processes takes 26,214,400 PTEs = 200 MiB per process and "200 GiB" in
// total with 4 KiB pages (1000 × 200 MiB, which is 195.3 GiB: the article
// rounds); with 2 MiB pages 51,200 entries = 400 KiB.
func TestCostOfPageTables(t *testing.T) {
	c := CostOfPageTables(100<<30, 1000, 4, 2048)
	if c.BaseEntries != 26214400 {
		t.Errorf("base entries %d, want 26,214,400", c.BaseEntries)
	}
	if c.BaseBytesPerProcess != 200<<20 || c.BaseBytesTotal != 1000*200<<20 {
		t.Errorf("base: %d per process, %d total; want 200 MiB, 1000 × 200 MiB", c.BaseBytesPerProcess, c.BaseBytesTotal)
	}
	if c.HugeEntries != 51200 || c.HugeBytesPerProcess != 400<<10 {
		t.Errorf("huge: %d entries, %d bytes; want 51,200 and 400 KiB", c.HugeEntries, c.HugeBytesPerProcess)
	}
	if c.SavedBytesTotal != c.BaseBytesTotal-c.HugeBytesTotal {
		t.Errorf("saved %d", c.SavedBytesTotal)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{
		"64G": 64 << 30, "64GiB": 64 << 30, "64gb": 64 << 30, "512M": 512 << 20, "1.5T": 3 << 39,
		"2048k": 2 << 20, "4096": 4096, "100B": 100, " 2 M ": 2 << 20,
	} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "-1G", "12Q", "1e400G", "NaNG"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}

func TestCheckPlan(t *testing.T) {
	for _, c := range []struct {
		bytes     uint64
		processes int
		ok        bool
	}{
		{64 << 30, 1000, true},
		{64 << 30, 0, true},
		{1 << 52, 4194304, false},         // 4 PiB in pid_max processes: 2^65 bytes of page tables
		{1 << 40, 4194304, true},          // 1 TiB: 8 PiB of page tables, absurd but representable
		{1 << 30, math.MaxInt64, false},   // the 9223372036854775807 processes
		{math.MaxUint64, 0, true},         // the pool itself still fits
		{math.MaxUint64, 1, false},        // ...plus 20 KiB does not
		{math.MaxUint64 - 4095, 1, false}, // ceilDiv must not wrap either
	} {
		if err := CheckPlan(c.bytes, c.processes); (err == nil) != c.ok {
			t.Errorf("CheckPlan(%d, %d) = %v, want ok %v", c.bytes, c.processes, err, c.ok)
		}
	}
}

func TestCeilDivDoesNotWrap(t *testing.T) {
	if got := ceilDiv(math.MaxUint64, 4096); got != math.MaxUint64/4096+1 {
		t.Errorf("ceilDiv(MaxUint64, 4096) = %d", got)
	}
}

// TestValidate pins the hugepages command's rules, which live only in
// Options.Validate (cmd/memtrace and Collect both call it).
func TestValidate(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string // "" for valid
	}{
		{Options{}, ""},
		{Options{PlanBytes: 64 << 30, PlanProcesses: 1000}, ""},
		{Options{PlanBytes: 1 << 50, PlanProcesses: MaxProcesses}, ""},
		{Options{PlanProcesses: -1}, "--processes must not be negative"},
		{Options{PlanBytes: 1 << 30, PlanProcesses: MaxProcesses + 1}, "--processes 4194305"},
		{Options{PlanBytes: 16000 << 50, PlanProcesses: 4000000}, "--plan: "},
	} {
		err := c.o.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v, want valid", c.o, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: %v, want an error with %q", c.o, err, c.want)
		}
	}
	if _, err := Collect(Options{PlanProcesses: -1}); err == nil {
		t.Error("Collect accepted -1 processes")
	}
}
