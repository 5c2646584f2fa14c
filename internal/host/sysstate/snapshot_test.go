package sysstate

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden JSON files")

func takeTree(t testing.TB, root string) Snapshot {
	t.Helper()
	return Take(filepath.Join(root, "proc"), filepath.Join(root, "sys"))
}

// TestGoldenJSON pins the JSON field names and the values parsed from the
// test trees: the JSON is what other tools and bug reports consume.
func TestGoldenJSON(t *testing.T) {
	for _, tree := range []string{"host", "numa"} {
		t.Run(tree, func(t *testing.T) {
			s := takeTree(t, filepath.Join("testdata", tree))
			if len(s.Errors) > 0 {
				t.Fatalf("errors: %q", s.Errors)
			}
			s.Time = time.Time{}
			got, err := json.MarshalIndent(s, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", tree+".golden.json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("snapshot JSON differs from %s (run with -update if intended):\n%s", golden, got)
			}
		})
	}
}

// TestNUMATree checks the constructed two-node tree by meaning, not bytes.
func TestNUMATree(t *testing.T) {
	s := takeTree(t, "testdata/numa")
	if len(s.Buddy) != 4 {
		t.Fatalf("zones: got %d, want 4 (buddyinfo lists populated zones only)", len(s.Buddy))
	}
	n1, ok := s.Zone(1, "Normal")
	if !ok {
		t.Fatal("no node 1 Normal zone")
	}
	if got := n1.MaxFreeOrder(); got != 0 {
		t.Errorf("node 1 Normal MaxFreeOrder = %d, want 0 (no order-1 block left)", got)
	}
	if n1.FreePages != 9012 || n1.MinPages != 5773 || n1.LowPages != 22273 || n1.HighPages != 38773 || n1.Managed != 16500000 {
		t.Errorf("node 1 Normal = %+v", n1)
	}
	n0, _ := s.Zone(0, "Normal")
	if got := n0.MaxFreeOrder(); got != 7 {
		t.Errorf("node 0 Normal MaxFreeOrder = %d, want 7", got)
	}
	if s.Sysctl.ZoneReclaimMode != 1 || s.Sysctl.MinFreeKbytes != 45725 || s.Sysctl.HugetlbShmGroup != 54322 {
		t.Errorf("sysctl = %+v", s.Sysctl)
	}
	if s.PageblockOrder != 9 || s.PageblockOrderSource != PageblockFromPMDSize {
		t.Errorf("pageblock order %d from %q, want 9 from %q", s.PageblockOrder, s.PageblockOrderSource, PageblockFromPMDSize)
	}
	if len(s.HugePools) != 2 || s.HugePools[0].PageSizeKB != 2048 || s.HugePools[1].PageSizeKB != 1048576 {
		t.Fatalf("pools = %+v", s.HugePools)
	}
	if s.HugePools[0] != s.Memory.DefaultPool() {
		t.Errorf("sysfs pool %+v and meminfo pool %+v differ", s.HugePools[0], s.Memory.DefaultPool())
	}
	if s.Vmstat["allocstall_normal"] != 1532 || s.Vmstat["compact_fail"] != 790 {
		t.Errorf("vmstat = %v", s.Vmstat)
	}
	if _, ok := s.Vmstat["pgfault"]; ok {
		t.Error("vmstat kept pgfault, which no incident needs")
	}
}

func TestHostTree(t *testing.T) {
	s := takeTree(t, "testdata/host")
	if s.PageblockOrder != 9 || s.PageblockOrderSource != PageblockFromPagetypeinfo {
		t.Errorf("pageblock order %d from %q, want 9 from pagetypeinfo", s.PageblockOrder, s.PageblockOrderSource)
	}
	for _, z := range s.Buddy {
		if len(z.FreeBlocks) != 11 {
			t.Errorf("%s: %d orders, want 11", z.Zone, len(z.FreeBlocks))
		}
	}
}

// badCases are the malformed files in testdata/bad, each put in place of
// the file its name starts with.
var badTargets = map[string]string{
	"buddyinfo":       "proc/buddyinfo",
	"zoneinfo":        "proc/zoneinfo",
	"vmstat":          "proc/vmstat",
	"meminfo":         "proc/meminfo",
	"pagetypeinfo":    "proc/pagetypeinfo",
	"free_hugepages":  "sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages",
	"min_free_kbytes": "proc/sys/vm/min_free_kbytes",
}

