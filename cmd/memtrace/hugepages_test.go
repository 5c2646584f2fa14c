package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// oracleTree is the golden host of internal/command/hugepages: the seed's pool
// (13007/11813/3372), Oracle SGA segments on huge pages, a PostgreSQL that
// fell back, and a process name with a terminal escape.
const oracleTree = "../../internal/command/hugepages/testdata/oracle"

func hpRun(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestHugepagesGolden: the command's output is the package's text report
// of the same host, byte for byte (internal/command/hugepages pins it and
// its -update rewrites it): the command only turns flags into options.
func TestHugepagesGolden(t *testing.T) {
	code, out, errs := hpRun("hugepages", "--proc-root", oracleTree+"/proc", "--sys-root", oracleTree+"/sys", "--plan", "64G", "--processes", "1000")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	const golden = "../../internal/command/hugepages/testdata/oracle.golden.txt"
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("output differs from %s:\n%s", golden, out)
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
