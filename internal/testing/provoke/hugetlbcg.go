package provoke

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/memtrace/memtrace/internal/decode/cgroup"
)

// HugetlbCgroup makes a cgroup v2 named name directly below the v2 root,
// with the hugetlb controller and the given files written in order (e.g.
// "hugetlb.2MB.max": "2097152"). The root's subtree_control gets +hugetlb
// if it lacks it; remove takes it away again, after removing the cgroup,
// which must be empty by then. It fails where v2 has no hugetlb
// controller.
func HugetlbCgroup(name string, files [][2]string) (dir string, remove func() error, err error) {
	root := cgroup.V2Root()
	if root == "" {
		return "", nil, errors.New("making a hugetlb cgroup: no cgroup v2 hierarchy")
	}
	ctl, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
	if err != nil || !strings.Contains(" "+string(ctl)+" ", " hugetlb") {
		return "", nil, fmt.Errorf("making a hugetlb cgroup: no hugetlb controller in %s (%v)", root, err)
	}
	sub := filepath.Join(root, "cgroup.subtree_control")
	had, err := os.ReadFile(sub)
	if err != nil {
		return "", nil, fmt.Errorf("making a hugetlb cgroup: %w", err)
	}
	enabled := false
	if !strings.Contains(" "+strings.TrimSpace(string(had))+" ", " hugetlb ") {
		if err := writeFile(sub, "+hugetlb"); err != nil {
			return "", nil, fmt.Errorf("making a hugetlb cgroup: enabling hugetlb in %s: %w", sub, err)
		}
		enabled = true
	}
	dir = filepath.Join(root, name)
	remove = func() error {
		var errs []error
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing %s: %w", dir, err))
		}
		if enabled {
			if err := writeFile(sub, "-hugetlb"); err != nil {
				errs = append(errs, fmt.Errorf("disabling hugetlb in %s: %w", sub, err))
			}
		}
		return errors.Join(errs...)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", nil, errors.Join(fmt.Errorf("making a hugetlb cgroup: %w", err), remove())
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(dir, f[0]), f[1]); err != nil {
			return "", nil, errors.Join(fmt.Errorf("making a hugetlb cgroup: writing %s: %w", f[0], err), remove())
		}
	}
	return dir, remove, nil
}
