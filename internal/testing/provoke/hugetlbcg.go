package provoke

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memtrace/memtrace/internal/decode/cgroup"
	"github.com/memtrace/memtrace/internal/decode/mounts"
)

// hugetlbCgroupLock is the lock file both helpers take: one enables the
// controller in the v2 root, the other moves it to a v1 hierarchy, and
// each undoes that when done, which would pull it from under the other
// (go test runs package test binaries in parallel).
const hugetlbCgroupLock = "hugetlb-cgroup"

// HugetlbCgroup makes a cgroup v2 named name directly below the v2 root,
// with the hugetlb controller and the given files written in order (e.g.
// "hugetlb.2MB.max": "2097152"). The root's subtree_control gets +hugetlb
// if it lacks it; remove takes it away again, after removing the cgroup,
// which must be empty by then. It fails where v2 has no hugetlb
// controller.
func HugetlbCgroup(name string, files [][2]string) (dir string, remove func() error, err error) {
	unlock, err := lockFile(hugetlbCgroupLock, 2*time.Minute)
	if err != nil {
		return "", nil, fmt.Errorf("making a hugetlb cgroup: %w", err)
	}
	dir, rm, err := hugetlbCgroupV2(name, files)
	if err != nil {
		unlock()
		return "", nil, err
	}
	return dir, func() error { defer unlock(); return rm() }, nil
}

func hugetlbCgroupV2(name string, files [][2]string) (dir string, remove func() error, err error) {
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

// HugetlbCgroupV1 makes a cgroup named name in a cgroup v1 hugetlb
// hierarchy, with the given files written in order (e.g.
// "hugetlb.2MB.limit_in_bytes": "2097152"). Where no v1 hierarchy has the
// controller, it mounts one on a new directory under the temporary
// directory, which takes the controller from cgroup v2 if no v2 cgroup
// enables it there (else the mount fails: an error wrapping
// errors.ErrUnsupported); remove unmounts it, which gives the controller
// back to v2, and removes the directory. root is the hierarchy's mount
// point.
func HugetlbCgroupV1(name string, files [][2]string) (root, dir string, remove func() error, err error) {
	unlock, err := lockFile(hugetlbCgroupLock, 2*time.Minute)
	if err != nil {
		return "", "", nil, fmt.Errorf("making a v1 hugetlb cgroup: %w", err)
	}
	var undo []func() error
	remove = func() error {
		var errs []error
		for i := len(undo) - 1; i >= 0; i-- {
			errs = append(errs, undo[i]())
		}
		unlock()
		return errors.Join(errs...)
	}
	mounted := false
	if root = mountedV1Hugetlb(); root == "" {
		mounted = true
		mnt, err := os.MkdirTemp("", "memtrace-hugetlb-v1-")
		if err != nil {
			return "", "", nil, errors.Join(fmt.Errorf("making a v1 hugetlb cgroup: %w", err), remove())
		}
		undo = append(undo, func() error { return os.Remove(mnt) })
		if err := unix.Mount("none", mnt, "cgroup", 0, "hugetlb"); err != nil {
			if errors.Is(err, unix.EBUSY) {
				err = fmt.Errorf("%w: the hugetlb controller is in use in cgroup v2 (%w)", errors.ErrUnsupported, err)
			}
			return "", "", nil, errors.Join(fmt.Errorf("making a v1 hugetlb cgroup: mounting it on %s: %w", mnt, err), remove())
		}
		undo = append(undo, func() error { return unmountV1Hugetlb(mnt) })
		root = mnt
	}
	dir = filepath.Join(root, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", "", nil, errors.Join(fmt.Errorf("making a v1 hugetlb cgroup: %w", err), remove())
	}
	undo = append(undo, func() error {
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing %s: %w", dir, err)
		}
		// A removed cgroup leaves its parent's list of children only
		// when its last reference goes, a little later; a hierarchy
		// unmounted while it has children stays alive, unmounted, and
		// keeps the controller from v2.
		if !mounted {
			return nil
		}
		return waitHugetlb(func(h, n int) bool { return n <= 1 }, "the removed cgroup to be released")
	})
	for _, f := range files {
		if err := writeFile(filepath.Join(dir, f[0]), f[1]); err != nil {
			return "", "", nil, errors.Join(fmt.Errorf("making a v1 hugetlb cgroup: writing %s: %w", f[0], err), remove())
		}
	}
	return root, dir, remove, nil
}

// mountedV1Hugetlb is the mount point of a v1 hierarchy with the hugetlb
// controller, if one is mounted (its whole tree: root "/").
func mountedV1Hugetlb() string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		a, p := strings.Fields(pre), strings.Fields(post)
		if !ok || len(a) < 5 || len(p) < 3 || p[0] != "cgroup" || a[3] != "/" {
			continue
		}
		for _, o := range strings.Split(p[2], ",") {
			if o == "hugetlb" {
				return mounts.Unescape(a[4])
			}
		}
	}
	return ""
}

// unmountV1Hugetlb unmounts the v1 hugetlb hierarchy mounted on mnt and
// waits for the kernel to give the controller back to cgroup v2.
func unmountV1Hugetlb(mnt string) error {
	if err := unix.Unmount(mnt, 0); err != nil {
		return fmt.Errorf("unmounting %s: %w", mnt, err)
	}
	return waitHugetlb(func(h, n int) bool { return h == 0 }, "the hugetlb controller to return to cgroup v2")
}

// waitHugetlb polls the hugetlb line of /proc/cgroups (hierarchy id, 0
// for v2, and number of cgroups) until done holds, for up to 10 seconds.
func waitHugetlb(done func(hierarchy, cgroups int) bool, what string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		h, n, err := hugetlbHierarchy()
		if err != nil {
			return err
		}
		if done(h, n) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for %s: hugetlb is in hierarchy %d with %d cgroups (/proc/cgroups)", what, h, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hugetlbHierarchy() (hierarchy, cgroups int, err error) {
	b, err := os.ReadFile("/proc/cgroups")
	if err != nil {
		return 0, 0, fmt.Errorf("reading /proc/cgroups: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "hugetlb" {
			_, err := fmt.Sscan(f[1]+" "+f[2], &hierarchy, &cgroups)
			return hierarchy, cgroups, err
		}
	}
	return 0, 0, errors.New("no hugetlb line in /proc/cgroups")
}
