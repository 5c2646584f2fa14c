package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"
)

var updateHugepages = flag.Bool("update-hugepages", false, "rewrite testdata/hugepages-oracle.golden")

// oracleTree is the golden host of internal/command/hugepages: the seed's pool
// (13007/11813/3372), Oracle SGA segments on huge pages, a PostgreSQL that
// fell back, and a process name with a terminal escape.
const oracleTree = "../../internal/command/hugepages/testdata/oracle"

func hpRun(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHugepagesGolden(t *testing.T) {
	code, out, errs := hpRun("hugepages", "--proc-root", oracleTree+"/proc", "--sys-root", oracleTree+"/sys", "--plan", "64G", "--processes", "1000")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	const golden = "testdata/hugepages-oracle.golden"
	if *updateHugepages {
		os.WriteFile(golden, []byte(out), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("output differs from %s (-update-hugepages rewrites it):\n%s", golden, out)
	}
	// The seed's example, with the correct never-used count (8441, not
	// the article's 8841).
	for _, s := range []string{"13007  11813  3372", "1194    4566                8441        16.5 GiB", "recommended vm.nr_hugepages = 5083", "vm.nr_hugepages = 32778"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q", s)
		}
	}
	if strings.ContainsRune(out, 0x1b) || !strings.Contains(out, `x\x1b[2Jevil`) {
		t.Error("the escape in a process name reached the terminal unescaped")
	}
}

func TestHugepagesJSON(t *testing.T) {
	code, out, errs := hpRun("hugepages", "--json", "--proc-root", oracleTree+"/proc", "--sys-root", oracleTree+"/sys")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var r struct {
		Pools []struct {
			PageSizeKB uint64 `json:"page_size_kb"`
			NeverUsed  uint64 `json:"never_used"`
		} `json:"pools"`
		Processes []struct {
			Comm string `json:"comm"`
		} `json:"processes"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(r.Pools) != 2 || r.Pools[0].NeverUsed != 8441 || len(r.Processes) != 4 {
		t.Errorf("report %+v", r)
	}
	if strings.ContainsRune(out, 0x1b) {
		t.Error("raw escape in JSON output")
	}
}

func TestHugepagesUsage(t *testing.T) {
	for _, args := range [][]string{
		{"hugepages", "extra"},
		{"hugepages", "--plan", "lots"},
		{"hugepages", "--plan", "0"},
		{"hugepages", "--min-size", "big"},
		{"hugepages", "--processes", "-1"},
	} {
		if code, _, errs := hpRun(args...); code != exitUsage || !strings.Contains(errs, "Usage:") {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, errs)
		}
	}
}