func badTree(t testing.TB, name string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS("testdata/host")); err != nil {
		t.Fatal(err)
	}
	var target string
	for prefix, path := range badTargets {
		if strings.HasPrefix(name, prefix+"_") && len(path) > len(target) {
			target = path
		}
	}
	if target == "" {
		t.Fatalf("no target for testdata/bad/%s", name)
	}
	data, err := os.ReadFile(filepath.Join("testdata/bad", name))
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(root, target)
	if err := os.Chmod(dst, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestMalformed: a broken file costs only its own part of the snapshot and
// says which file and, where the parser is ours, which line.
func TestMalformed(t *testing.T) {
	for _, tc := range []struct {
		name, file, want string // want "" means the file must be accepted
	}{
		{"buddyinfo_truncated", "proc/buddyinfo", "mismatch in number of buddyinfo buckets"},
		{"buddyinfo_huge", "proc/buddyinfo", "line 3: node 0 zone Normal: order 2: count 1e+20 is not a block count"},
		{"buddyinfo_negative", "proc/buddyinfo", "line 2: node 0 zone DMA32: order 10: count -752 is not a block count"},
		{"buddyinfo_badnode", "proc/buddyinfo", `line 3: node "x" is not a node number`},
		{"buddyinfo_nocounts", "proc/buddyinfo", "line 1: node 0 zone DMA: no free counts"},
		{"buddyinfo_empty", "proc/buddyinfo", "no zones"},
		{"zoneinfo_truncated", "proc/zoneinfo", `node 0 zone Normal: missing or malformed "high"`},
		{"zoneinfo_badnumber", "proc/zoneinfo", "node 0 zone Normal: watermarks min 7056, low 0, high 10584 are out of order"},
		{"zoneinfo_unknown_fields", "", ""},
		{"zoneinfo_nonormal", "proc/zoneinfo", "node 0 zone Normal is in buddyinfo but not here"},
		{"vmstat_truncated", "proc/vmstat", `line 101: want "name value", got "allocstall_normal"`},
		{"vmstat_huge", "proc/vmstat", "counter compact_stall: value 99999999999999999999999 is out of range"},
		{"vmstat_notnumber", "proc/vmstat", `counter pgfree: "12kB" is not a number`},
		{"vmstat_unknown", "", ""},
		{"meminfo_notnumber", "proc/meminfo", `"abc"`},
		{"meminfo_huge", "proc/meminfo", "value out of range"},
		{"meminfo_nototal", "proc/meminfo", "no MemTotal line"},
		{"pagetypeinfo_mismatch", "proc/pagetypeinfo", `line 2: pages per block "511" does not match order 9`},
		{"pagetypeinfo_notnumber", "proc/pagetypeinfo", `line 1: page block order "nine" is not an order`},
		{"free_hugepages_two", "sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", `want one number, got "12 34"`},
		{"min_free_kbytes_word", "proc/sys/vm/min_free_kbytes", `"lots"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := badTree(t, tc.name)
			s := takeTree(t, root)
			if tc.want == "" {
				if len(s.Errors) > 0 {
					t.Fatalf("want no error, got %q", s.Errors)
				}
				return
			}
			if len(s.Errors) != 1 {
				t.Fatalf("want one error, got %q", s.Errors)
			}
			prefix := "reading " + filepath.Join(root, tc.file) + ": "
			if got := s.Errors[0]; !strings.HasPrefix(got, prefix) || !strings.Contains(got, tc.want) {
				t.Errorf("error = %q\nwant prefix %q and %q", got, prefix, tc.want)
			}
			// The other parts are still there.
			if tc.file != "proc/meminfo" && s.Memory.MemTotalKB == 0 {
				t.Error("meminfo lost because of another file")
			}
			if !strings.HasSuffix(tc.file, "buddyinfo") && len(s.Buddy) == 0 {
				t.Error("buddyinfo lost because of another file")
			}
		})
	}
}

func TestVmstatUnknownCounters(t *testing.T) {
	s := takeTree(t, badTree(t, "vmstat_unknown"))
	if s.Vmstat["pgalloc_future"] != 12 {
		t.Errorf("pgalloc_future = %d, want 12: the pgalloc_ prefix keeps new zones' counters", s.Vmstat["pgalloc_future"])
	}
	if _, ok := s.Vmstat["brand_new_counter"]; ok {
		t.Error("kept a counter not asked for")
	}
}

func TestMissingRoots(t *testing.T) {
	s := Take("/nonexistent/proc", "/nonexistent/sys")
	if len(s.Errors) == 0 || !strings.Contains(s.Errors[0], "/nonexistent/proc") {
		t.Errorf("errors = %q", s.Errors)
	}
	// A procfs root without a sysfs root still gives what procfs has.
	s = Take("testdata/host/proc", "/nonexistent/sys")
	if s.Memory.MemTotalKB == 0 || len(s.Errors) != 1 || !strings.Contains(s.Errors[0], "/nonexistent/sys/kernel/mm/hugepages") {
		t.Errorf("errors = %q", s.Errors)
	}
}

func TestWatermarkCache(t *testing.T) {
	root := badTree(t, "zoneinfo_unknown_fields")
	r, err := NewReader(filepath.Join(root, "proc"), filepath.Join(root, "sys"))
	if err != nil {
		t.Fatal(err)
	}
	r.WatermarkMaxAge = time.Hour
	first := r.Take()
	// Break zoneinfo: a cached reader does not notice, until a sysctl that
	// moves the watermarks changes.
	zi := filepath.Join(root, "proc/zoneinfo")
	if err := os.WriteFile(zi, []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s := r.Take(); len(s.Errors) > 0 || s.Buddy[2].MinPages != first.Buddy[2].MinPages {
		t.Fatalf("cached take: errors %q, zone %+v", s.Errors, s.Buddy[2])
	}
	mf := filepath.Join(root, "proc/sys/vm/min_free_kbytes")
	if err := os.WriteFile(mf, []byte("90112\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s := r.Take(); len(s.Errors) != 1 || !strings.Contains(s.Errors[0], "zoneinfo") {
		t.Fatalf("after min_free_kbytes changed: errors %q, want a zoneinfo error", s.Errors)
	}
}

// TestRealHost reads this machine's /proc and /sys.
func TestRealHost(t *testing.T) {
	if _, err := os.Stat("/proc/buddyinfo"); err != nil {
		t.Skip("no /proc/buddyinfo: not Linux or procfs not mounted")
	}
	s := Take("/proc", "/sys")
	for _, e := range s.Errors {
		t.Errorf("host: %s", e)
	}
	if s.Memory.MemTotalKB == 0 || len(s.Buddy) == 0 || len(s.Vmstat) == 0 {
		t.Errorf("empty snapshot: %+v", s)
	}
	if os.Geteuid() != 0 && s.PageblockOrderSource == PageblockFromPagetypeinfo {
		t.Error("read pagetypeinfo as non-root?")
	}
	t.Logf("pageblock order %d from %s", s.PageblockOrder, s.PageblockOrderSource)
}

// ReadGeometry reads only what the probes need, and agrees with a full
// snapshot of the same tree.
func TestReadGeometry(t *testing.T) {
	g, err := ReadGeometry("testdata/host/proc", "testdata/host/sys")
	if err != nil {
		t.Fatal(err)
	}
	s := takeTree(t, "testdata/host")
	if g.PageblockOrder != s.PageblockOrder || g.PageblockOrderSource != s.PageblockOrderSource || g.HugepageSizeKB != s.Memory.HugepageSizeKB {
		t.Errorf("geometry %+v, snapshot pageblock %d (%s) hugepage %d kB", g, s.PageblockOrder, s.PageblockOrderSource, s.Memory.HugepageSizeKB)
	}
	if g.HugepageSizeKB == 0 {
		t.Error("no default huge page size")
	}
	if _, err := ReadGeometry("testdata/no-such-root", "testdata/no-such-root"); err == nil {
		t.Error("a missing /proc must be an error")
	}
}
