package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/memtrace/memtrace/test/vm/internal/proto"
)

// runResult is one -kernel entry: its fetch and its boot.
type runResult struct {
	entry   kernelEntry
	k       *kernel // nil when fetching failed
	kernel  string  // the release booted; the entry until it is known
	pkg     string  // the concrete package
	distro  string  // "Debian 12"; "" from the host's apt
	accel   string
	cgroup  string        // the guest's memory cgroup: -cgroup, or v2 where v1's memcg is not built
	out     string        // the results directory
	took    time.Duration // qemu start to exit
	bootErr error         // fetching or booting failed
	stream  *proto.Stream
	started time.Time
	wire    int64 // the lab's connections from the host that the guest greeted
}

// testCounts summarizes a test binary's -test.v output.
type testCounts struct {
	pass, fail, skip int
	failed           []string // every failed test and subtest
	skipped          []string // top-level skips, with the reason
}

var testLine = regexp.MustCompile(`^(\s*)--- (PASS|FAIL|SKIP): (\S+)`)

func countTests(output string) testCounts {
	var c testCounts
	lines := strings.Split(output, "\n")
	for i, l := range lines {
		m := testLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		top := m[1] == ""
		switch m[2] {
		case "FAIL":
			c.failed = append(c.failed, m[3])
			if top {
				c.fail++
			}
		case "PASS":
			if top {
				c.pass++
			}
		case "SKIP":
			if top {
				c.skip++
				c.skipped = append(c.skipped, m[3]+": "+skipReason(lines[:i]))
			}
		}
	}
	return c
}

// skipReason is the last message the test logged before its SKIP line
// (-test.v prints a test's t.Skip message before "--- SKIP").
func skipReason(before []string) string {
	for i := len(before) - 1; i >= 0; i-- {
		l := before[i]
		if strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- ") {
			break
		}
		if t := strings.TrimSpace(l); t != "" {
			return t
		}
	}
	return "(no reason given)"
}

// saveStream writes each step's output and the files the guest sent.
func saveStream(dir string, s *proto.Stream) error {
	for _, r := range s.Results {
		name := strings.ReplaceAll(r.Name, "/", "_") + ".log"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(r.Output), 0o644); err != nil {
			return fmt.Errorf("saving results: %w", err)
		}
	}
	for name, data := range s.Files {
		// Keep the guest from writing outside dir.
		p := filepath.Join(dir, "guest", filepath.Clean("/"+name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("saving results: %w", err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return fmt.Errorf("saving results: %w", err)
		}
	}
	return nil
}

// summaries decodes the e2e summaries among files (name → content).
func summaries(files map[string][]byte) []proto.Summary {
	var names []string
	for n := range files {
		if strings.HasPrefix(filepath.Base(n), "e2e-") && strings.HasSuffix(n, ".json") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var out []proto.Summary
	for _, n := range names {
		var s proto.Summary
		if json.Unmarshal(files[n], &s) == nil {
			out = append(out, s)
		}
	}
	// The default variant first: it is what users get.
	sort.SliceStable(out, func(i, j int) bool { return out[i].Variant == "default" && out[j].Variant != "default" })
	return out
}

func readSummaries(dir string) []proto.Summary {
	files := map[string][]byte{}
	m, _ := filepath.Glob(filepath.Join(dir, "e2e-*.json"))
	for _, p := range m {
		if b, err := os.ReadFile(p); err == nil {
			files[p] = b
		}
	}
	return summaries(files)
}
