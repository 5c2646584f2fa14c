package hugepages

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func oracleReport(t *testing.T) *Report {
	t.Helper()
	r, err := Collect(Options{ProcRoot: "testdata/oracle/proc", SysRoot: "testdata/oracle/sys", PlanBytes: 64 << 30, PlanProcesses: 1000})
	if err != nil {
		t.Fatal(err)
	}
	r.Time = time.Time{}
	return r
}

// TestCollectGolden pins the whole report of the oracle tree; regenerate
// with `go test ./internal/command/hugepages -run Golden -update` and review the diff.
func TestCollectGolden(t *testing.T) {
	r := oracleReport(t)
	got, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	const golden = "testdata/oracle.golden.json"
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
		t.Errorf("report differs from %s (run with -update and review the diff):\n%s", golden, got)
	}
}

func TestCollectOracle(t *testing.T) {
	r := oracleReport(t)
	if len(r.Errors) != 0 {
		t.Errorf("errors: %q", r.Errors)
	}
	pids := map[int]Process{}
	for _, p := range r.Processes {
		pids[p.Pid] = p
	}
	if len(pids) != 4 {
		t.Fatalf("%d processes listed, want 4 (init maps nothing of interest)", len(pids))
	}
	if p := pids[4101]; p.HugetlbMappedKB() != 4566*2048 || len(p.SysV) != 3 || p.LargeSharedBaseKB != 0 {
		t.Errorf("oracle pmon: %d kB hugetlb, sysv %v, %d kB large shared on base pages", p.HugetlbMappedKB(), p.SysV, p.LargeSharedBaseKB)
	}
	if p := pids[5120]; p.HugetlbMappedKB() != 0 || p.LargeSharedBaseKB != 1100<<10 || p.MemlockBytes != 65536 {
		t.Errorf("postgres: %+v", p)
	}
	if p := pids[7001]; p.HugetlbMappedKB() != 64<<10 {
		t.Errorf("hugetlbfs file: %d kB", p.HugetlbMappedKB())
	}
	segs := map[int64]SegmentUse{}
	for _, s := range r.Segments {
		segs[s.ShmID] = s
	}
	if s := segs[65538]; s.OnHugePages == nil || !*s.OnHugePages || s.PageSizeKB != 2048 || len(s.Attachers) != 2 {
		t.Errorf("SGA segment: %+v", s)
	}
	if s := segs[131076]; s.OnHugePages == nil || *s.OnHugePages || len(s.Attachers) != 1 || s.Attachers[0].Pid != 5120 {
		t.Errorf("postgres header segment: %+v", s)
	}
	if s := segs[163845]; s.OnHugePages != nil || len(s.Attachers) != 0 {
		t.Errorf("unattached segment: %+v", s)
	}
	if r.Sizing.NrHugepages != 5083 || r.Sizing.NeededPages != 5078 {
		t.Errorf("sizing %+v", r.Sizing)
	}
	if r.Plan == nil || r.Plan.Sizing.NrHugepages != 32778 {
		t.Errorf("plan %+v", r.Plan)
	}
	// Each process pays one 8-byte entry per 4 KiB of what it maps shared.
	var shared uint64
	for _, p := range r.Tables.PerProcess {
		shared += p.SharedBytes
	}
	if r.Tables.SharedBytes != shared || r.Tables.AsBasePages != shared/4096*8 || r.Tables.TotalKB == 0 {
		t.Errorf("page tables %+v", r.Tables)
	}
}
