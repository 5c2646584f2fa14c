package doctor

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMalformed replaces one file of the vm tree at a time with a broken
// version: never a panic, and a "could not read" finding naming the file
// for those that cannot be parsed.
func TestMalformed(t *testing.T) {
	targets := map[string]string{
		"buddyinfo_":       "proc/buddyinfo",
		"free_hugepages_":  "sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages",
		"meminfo_":         "proc/meminfo",
		"min_free_kbytes_": "proc/sys/vm/min_free_kbytes",
		"pagetypeinfo_":    "proc/pagetypeinfo",
		"vmstat_":          "proc/vmstat",
		"zoneinfo_":        "proc/zoneinfo",
		"sysvipc_shm_":     "proc/sysvipc/shm",
		"node_online_":     "sys/devices/system/node/online",
		"node0_distance_":  "sys/devices/system/node/node0/distance",
		"thp_enabled_":     "sys/kernel/mm/transparent_hugepage/enabled",
		"uptime_":          "proc/uptime",
		"status_":          "proc/1/status",
	}
	// Files the readers accept: unknown counters and fields are how new
	// kernels look; a garbled process status only drops that process.
	accepted := map[string]bool{"vmstat_unknown": true, "zoneinfo_unknown_fields": true, "status_garbage": true}
	ents, err := os.ReadDir("testdata/bad")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		name := e.Name()
		var target string
		for prefix, path := range targets {
			if strings.HasPrefix(name, prefix) {
				target = path
			}
		}
		if target == "" {
			t.Errorf("%s: no target for this bad file", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			tree := copyTree(t, "testdata/vm")
			data, err := os.ReadFile(filepath.Join("testdata/bad", name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(tree, target), data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, r := run(t, tree, "", Config{})
			var text bytes.Buffer
			if err := WriteText(&text, r); err != nil {
				t.Fatal(err)
			}
			var named bool
			for _, f := range r.Findings {
				if f.ID == "read-error" && strings.HasSuffix(f.Title, target) && strings.HasPrefix(f.Title, "could not read ") {
					named = true
				}
			}
			if accepted[name] {
				if named {
					t.Errorf("%s was refused: %q", name, r.Errors)
				}
				return
			}
			if !named {
				t.Errorf("no \"could not read %s\" finding; errors %q", target, r.Errors)
			}
		})
	}
}

func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
