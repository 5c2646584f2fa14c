// Package cgroup maps between cgroup paths and the ids the kernel reports
// (the kernfs node id, which is also the cgroup directory's inode number).
package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Roots are where cgroup hierarchies are usually mounted: the v2 unified
// tree, the v2 tree of a hybrid host, and the v1 memory controller.
var Roots = []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/memory"}

// ID resolves a cgroup given as a full path (/sys/fs/cgroup/…) or as a path
// inside a hierarchy (/system.slice/postgresql.service) to its id.
func ID(path string) (uint64, error) {
	if path == "" {
		return 0, errors.New("empty cgroup path")
	}
	candidates := []string{path}
	if !strings.HasPrefix(path, "/sys/fs/cgroup") {
		for _, r := range Roots {
			candidates = append(candidates, filepath.Join(r, path))
		}
	}
	for _, c := range candidates {
		fi, err := os.Stat(c)
		if err != nil || !fi.IsDir() {
			continue
		}
		if !isCgroupDir(c) {
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			continue
		}
		return st.Ino, nil
	}
	return 0, fmt.Errorf("cgroup %q not found under %s", path, strings.Join(Roots, ", "))
}

// isCgroupDir tells a cgroup directory from any other directory.
func isCgroupDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "cgroup.procs"))
	return err == nil
}
